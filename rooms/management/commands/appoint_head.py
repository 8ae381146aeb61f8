"""Sign a department head's appointment with the institution's admin key.

The admin key's private half is kept off the server (on removable media, in
a vault); an administrator runs this where it is, against the database, for
a head who has published their identity key. It signs the same statement
the Python client's `appoint_head` signs, at the head of the department's
chain, and keeps it through the same checks as the API (rooms/chain.py), so
it is audited as the administrator's: an admission as head, a promotion of
a member the chain holds, or, for a head whose key the chain holds is not
their published one (a lost phone and recovery code), the replacement of
that key.
The key file holds the 64-byte private identity in hex (what seed_demo
writes under var/demo-keys/ for the demo); it is read, used, and not copied.
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.keys import active_identity
from accounts.models import User
from core.crypto import CryptoError, IdentityKeyPair, MembershipStatement, sign_statement
from core.crypto.statements import Kind
from core.errors import RoundsError
from rooms.chain import chain_members, check_post_statement
from rooms.models import Department


def load_key(path: Path) -> IdentityKeyPair:
    try:
        return IdentityKeyPair.from_bytes(bytes.fromhex(path.read_text().strip()))
    except (OSError, ValueError, CryptoError) as error:
        raise CommandError(f"{path}: not a readable admin key ({error})") from None


class Command(BaseCommand):
    help = "Appoint a department's head by a statement signed with the institution's admin key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("department", help="the department's slug")
        parser.add_argument("head", help="the head's username")
        parser.add_argument("--key-file", required=True, type=Path, help="the admin key file")
        parser.add_argument(
            "--fingerprint",
            help="the head's fingerprint as they read it to you; refused if it differs",
        )
        parser.add_argument("--as", dest="admin", help="the administrator's username")

    def handle(self, *args: Any, **options: Any) -> None:
        admin_key = load_key(options["key_file"])
        department = Department.objects.filter(slug=options["department"]).first()
        head = User.objects.filter(username=options["head"]).first()
        admin = (
            User.objects.filter(
                **({"username": options["admin"]} if options["admin"] else {"is_superuser": True})
            )
            .order_by("pk")
            .first()
        )
        if department is None or head is None or admin is None:
            raise CommandError("No such department, head or administrator.")
        identity = active_identity(head.pk)
        if identity is None:
            raise CommandError(f"{head.username} has not published an identity key yet.")
        expected = "".join((options["fingerprint"] or identity.fingerprint).split()).lower()
        if expected != identity.fingerprint:
            raise CommandError(
                f"{head.username}'s published key is {identity.fingerprint}, not the fingerprint "
                "given: nothing was signed."
            )
        held = chain_members(department.pk).get(head.pk)
        if held == ("head", identity.fingerprint):
            self.stdout.write(f"{head.username} is already head of {department.name}.")
            return
        kind: Kind = "admit"
        replaces: str | None = None
        if held is not None and held[1] != identity.fingerprint:
            kind, replaces = "replace", held[1]
        elif held is not None:
            kind = "role"
        statement = MembershipStatement(
            department=department.pk,
            seq=department.chain_seq + 1,
            prev=department.chain_head,
            kind=kind,
            subject_user=head.pk,
            subject_fingerprint=identity.fingerprint,
            replaces=replaces,
            role="head",
            issued_at=timezone.now().isoformat(),
            signer_user=None,
            signer_fingerprint=admin_key.fingerprint,
        )
        try:
            check_post_statement(
                admin, department.pk, sign_statement(statement, admin_key).to_dict()
            )
        except RoundsError as error:
            raise CommandError(f"{error.code}: {error}") from None
        self.stdout.write(
            f"{head.username} appointed head of {department.name} "
            f"(key {identity.fingerprint[:16]}…)"
        )
