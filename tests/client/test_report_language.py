"""The report PDF and the library listing in French or English (client/i18n.py).

English unless asked: `--language`, else the environment the gettext way
(LANGUAGE, LC_ALL, LC_MESSAGES, LANG). The PDF's text is read back with
tests/client/reports.py's `pdf_text`, so a reportlab that stopped writing an
accent or a non-breaking space would fail here too.
"""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from client import cli
from client.i18n import ENVIRONMENT, language_from_environment, translation
from client.report import ReportPhoto, build_report
from tests.client.reports import PATIENT, FakeLibrary, item, jpeg, pdf_text

NBSP = "\u00a0"


def photos() -> list[ReportPhoto]:
    return [
        ReportPhoto(
            jpeg(),
            # 16:05 UTC on 20 November is 17:05 in Paris.
            datetime(2026, 11, 20, 16, 5, tzinfo=UTC),
            "Bob Durand",
            ["Main et poignet"],
            department="Chirurgie plastique",
            caption=f"Plaie propre{NBSP}; l\u2019œdème régresse{NBSP}!",
            annotates=3,
        ),
        ReportPhoto(jpeg(), None, "Alice Martin", []),
    ]


def report_text(language: str | None = None, items: list[ReportPhoto] | None = None) -> str:
    chosen = {} if language is None else {"language": language}
    pdf = build_report(
        PATIENT,
        photos() if items is None else items,
        zone="Europe/Paris",
        generated_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
        **chosen,
    )
    return pdf_text(pdf)


FRENCH = [
    "Compte rendu de suivi photographique",
    "LEFÈVRE Léa — né(e) le 30/01/1985 — IPP 00800100",
    "2 photos, de la plus ancienne à la plus récente.",
    "Heures indiquées dans le fuseau horaire Europe/Paris.",
    "Photo 1 — prise le 20/11/2026 à 17:05",
    "Photo prise par Bob Durand, service Chirurgie plastique",
    "Mots-clés : Main et poignet",
    "Légende : Plaie propre ; l\u2019œdème régresse !",
    "Annotation de la photo 3.",
    "Photo 2 — date de prise de vue inconnue",
    "Photo prise par Alice Martin",
    "Mots-clés : aucun",
    "Généré le 24/11/2026 à 10:00 par Rounds",
    "Page 1 sur 1",
]
ENGLISH = [
    "Photo follow-up report",
    "LEFÈVRE Léa — born 30/01/1985 — IPP 00800100",
    "2 photos, oldest first. Times in Europe/Paris.",
    "Photo 1 — taken on 20/11/2026 at 17:05",
    "By Bob Durand, Chirurgie plastique",
    "Keywords: Main et poignet",
    "Annotation of photo 3.",
    "Photo 2 — capture date unknown",
    "Keywords: none",
    "Generated on 24/11/2026 at 10:00 by Rounds",
    "Page 1 of 1",
]
# What an English report says that a French one must not (the data aside).
ENGLISH_WORDS = ["report", "born", "taken", "By ", "Keywords", "Caption", "Generated", " of 1"]


def test_the_report_in_french_says_everything_in_french():
    text = report_text("fr")
    # reportlab draws a non-breaking space with the space glyph; pdf_text reads it as one.
    missing = [line for line in FRENCH if line.replace(NBSP, " ") not in text]
    assert not missing, text
    left = [word for word in ENGLISH_WORDS if word in text]
    assert not left, text


def test_the_report_is_in_english_by_default_whatever_the_environment(monkeypatch):
    # build_report is a library function: the caller chooses, the environment does not.
    monkeypatch.setenv("LANGUAGE", "fr")
    text = report_text()
    missing = [line for line in ENGLISH if line not in text]
    assert not missing, text
    assert "Compte rendu" not in text and "Mots-clés" not in text


def test_a_report_without_photos_says_so_in_its_language():
    assert "No photos. Times in Europe/Paris." in report_text("en", [])
    assert "Aucune photo. Heures indiquées" in report_text("fr", [])
    assert "1 photo. Times in Europe/Paris." in report_text("en", photos()[1:])
    assert "1 photo. Heures indiquées" in report_text("fr", photos()[1:])


