"""Administration of the patient data the hospital's systems send (docs/interop.md).

IT keeps the location table here (a location the table does not place is refused,
never guessed). Identity-vigilance staff see the potential duplicates and mark the
ones they have dealt with; the merge itself comes from the patient administration
system (A40). The ADT messages kept for replay are read-only, and every look at
them is audited: they name patients.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpResponse
from django.utils import timezone

from audit.actions import record
from patients.models import AdtMessage, LocationMapping, PotentialDuplicate


@admin.register(LocationMapping)
class LocationMappingAdmin(admin.ModelAdmin):
    list_display = ("location", "department")
    search_fields = ("location",)

    def save_model(self, request: Any, obj: LocationMapping, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        record(
            "adt.location_mapped",
            actor=request.user,
            department_id=obj.department_id,
            object_type="location",
            object_id=obj.location[:64],
        )


@admin.register(PotentialDuplicate)
class PotentialDuplicateAdmin(admin.ModelAdmin):
    list_display = ("patient", "other", "flagged_at", "resolved_at")
    list_filter = ("resolved_at",)
    readonly_fields = ("patient", "other", "flagged_at")
    actions = ["mark_resolved"]

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.action(description="Mark as dealt with by identity vigilance")
    def mark_resolved(self, request: Any, queryset: Any) -> None:
        for flag in queryset.filter(resolved_at__isnull=True):
            PotentialDuplicate.objects.filter(pk=flag.pk).update(resolved_at=timezone.now())
            record(
                "patient.duplicate_resolved",
                actor=request.user,
                object_type="patient",
                object_id=flag.patient_id,
                data={"other": flag.other_id},
            )


@admin.register(AdtMessage)
class AdtMessageAdmin(admin.ModelAdmin):
    list_display = ("control_id", "event", "outcome", "received_at", "source", "error")
    list_filter = ("outcome", "event")
    search_fields = ("control_id",)

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: Any, extra_context: Any = None) -> HttpResponse:
        record("adt.messages_listed", actor=request.user, object_type="adt_messages")
        return super().changelist_view(request, extra_context)

    def change_view(
        self, request: Any, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        record(
            "adt.message_read",
            actor=request.user,
            object_type="adt_message",
            object_id=object_id[:64],
        )
        return super().change_view(request, object_id, form_url, extra_context)
