"""Messages posted through the use case, with all its checks, as a member's client posts them."""

from typing import Any

from chat.actions import check_post_message
from tests.support.hospital import PLAINTEXT, Hospital, sealed


def post(h: Hospital, who: str, thread: Any, cmid: str, text: bytes = PLAINTEXT) -> int:
    """`who` posts a real envelope of `text` in `thread`; the new message's id."""
    ack = check_post_message(h.user(who), thread.pk, cmid, sealed(h, who, thread, cmid, text))
    return ack["message_id"]