def test_two_languages_in_turn_do_not_leak_into_each_other():
    assert "Page 1 sur 1" in report_text("fr")
    assert "Page 1 of 1" in report_text("en")
    assert "Page 1 sur 1" in report_text("fr")


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="unknown language"):
        translation("de")


@pytest.mark.parametrize(
    ("environment", "language"),
    [
        ({}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "fr"),
        ({"LANG": "fr_CA"}, "fr"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "de_DE.UTF-8"}, "en"),
        ({"LC_MESSAGES": "fr_FR.UTF-8", "LANG": "en_GB.UTF-8"}, "fr"),
        ({"LC_ALL": "en_GB.UTF-8", "LANG": "fr_FR.UTF-8"}, "en"),
        ({"LANGUAGE": "de:fr", "LANG": "en_GB.UTF-8"}, "fr"),
        ({"LANGUAGE": "en:fr", "LANG": "fr_FR.UTF-8"}, "en"),
        ({"LANGUAGE": "", "LANG": "fr_FR.UTF-8"}, "fr"),
    ],
)
def test_the_language_is_found_in_the_environment_as_gettext_finds_it(environment, language):
    assert language_from_environment(environment) == language


# --- the command ------------------------------------------------------------------------


@pytest.fixture
def signed_in(monkeypatch) -> FakeLibrary:
    """`rounds` signed in to FakeLibrary, in an environment that names no language."""
    library = FakeLibrary()

    async def sign_in(*args: object, **kwargs: object) -> FakeLibrary:
        return library

    monkeypatch.setattr(cli, "_signed_in", sign_in)
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return library


def rounds_report(out: Path, *options: str) -> str:
    assert cli.main(["report", "--patient", "00800100", "--out", str(out), *options]) == 0
    return pdf_text(out.read_bytes())


def test_rounds_report_is_in_english_without_a_language(signed_in, tmp_path):
    text = rounds_report(tmp_path / "report.pdf")
    assert "Photo follow-up report" in text and "Page 1 of 1" in text
    assert signed_in.recorded == [(7, 1)]


def test_rounds_report_follows_lang(signed_in, tmp_path, monkeypatch):
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    text = rounds_report(tmp_path / "report.pdf")
    assert "Compte rendu de suivi photographique" in text
    assert "Photo 1 — prise le 05/10/2026 à 12:00" in text
    assert "Photo prise par Alice Martin, service Plastic surgery" in text


def test_rounds_report_language_option_overrides_the_environment(signed_in, tmp_path, monkeypatch):
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    text = rounds_report(tmp_path / "report.pdf", "--language", "en")
    assert "Photo follow-up report" in text and "Compte rendu" not in text
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert "Page 1 sur 1" in rounds_report(tmp_path / "again.pdf", "--language", "fr")


def test_rounds_library_headers_follow_the_language(signed_in, monkeypatch, capsys):
    assert cli.main(["library", "--patient-ipp", "00800100"]) == 0
    header, _ = capsys.readouterr().out.splitlines()
    english = ["id", "captured", "(Europe/Paris)", "ipp", "patient", "by", "keywords"]
    assert header.split() == [*english, "consent", "message"]
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    assert cli.main(["library", "--patient-ipp", "00800100"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    french = ["id", "prise", "de", "vue", "(Europe/Paris)", "ipp", "patient", "par"]
    assert header.split() == [*french, "mots-clés", "consentement", "message"]
    # The cells are data: the time as in English, the consent and keyword codes unchanged.
    assert "05/10/2026 12:00" in row and "teaching" in row and "hand" in row
    assert cli.main(["library", "--patient-ipp", "00800100", "--language", "en"]) == 0
    assert "captured (Europe/Paris)" in capsys.readouterr().out


def test_an_empty_library_says_so_in_its_language(capsys):
    cli.print_table([], "Europe/Paris", "fr")
    cli.print_table([], "Europe/Paris", "en")
    cli.print_table([item()], "Europe/Paris", "fr")
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["Aucune photo.", "No photos."] and out[2].startswith("id ")


def test_the_summary_line_stays_english_for_scripts(signed_in, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    rounds_report(tmp_path / "report.pdf")
    assert (
        capsys.readouterr().out.strip().endswith("photo(s) of IPP 00800100, times in Europe/Paris")
    )
