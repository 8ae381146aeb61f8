"""Wiring only: the S3-only store of tests/media/test_s3.py.

`moto_endpoint`, `blob_store` (disk, then S3) and `uploader` are in
tests/conftest.py, since tests/retention and tests/audit use them too; the
helpers are in tests/support/storage.py and tests/support/uploads.py.
"""

import pytest

from tests.support.storage import BlobStore, s3_store


@pytest.fixture
def s3_store_only(settings, moto_endpoint) -> BlobStore:
    return s3_store(settings, moto_endpoint)
