"""django-axes' lockout check, on the async path too.

Django's `aauthenticate` calls each backend's `aauthenticate`, which
`AxesStandaloneBackend` lacks: without this adapter an async sign-in would
fail with an AttributeError instead of being counted and locked. The sync
check runs in a worker thread, with the same request, so the lockout applies
identically on both paths.
"""

from typing import Any

from asgiref.sync import sync_to_async
from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LockoutBackend(AxesStandaloneBackend):  # type: ignore[misc]  # django-axes is untyped
    async def aauthenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        return await sync_to_async(self.authenticate)(
            request, username=username, password=password, **kwargs
        )
