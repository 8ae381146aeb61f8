"""Text a database can store: refused at the edges before any schema reads it.

JSON may escape a lone UTF-16 surrogate ("\\ud800") or NUL ("\\u0000"), and a
query string may carry NUL ("%00"). Neither can be stored. PostgreSQL refuses
both (the request failed with a 500); SQLite kept the surrogate, which no UTF-8
encoder will write back out, and the audit sealer then failed on that entry
every round. Both edges call `check_storable` on what they parsed: the JSON
API's parser (rounds/http.py) and the socket's frame parser
(chat/consumers/rounds.py).
"""

import re
import unicodedata
from typing import Any

from core.errors import N_, ErrorCode, RoundsError

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> bool:
    """True for text both databases can store and UTF-8 can encode."""
    # isascii is a C scan; only non-ASCII text pays for the regular expression.
    if text.isascii():
        return "\x00" not in text
    return _UNSTORABLE.search(text) is None


def unstorable_field(value: Any) -> str | None:
    """The dotted path of the first string (key or value) that cannot be stored, or None.

    Iterative, so a deeply nested document costs no recursion.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return path or "(value)"
        elif isinstance(item, dict):
            for key, inner in item.items():
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not storable(key):
                    return path or "(key)"
                stack.append((name, inner))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}.{i}" if path else str(i), inner) for i, inner in enumerate(item))
    return None


class UnstorableText(RoundsError):
    code = ErrorCode.INVALID_UTF8
    default_message = N_(
        "Text must be valid Unicode without NUL characters "
        "(a lone surrogate such as \\ud800 cannot be stored)."
    )


def check_storable(value: Any) -> None:
    """Raise `UnstorableText` naming the field if any string in `value` cannot be stored."""
    field = unstorable_field(value)
    if field is not None:
        # The field's name, never its value: the value is what cannot be encoded.
        raise UnstorableText(data={"field": field if storable(field) else "(unnamed)"})


def fold(text: str) -> str:
    """Fold case and accents, so that 'Lefèvre' is found by 'lefe' and 'Hélène' by 'HELE'.

    The one folding of names searched for: patients (patients.models.name_key) and
    colleagues (accounts.models.User.name_key) alike.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()
