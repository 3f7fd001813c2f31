"""serve's object store on its own: commits replace whole objects, streamed
writes hash what they write, and week-old upload sessions are forgotten."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import time

from wfgen.server.storage_store import SESSION_TTL_S, ObjectStore


def test_commit_replaces_and_delete_removes_the_file(tmp_path):
    store = ObjectStore(tmp_path / "s")
    written = store.write(iter([io.BytesIO(b"one")]))
    assert written.md5 == base64.b64encode(hashlib.md5(b"one").digest()).decode()
    store.commit({"bucket": "b", "name": "o", "generation": "1"}, written)
    again = store.write(iter([io.BytesIO(b"two")]))
    store.commit({"bucket": "b", "name": "o", "generation": "2"}, again)
    found = store.object("b", "o")
    assert found and found[1].read_bytes() == b"two"
    assert len(list((tmp_path / "s" / "blobs").iterdir())) == 1  # the old file is gone
    store.delete("b", "o")
    assert store.object("b", "o") is None
    assert not list((tmp_path / "s" / "blobs").iterdir())
    store.close()
    assert (tmp_path / "s").exists()  # a kept store stays on disk


def test_week_old_sessions_are_forgotten(tmp_path):
    store = ObjectStore(tmp_path / "s")
    old = store.new_session({"bucket": "b", "meta": {}, "conditions": {}})
    stale = time.time() - SESSION_TTL_S - 60
    for path in (tmp_path / "s" / "uploads").iterdir():
        os.utime(path, (stale, stale))
    fresh = store.new_session({"bucket": "b", "meta": {}, "conditions": {}})
    assert store.session(old) is None
    assert store.session(fresh) is not None
    assert store.session("../../etc/passwd") is None
    store.close()


def test_a_temporary_store_is_removed_at_close():
    store = ObjectStore(None)
    root = store.root
    assert root.exists()
    store.close()
    assert not root.exists()
