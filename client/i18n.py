"""The client's two languages: English (the source text) and French, through stdlib gettext.

The `rounds` command's follow-up report PDF and library listing are read by
ward staff, so they speak French or English; errors, codes and the one-line
summaries a script reads stay in English. The catalogue is the client's
own gettext domain, `rounds_client`, in `client/locale/fr/LC_MESSAGES/`:
the `.po` and its compiled `.mo` are both kept in the repository and ship
with the package, so a machine without GNU gettext reads French too
(`make messages` extracts and compiles them again; docs/client.md,
"Languages").

No global state: a caller gets a translations object for one language and
passes it down, so two reports in two languages can be built one after the
other (or at once) in the same process. `gettext.translation` caches the
parsed catalogue and hands out copies, so asking again costs nothing.

Dates are written alike in both languages, dd/mm/yyyy and a 24-hour clock:
the English is British English (en-GB), the French fr-FR.
"""

import gettext
import os
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path

DOMAIN = "rounds_client"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "fr")
# Where gettext looks for the user's language, in its order: the first one set decides.
ENVIRONMENT = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def _code(locale_name: str) -> str:
    """The language of a locale name: fr_FR.UTF-8, fr-CA and fr@euro are fr; C.UTF-8 is c."""
    for separator in ".@_-":
        locale_name = locale_name.split(separator, 1)[0]
    return locale_name.strip().lower()


def language_from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The user's language as gettext finds it: the first of LANGUAGE, LC_ALL,
    LC_MESSAGES and LANG that is set decides; LANGUAGE may list several
    (`de:fr`), the first Rounds speaks is taken. English otherwise (C, POSIX,
    a language Rounds does not speak).

    Unlike `gettext.find`, English counts as found: with LANGUAGE=en:fr a
    report is in English, though there is no English catalogue to find.
    """
    values = os.environ if environ is None else environ
    for name in ENVIRONMENT:
        value = values.get(name, "")
        if not value:
            continue
        for entry in value.split(":") if name == "LANGUAGE" else [value]:
            if _code(entry) in LANGUAGES:
                return _code(entry)
        return SOURCE_LANGUAGE
    return SOURCE_LANGUAGE


def resolve(language: str | None) -> str:
    """`language` checked, or the environment's when None.

    Raises:
        ValueError: a language Rounds does not speak.
    """
    if language is None:
        return language_from_environment()
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: one of {', '.join(LANGUAGES)}")
    return language


def translation(language: str | None = None) -> gettext.NullTranslations:
    """The translations for `language` ("en", "fr"; None: the environment's).

    English is the source text, so its translations translate nothing. A
    missing French catalogue is an install error and raises (FileNotFoundError)
    rather than printing English to a French reader unannounced.
    """
    chosen = resolve(language)
    if chosen == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[chosen])


def date_text(day: date) -> str:
    """dd/mm/yyyy, in both languages (en-GB and fr-FR write a date alike)."""
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def time_text(moment: datetime) -> str:
    """HH:MM on a 24-hour clock, in both languages; the zone is named elsewhere."""
    return f"{moment.hour:02d}:{moment.minute:02d}"
