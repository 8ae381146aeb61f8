"""A compliance officer's review cases over HTTP (docs/compliance.md): no keys, no checks.

Each call is one route of compliance/api.py; what the server releases is
checked and decrypted offline by client/compliance.py, never here.
"""

from typing import Any

from client.transport import Connection

CASES = "/api/compliance/cases"
PAGE = 500  # the server's largest timeline page


async def list_cases(client: Connection) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await client.call("GET", CASES)
    return result


async def open_case(
    client: Connection, reference: str, reason: str, **scope: Any
) -> dict[str, Any]:
    """Open a case; `scope` is any of patient, ipp, department, user, date_from, date_to
    (combined with AND by the server; None values are left out)."""
    body = {"reference": reference, "reason": reason}
    body.update({k: v for k, v in scope.items() if v is not None})
    result: dict[str, Any] = await client.call("POST", CASES, json=body)
    return result


async def approve_case(client: Connection, case: int) -> dict[str, Any]:
    result: dict[str, Any] = await client.call("POST", f"{CASES}/{case}/approve")
    return result


async def close_case(client: Connection, case: int) -> dict[str, Any]:
    result: dict[str, Any] = await client.call("POST", f"{CASES}/{case}/close")
    return result


async def case_threads(client: Connection, case: int) -> dict[str, Any]:
    """The threads the case covers (audited by the server as a release)."""
    result: dict[str, Any] = await client.call("GET", f"{CASES}/{case}/threads")
    return result


async def timeline_pages(client: Connection, case: int, thread: int) -> list[dict[str, Any]]:
    """Every page of a covered thread's timeline, oldest first (each page a release)."""
    pages: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await client.call(
            "GET",
            f"{CASES}/{case}/threads/{thread}/timeline",
            params={"after_seq": after, "limit": PAGE},
        )
        pages.append(page)
        messages = page.get("messages") or []
        if not page.get("has_more") or not messages:
            return pages
        last = messages[-1].get("seq")
        if not isinstance(last, int) or last <= after:
            return pages  # a server that does not move forward is not followed for ever
        after = last
