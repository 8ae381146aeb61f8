"""The browser's message catalogues (docs/i18n.md): what the code shows, and what a catalogue lacks.

The browser's source text is English, wrapped where it is shown in `t("…")`,
`tn(count, "one", "other")` or `N_("…")` (frontend/js/i18n.js); index.html
marks its fixed words with `data-i18n` and `data-i18n-label`. A catalogue
(frontend/locales/<language>.json) maps each such English text to its
translation, or, for a count, to one form per plural category. This module
reads the code and the catalogues for the tests and for
`manage.py browser_messages`, so a string shown untranslated or a stale
entry is found before a clinician sees it.
"""

import fcntl
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
LOCALES = FRONTEND / "locales"
# The translated languages; English is the source text itself.
LANGUAGES = ("fr",)

_STRING = r"(\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\$]|\\.)*`)"
_SINGLE = re.compile(r"(?<![\w.$])(?:t|N_)\(\s*" + _STRING)
_PLURAL = re.compile(
    r"(?<![\w.$])tn\(\s*[^,()]+(?:\([^()]*\))?[^,()]*,\s*" + _STRING + r",\s*" + _STRING
)
_SHELL = re.compile(r'data-i18n(?:-label)?="([^"]+)"')
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

# Where English would reach the screen without passing through t(): a text
# child of h() after its attributes, a text, label, title or toast set from a
# literal. A literal that is not language (a code, a CSS class) is never in
# these places.
_SHOWN = r"(?P<text>\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`)"
_UNTRANSLATED = [
    re.compile(r"(?:\}|null)\s*,\s*" + _SHOWN),
    re.compile(r"\.(?:textContent|title|placeholder|ariaLabel)\s*=\s*" + _SHOWN),
    re.compile(r"[\"']?(?:aria-label|placeholder|title|label|alt)[\"']?\s*:\s*" + _SHOWN),
    re.compile(r"(?<![\w.])(?:toast|confirm|alert)\(\s*" + _SHOWN),
]
# Literals in those places that are not language: empty, punctuation, numbers, symbols.
_NOT_LANGUAGE = re.compile(r"^[^A-Za-zÀ-ÿ]*$")
# Names no language translates.
_NAMES = re.compile(r"\bRounds\b")


@dataclass(frozen=True)
class Msgid:
    """One English text the code shows: where, and whether it is counted (tn)."""

    text: str
    plural: str | None
    where: str


def _unquote(literal: str) -> str:
    """A JavaScript string literal's text (the escapes the browser's strings use)."""
    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", _escape, literal[1:-1], flags=re.S)


def _escape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code.startswith("u") and len(code) == 5:
        return chr(int(code[1:], 16))
    return {"n": "\n", "t": "\t"}.get(code, code)


def source_files() -> list[Path]:
    """The browser's own code (frontend/js, without vendored libraries) and its page."""
    files = sorted(p for p in (FRONTEND / "js").rglob("*.js") if "vendor" not in p.parts)
    return [*files, FRONTEND / "index.html"]


def relative(path: Path) -> str:
    return path.relative_to(FRONTEND).as_posix()


def msgids(path: Path) -> Iterator[Msgid]:
    """The English texts `path` passes to t(), tn() and N_(), or marks with data-i18n."""
    text = path.read_text(encoding="utf-8")
    where = relative(path)
    if path.suffix == ".html":
        for match in _SHELL.finditer(text):
            yield Msgid(match.group(1), None, where)
        return
    for match in _SINGLE.finditer(text):
        yield Msgid(_unquote(match.group(1)), None, where)
    for match in _PLURAL.finditer(text):
        yield Msgid(_unquote(match.group(1)), _unquote(match.group(2)), where)


