from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.models import User


@admin.register(User)
class RoundsUserAdmin(UserAdmin):
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        ("Rounds", {"fields": ("display_name", "is_compliance_officer")}),
    )
    list_display = ("username", "display_name", "is_compliance_officer", "is_staff", "is_active")


def sign_in_with_rounds(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    """The admin site's own password form would skip the second factor: an administrator
    signs in to Rounds (password, then passkey or code), and the admin site takes that
    session."""
    return redirect("/")


admin.site.login = sign_in_with_rounds  # type: ignore[method-assign]
