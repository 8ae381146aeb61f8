"""Signed checkpoints of the chain head, and `audit_verify --checkpoints`.

What the chain alone cannot show, since its hash has no key: a tail cut off
(what remains still verifies) and a chain rebuilt from an edit on (every
hash recomputed). Each test does what a database owner could, through
maintenance mode, and the verifier must name the checkpoint that no longer
matches. A checkpoint forged or altered by whoever can write the sink fails
its signature. The sink is a directory, or a bucket with object lock on the
same moto S3 server the media tests use.
"""

import json
import uuid
from io import StringIO
from pathlib import Path

import nacl.signing
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit import checkpoints, sealer
from audit.actions import record, seal_all, verify_chain
from audit.checkpoints import Checkpoint, sign_head
from audit.guard import maintenance
from audit.models import AuditEvent, AuditSeal, chain_hash
from audit.sinks import FileSink, S3Sink, SinkError
from audit.tree import SealTree
from tests.support.storage import s3_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink_dir(settings, tmp_path) -> Path:
    """A file sink and a key of this test's own, and the key created as an operator would."""
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "keys" / "checkpoint.key"
    settings.ROUNDS_AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    settings.ROUNDS_AUDIT_CHECKPOINT_SINK = "file"
    call_command("audit_checkpoint", "--new-key", stdout=StringIO())
    return tmp_path / "checkpoints"


@pytest.fixture
def chain(hospital) -> list[AuditSeal]:
    seal_all()
    return list(AuditSeal.objects.order_by("seq"))


def checkpoint() -> str:
    out = StringIO()
    call_command("audit_checkpoint", stdout=out)
    return out.getvalue()


def more_entries(count: int) -> None:
    for n in range(count):
        record("history.read", object_type="thread", object_id=n)
    seal_all()


def verify(*args: str) -> str:
    out = StringIO()
    call_command("audit_verify", "--checkpoints", *args, stdout=out)
    return out.getvalue()


def verify_fails(*args: str) -> str:
    with pytest.raises(CommandError) as refused:
        call_command("audit_verify", "--checkpoints", *args, stdout=StringIO())
    return str(refused.value)


def only_file(directory: Path) -> Path:
    (path,) = directory.glob("*.json")
    return path


# --- The key ---------------------------------------------------------------------------


def test_a_new_key_is_private_to_its_owner_and_never_replaced(settings, sink_dir):
    path = settings.ROUNDS_AUDIT_CHECKPOINT_KEY
    assert path.stat().st_mode & 0o777 == 0o600
    before = path.read_text()
    with pytest.raises(CommandError, match="already exists"):
        call_command("audit_checkpoint", "--new-key", stdout=StringIO())
    assert path.read_text() == before


def test_new_key_prints_the_public_half_for_the_dpo(settings, tmp_path):
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "checkpoint.key"
    out = StringIO()
    call_command("audit_checkpoint", "--new-key", stdout=out)
    seed = bytes.fromhex(settings.ROUNDS_AUDIT_CHECKPOINT_KEY.read_text().strip())
    public = bytes(nacl.signing.SigningKey(seed).verify_key).hex()
    assert out.getvalue().strip().endswith(f"public key {public}")


def test_no_checkpoint_without_a_key(settings, tmp_path):
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "missing.key"
    with pytest.raises(CommandError, match=r"no checkpoint key at .*--new-key"):
        checkpoint()


@pytest.mark.parametrize("content", ["not hex", "ab" * 16 + "00"])
def test_a_key_file_that_is_not_a_seed_is_refused(settings, tmp_path, content):
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "bad.key"
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY.write_text(content)
    with pytest.raises(CommandError, match="checkpoint key at"):
        checkpoint()


# --- Writing and a good check -------------------------------------------------------------