def untranslated(path: Path) -> list[str]:
    """English literals `path` puts on screen without t(): `line: text` each."""
    if path.suffix == ".html":
        return []
    source = path.read_text(encoding="utf-8")
    found = []
    for pattern in _UNTRANSLATED:
        for match in pattern.finditer(source):
            literal = _unquote(match.group("text"))
            if _NOT_LANGUAGE.match(_NAMES.sub("", re.sub(r"\$\{[^}]*\}", "", literal))):
                continue
            line = source.count("\n", 0, match.start()) + 1
            found.append(f"{line}: {literal}")
    return sorted(set(found), key=lambda entry: int(entry.split(":")[0]))


def all_msgids() -> dict[str, Msgid]:
    """Every English text of the browser, by text (the first place it is used)."""
    found: dict[str, Msgid] = {}
    for path in source_files():
        for msgid in msgids(path):
            found.setdefault(msgid.text, msgid)
    return found


def catalogue_path(language: str) -> Path:
    return LOCALES / f"{language}.json"


def load(language: str) -> dict[str, str | dict[str, str]]:
    path = catalogue_path(language)
    if not path.exists():
        return {}
    data: dict[str, str | dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    return data


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def problems(language: str) -> list[str]:
    """What keeps `language` from being complete: missing, stale or malformed entries."""
    catalogue = load(language)
    used = all_msgids()
    out = []
    for text, msgid in sorted(used.items()):
        entry = catalogue.get(text)
        if entry is None or entry == "" or entry == {}:
            out.append(f"missing ({msgid.where}): {text}")
            continue
        expected = placeholders(text) | (placeholders(msgid.plural) if msgid.plural else set())
        if msgid.plural:
            if not isinstance(entry, dict) or not {"one", "other"} <= set(entry):
                out.append(f"needs one and other forms ({msgid.where}): {text}")
                continue
            forms = list(entry.values())
        else:
            if not isinstance(entry, str):
                out.append(f"must be a sentence, not forms ({msgid.where}): {text}")
                continue
            forms = [entry]
        for form in forms:
            if placeholders(form) != expected:
                out.append(f"placeholders differ ({msgid.where}): {text!r} -> {form!r}")
    for text in sorted(set(catalogue) - set(used)):
        out.append(f"stale (no longer shown): {text}")
    return out


def missing_template(language: str) -> dict[str, str | dict[str, str]]:
    """The entries `language` lacks, English in place of the translation, for a translator."""
    catalogue = load(language)
    out: dict[str, str | dict[str, str]] = {}
    for text, msgid in sorted(all_msgids().items()):
        if text not in catalogue:
            out[text] = {"one": text, "other": msgid.plural} if msgid.plural else text
    return out


def add(language: str, entries: dict[str, str | dict[str, str]], *, prune: bool = False) -> int:
    """Merge translations into a catalogue (several people may add at once: a lock).

    `prune` drops entries the code no longer shows. Returns the catalogue's size.
    """
    path = catalogue_path(language)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / f"rounds-catalogue-{language}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        catalogue = load(language)
        catalogue.update(entries)
        if prune:
            used = all_msgids()
            catalogue = {text: entry for text, entry in catalogue.items() if text in used}
        ordered = dict(sorted(catalogue.items(), key=lambda item: item[0].casefold()))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(ordered, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
        return len(ordered)


def main(argv: list[str] | None = None) -> int:
    """`python -m rounds.catalogue check | missing LANG | add LANG FILE [--prune]` (docs/i18n.md)"""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["check"]:
        found = [f"{language}: {p}" for language in LANGUAGES for p in problems(language)]
        for path in source_files():
            found += [f"{relative(path)}:{entry}" for entry in untranslated(path)]
        print("\n".join(found) or "every shown string is in every catalogue")
        return 1 if found else 0
    if args[:1] == ["missing"] and len(args) == 2:
        print(json.dumps(missing_template(args[1]), ensure_ascii=False, indent=1))
        return 0
    if args[:1] == ["add"] and len(args) in (3, 4):
        entries = json.loads(Path(args[2]).read_text(encoding="utf-8"))
        print(add(args[1], entries, prune="--prune" in args), "entries")
        return 0
    print(main.__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
