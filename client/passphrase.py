"""How strong a chosen passphrase is, before it protects a key backup the server holds.

The server keeps the sealed backup, so whoever holds the database can guess
offline. core/crypto's floor (16 characters, 8 distinct, two classes) stops
the obvious; zxcvbn's estimate stops the guessable that pass it
(`Password12345678`, `Summer2024Summer`, `hospital hospital`): at least
10^12 guesses, counting the user's own name and login as known words
(docs/crypto.md §4). The browser applies the same rule with zxcvbn-ts.
"""

import re
from collections.abc import Iterable

from zxcvbn import zxcvbn

from core.crypto import WeakPassphrase
from core.crypto.backup import check_passphrase_strength, normalise_passphrase

MIN_GUESSES_LOG10 = 12
# Words everyone in a hospital would try first.
CONTEXT_WORDS = ("rounds", "hospital", "hôpital", "chu", "clinique", "patient", "password")


def known_words(inputs: Iterable[str]) -> list[str]:
    """Each input, its words ("head_carol" → "head", "carol"), and its words run together."""
    words: list[str] = []
    for text in inputs:
        parts = [part for part in re.split(r"[\W_]+", text or "") if part]
        words += [text, *parts, "".join(parts)] if parts else []
    return [word for word in dict.fromkeys(words) if word]


def check_passphrase(passphrase: str, user_inputs: Iterable[str] = ()) -> float:
    """Refuse a passphrase too easy to guess; return zxcvbn's log10 of the guesses.

    Raises:
        WeakPassphrase: The floor fails, or zxcvbn estimates fewer than 10**12
            guesses; the message says which, with zxcvbn's own advice.
    """
    check_passphrase_strength(passphrase)
    text = normalise_passphrase(passphrase)
    inputs = known_words((*user_inputs, *CONTEXT_WORDS))
    # zxcvbn's cost grows with the length; past 100 characters nothing is guessable.
    result = zxcvbn(text[:100], user_inputs=inputs)
    if result["guesses_log10"] < MIN_GUESSES_LOG10:
        advice = " ".join(
            filter(None, [result["feedback"].get("warning"), *result["feedback"]["suggestions"]])
        )
        raise WeakPassphrase(
            "this passphrase is too easy to guess"
            + (f": {advice}" if advice else "; add words that are not about you or your work")
        )
    return float(result["guesses_log10"])
