"""python -m bench.seed_members N: N more members of Plastic surgery (fan-out, connections).

Run with a deployment's environment (bench/stack.py `Stack.env`), as
bench/__main__.py runs bench/audit_seal.py. Users bench_member_0001… get the
demo password and are admitted by head_carol through the project's own
use case (`do_admit_member`), so each admission is audited and numbered
like a real one. Idempotent: users and memberships already there are kept.
Prints one JSON line.
"""

import json
import os
import sys

import django

from bench.stack import DEMO_PASSWORD, run_in_deployment

DEPARTMENT = "Plastic surgery"
HEAD = "head_carol"
USERNAME_PREFIX = "bench_member_"


def member_username(number: int) -> str:
    return f"{USERNAME_PREFIX}{number:04d}"


def seed_members(env: dict[str, str], count: int) -> dict:
    """Create and admit members 1…`count` in a deployment's own database (`Stack.env`)."""
    return run_in_deployment(env, "bench.seed_members", str(count))


def main(count: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rounds.settings")
    django.setup()
    from django.contrib.auth.hashers import make_password

    from accounts.models import User
    from rooms.actions import do_admit_member
    from rooms.models import Department, Membership

    department = Department.objects.get(name=DEPARTMENT)
    head = User.objects.get(username=HEAD)
    # One Argon2 hash for all: hashing is slow, and a salt shared between
    # throwaway benchmark accounts costs nothing.
    password = make_password(os.environ.get("ROUNDS_DEMO_PASSWORD", DEMO_PASSWORD))
    created = admitted = 0
    for number in range(1, count + 1):
        username = member_username(number)
        user, new = User.objects.get_or_create(
            username=username,
            defaults={"display_name": f"Bench member {number}", "password": password},
        )
        created += new
        if not Membership.objects.active().filter(department=department, user=user).exists():
            do_admit_member(head, department.pk, user, "member")
            admitted += 1
    print(
        json.dumps(
            {
                "department": department.pk,
                "members": count,
                "created": created,
                "admitted": admitted,
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 45)
