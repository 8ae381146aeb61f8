"""Structured logs: one JSON object a line, each tied to its request or socket, never content.

`ROUNDS_LOG_FORMAT=json` selects `JsonFormatter` (settings.LOGGING); the
human format stays the default for `make run`. Every record carries time,
level, logger, message and process id, and the id of the HTTP request
(`RequestIdMiddleware`: the load balancer's X-Request-ID, or a new one) or
of the socket (`bind(socket=…)`, set by the consumer at connect) that
produced it, through a context variable: tasks and the database thread
started from there inherit it.

A line holds a fixed list of fields: the message with its arguments, the
ids, the exception, and nothing else of the LogRecord (not the request
object Django attaches, nor any other library's extras). Rounds logs codes
and ids, never message content: tests/test_logs.py checks it for posts,
failures, a refused sign-in and a server error.
"""

import contextvars
import json
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.log import log_response

# {"request": "…"} or {"socket": "…"}: who the work in this context is for.
log_ids: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "log_ids", default=None
)

# A load balancer's id is kept only if it looks like one: no room for anything else.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_id() -> str:
    return secrets.token_hex(6)


def bind(**ids: str) -> None:
    """Tie the records of this task (and what it starts) to these ids; `bind()` unties them."""
    log_ids.set(dict(ids))


# Libraries whose background tasks outlive the request or socket that started them
# (channels-redis' pub/sub reader starts with the first subscription, a /healthz probe
# say): their records would carry that stranger's id.
UNTIED_LOGGERS = ("channels_redis",)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process or os.getpid(),
        }
        if not record.name.startswith(UNTIED_LOGGERS):
            entry.update(log_ids.get() or {})
        status = getattr(record, "status_code", None)  # django.request's responses
        if isinstance(status, int):
            entry["status"] = status
        if record.exc_info:
            entry["exc_type"] = getattr(record.exc_info[0], "__name__", None)
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


class RequestIdMiddleware:
    """Gives each HTTP request an id for its log records, echoed in X-Request-ID."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[..., Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        request_id = self._request_id(request)
        token = log_ids.set({"request": request_id})
        try:
            return self._answered(request, self.get_response(request), request_id)
        finally:
            log_ids.reset(token)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        request_id = self._request_id(request)
        token = log_ids.set({"request": request_id})
        try:
            return self._answered(request, await self.get_response(request), request_id)
        finally:
            log_ids.reset(token)

    @staticmethod
    def _answered(request: HttpRequest, response: HttpResponse, request_id: str) -> HttpResponse:
        # Django logs a 4xx or 5xx a view returned after the middleware, outside the id's
        # context: log it here, as Django would (it then does not log it again).
        if response.status_code >= 400:
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        response["X-Request-ID"] = request_id
        return response

    @staticmethod
    def _request_id(request: HttpRequest) -> str:
        given = request.headers.get("X-Request-ID", "")
        return given if _REQUEST_ID.fullmatch(given) else new_id()