def test_a_checkpoint_signs_the_head_and_is_written_once(chain, sink_dir):
    head = chain[-1]
    out = checkpoint()
    written = only_file(sink_dir)
    assert f"seal {head.seq} hash {head.hash}, {AuditEvent.objects.count()} entries" in out
    data = json.loads(written.read_bytes())
    assert (data["seq"], data["hash"], data["count"]) == (
        head.seq,
        head.hash,
        AuditEvent.objects.count(),
    )
    assert data["format"] == "rounds-audit-checkpoint-v2" and len(data["signature"]) == 128
    assert data["root"] == SealTree(head.seq).root().hex()
    assert written.stat().st_mode & 0o222 == 0  # read-only


def test_the_file_sink_never_overwrites(tmp_path):
    sink = FileSink(tmp_path)
    sink.write("checkpoint-1.json", b"first")
    with pytest.raises(SinkError, match="never overwritten"):
        sink.write("checkpoint-1.json", b"second")
    assert (tmp_path / "checkpoint-1.json").read_bytes() == b"first"


def test_the_chain_verifies_against_every_checkpoint(chain, sink_dir):
    checkpoint()
    more_entries(3)
    checkpoint()
    checkpoint()  # the same head twice: both kept
    out = verify()
    assert "audit chain ok" in out
    assert f"checkpoints ok: 3 in directory {sink_dir}" in out


def test_an_empty_chain_can_be_checkpointed(sink_dir):
    checkpoint()
    assert "checkpoints ok: 1" in verify()


def test_no_checkpoint_at_all_is_a_failure(chain, sink_dir):
    assert "no checkpoint in directory" in verify_fails()


# --- What the checkpoints catch -------------------------------------------------------------


def cut_tail(count: int) -> None:
    """Remove the last `count` seals and their entries: what remains still verifies."""
    last = list(AuditSeal.objects.order_by("-seq")[:count])
    with maintenance(connection):
        AuditSeal.objects.filter(seq__in=[s.seq for s in last]).delete()
        AuditEvent.objects.filter(pk__in=[s.event_id for s in last]).delete()


def rewrite_from(seq: int, **changes) -> None:
    """Edit seal `seq`'s entry and recompute every hash from it on, as an owner can."""
    with maintenance(connection):
        target = AuditSeal.objects.get(seq=seq)
        AuditEvent.objects.filter(pk=target.event_id).update(**changes)
        prev = target.prev_hash
        for seal in AuditSeal.objects.select_related("event").filter(seq__gte=seq).order_by("seq"):
            digest = chain_hash(seal.seq, prev, seal.event.canonical())
            AuditSeal.objects.filter(seq=seal.seq).update(prev_hash=prev, hash=digest)
            prev = digest


def test_a_cut_tail_is_found(chain, sink_dir):
    checkpoint()
    first = only_file(sink_dir).name
    more_entries(3)
    checkpoint()
    head = AuditSeal.objects.order_by("-seq").first().seq
    cut_tail(2)
    assert verify_chain().ok  # the chain alone cannot tell
    message = verify_fails()
    assert f"names seal {head} but the chain ends at seal {head - 2}" in message
    assert "its tail was cut" in message
    assert first not in message  # the first checkpoint still matches: the second is named


