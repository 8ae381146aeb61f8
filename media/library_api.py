"""library endpoints of the JSON API (docs/media.md)."""

from ninja import Router

router = Router(tags=["library"])
