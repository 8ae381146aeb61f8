"""The browser speaks French and English completely (docs/i18n.md).

Every English text the client shows passes through t()/tn()/N_() or
data-i18n, and the French catalogue has each of them, with the same
placeholders and a form per plural category, and nothing stale. The
extractor itself is tested on small sources, so a catalogue check that
finds nothing is not one that cannot find anything.
"""

import json
import re
from pathlib import Path

import pytest

from rounds import catalogue

SOURCES = catalogue.source_files()


@pytest.mark.parametrize("path", SOURCES, ids=catalogue.relative)
def test_each_file_shows_no_english_outside_t(path: Path) -> None:
    assert catalogue.untranslated(path) == []


@pytest.mark.parametrize("language", catalogue.LANGUAGES)
def test_the_catalogue_is_complete_and_current(language: str) -> None:
    assert catalogue.problems(language) == []


@pytest.mark.parametrize("language", catalogue.LANGUAGES)
def test_the_catalogue_is_sorted_json_with_no_english_left_in_sentences(language: str) -> None:
    raw = catalogue.catalogue_path(language).read_text(encoding="utf-8")
    entries = json.loads(raw)
    assert list(entries) == sorted(entries, key=str.casefold)
    # A sentence of three words or more left in English is a translation forgotten.
    same = [
        text
        for text, entry in entries.items()
        if isinstance(entry, str) and entry == text and len(words(text)) >= 3
    ]
    assert same == []


def test_the_french_catalogue_keeps_french_spacing() -> None:
    """A no-break space before : ; ? ! and inside « », never a plain one that a line could
    break at (as the server's catalogue, tests/test_server_i18n.py)."""
    entries = json.loads(catalogue.catalogue_path("fr").read_text(encoding="utf-8"))
    texts = [
        text
        for entry in entries.values()
        for text in ([entry] if isinstance(entry, str) else entry.values())
    ]
    assert [text for text in texts if re.search(r" [:;?!»]|« ", text)] == []


def words(text: str) -> list[str]:
    """The words of a sentence, placeholders and signs left out."""
    return re.findall(r"[^\W\d_]{2,}", re.sub(r"\{\w+\}", "", text))


def write(tmp_path: Path, source: str, name: str = "view.js") -> Path:
    path = tmp_path / "js" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


@pytest.fixture
def frontend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A frontend/ of its own, with a French catalogue the test writes."""
    monkeypatch.setattr(catalogue, "FRONTEND", tmp_path)
    monkeypatch.setattr(catalogue, "LOCALES", tmp_path / "locales")
    (tmp_path / "index.html").write_text(
        '<button data-i18n="Sign out">Sign out</button><b data-i18n-label="Back"></b>'
    )
    return tmp_path


def test_the_extractor_reads_t_tn_n_and_the_shell(frontend: Path) -> None:
    write(
        frontend,
        'h("p", {}, t("Find a patient"));\n'
        "const L = { care: N_('Care only') };\n"
        'tn(photos.length, "{count} photo", "{count} photos");\n'
        't(\n  "Born {date}", { date });\n'
        'sort(x); split("a");\n',
    )
    found = catalogue.all_msgids()
    assert set(found) == {
        "Find a patient",
        "Care only",
        "{count} photo",
        "Born {date}",
        "Sign out",
        "Back",
    }
    assert found["{count} photo"].plural == "{count} photos"


def test_english_shown_without_t_is_found(frontend: Path) -> None:
    path = write(
        frontend,
        'h("button", { type: "button" }, "Search");\n'
        'message.textContent = "Searching…";\n'
        'const a = h("input", { "aria-label": "Camera view" });\n'
        "toast(`Signed out ${who}`);\n"
        'h("span", { class: "dot" }, "·");\n'
        'h("h1", null, "Rounds");\n'
        'h("b", {}, t("Fine"));\n',
    )
    assert catalogue.untranslated(path) == [
        "1: Search",
        "2: Searching…",
        "3: Camera view",
        "4: Signed out ${who}",
    ]


def test_missing_stale_and_mismatched_entries_are_reported(frontend: Path) -> None:
    write(
        frontend,
        't("Born {date}", { date }); t("Search");\n'
        'tn(n, "{count} photo", "{count} photos"); t("Sign out"); t("Back");\n',
    )
    catalogue.add(
        "fr",
        {
            "Born {date}": "Né le {jour}",
            "{count} photo": "{count} photo",
            "Sign out": "Se déconnecter",
            "Back": "Retour",
            "Gone": "Parti",
        },
    )
    assert catalogue.problems("fr") == [
        "placeholders differ (js/view.js): 'Born {date}' -> 'Né le {jour}'",
        "missing (js/view.js): Search",
        "needs one and other forms (js/view.js): {count} photo",
        "stale (no longer shown): Gone",
    ]
    catalogue.add(
        "fr",
        {
            "Born {date}": "Né le {date}",
            "Search": "Rechercher",
            "{count} photo": {"one": "{count} photo", "other": "{count} photos"},
        },
        prune=True,
    )
    assert catalogue.problems("fr") == []
    assert "Gone" not in catalogue.load("fr")


def test_a_template_lists_what_a_translator_must_add(frontend: Path) -> None:
    write(frontend, 't("Search"); tn(n, "{count} photo", "{count} photos");')
    catalogue.add("fr", {"Search": "Rechercher"})
    assert catalogue.missing_template("fr") == {
        "Back": "Back",
        "Sign out": "Sign out",
        "{count} photo": {"one": "{count} photo", "other": "{count} photos"},
    }
