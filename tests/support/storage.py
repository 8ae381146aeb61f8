"""Blob storage for the attachments: on disk, or on a real S3-compatible server.

The S3 side is a moto server (S3 over HTTP, the same django-storages backend
production uses); tests/conftest.py starts one per session (`moto_endpoint`)
and wires `blob_store`, which runs each test that asks for it on both.
"""

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


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
