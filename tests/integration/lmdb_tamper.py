# SPDX-License-Identifier: MIT
"""Edits one record of flagd's LMDB store while flagd is stopped, with
Debian's lmdb-utils (mdb_dump / mdb_load): the audit-tamper test uses it to
prove that `flagctl audit verify` notices an edited entry.

The store (flagd/store.h) keeps audit entries in the sub-database "audit",
keyed by the revision as a big-endian u64, valued by the packed AuditEntry.
"""

import shutil
import struct
import subprocess

TIMEOUT = 60


def tools_present():
    return shutil.which("mdb_dump") is not None and \
        shutil.which("mdb_load") is not None


def dump(datadir, db):
    """{key bytes: value bytes} of one sub-database."""
    out = subprocess.run(["mdb_dump", "-s", db, str(datadir)],
                         capture_output=True, text=True, timeout=TIMEOUT,
                         check=True).stdout
    lines = out.splitlines()
    i = lines.index("HEADER=END") + 1
    recs = {}
    while i < len(lines) and lines[i] != "DATA=END":
        k = bytes.fromhex(lines[i].strip())
        v = bytes.fromhex(lines[i + 1].strip())
        recs[k] = v
        i += 2
    return recs


def load(datadir, db, recs):
    """Overwrites the given records of one sub-database."""
    text = ["VERSION=3", "format=bytevalue", "type=btree", "HEADER=END"]
    for k, v in recs.items():
        text.append(" " + k.hex())
        text.append(" " + v.hex())
    text.append("DATA=END")
    subprocess.run(["mdb_load", "-s", db, str(datadir)],
                   input="\n".join(text) + "\n", text=True,
                   capture_output=True, timeout=TIMEOUT, check=True)


def tamper_audit(datadir, revision, old, new):
    """Replaces the bytes old by new (same length, so the protobuf stays
    well formed) in the audit entry of revision. Returns the old value."""
    assert len(old) == len(new) and old != new
    key = struct.pack(">Q", revision)
    recs = dump(datadir, "audit")
    assert key in recs, "no audit entry for revision %d" % revision
    value = recs[key]
    assert value.count(old) == 1, (old, value)
    load(datadir, "audit", {key: value.replace(old, new)})
    check = dump(datadir, "audit")[key]
    assert check == value.replace(old, new)
    return value


def remove_audit(datadir, revision):
    """Removes the audit entry of revision. mdb_load cannot delete, so the
    environment is rebuilt from a dump of every sub-database, less that
    record, and replaces the original."""
    import os
    import tempfile

    datadir = str(datadir)
    names = subprocess.run(["mdb_dump", "-l", datadir], capture_output=True,
                           text=True, timeout=TIMEOUT,
                           check=True).stdout.split()
    assert "audit" in names, names
    key = struct.pack(">Q", revision)
    fresh = tempfile.mkdtemp(prefix="rebuilt-", dir=os.path.dirname(datadir))
    for db in names:
        recs = dump(datadir, db)
        if db == "audit":
            assert key in recs, "no audit entry for revision %d" % revision
            del recs[key]
        load(fresh, db, recs)
    assert key not in dump(fresh, "audit")
    for f in ("data.mdb", "lock.mdb"):
        os.replace(os.path.join(fresh, f), os.path.join(datadir, f))
    os.rmdir(fresh)