def test_a_rewritten_chain_is_found(chain, sink_dir):
    checkpoint()
    target = chain[len(chain) // 2]
    rewrite_from(target.seq, actor_username="mallory")
    assert verify_chain().ok  # every hash recomputed: the chain alone cannot tell
    message = verify_fails()
    assert f"checkpoint {only_file(sink_dir).name}: seal {chain[-1].seq} has hash" in message
    assert "the chain was rewritten" in message


def test_entries_removed_below_the_head_are_found(chain, sink_dir):
    """Unsealed entries counted by a checkpoint, then removed before they were sealed."""
    record("history.read", object_type="thread", object_id=1)
    checkpoint()
    with maintenance(connection):
        AuditEvent.objects.filter(seal__isnull=True).delete()
    assert "entries were removed" in verify_fails()


def test_a_forged_checkpoint_is_found(chain, sink_dir):
    checkpoint()
    forger = nacl.signing.SigningKey.generate()
    forged = sign_head(forger)  # a valid signature, by a key that is not the institution's
    (sink_dir / "checkpoint-forged.json").write_bytes(forged.to_json())
    message = verify_fails()
    assert "checkpoint checkpoint-forged.json has a bad signature" in message


@pytest.mark.parametrize("field", ["seq", "hash", "count", "at", "signature"])
def test_an_altered_checkpoint_is_found(chain, sink_dir, field):
    checkpoint()
    original = json.loads(only_file(sink_dir).read_bytes())
    altered = {
        "seq": original["seq"] - 1,
        "hash": "0" * 64,
        "count": original["count"] - 1,
        "at": "2020-01-01T00:00:00.000000+00:00",
        "signature": "00" * 64,
    }[field]
    (sink_dir / "checkpoint-altered.json").write_text(json.dumps({**original, field: altered}))
    assert "checkpoint checkpoint-altered.json has a bad signature" in verify_fails()


@pytest.mark.parametrize("content", [b"not json", b"[]", b'{"seq": 1}', b'{"seq": true}'])
def test_a_file_that_is_not_a_checkpoint_is_named(chain, sink_dir, content):
    checkpoint()
    (sink_dir / "checkpoint-junk.json").write_bytes(content)
    assert "checkpoint checkpoint-junk.json is not a" in verify_fails()


def test_the_public_key_can_be_given_as_the_dpo_recorded_it(settings, chain, sink_dir):
    checkpoint()
    seed = bytes.fromhex(settings.ROUNDS_AUDIT_CHECKPOINT_KEY.read_text().strip())
    public = bytes(nacl.signing.SigningKey(seed).verify_key).hex()
    assert "checkpoints ok" in verify(f"--public-key={public}")
    other = bytes(nacl.signing.SigningKey.generate().verify_key).hex()
    assert "has a bad signature" in verify_fails(f"--public-key={other}")
    assert "--public-key must be 64 hex digits" in verify_fails("--public-key=xyz")
    assert "not an Ed25519 public key" in verify_fails("--public-key=" + "00" * 31)


# --- From the sealer thread -------------------------------------------------------------------


@pytest.fixture
def thread_round(monkeypatch):
    """One round of the sealer thread, on the test's own connection (which it would close)."""
    monkeypatch.setattr(sealer, "close_old_connections", lambda: None)
    checkpoints.reset_schedule()
    yield sealer.run_round
    checkpoints.reset_schedule()


def test_the_sealer_round_goes_past_a_bad_row_and_writes_a_checkpoint(
    settings, chain, sink_dir, thread_round, monkeypatch
):
    """The thread's round, end to end: the bad row is quarantined, the rest sealed, the
    head signed; before, the round failed on that row for ever and wrote nothing."""
    settings.ROUNDS_AUDIT_CHECKPOINT_INTERVAL = 3600
    bad = record("report.generated", object_type="patient", object_id=1, data={"photos": 1})
    after = record("history.read", object_type="thread", object_id=1)
    original = AuditEvent.canonical

    def canonical(self):
        if self.pk == bad.pk:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return original(self)

    monkeypatch.setattr(AuditEvent, "canonical", canonical)
    thread_round()
    assert AuditSeal.objects.get(event=bad).quarantined_sha256
    head = AuditSeal.objects.get(event=after)
    written = json.loads(only_file(sink_dir).read_bytes())
    assert (written["seq"], written["hash"]) == (head.seq, head.hash)
    assert "checkpoints ok: 1" in verify(f"--accept-quarantined={bad.pk}")


def test_the_sealer_round_writes_a_checkpoint_when_due(settings, chain, sink_dir, thread_round):
    settings.ROUNDS_AUDIT_CHECKPOINT_INTERVAL = 3600
    thread_round()
    assert len(list(sink_dir.glob("*.json"))) == 1
    checkpoints.reset_schedule()
    assert checkpoints.write_if_due(now=0.0)
    assert not checkpoints.write_if_due(now=3599.0)
    assert checkpoints.write_if_due(now=3600.0)
    assert len(list(sink_dir.glob("*.json"))) == 3
    assert "checkpoints ok: 3" in verify()


def test_the_sealer_round_writes_none_when_the_interval_is_zero(
    settings, chain, sink_dir, thread_round
):
    settings.ROUNDS_AUDIT_CHECKPOINT_INTERVAL = 0
    thread_round()
    assert not list(sink_dir.glob("*.json"))


def test_a_failing_checkpoint_is_retried_soon_not_every_round(settings, tmp_path, caplog):
    settings.ROUNDS_AUDIT_CHECKPOINT_INTERVAL = 3600
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = tmp_path / "missing.key"
    checkpoints.reset_schedule()
    assert not checkpoints.write_if_due(now=0.0)
    assert "audit checkpoint not written: no checkpoint key" in caplog.text
    assert not checkpoints.write_if_due(now=1.0)
    assert caplog.text.count("audit checkpoint not written") == 1
    assert not checkpoints.write_if_due(now=checkpoints.RETRY_AFTER_FAILURE)
    assert caplog.text.count("audit checkpoint not written") == 2
    checkpoints.reset_schedule()


# --- On S3 with object lock --------------------------------------------------------------------


@pytest.fixture
def locked_bucket(settings, monkeypatch, moto_endpoint, sink_dir) -> str:
    bucket = f"rounds-audit-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.ROUNDS_AUDIT_CHECKPOINT_SINK = "s3"
    settings.ROUNDS_AUDIT_CHECKPOINT_S3_BUCKET = bucket
    settings.ROUNDS_AUDIT_CHECKPOINT_S3_ENDPOINT_URL = moto_endpoint
    settings.ROUNDS_AUDIT_CHECKPOINT_S3_REGION = "us-east-1"
    return bucket


def test_on_s3_each_checkpoint_is_locked_and_cannot_be_removed_or_replaced(
    settings,
    chain,
    locked_bucket,
    moto_endpoint,
):
    checkpoint()
    client = s3_client(moto_endpoint)
    (item,) = client.list_objects_v2(Bucket=locked_bucket)["Contents"]
    assert item["Key"].startswith("audit-checkpoints/checkpoint-")
    head = client.head_object(Bucket=locked_bucket, Key=item["Key"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    days = (head["ObjectLockRetainUntilDate"] - head["LastModified"]).days
    assert days >= settings.ROUNDS_AUDIT_CHECKPOINT_RETENTION_DAYS - 1
    with pytest.raises(Exception, match="AccessDenied"):
        client.delete_object(Bucket=locked_bucket, Key=item["Key"], VersionId=head["VersionId"])
    sink = S3Sink(locked_bucket, "audit-checkpoints/", 1, client=client)
    with pytest.raises(SinkError, match="PreconditionFailed"):
        sink.write(item["Key"].removeprefix("audit-checkpoints/"), b"{}")
    assert "checkpoints ok: 1 in s3://" in verify()


def test_on_s3_a_cut_tail_is_found(chain, locked_bucket):
    checkpoint()
    more_entries(2)
    checkpoint()
    cut_tail(1)
    assert "its tail was cut" in verify_fails()


def test_on_s3_a_rewritten_chain_is_found(chain, locked_bucket):
    checkpoint()
    rewrite_from(chain[2].seq, data={"forged": True})
    assert "the chain was rewritten" in verify_fails()


def test_a_bucket_without_object_lock_is_refused(settings, chain, locked_bucket, moto_endpoint):
    bucket = f"rounds-nolock-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=bucket)
    settings.ROUNDS_AUDIT_CHECKPOINT_S3_BUCKET = bucket
    with pytest.raises(CommandError, match=r"not written to s3://.*ObjectLockConfiguration"):
        checkpoint()
    assert "KeyCount" in s3_client(moto_endpoint).list_objects_v2(Bucket=bucket)
    assert s3_client(moto_endpoint).list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_an_unknown_sink_is_refused(settings, sink_dir):
    settings.ROUNDS_AUDIT_CHECKPOINT_SINK = "tape"
    with pytest.raises(CommandError, match="must be file or s3, not 'tape'"):
        checkpoint()


def test_the_checkpoint_body_covers_every_field():
    base = Checkpoint(seq=1, hash="a" * 64, count=2, at="x", key="b" * 64, root="e" * 64)
    changes = [("seq", 2), ("hash", "c" * 64), ("count", 3), ("at", "y"), ("key", "d")]
    for field, value in [*changes, ("root", "f" * 64)]:
        changed = Checkpoint(**{**base.__dict__, field: value})
        assert changed.signed_bytes() != base.signed_bytes()


def _written_by_hand(sink_dir: Path, **changes) -> None:
    """A checkpoint of the head signed with the real key, with `changes` before signing."""
    key = checkpoints.load_key(checkpoints.settings.ROUNDS_AUDIT_CHECKPOINT_KEY)
    fields = {**sign_head(key).__dict__, "signature": "", **changes}
    if fields["format"] == "rounds-audit-checkpoint-v1":
        fields["root"] = ""
    unsigned = Checkpoint(**fields)
    signed = Checkpoint(
        **{**fields, "signature": key.sign(unsigned.signed_bytes()).signature.hex()}
    )
    (sink_dir / signed.name()).write_bytes(signed.to_json())


def test_a_v1_checkpoint_written_before_roots_still_verifies(chain, sink_dir):
    sink_dir.mkdir(parents=True, exist_ok=True)
    _written_by_hand(sink_dir, format="rounds-audit-checkpoint-v1")
    (written,) = sink_dir.glob("*.json")
    assert "root" not in json.loads(written.read_bytes())
    more_entries(3)
    checkpoint()
    assert "checkpoints ok: 2 in" in verify()


def test_a_root_that_is_not_the_tree_of_the_seals_fails(chain, sink_dir):
    sink_dir.mkdir(parents=True, exist_ok=True)
    _written_by_hand(sink_dir, root="0" * 64)
    problem = verify_fails()
    assert f"the tree over seals 1..{chain[-1].seq} has root" in problem
    assert "proofs made against it would not hold" in problem


def test_a_checkpoint_with_a_field_too_many_or_missing_is_not_one(chain, sink_dir):
    checkpoint()
    written = only_file(sink_dir)
    data = json.loads(written.read_bytes())
    written.chmod(0o644)
    written.write_text(json.dumps({**data, "extra": 1}))
    assert "is not a checkpoint" in verify_fails()
    del data["root"]
    written.write_text(json.dumps(data))
    assert "is not a rounds-audit-checkpoint-v1 or rounds-audit-checkpoint-v2" in verify_fails()


def test_the_s3_sink_needs_a_bucket(settings, sink_dir):
    settings.ROUNDS_AUDIT_CHECKPOINT_SINK = "s3"
    settings.ROUNDS_AUDIT_CHECKPOINT_S3_BUCKET = ""
    with pytest.raises(CommandError, match="ROUNDS_AUDIT_CHECKPOINT_S3_BUCKET is not set"):
        checkpoint()


def test_a_bucket_that_cannot_be_read_fails_the_check(settings, chain, locked_bucket):
    checkpoint()
    settings.ROUNDS_AUDIT_CHECKPOINT_S3_BUCKET = f"rounds-missing-{uuid.uuid4().hex[:12]}"
    assert "checkpoints not read from s3://rounds-missing-" in verify_fails()
