"""Administration of the media app: the nomenclature is edited here; blobs are only looked at.

Uploads and attachments change through their use cases alone (audited), so
their admin pages are read-only.
"""

from typing import Any

from django.contrib import admin

from media.models import Attachment, Keyword, Upload


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Keyword)
class KeywordAdmin(admin.ModelAdmin):
    """Retire a term by unticking `active`; deleting it would strip it from older photos."""

    list_display = ("code", "label", "category", "active")
    list_filter = ("category", "active")
    search_fields = ("code", "label")

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(Upload)
class UploadAdmin(ReadOnlyAdmin):
    list_display = ("id", "owner", "department", "size", "received", "state", "created_at")
    list_filter = ("state", "department")
    date_hierarchy = "created_at"


@admin.register(Attachment)
class AttachmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "department", "thread", "sender", "consent", "captured_at")
    list_filter = ("department", "consent")
    raw_id_fields = ("message", "upload", "thumbnail", "annotates")
