"""Advice requests and on-call roles in the SDK (docs/advice.md, docs/oncall.md).

`RoundsClient` inherits `AdviceMixin`. Asking is two calls, each safe to retry:
the question is posted as an ordinary message, encrypted and signed like any
other (`send_text`, or a photo post), then that message is made a request to a
person or an on-call role. The server never reads the question; it learns who
must answer, how urgently, and moves the request on when nobody does.
"""

from typing import Any, Protocol


class _Host(Protocol):
    async def call(
        self, method: str, path: str, *, json: Any = None, params: Any = None, auth: bool = True
    ) -> Any: ...

    async def send_text(
        self,
        thread: dict[str, Any] | int,
        text: str,
        *,
        department: int | None = None,
        client_msg_id: str | None = None,
    ) -> dict[str, Any]: ...


class AdviceMixin:
    # --- On-call roles ------------------------------------------------------------

    async def oncall_roles(self: _Host, department: int) -> list[dict[str, Any]]:
        """The department's roles, active first, each with who is on duty now."""
        found = await self.call("GET", f"/api/departments/{department}/oncall/roles")
        roles: list[dict[str, Any]] = found["roles"]
        return roles

    async def add_shift(
        self: _Host, department: int, role: int, user: int, starts_at: str, ends_at: str
    ) -> dict[str, Any]:
        """A head puts `user` on the roster for `role` over [starts_at, ends_at) (ISO 8601
        with an offset)."""
        shift: dict[str, Any] = await self.call(
            "POST",
            f"/api/departments/{department}/oncall/shifts",
            json={"role": role, "user": user, "starts_at": starts_at, "ends_at": ends_at},
        )
        return shift

    # --- Advice requests -----------------------------------------------------------

    async def ask_advice(
        self: _Host,
        thread: dict[str, Any] | int,
        question: str,
        *,
        priority: str = "urgent",
        to_user: int | None = None,
        to_role: int | None = None,
        client_msg_id: str | None = None,
    ) -> dict[str, Any]:
        """Post `question` in the patient's thread, then make it a request to one person
        or one on-call role of that department. Returns the request."""
        ack = await self.send_text(thread, question, client_msg_id=client_msg_id)
        return await AdviceMixin.request_advice(
            self, ack["message_id"], priority=priority, to_user=to_user, to_role=to_role
        )

    async def request_advice(
        self: _Host,
        message: int,
        *,
        priority: str = "urgent",
        to_user: int | None = None,
        to_role: int | None = None,
    ) -> dict[str, Any]:
        """Make one's own message (a question, photos and all) a request."""
        made: dict[str, Any] = await self.call(
            "POST",
            "/api/advice",
            json={"message": message, "priority": priority, "to_user": to_user, "to_role": to_role},
        )
        return made

    async def advice_requests(self: _Host, department: int | None = None) -> dict[str, Any]:
        """Mine (made, or put to me at some step), or a department's: open first."""
        params = {"department": department} if department is not None else None
        found: dict[str, Any] = await self.call("GET", "/api/advice", params=params)
        return found

    async def advice(self: _Host, request_id: int) -> dict[str, Any]:
        """One request with its whole timeline."""
        found: dict[str, Any] = await self.call("GET", f"/api/advice/{request_id}")
        return found

    async def acknowledge(self: _Host, request_id: int, answer: str = "on_it") -> dict[str, Any]:
        """ "I'm on it" (`on_it`) or "Call me" (`call_me`): the request stops escalating."""
        done: dict[str, Any] = await self.call(
            "POST", f"/api/advice/{request_id}/acknowledge", json={"answer": answer}
        )
        return done

    async def pass_advice(
        self: _Host, request_id: int, *, to_user: int | None = None, to_role: int | None = None
    ) -> dict[str, Any]:
        """ "Not for me": put the request to another member or role of its department."""
        done: dict[str, Any] = await self.call(
            "POST",
            f"/api/advice/{request_id}/pass",
            json={"to_user": to_user, "to_role": to_role},
        )
        return done

    async def withdraw_advice(self: _Host, request_id: int) -> dict[str, Any]:
        """The requester withdraws an open request."""
        done: dict[str, Any] = await self.call("POST", f"/api/advice/{request_id}/cancel")
        return done
