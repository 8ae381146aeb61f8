"""upload endpoints of the JSON API (docs/media.md)."""

from ninja import Router

router = Router(tags=["upload"])
