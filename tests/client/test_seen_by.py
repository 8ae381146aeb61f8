"""`seen_by`: who read each message, in one pass, the same as asking every receipt."""

import random
from datetime import UTC, datetime, timedelta

from client.compliance import _when, seen_by


def by_asking_every_receipt(seq, receipts):
    """The plain definition: each user's earliest receipt reaching `seq`, earliest first,
    then by user id."""
    first = {}
    for receipt in receipts:
        if not isinstance(receipt.get("up_to_seq"), int) or receipt["up_to_seq"] < seq:
            continue
        user = receipt["user"]
        held = first.get(user["id"])
        if held is None or _when(receipt["read_at"]) < _when(held["at"]):
            first[user["id"]] = {"user": user, "at": receipt["read_at"]}
    return sorted(first.values(), key=lambda r: (_when(r["at"]), str(r["user"]["id"])))


def test_seen_by_agrees_with_the_definition_on_random_receipts():
    rng = random.Random(13)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    for _ in range(50):
        seqs = sorted(rng.sample(range(1, 80), rng.randint(0, 40)))
        receipts = [
            {
                "user": {"id": rng.randint(1, 6)},
                "up_to_seq": rng.choice([rng.randint(1, 80), None, "7"]),
                "read_at": (start + timedelta(minutes=rng.randint(0, 500))).isoformat(),
            }
            for _ in range(rng.randint(0, 60))
        ]
        got = seen_by(seqs, receipts)
        assert {s: got[s] for s in seqs} == {s: by_asking_every_receipt(s, receipts) for s in seqs}


def test_a_message_nobody_reached_is_seen_by_nobody_and_a_bad_seq_is_left_out():
    receipts = [{"user": {"id": 1}, "up_to_seq": 3, "read_at": "2026-12-05T10:00:00+00:00"}]
    got = seen_by([2, 3, 4, None], receipts)
    assert got[4] == [] and None not in got
    assert got[2] == got[3] == [{"user": {"id": 1}, "at": "2026-12-05T10:00:00+00:00"}]
