"""Where signed checkpoints go: somewhere the database's administrators cannot rewrite.

A directory (the default: mount it from another host, or have it shipped
off the machine; one file per checkpoint, never overwritten) or an S3
bucket with object lock (each checkpoint an object locked in COMPLIANCE
mode for ROUNDS_AUDIT_CHECKPOINT_RETENTION_DAYS, which no account, root
included, can shorten or delete before it ends). See docs/audit.md.
"""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings


class SinkError(Exception):
    """A checkpoint could not be written or read; never a partial write."""


class Sink(Protocol):
    def write(self, name: str, data: bytes) -> None: ...

    def read_all(self) -> list[tuple[str, bytes]]: ...

    def describe(self) -> str: ...


class FileSink:
    """One file per checkpoint in a directory; an existing name is never overwritten."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def write(self, name: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / name
        try:
            # "x": fail rather than replace, whatever raced us to the name.
            with path.open("xb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except FileExistsError:
            raise SinkError(f"checkpoint {name} already exists; it is never overwritten") from None
        path.chmod(0o444)

    def read_all(self) -> list[tuple[str, bytes]]:
        if not self.directory.is_dir():
            return []
        return [(p.name, p.read_bytes()) for p in sorted(self.directory.glob("*.json"))]

    def describe(self) -> str:
        return f"directory {self.directory}"


class S3Sink:
    """Objects under a prefix of a bucket with object lock, each locked on write."""

    def __init__(self, bucket: str, prefix: str, retention_days: int, client: Any = None) -> None:
        if not bucket:
            raise SinkError("ROUNDS_AUDIT_CHECKPOINT_S3_BUCKET is not set")
        self.bucket, self.prefix, self.retention_days = bucket, prefix, retention_days
        self.client = client or _s3_client()

    def write(self, name: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        until = datetime.now(UTC) + timedelta(days=self.retention_days)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + name,
                Body=data,
                ContentType="application/json",
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=until,
                # Never replace a checkpoint, even with a newer version of the same name.
                IfNoneMatch="*",
            )
        except (BotoCoreError, ClientError) as error:
            # A bucket without object lock is refused here by S3 itself (InvalidRequest).
            raise SinkError(
                f"checkpoint {name} not written to s3://{self.bucket}: {error}"
            ) from None

    def read_all(self) -> list[tuple[str, bytes]]:
        from botocore.exceptions import BotoCoreError, ClientError

        found = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    body = self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"]
                    found.append((item["Key"][len(self.prefix) :], body.read()))
        except (BotoCoreError, ClientError) as error:
            raise SinkError(f"checkpoints not read from s3://{self.bucket}: {error}") from None
        return sorted(found)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _s3_client() -> Any:
    """Endpoint and region from the settings; credentials from boto3's own chain."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=settings.ROUNDS_AUDIT_CHECKPOINT_S3_ENDPOINT_URL or None,
        region_name=settings.ROUNDS_AUDIT_CHECKPOINT_S3_REGION or None,
    )


def configured_sink() -> Sink:
    kind = settings.ROUNDS_AUDIT_CHECKPOINT_SINK
    if kind == "file":
        return FileSink(settings.ROUNDS_AUDIT_CHECKPOINT_DIR)
    if kind == "s3":
        return S3Sink(
            settings.ROUNDS_AUDIT_CHECKPOINT_S3_BUCKET,
            settings.ROUNDS_AUDIT_CHECKPOINT_S3_PREFIX,
            settings.ROUNDS_AUDIT_CHECKPOINT_RETENTION_DAYS,
        )
    raise SinkError(f"ROUNDS_AUDIT_CHECKPOINT_SINK must be file or s3, not {kind!r}")
