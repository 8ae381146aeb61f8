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

from dataclasses import dataclass

from django.db import connection

from chat.keystate import KeyState, key_state_of

LOCK_ORDER = ("chat_thread", "chat_message", "rooms_department", "chat_consult")

# Take department event numbers and read its KeyState under the same row lock.
TAKE_DEPARTMENT_NUMBERS = (
    "UPDATE rooms_department SET event_seq = event_seq + %s WHERE id = %s RETURNING event_seq, "
    "key_version, rotation_required, key_commitment, key_chain_seq, chain_seq"
)
# Take a thread's message numbers, none if it is closed (the lock is taken either way).
TAKE_THREAD_NUMBERS = (
    "UPDATE chat_thread SET last_seq = last_seq + CASE WHEN closed_at IS NULL THEN %s ELSE 0 END "
    "WHERE id = %s RETURNING department_id, closed_at, last_seq, is_consult"
)


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


def take_thread_numbers(thread_id: int, count: int) -> ThreadNumbers | None:
    """Lock the thread and take `count` message numbers (none if it is closed).

    None if there is no such thread.
    """
    with connection.cursor() as cursor:
        cursor.execute(TAKE_THREAD_NUMBERS, [count, thread_id])
        row = cursor.fetchone()
    if row is None:
        return None
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
