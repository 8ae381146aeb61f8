"""The client's French catalogue (client/locale/fr/LC_MESSAGES/rounds_client.po and .mo).

Both files are kept in the repository, so that a machine without GNU
gettext speaks French: these tests read them without it. They fail when the
compiled `.mo` is not the `.po` (run `make messages`), when a string the
client translates is missing from the `.po` or one there is no longer used,
when an entry is fuzzy, empty or loses a placeholder, when the French
typography slips, and when the files would not ship with the package.
"""

import ast
import fnmatch
import gettext
import re
import tomllib
from pathlib import Path

import pytest

from client.i18n import DOMAIN, LOCALE_DIR
from tests.support.po import CONTEXT_GLUE, Entry, parse_po

ROOT = Path(__file__).resolve().parents[2]
PO = LOCALE_DIR / "fr" / "LC_MESSAGES" / f"{DOMAIN}.po"
MO = PO.with_suffix(".mo")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
# The gettext calls of the client, and which arguments are (context, singular, plural).
CALLS = {"gettext": (None, 0, None), "ngettext": (None, 0, 1), "pgettext": (0, 1, None)}


def catalogue() -> tuple[Entry, list[Entry]]:
    entries, obsolete = parse_po(PO.read_text(encoding="utf-8"))
    assert not obsolete, f"obsolete entries left in {PO.name}: run `make messages`"
    (header,) = [e for e in entries if e.msgid == "" and e.msgctxt is None]
    return header, [e for e in entries if e is not header]


def test_the_header_is_utf8_french_with_french_plurals():
    header, _ = catalogue()
    assert "fuzzy" not in header.flags  # msgfmt drops a fuzzy header, and the charset with it
    fields = dict(line.split(": ", 1) for line in header.msgstr[0].splitlines())
    assert fields["Language"] == "fr"
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    assert fields["Plural-Forms"] == "nplurals=2; plural=(n > 1);"


def test_every_entry_is_translated_with_its_placeholders():
    _, entries = catalogue()
    assert entries
    for entry in entries:
        assert "fuzzy" not in entry.flags, entry
        expected = [0, 1] if entry.msgid_plural is not None else [0]
        assert sorted(entry.msgstr) == expected, entry
        english = set(PLACEHOLDER.findall(entry.msgid + (entry.msgid_plural or "")))
        for translated in entry.msgstr.values():
            assert translated.strip(), entry
            assert set(PLACEHOLDER.findall(translated)) <= english, entry
            if entry.msgid_plural is None:
                assert set(PLACEHOLDER.findall(translated)) == english, entry


def typography_faults(text: str) -> list[str]:
    """What a French reader would see as wrong: a space other than U+00A0 (or none)
    before : ; ? !, a typewriter apostrophe."""
    faults = []
    if re.search(r"(?<!\u00a0)[:;?!]", text):
        faults.append("no non-breaking space before : ; ? !")
    if "'" in text:
        faults.append("' instead of \u2019")
    return faults


def test_the_french_typography():
    _, entries = catalogue()
    faults = {
        translated: typography_faults(translated)
        for entry in entries
        for translated in entry.msgstr.values()
        if typography_faults(translated)
    }
    assert not faults


def test_the_compiled_catalogue_is_the_po():
    _, entries = catalogue()
    with MO.open("rb") as compiled:
        mo = gettext.GNUTranslations(compiled)
    found = dict(mo._catalog)  # type: ignore[attr-defined]  # msgid (or (msgid, n)) -> msgstr
    found.pop("", None)  # the header
    expected: dict[object, str] = {}
    for entry in entries:
        if entry.msgid_plural is None:
            expected[entry.key] = entry.msgstr[0]
        else:
            expected.update({(entry.key, n): text for n, text in entry.msgstr.items()})
    assert found == expected, "the .mo is not the .po: run `make messages`"
    assert (
        mo.ngettext("%(count)s photo.", "%(count)s photos, oldest first.", 2)
        == (expected[("%(count)s photo.", 1)])
    )


def used_in_the_client() -> set[str]:
    """The key of every literal the client's modules hand to gettext, ngettext or pgettext."""
    keys = set()
    for path in (ROOT / "client").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            if name not in CALLS:
                continue
            context, singular, _ = CALLS[name]
            literals = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
            assert isinstance(literals[singular], str), f"{path}:{node.lineno}: not a literal"
            keys.add(
                literals[singular]
                if context is None
                else f"{literals[context]}{CONTEXT_GLUE}{literals[singular]}"
            )
    return keys


def test_the_catalogue_has_every_string_the_client_translates_and_no_other():
    _, entries = catalogue()
    in_po = {e.key for e in entries}
    used = used_in_the_client()
    assert used, "no gettext call found in client/"
    assert not used - in_po, f"missing from {PO.name} (run `make messages`): {used - in_po}"
    assert not in_po - used, f"no longer used (run `make messages`): {in_po - used}"


def test_the_catalogue_ships_with_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["client"]
    for path in (PO, MO):
        relative = path.relative_to(ROOT / "client").as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


@pytest.mark.parametrize(
    ("text", "faults"),
    [
        ("Mots-clés\u00a0: aucun\u00a0; vraiment\u00a0?", 0),
        ("Mots-clés : aucun", 1),
        ("Mots-clés: aucun", 1),
        ("l'œdème\u00a0!", 1),
    ],
)
def test_the_typography_check_finds_what_it_looks_for(text, faults):
    assert len(typography_faults(text)) == faults


SAMPLE = """
msgid ""
msgstr ""
"Language: fr\\n"

#. Translators: a comment
#, fuzzy, python-format
msgctxt "column"
msgid "by %(name)s"
msgstr "par "
"%(name)s"

msgid "%(count)s photo."
msgid_plural "%(count)s photos."
msgstr[0] "%(count)s photo."
msgstr[1] ""

#~ msgid "gone"
#~ msgstr "parti"
"""


def test_the_po_reader_sees_flags_contexts_plurals_and_obsolete_entries():
    entries, obsolete = parse_po(SAMPLE)
    header, by, photo = entries
    assert header.msgstr == {0: "Language: fr\n"}
    assert by.flags == {"fuzzy", "python-format"} and by.key == "column\x04by %(name)s"
    assert by.msgstr == {0: "par %(name)s"}
    assert photo.msgid_plural == "%(count)s photos." and photo.msgstr[1] == ""
    assert len(obsolete) == 2
