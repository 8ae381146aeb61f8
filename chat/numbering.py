"""Thread and department numbers, taken under row locks, in one order.

A thread's messages are numbered densely (`Thread.last_seq`), and so is a
department's event stream (`Department.event_seq`, which resume cursors point
into). Each number is taken by an `UPDATE … SET n = n + k … RETURNING`, which
also takes the row's lock until commit: two posts to one thread queue there,
and a post racing a removal or a key publication (which lock the department)
is wholly before or after it.

**Lock order.** A transaction that locks more than one of these rows takes
them in this order, each kind by ascending id, so no two transactions ever
wait for each other in a cycle:

1. threads (`chat_thread`): a post's message numbers; a close, a redaction, a
   correction and a purge lock the thread first too;
2. messages (`chat_message`): a redaction or correction of one;
3. departments (`rooms_department`): event numbers, and with them the room
   key state the post is checked against (chat/keystate.py); admissions,
   removals and key publications lock this row;
4. a consult (`chat_consult`): its thread key state, for a post in its thread.

`LOCK_ORDER` says it in code and tests/chat/test_numbering.py holds every
writer of a post batch to it. Numbers a refused post leaves unused are given
back before commit (`give_back_unused`), so the sequences have no gaps.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db import connection

from chat.keystate import KeyState, key_state_of
from rounds.prepared import one_round_trip, prepared_cursor

LOCK_ORDER = ("chat_thread", "chat_message", "rooms_department", "chat_consult")

# What each counter's UPDATE returns: the thread's place and state; the department's
# last event number and its KeyState, read under the same row lock.
THREAD_RETURNING = "department_id, closed_at, last_seq, is_consult"
DEPARTMENT_RETURNING = (
    "event_seq, key_version, rotation_required, key_commitment, key_chain_seq, chain_seq"
)

TAKE_DEPARTMENT_NUMBERS = (
    "UPDATE rooms_department SET event_seq = event_seq + %s WHERE id = %s "  # noqa: S608
    f"RETURNING {DEPARTMENT_RETURNING}"
)
# Take a thread's message numbers, none if it is closed (the lock is taken either way).
TAKE_THREAD_NUMBERS = (
    "UPDATE chat_thread SET last_seq = last_seq + CASE WHEN closed_at IS NULL THEN %s ELSE 0 END "  # noqa: S608
    f"WHERE id = %s RETURNING {THREAD_RETURNING}"
)
# A batch for one thread, on PostgreSQL: the thread's numbers, then its department's,
# in one statement. The department's UPDATE finds its row through the thread's
# RETURNING, so the thread's lock is taken before the department's, as LOCK_ORDER says.
TAKE_THREAD_AND_DEPARTMENT_NUMBERS = f"""
WITH thread AS (
    UPDATE chat_thread
    SET last_seq = last_seq + CASE WHEN closed_at IS NULL THEN %(count)s ELSE 0 END
    WHERE id = %(thread)s
    RETURNING {THREAD_RETURNING}
), department AS (
    UPDATE rooms_department
    SET event_seq = event_seq + (
        SELECT CASE WHEN closed_at IS NULL THEN %(count)s ELSE 0 END FROM thread
    )
    WHERE id = (SELECT department_id FROM thread)
    RETURNING {DEPARTMENT_RETURNING}
)
SELECT thread.*, department.* FROM thread JOIN department ON true
"""  # noqa: S608 (the constants above)


@dataclass
class TakenNumbers:
    """Numbers taken under a row's lock: `first` + 1 … `first` + `taken`; `last` is the
    last one used so far."""

    first: int
    taken: int
    last: int

    def use(self) -> int:
        self.last += 1
        assert self.last <= self.first + self.taken, "more numbers used than taken"
        return self.last

    @property
    def any_unused(self) -> bool:
        return self.last != self.first + self.taken


@dataclass
class ThreadNumbers(TakenNumbers):
    """A locked thread and the message numbers taken for it (a stored post `use()`s one)."""

    pk: int
    department_id: int
    closed: bool
    is_consult: bool


@dataclass
class DepartmentNumbers(TakenNumbers):
    """A locked department, the event numbers taken for it, and its room key state."""

    pk: int
    key_state: KeyState


def take_post_numbers(
    per_thread: dict[int, int], then: str | None = None, then_params: dict[str, Any] | None = None
) -> tuple[dict[int, ThreadNumbers], dict[int, DepartmentNumbers], list[tuple[Any, ...]] | None]:
    """Lock the threads and take as many message numbers as each has posts (`per_thread`),
    then lock their departments and take as many event numbers; each kind by ascending
    id. Threads that do not exist are left out.

    A batch for one thread on PostgreSQL (every post alone) takes both in one
    prepared statement (rounds/prepared.py), and `then` (a statement with named
    parameters, which may name the thread as %(thread)s) is sent after it in the
    same round trip, its rows returned third: one round trip for what took three.
    PostgreSQL runs the two in order, and READ COMMITTED gives `then` a snapshot
    of its own, taken once the locks are held: it sees what a removal holding the
    department committed while the post waited. Otherwise the third is None and
    the caller reads on its own.
    """
    if len(per_thread) == 1 and connection.vendor == "postgresql":
        [(thread_id, count)] = per_thread.items()
        with prepared_cursor() as taking, prepared_cursor() as reading:
            with one_round_trip():
                taking.execute(
                    TAKE_THREAD_AND_DEPARTMENT_NUMBERS, {"count": count, "thread": thread_id}
                )
                if then is not None:
                    reading.execute(then, {**(then_params or {}), "thread": thread_id})
            row = taking.fetchone()
            then_rows = reading.fetchall() if then is not None else None
        if row is None:
            return {}, {}, then_rows
        thread = _thread_numbers(thread_id, count, row[:4])
        event_seq, *state = row[4:]
        department = _department_numbers(thread.department_id, thread.taken, event_seq, state)
        return {thread_id: thread}, {department.pk: department}, then_rows
    threads = {
        thread_id: numbers
        for thread_id in sorted(per_thread)
        if (numbers := take_thread_numbers(thread_id, per_thread[thread_id])) is not None
    }
    per_department: Counter[int] = Counter()
    for thread in threads.values():
        per_department[thread.department_id] += thread.taken
    departments = {
        department_id: take_department_numbers(department_id, per_department[department_id])
        for department_id in sorted(per_department)
    }
    return threads, departments, None


def take_thread_numbers(thread_id: int, count: int) -> ThreadNumbers | None:
    """Lock the thread and take `count` message numbers (none if it is closed).

    None if there is no such thread.
    """
    with connection.cursor() as cursor:
        cursor.execute(TAKE_THREAD_NUMBERS, [count, thread_id])
        row = cursor.fetchone()
    if row is None:
        return None
    return _thread_numbers(thread_id, count, row)


def _thread_numbers(thread_id: int, count: int, row: tuple[Any, ...]) -> ThreadNumbers:
    department_id, closed_at, last_seq, is_consult = row
    closed = closed_at is not None
    taken = 0 if closed else count
    first = int(last_seq) - taken
    return ThreadNumbers(
        first=first,
        taken=taken,
        last=first,
        pk=thread_id,
        department_id=int(department_id),
        closed=closed,
        is_consult=bool(is_consult),
    )


def take_department_numbers(department_id: int, count: int) -> DepartmentNumbers:
    """Lock the department, take `count` event numbers and read its room key state
    under the same lock."""
    with connection.cursor() as cursor:
        cursor.execute(TAKE_DEPARTMENT_NUMBERS, [count, department_id])
        event_seq, *state = cursor.fetchone()
    return _department_numbers(department_id, count, event_seq, state)


def _department_numbers(
    department_id: int, count: int, event_seq: int, state: list[Any]
) -> DepartmentNumbers:
    first = int(event_seq) - count
    return DepartmentNumbers(
        first=first, taken=count, last=first, pk=department_id, key_state=key_state_of(tuple(state))
    )


def take_department_seq(department_id: int) -> tuple[int, KeyState]:
    """The next event number, and the room key state read under the same row lock."""
    numbers = take_department_numbers(department_id, 1)
    return numbers.use(), numbers.key_state


def next_event_seq(department_id: int) -> int:
    """The next event number of a department, for an event that is not a post."""
    return take_department_seq(department_id)[0]


def give_back_unused(
    threads: list[ThreadNumbers] | tuple[ThreadNumbers, ...],
    departments: list[DepartmentNumbers] | tuple[DepartmentNumbers, ...],
) -> None:
    """Set each counter back to the last number used, where refused posts left some."""
    with connection.cursor() as cursor:
        for thread in threads:
            if thread.any_unused:
                cursor.execute(
                    "UPDATE chat_thread SET last_seq = %s WHERE id = %s", [thread.last, thread.pk]
                )
        for department in departments:
            if department.any_unused:
                cursor.execute(
                    "UPDATE rooms_department SET event_seq = %s WHERE id = %s",
                    [department.last, department.pk],
                )
