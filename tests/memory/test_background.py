"""BackgroundMemory and the pending queue, on the hash embedder (no model) and real SQLite files:
nothing told while the embedder loads is lost, not even when the process is killed (fast tier)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from memory import BackgroundMemory, MemoryStore
from memory.embed import HashEmbedder
from ohlora.db import DatabaseError

REPO = Path(__file__).resolve().parents[2]




def slow_loader(gate: threading.Event):
    def load():
        assert gate.wait(30), "the test never opened the gate"
        return HashEmbedder()

    return load


def test_messages_told_while_loading_are_queued_then_remembered(tmp_path):
    gate = threading.Event()
    memory = BackgroundMemory(MemoryStore(tmp_path / "m.db", slow_loader(gate)))
    try:
        assert memory.state == "loading" and not memory.ready
        assert memory.recall("고양이 이름", k=3) == []  # the reply comes without memories meanwhile
        memory.observe("우리 집 고양이 이름은 나비야", persona="ohlora", conversation_id=1)
        assert memory.store.pending_count() == 1  # committed, though nothing is embedded yet
        gate.set()
        assert memory.drain(timeout=30)
        assert memory.ready and memory.status == "memory: ready"
        (hit,) = memory.recall("나비 고양이 사료", k=1)
        assert hit.memory.text == "우리 집 고양이 이름은 나비야" and hit.memory.conversation_id == 1
    finally:
        memory.close()


def test_the_queue_survives_a_process_that_never_got_ready(tmp_path):
    db = tmp_path / "m.db"
    store = MemoryStore(db, slow_loader(threading.Event()))
    store.enqueue("다음 주 금요일에 엄마 생신이야", persona="ohlora", now=__import__("datetime").datetime(2026, 11, 23, 20, 0))  # a Monday, a week before today
    store.close()  # the process ends before the embedder was ever ready
    memory = BackgroundMemory(MemoryStore(db, HashEmbedder()))
    try:
        assert memory.drain(timeout=30)
        (m,) = memory.list()
        assert m.text.startswith("다음 주 금요일(2026-12-04)") and m.event_date == "2026-12-04"  # dated when said
        assert memory.store.pending_count() == 0
    finally:
        memory.close()


def test_a_loader_that_fails_turns_memory_off_with_one_line(tmp_path):
    def broken():
        raise RuntimeError("onnxruntime is missing")

    memory = BackgroundMemory(MemoryStore(tmp_path / "m.db", broken))
    try:
        assert not memory.wait(timeout=30)
        assert memory.state == "failed" and memory.status == "memory is off: RuntimeError: onnxruntime is missing"
        assert memory.recall("뭐든", k=3) == []
    finally:
        memory.close()


def test_kill_9_during_memory_writes_loses_nothing_committed(tmp_path):
    """A process observing in a loop is killed with SIGKILL; the file is intact, every memory
    has its vector, and whatever was queued but unprocessed is processed at the next start."""
    db = tmp_path / "m.db"
    code = textwrap.dedent(f"""
        from pathlib import Path
        from memory import MemoryStore
        from memory.embed import HashEmbedder
        s = MemoryStore(Path({str(db)!r}), HashEmbedder())
        i = 0
        while True:
            s.enqueue(f"나는 고양이 {{i}}마리 키워", persona="ohlora")
            s.process_pending()
            s.observe(f"내 동생 이름은 민수{{i}}야", persona="ohlora", conversation_id=i)
            i += 1
            if i == 3:
                print("writing", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    orphans = con.execute("SELECT count(*) FROM memories m LEFT JOIN vectors v ON v.memory_id = m.id "
                          "WHERE v.memory_id IS NULL").fetchone()[0]
    con.close()
    assert orphans == 0  # a memory and its vector are written in one transaction
    with MemoryStore(db, HashEmbedder()) as store:
        before = store.count()
        store.process_pending()
        assert store.pending_count() == 0 and store.count() >= before >= 3


def test_a_locked_memory_file_is_one_clear_line(tmp_path, monkeypatch):
    db = tmp_path / "m.db"
    MemoryStore(db, HashEmbedder()).close()
    monkeypatch.setattr("memory.db.BUSY_MS", 200)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        store = MemoryStore(db, HashEmbedder())  # opening still works
        with pytest.raises(DatabaseError, match="memory database is locked by another running ohlora"):
            store.enqueue("나 부산 살아")
        store.close()
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_corrupt_memory_file_is_reported_and_left_untouched(tmp_path):
    db = tmp_path / "m.db"
    junk = b"not a database at all\n" * 200
    db.write_bytes(junk)
    with pytest.raises(DatabaseError, match="memory database is corrupt"):
        MemoryStore(db, HashEmbedder())
    assert db.read_bytes() == junk
