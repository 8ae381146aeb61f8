"""Fixtures for uploads: blob storage on disk or on a real S3-compatible server, an
upload client per persona, and the ORM shortcut that attaches an upload to a message.

`blob_store` runs each test that uses it twice: on a FileSystemStorage in a
temporary directory, and on a bucket of a moto server (S3 over HTTP, the
same django-storages backend production uses).
"""

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.support import issue_token

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="session")
def moto_endpoint():
    """One S3-compatible server for the session, on a free port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass
class BlobStore:
    kind: str
    root: Path | None = None
    bucket: str = ""
    endpoint: str = ""

    def names(self) -> list[str]:
        """Every object stored, as storage names."""
        if self.root is not None:
            return sorted(
                str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()
            )
        listed = s3_client(self.endpoint).list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))


def s3_store(settings: Any, endpoint: str) -> BlobStore:
    """A fresh bucket, configured exactly as rounds/settings.py does from the environment."""
    from rounds.settings import attachments_storage

    bucket = f"rounds-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    env = {
        "ROUNDS_S3_BUCKET": bucket,
        "ROUNDS_S3_ENDPOINT_URL": endpoint,
        "ROUNDS_S3_REGION": "us-east-1",
        **S3_CREDENTIALS,
    }
    settings.STORAGES = {**settings.STORAGES, "attachments": attachments_storage(env, Path())}
    return BlobStore("s3", bucket=bucket, endpoint=endpoint)


def disk_store(settings: Any, tmp_path: Path) -> BlobStore:
    from rounds.settings import attachments_storage

    settings.STORAGES = {**settings.STORAGES, "attachments": attachments_storage({}, tmp_path)}
    return BlobStore("disk", root=tmp_path / "attachments")


@pytest.fixture(params=["disk", "s3"])
def blob_store(request, settings, tmp_path) -> BlobStore:
    """The "attachments" storage of this test: on disk, then on S3 (the same test twice).

    Setting STORAGES through pytest-django's `settings` makes Django drop its
    cached storage objects (django.test.signals.storages_changed), and again
    when the test ends.
    """
    if request.param == "s3":
        return s3_store(settings, request.getfixturevalue("moto_endpoint"))
    return disk_store(settings, tmp_path)


@pytest.fixture
def s3_store_only(settings, moto_endpoint) -> BlobStore:
    return s3_store(settings, moto_endpoint)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class UploadClient:
    """One persona's bearer-token client for /api/uploads."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.client = Client()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(user)}"}

    def create(self, department: Any, size: int):
        body = {"department": getattr(department, "pk", department), "size": size}
        return self.client.post("/api/uploads", body, content_type="application/json", **self.auth)

    def status(self, upload_id: str):
        return self.client.get(f"/api/uploads/{upload_id}", **self.auth)

    def put(self, upload_id: str, offset: Any, data: bytes):
        return self.client.put(
            f"/api/uploads/{upload_id}/chunks?offset={offset}",
            data,
            content_type="application/octet-stream",
            **self.auth,
        )

    def complete(self, upload_id: str, digest: str):
        return self.client.post(
            f"/api/uploads/{upload_id}/complete",
            {"sha256": digest},
            content_type="application/json",
            **self.auth,
        )

    def content(self, upload_id: str, range_header: str | None = None, **query: str):
        extra = dict(self.auth)
        if range_header is not None:
            extra["HTTP_RANGE"] = range_header
        return self.client.get(f"/api/uploads/{upload_id}/content", query, **extra)

    def send(self, department: Any, data: bytes, chunk: int = 1 << 20) -> str:
        """Create, send in chunks and complete: the id of a complete upload."""
        response = self.create(department, len(data))
        assert response.status_code == 201, response.content
        upload_id = response.json()["id"]
        for offset in range(0, len(data), chunk):
            put = self.put(upload_id, offset, data[offset : offset + chunk])
            assert put.status_code == 200, put.content
        done = self.complete(upload_id, sha(data))
        assert done.status_code == 200, done.content
        return upload_id


@pytest.fixture
def uploader():
    """`uploader(user)`: an UploadClient for that persona."""
    return UploadClient


def attach(hospital: Any, upload_id: str, thumbnail_id: str | None = None, *, thread=None):
    """Reference complete uploads from a message, as message.post will: straight in the ORM.

    The message row carries a dummy envelope; only the attachment matters here.
    """
    from chat.models import Message
    from media.models import Attachment, Upload, UploadState

    thread = thread or hospital.thread
    now = timezone.now()
    upload = Upload.objects.get(pk=upload_id)
    thread.last_seq += 1
    thread.save(update_fields=["last_seq"])
    message = Message.objects.create(
        thread=thread,
        seq=thread.last_seq,
        sender=upload.owner,
        client_msg_id=uuid.uuid4().hex,
        header={},
        ciphertext="x",
        body_hash="0" * 64,
        created_at=now,
    )
    ids = [upload_id] + ([thumbnail_id] if thumbnail_id else [])
    Upload.objects.filter(pk__in=ids).update(state=UploadState.ATTACHED, attached_at=now)
    return Attachment.objects.create(
        message=message,
        position=0,
        upload_id=upload_id,
        thumbnail_id=thumbnail_id,
        department_id=thread.department_id,
        thread=thread,
        patient_id=thread.patient_id,
        sender=upload.owner,
        captured_at=now,
        consent="care",
        created_at=now,
    )
