"""Django's makemessages, told about core's no-op marker `N_` (core/errors.py).

The core imports no Django, so its messages, and the errors every app raises,
are marked `N_("…")` and translated at the edge (rounds/i18n.py); xgettext
only finds them with `--keyword=N_`. A command of an installed app replaces
Django's own of the same name; it lives in audit, the lowest app, for want
of a project-wide one.
"""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    xgettext_options = [*makemessages.Command.xgettext_options, "--keyword=N_"]
