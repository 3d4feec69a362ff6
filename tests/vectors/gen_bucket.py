#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# Generates tests/vectors/bucket.json, the cross-language test vectors of
# sluice_bucket(). Run once and commit the output:
#
#     python3 tests/vectors/gen_bucket.py > tests/vectors/bucket.json
#
# It is deliberately independent of the C code: BLAKE2b comes from
# Python's hashlib and SipHash-2-4 is written out below from the paper
# (Aumasson & Bernstein, 2012), checked against the paper's own test
# vector before any vector is produced. The C test compares libsluice
# with this file, so the two implementations confirm each other.
#
#     key    = BLAKE2b-256(rollout name, no key)[0:16]
#     h      = SipHash-2-4(key, unit bytes)   (8 bytes, little-endian)
#     bucket = h mod 10000

import hashlib
import json
import struct
import sys

MASK = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK


def siphash24(key: bytes, msg: bytes) -> int:
    assert len(key) == 16
    k0, k1 = struct.unpack("<QQ", key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rounds(n):
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & MASK
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & MASK
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & MASK
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & MASK
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    full = len(msg) - len(msg) % 8
    for i in range(0, full, 8):
        (m,) = struct.unpack("<Q", msg[i:i + 8])
        v3 ^= m
        rounds(2)
        v0 ^= m
    tail = msg[full:] + b"\0" * (7 - len(msg) % 8)
    (m,) = struct.unpack("<Q", tail + bytes([len(msg) & 0xFF]))
    v3 ^= m
    rounds(2)
    v0 ^= m
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def bucket(rollout: str, unit: bytes) -> int:
    key = hashlib.blake2b(rollout.encode(), digest_size=32).digest()[:16]
    return siphash24(key, unit) % 10000


# SipHash paper, Appendix A: key 00..0f, message 00..0e.
assert siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5

ROLLOUTS = ["orders.read_new", "billing.v2", "a", "events_dual-write.2026"]
UNITS = [
    "",
    "a",
    "orders",
    "orders/dt=2026-11-25",
    "warehouse.sales.orders_2026_11",
    "run-000001",
    "run-000002",
    "partition=17",
    "7",
    "12345678",            # exactly one SipHash block
    "123456789",           # one block plus one byte
    "ünïcødé-テーブル-表",
    "emoji-\U0001F680",
    "a\0b",                # NUL inside: length matters, not C strings
    "x" * 1000,
    "s3://lake/raw/events/" + "/".join("p%03d" % i for i in range(60)),
]


def main():
    vectors = []
    for r in ROLLOUTS:
        units = UNITS if r in ("orders.read_new", "billing.v2") else UNITS[:5]
        for u in units:
            vectors.append({"rollout": r, "unit": u,
                            "bucket": bucket(r, u.encode("utf-8"))})
    doc = {
        "algorithm": "bucket = le64(SipHash-2-4(key = BLAKE2b-256(rollout)"
                     "[0:16], unit utf-8 bytes)) mod 10000",
        "generated_by": "tests/vectors/gen_bucket.py",
        "vectors": vectors,
    }
    json.dump(doc, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
