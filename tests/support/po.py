"""A gettext .po file read without GNU gettext: the catalogues' tests (the server's
locale/ and the client's client/locale/) check what the .po says against the code and
the compiled .mo kept beside it."""

import ast
import re
from dataclasses import dataclass, field
from typing import NamedTuple

CONTEXT_GLUE = "\x04"  # how gettext keys a message with a context: "context\x04msgid"


@dataclass
class Entry:
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)  # msgstr[n] by n; msgstr is 0
    flags: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        """The entry's key in a compiled catalogue."""
        return self.msgid if self.msgctxt is None else f"{self.msgctxt}{CONTEXT_GLUE}{self.msgid}"


class Po(NamedTuple):
    entries: list[Entry]  # the header (msgid "") first, as the file has it
    obsolete: list[str]  # the #~ lines, which msgfmt ignores


def parse_po(text: str) -> Po:
    """The entries of a .po file, multi-line strings joined, and its obsolete lines."""
    entries: list[Entry] = []
    obsolete: list[str] = []
    entry = Entry()
    target: tuple[str, int] | None = None
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if target is not None:
                entries.append(entry)
            entry, target = Entry(), None
        elif line.startswith("#~"):
            obsolete.append(line)
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            assert target is not None, line
            _append(entry, target, ast.literal_eval(line))
        else:
            keyword, _, value = line.partition(" ")
            plural = re.fullmatch(r"msgstr\[(\d)\]", keyword)
            target = ("msgstr", int(plural.group(1))) if plural else (keyword, 0)
            if target[0] == "msgstr":
                entry.msgstr[target[1]] = ""
            else:
                setattr(entry, keyword, "")
            _append(entry, target, ast.literal_eval(value))
    return Po(entries, obsolete)


def _append(entry: Entry, target: tuple[str, int], text: str) -> None:
    name, index = target
    if name == "msgstr":
        entry.msgstr[index] += text
    else:
        setattr(entry, name, getattr(entry, name) + text)
