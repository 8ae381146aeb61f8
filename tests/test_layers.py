"""The layering the design asks for, checked on the source (docs/architecture.md).

- `core/` (errors, protocol schemas, crypto) imports no Django and no Rounds app;
- an edge (an app's `api.py`, the socket consumers) imports no Rounds model and not
  the permission module: it calls one `check_*` action;
- the apps depend on each other in one order, lowest first. The imports that still go
  up the order are listed below, each with its reason, so that none is added unseen;
  the list must only shrink (a test fails when one of them is gone, to strike it).
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = [
    "accounts",
    "audit",
    "patients",
    "rooms",
    "push",
    "chat",
    "media",
    "compliance",
    "retention",
    "advice",
    "interop",
]
# Lowest first: an app may import those before it. audit is the trail every app writes;
# accounts the users; rooms the departments and the permission module; chat the
# messages; media the photos; compliance and retention read and act on all of them.
# push carries notices (chat and advice hand it theirs); advice requests build on
# threads, messages and the on-call roster. interop applies what the hospital's other
# systems say (patients, stays, merges that move threads and photos), so it comes last.
ORDER = [
    "audit",
    "accounts",
    "patients",
    "rooms",
    "push",
    "chat",
    "media",
    "compliance",
    "retention",
    "advice",
    "interop",
]
# (importer, imported): the imports that still go up the order, to be removed.
KNOWN_UPWARD = {
    ("accounts", "rooms"): "accounts/keys.py asks rooms.access who may fetch a key",
    ("accounts", "chat"): "signing out closes the session's sockets (chat.events)",
    ("patients", "rooms"): "a patient is visible through the caller's departments",
    ("patients", "chat"): "a patient's threads are listed with the patient",
    # The permission module is one place for every rule, so it sees every object it
    # judges: threads and messages, cases, photos and uploads, holds.
    ("rooms", "chat"): "rooms/access/ judges threads and messages",
    ("rooms", "media"): "rooms/access/ judges photos and uploads",
    ("rooms", "compliance"): "rooms/access/ judges what a case covers",
    ("rooms", "retention"): "rooms/access/ judges who releases a hold",
    ("rooms", "advice"): "rooms/access/ judges who answers an advice request",
    ("chat", "media"): "a post attaches its uploads (media.attachments)",
    ("media", "compliance"): "a library query or download under a case records its release",
}


def modules(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*.py"):
        if "migrations" not in path.parts:
            yield path


def imported(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_the_core_imports_no_django_and_no_app():
    found = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(ROOT / "core")
        for name in imported(path)
        if name.split(".")[0] in {"django", "channels", "rounds", *APPS}
    }
    assert not found, sorted(found)


def edges() -> Iterator[Path]:
    for app in APPS:
        if (ROOT / app / "api.py").exists():
            yield ROOT / app / "api.py"
    yield from (ROOT / "chat" / "consumers").glob("*.py")


def forbidden_at_an_edge(name: str) -> bool:
    """A Rounds app's models (`rooms.models`, `rooms.models.Department`) or the permission
    module; Django's own models (AnonymousUser) are not Rounds'."""
    parts = name.split(".")
    return (parts[0] in APPS and parts[1:2] == ["models"]) or name.startswith("rooms.access")


def test_an_edge_imports_no_model_and_not_the_permission_module():
    found = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in edges()
        for name in imported(path)
        if forbidden_at_an_edge(name)
    }
    assert not found, sorted(found)


def upward_imports() -> dict[tuple[str, str], str]:
    """(importer, imported) for every import that goes up ORDER, with one place it is."""
    rank = {app: n for n, app in enumerate(ORDER)}
    found: dict[tuple[str, str], str] = {}
    for app in APPS:
        for path in modules(ROOT / app):
            for name in imported(path):
                top = name.split(".")[0]
                if top in rank and rank[top] > rank[app]:
                    found.setdefault((app, top), f"{path.relative_to(ROOT)}: {name}")
    return found


def test_no_app_imports_one_above_it_but_the_known_ones():
    new = {edge: where for edge, where in upward_imports().items() if edge not in KNOWN_UPWARD}
    assert not new, f"imports up the order (docs/architecture.md): {new}"


def test_the_known_upward_imports_are_all_still_there():
    gone = set(KNOWN_UPWARD) - set(upward_imports())
    assert not gone, f"no longer imported: strike from KNOWN_UPWARD: {sorted(gone)}"


def test_every_app_is_in_the_order():
    apps = {p.parent.name for p in ROOT.glob("*/apps.py")}
    assert apps == set(APPS) == set(ORDER)
