"""What is particular to S3-compatible storage (moto's server, over HTTP).

Every upload and download test already runs on S3 through `blob_store`;
these check the configuration and the object layout themselves.
"""

import pytest
from django.core.files.base import ContentFile

from media import storage
from tests.support.storage import s3_client
from tests.support.uploads import attach, sha

DATA = bytes(range(256)) * 64


def test_the_settings_build_a_private_non_overwriting_s3_storage(s3_store_only):
    from storages.backends.s3 import S3Storage

    backend = storage.blob_storage()
    assert isinstance(backend, S3Storage)
    assert backend.bucket_name == s3_store_only.bucket
    assert backend.file_overwrite is False
    assert backend.default_acl is None
    assert backend.transfer_config.max_in_memory_upload_chunks == 2


def test_two_writers_of_one_name_do_not_overwrite_each_other(s3_store_only):
    first = storage.blob_storage().save("uploads/x/parts/000000000000", ContentFile(b"one"))
    second = storage.blob_storage().save("uploads/x/parts/000000000000", ContentFile(b"two"))
    assert first != second
    assert b"".join(storage.iter_range(first, 0, 3)) == b"one"
    assert b"".join(storage.iter_range(second, 0, 3)) == b"two"


def test_parts_become_one_private_object(hospital, uploader, s3_store_only):
    bob = uploader(hospital.surgeon_bob)
    upload_id = bob.send(hospital.plastic, DATA, chunk=5000)
    assert s3_store_only.names() == [f"blobs/{upload_id}"]
    client = s3_client(s3_store_only.endpoint)
    head = client.head_object(Bucket=s3_store_only.bucket, Key=f"blobs/{upload_id}")
    assert head["ContentLength"] == len(DATA)
    grants = client.get_object_acl(Bucket=s3_store_only.bucket, Key=f"blobs/{upload_id}")["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert all(g["Grantee"].get("Type") == "CanonicalUser" for g in grants)


def test_downloads_use_ranged_gets_not_a_whole_object_copy(
    hospital, uploader, s3_store_only, monkeypatch
):
    """django-storages' S3File would pull the whole object into memory; we never open one."""
    from storages.backends.s3 import S3Storage

    bob = uploader(hospital.surgeon_bob)
    upload_id = bob.send(hospital.plastic, DATA)
    attach(hospital, upload_id)

    def no_open(*args, **kwargs):
        pytest.fail("S3Storage._open reads the whole object")

    monkeypatch.setattr(S3Storage, "_open", no_open)
    response = bob.content(upload_id, "bytes=100-")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == DATA[100:]
    assert response["ETag"] == f'"{sha(DATA)}"'


def test_a_missing_object_is_reported_as_missing(s3_store_only):
    with pytest.raises(storage.BlobMissing):
        list(storage.iter_range("blobs/nothing-here", 0, 10))
