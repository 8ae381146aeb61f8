from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import User


@admin.register(User)
class RoundsUserAdmin(UserAdmin):
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        ("Rounds", {"fields": ("display_name", "is_compliance_officer")}),
    )
    list_display = ("username", "display_name", "is_compliance_officer", "is_staff", "is_active")
