"""Orphan uploads expire: `manage.py expire_uploads` removes their bytes, keeps their row
(state `expired`) and audits each; attached uploads never expire this way."""

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from media.models import Upload, UploadPart, UploadState
from tests.support import audit_entries
from tests.support.uploads import attach, sha

DATA = b"ciphertext" * 500


def overdue(*upload_ids: str) -> None:
    Upload.objects.filter(pk__in=upload_ids).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )


def expire() -> str:
    out = StringIO()
    call_command("expire_uploads", stdout=out)
    return out.getvalue()


def test_orphans_are_removed_and_audited(hospital, uploader, blob_store):
    bob = uploader(hospital.surgeon_bob)
    receiving = bob.create(hospital.plastic, len(DATA)).json()["id"]
    bob.put(receiving, 0, DATA[:1000])
    complete = bob.send(hospital.plastic, DATA)
    failed = bob.create(hospital.plastic, 3).json()["id"]
    bob.put(failed, 0, b"abc")
    assert bob.complete(failed, sha(b"xyz")).status_code == 409
    assert len(blob_store.names()) == 2
    overdue(receiving, complete, failed)

    assert expire() == "expired 3 uploads\n"

    assert blob_store.names() == []
    assert not UploadPart.objects.exists()
    for upload_id in (receiving, complete, failed):
        upload = Upload.objects.get(pk=upload_id)
        assert (upload.state, upload.storage_name) == (UploadState.EXPIRED, "")
    entries = {e.object_id: e for e in audit_entries("upload.expired")}
    assert set(entries) == {receiving, complete, failed}
    assert entries[receiving].data == {"size": len(DATA), "received": 1000, "was": "receiving"}
    assert entries[complete].data["was"] == "complete"
    assert entries[receiving].actor_id is None
    assert entries[receiving].department_id == hospital.plastic.pk
    # Nothing more to do; an expired upload takes nothing.
    assert expire() == "expired 0 uploads\n"
    assert bob.put(receiving, 1000, DATA[1000:2000]).json()["code"] == "upload_state"
    assert bob.status(receiving).json()["state"] == "expired"
    assert bob.complete(complete, sha(DATA)).json()["code"] == "upload_state"


def test_attached_and_fresh_uploads_are_kept(hospital, uploader, blob_store):
    bob = uploader(hospital.surgeon_bob)
    photo = bob.send(hospital.plastic, DATA)
    thumb = bob.send(hospital.plastic, DATA[:100])
    attach(hospital, photo, thumb)
    fresh = bob.send(hospital.plastic, DATA)
    overdue(photo, thumb)
    stored = blob_store.names()

    assert expire() == "expired 0 uploads\n"

    assert blob_store.names() == stored
    assert Upload.objects.get(pk=photo).state == UploadState.ATTACHED
    assert Upload.objects.get(pk=fresh).state == UploadState.COMPLETE
    assert not audit_entries("upload.expired")
    response = uploader(hospital.nurse_alice).content(photo)
    assert b"".join(response.streaming_content) == DATA


def test_an_upload_attached_meanwhile_is_not_expired(hospital, uploader, blob_store):
    """The row is re-checked under its lock: a post may have taken it since the scan."""
    from media.uploads import do_expire_upload

    bob = uploader(hospital.surgeon_bob)
    upload_id = bob.send(hospital.plastic, DATA)
    overdue(upload_id)
    Upload.objects.filter(pk=upload_id).update(state=UploadState.ATTACHED)
    assert do_expire_upload(upload_id, timezone.now()) is False
    assert Upload.objects.get(pk=upload_id).state == UploadState.ATTACHED
    assert blob_store.names() == [f"blobs/{upload_id}"]
