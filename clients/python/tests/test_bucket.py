# SPDX-License-Identifier: MIT
"""sluice.bucket() is libsluice's sluice_bucket(): the shared vectors of
tests/vectors/bucket.json must match exactly, and the package must not
carry a bucketing implementation of its own."""

import json

import pytest

import sluice
from conftest import PKG, ROOT

VECTORS = json.loads((ROOT / "tests" / "vectors" / "bucket.json")
                     .read_text(encoding="utf-8"))["vectors"]


def test_vectors_loaded():
    assert len(VECTORS) >= 10
    assert any("\0" in v["unit"] for v in VECTORS)
    assert any(not v["unit"].isascii() for v in VECTORS)


@pytest.mark.parametrize("v", VECTORS,
                         ids=lambda v: "%s/%r" % (v["rollout"], v["unit"][:24]))
def test_bucket_vector(v):
    assert sluice.bucket(v["rollout"], v["unit"]) == v["bucket"]
    # bytes and str give the same bucket (str is UTF-8).
    assert sluice.bucket(v["rollout"].encode(), v["unit"].encode()) == \
        v["bucket"]


def test_bucket_range_and_types():
    assert sluice.BUCKETS == 10000
    for i in range(200):
        assert 0 <= sluice.bucket("r", "u%d" % i) < sluice.BUCKETS
    assert sluice.bucket("r", bytearray(b"x")) == sluice.bucket("r", b"x")
    assert sluice.bucket("r", memoryview(b"x")) == sluice.bucket("r", "x")
    with pytest.raises(TypeError):
        sluice.bucket("r", 7)
    with pytest.raises(ValueError):
        sluice.bucket("r\0x", "u")  # a rollout name is a C string


def test_no_bucketing_in_python():
    """One bucketing implementation: libsluice's."""
    for f in (PKG / "sluice").glob("*.py"):
        text = f.read_text().lower()
        for word in ("siphash", "blake2", "hashlib"):
            assert word not in text, (f.name, word)
