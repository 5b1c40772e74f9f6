"""MemoryStore: remember, recall, forget. SQLite holds the truth; numpy holds the search matrix.

The store keeps the rows (memories, their vectors and terms, the pending queue) and the
in-memory matrices in step with them. How recall ranks active (not superseded) memories is
`memory.rank`; whether a new fact repeats or updates a kept one is `memory.merge`; the
export / import file is `memory.files`. The matrix is loaded on the first recall and kept in
memory between queries.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from memory import about, dates, merge
from memory.db import open_db
from memory.embed import Embedder
from memory.extract import extract
from memory.files import read_export, write_export
from memory.index import VectorIndex
from memory.keep import keep_judge
from memory.lexical import BM25Index, tokenize
from memory.merge import DUP_COSINE, UPDATE_COSINE, is_duplicate, is_update
from memory.rank import DEFAULT_RETRIEVER, MIN_COSINE, RETRIEVERS, date_rows, rank
from memory.types import Memory, Recalled
from ohlora.errors import UserError

MAX_MEMORY_CHARS = 2000  # an explicit memory longer than this is refused
MAX_OBSERVE_CHARS = 20000  # observe() reads at most this much of a message
OTHERS_SLACK = 8  # recall ranks this many more than k, to fill the places of memories it leaves out
_COLUMNS = "id, text, created_at, updated_at, persona, conversation_id, event_date, slot, source, superseded_by"


def _iso(now: datetime | None) -> str:
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.astimezone()
    return now.astimezone(timezone.utc).isoformat(timespec="seconds")


def _local_iso(now: datetime | None) -> str:
    """Local wall-clock time with its offset: relative dates ("내일") resolve against it later."""
    return (now or datetime.now()).astimezone().isoformat(timespec="seconds")


def _row(r) -> Memory:
    return Memory(
        id=r["id"], text=r["text"], created_at=r["created_at"], updated_at=r["updated_at"],
        persona=r["persona"], conversation_id=r["conversation_id"], event_date=r["event_date"],
        slot=r["slot"], source=r["source"], superseded_by=r["superseded_by"],
    )


def _day(iso: str | None) -> int:
    """Local day ordinal of a stored UTC timestamp (0 when missing or unreadable)."""
    if not iso:
        return 0
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return 0
    return (when.astimezone() if when.tzinfo else when).date().toordinal()


def _days(created_at: str | None, event_date: str | None) -> tuple[int, int, int]:
    lo, hi = dates.span(event_date) or (0, 0)
    return _day(created_at), lo, hi


class MemoryStore:
    """Long-term memory in one SQLite file. Thread-safe; the embedder loads on first need."""

    def __init__(self, db_path: Path, embedder: Embedder | Callable[[], Embedder], *,
                 retriever: str = DEFAULT_RETRIEVER, min_cosine: float | None = None) -> None:
        """`embedder`: an Embedder, or a function that loads one (called on first need).
        `min_cosine`: recall drops memories below it; default: the embedder's own `min_cosine`
        (cosines of different models live on different scales), else MIN_COSINE."""
        if retriever not in RETRIEVERS:
            raise UserError(f"unknown retriever '{retriever}' (known: {', '.join(RETRIEVERS)})")
        self.db_path = Path(db_path)
        self.retriever = retriever
        self.min_cosine = min_cosine
        self._embedder: Embedder | None = None if callable(embedder) and not hasattr(embedder, "encode") else embedder
        self._load_embedder = embedder if self._embedder is None else None
        self._db = open_db(self.db_path)
        self._con = self._db.con  # reads; every write goes through self._db.transaction()
        self._lock = self._db.lock
        self._index: VectorIndex | None = None
        self._bm25: BM25Index | None = None

    # ------------------------------------------------------------ plumbing
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._load_embedder()
        return self._embedder

    def _keep(self, text: str) -> bool:
        """The keep head on what the rules kept nothing of (`memory/keep.py`); no head, no keep."""
        if not hasattr(self, "_keep_judge"):
            self._keep_judge = keep_judge(self.embedder)
        return self._keep_judge is not None and self._keep_judge(text)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _save_vectors(self, con, ids: list[int], vecs: np.ndarray) -> None:
        name = self.embedder.name
        con.executemany(
            "INSERT OR REPLACE INTO vectors(memory_id, model, dim, vec) VALUES (?, ?, ?, ?)",
            [(mid, name, vecs.shape[1], vecs[i].astype(np.float16).tobytes()) for i, mid in enumerate(ids)],
        )

    def _load_index(self) -> VectorIndex:
        """Build the search matrix from SQLite, embedding memories that lack a vector for this model."""
        if self._index is not None:
            return self._index
        name = self.embedder.name
        rows = self._con.execute(
            "SELECT m.id, m.text, m.persona, m.superseded_by, m.created_at, m.event_date, v.model, v.dim, v.vec "
            "FROM memories m LEFT JOIN vectors v ON v.memory_id = m.id ORDER BY m.id"
        ).fetchall()
        missing = [r for r in rows if r["model"] != name]
        fresh: dict[int, np.ndarray] = {}
        if missing:
            vecs = self.embedder.encode([r["text"] for r in missing], kind="memory")
            with self._db.transaction() as con:
                self._save_vectors(con, [r["id"] for r in missing], vecs)
            fresh = {r["id"]: vecs[i] for i, r in enumerate(missing)}
        dim = next(iter(fresh.values())).shape[0] if fresh else (rows[0]["dim"] if rows else None)
        if dim is None:
            dim = int(self.embedder.encode(["dim"], kind="memory").shape[1])
        index = VectorIndex(dim, capacity=max(256, len(rows)))
        if rows:
            mat = np.stack([
                fresh[r["id"]] if r["id"] in fresh else np.frombuffer(r["vec"], dtype=np.float16).astype(np.float32)
                for r in rows
            ])
            index.add_many([r["id"] for r in rows], mat, [r["persona"] for r in rows],
                           [r["superseded_by"] is None for r in rows],
                           [_days(r["created_at"], r["event_date"]) for r in rows])
        self._index = index
        return index

    def _lexical(self) -> BM25Index:
        if self._bm25 is None:
            index = self._load_index()
            bm = BM25Index()
            rows = {r[0]: (r[1], r[2]) for r in self._con.execute("SELECT id, text, terms FROM memories")}
            missing = {mid: tokenize(text) for mid, (text, terms) in rows.items() if terms is None}
            if missing:  # memories stored before terms were kept
                with self._db.transaction() as con:
                    con.executemany("UPDATE memories SET terms = ? WHERE id = ?",
                                    [(" ".join(t), mid) for mid, t in missing.items()])
            for mid, row in index.row_of.items():
                if mid in rows:
                    bm.add(row, missing[mid] if mid in missing else rows[mid][1].split())
            self._bm25 = bm
        return self._bm25

    def _insert(self, texts: list[str], *, persona, conversation_id, now, slots=None, event_dates=None,
                source="explicit", vecs: np.ndarray | None = None, created: list[str] | None = None,
                values: list[str | None] | None = None, supersede: list[int] = ()) -> list[int]:
        """Insert memories, their vectors and the rows they supersede in one transaction, then
        add them to the live index."""
        index = self._load_index()
        if vecs is None:
            vecs = self.embedder.encode(texts, kind="memory")
        terms = [tokenize(t) for t in texts]
        ts = _iso(now)
        ids: list[int] = []
        with self._db.transaction() as con:
            for i, text in enumerate(texts):
                cur = con.execute(
                    "INSERT INTO memories(text, created_at, persona, conversation_id, event_date, slot, slot_value, "
                    "source, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (text, created[i] if created and created[i] else ts, persona, conversation_id,
                     event_dates[i] if event_dates else None, slots[i] if slots else None,
                     values[i] if values else None, source, " ".join(terms[i])),
                )
                ids.append(int(cur.lastrowid))
            self._save_vectors(con, ids, vecs)
            if supersede:
                con.executemany("UPDATE memories SET superseded_by = ? WHERE id = ?", [(ids[-1], r) for r in supersede])
        index.add_many(ids, vecs, [persona] * len(ids), [True] * len(ids),
                       [_days(created[i] if created and created[i] else ts, event_dates[i] if event_dates else None)
                        for i in range(len(ids))])
        for r in supersede:
            index.set_active(r, False)
        if self._bm25 is not None:
            for mid, t in zip(ids, terms):
                self._bm25.add(index.row_of[mid], t)
        return ids

    # ------------------------------------------------------------ public API
    def add(self, text: str, *, persona: str | None = None, conversation_id: int | None = None,
            now: datetime | None = None) -> Memory:
        """Remember `text` as given (`/remember`, `ohlora memory add`); an identical active memory is reused."""
        text = self._check_text(text)
        with self._lock:
            same = self._con.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE text = ? AND superseded_by IS NULL", (text,)
            ).fetchone()
            if same is not None:
                with self._db.transaction() as con:
                    con.execute("UPDATE memories SET updated_at = ? WHERE id = ?", (_iso(now), same["id"]))
                return self.get(same["id"])
            ref = dates.resolve(text, now)
            stored = dates.annotate(text, ref) if ref is not None else text
            (mid,) = self._insert([stored], persona=persona, conversation_id=conversation_id, now=now,
                                  event_dates=[ref.value if ref else None])
            return self.get(mid)

    def observe(self, text: str, *, persona: str | None, conversation_id: int | None,
                now: datetime | None = None) -> list[Memory]:
        """Store what is worth keeping from a user message; return the memories created or updated.

        A returned memory's `replaced` lists the ids it superseded. Questions, greetings and
        small talk store nothing; an empty message stores nothing.
        """
        if not isinstance(text, str) or not text.strip():
            return []
        facts = extract(text[:MAX_OBSERVE_CHARS], now, keep=self._keep)
        if not facts:
            return []
        with self._lock:
            index = self._load_index()
            vecs = self.embedder.encode([f.text for f in facts], kind="memory")
            changed: list[Memory] = []
            for fact, vec in zip(facts, vecs):
                changed.append(self._merge(fact, vec, index, persona, conversation_id, now))
            return changed

    def _merge(self, fact, vec, index: VectorIndex, persona, conversation_id, now) -> Memory:
        """Update a same-slot/near-duplicate memory, supersede a contradicted one, or insert."""
        ts = _iso(now)
        old = None
        if fact.slot:
            old = self._con.execute(
                f"SELECT {_COLUMNS} FROM memories WHERE slot = ? AND superseded_by IS NULL ORDER BY id DESC",
                (fact.slot,),
            ).fetchall()
        value_of = {}
        if old:
            value_of = {r["id"]: v for r in old for v in [self._slot_value(r["id"])]}
        same_value = [r for r in (old or []) if fact.value is not None and value_of.get(r["id"]) == fact.value]
        emb = self.embedder
        dup_cosine = getattr(emb, "dup_cosine", DUP_COSINE)
        cand, best_cos = None, -1.0
        if index.n:
            cos = index.cosine(vec)
            cos[~index.mask(None)] = -1.0
            best = int(np.argmax(cos))
            best_cos = float(cos[best])
            if best_cos > -1.0:
                cand = self.get(int(index.ids[best]))
        if not same_value and cand is not None and is_duplicate(cand, fact.text, fact.slot, best_cos, dup_cosine):
            same_value = [{"id": cand.id}]  # a near-duplicate without a slot, or with the same wording
        if same_value:
            mid = same_value[0]["id"]
            terms = tokenize(fact.text)
            with self._db.transaction() as con:
                con.execute(
                    "UPDATE memories SET text = ?, updated_at = ?, event_date = COALESCE(?, event_date), "
                    "slot = COALESCE(slot, ?), slot_value = ?, terms = ? WHERE id = ?",
                    (fact.text, ts, fact.event_date, fact.slot, fact.value, " ".join(terms), mid),
                )
                self._save_vectors(con, [mid], vec[None, :])
            index.set_vector(mid, vec)
            if fact.event_date:
                index.set_event(mid, *(dates.span(fact.event_date) or (0, 0)))
            if self._bm25 is not None:
                self._bm25.add(index.row_of[mid], terms)
            return self.get(mid)
        if not old and cand is not None and is_update(fact.text, cand, best_cos,
                                                      getattr(self.embedder, "update_cosine", UPDATE_COSINE)):
            old = [{"id": cand.id}]
        replaced = [r["id"] for r in (old or [])]
        (mid,) = self._insert([fact.text], persona=persona, conversation_id=conversation_id, now=now,
                              slots=[fact.slot], event_dates=[fact.event_date], source="extracted", vecs=vec[None, :],
                              values=[fact.value], supersede=replaced)
        memory = self.get(mid)
        memory.replaced = replaced
        return memory

    # ------------------------------------------------------------ the pending queue
    def enqueue(self, text: str, *, kind: str = "observe", persona: str | None = None,
                conversation_id: int | None = None, now: datetime | None = None) -> int:
        """Keep a message to observe (or an explicit memory to add) later, committed at once:
        no embedder needed, and nothing is lost if the process dies before it is processed."""
        if kind not in ("observe", "add"):
            raise ValueError(f"unknown pending kind {kind!r}")
        with self._db.transaction() as con:
            cur = con.execute("INSERT INTO pending(kind, text, persona, conversation_id, said_at) VALUES (?, ?, ?, ?, ?)",
                              (kind, text[:MAX_OBSERVE_CHARS], persona, conversation_id, _local_iso(now)))
            return int(cur.lastrowid)

    def pending_count(self) -> int:
        return int(self._db.read_one("SELECT COUNT(*) FROM pending")[0])

    def process_pending(self, limit: int | None = None) -> list[Memory]:
        """Observe (or add) the queued messages in order, each with the time it was said;
        a row leaves the queue once its memories are stored (a crash in between repeats it,
        and repeating an observation updates the same memory)."""
        changed: list[Memory] = []
        rows = self._db.read("SELECT id, kind, text, persona, conversation_id, said_at FROM pending ORDER BY id"
                             + (f" LIMIT {int(limit)}" if limit else ""))
        for r in rows:
            now = datetime.fromisoformat(r["said_at"])
            if r["kind"] == "add":
                try:
                    changed.append(self.add(r["text"], persona=r["persona"], conversation_id=r["conversation_id"], now=now))
                except UserError:
                    pass  # e.g. an empty text: nothing to keep
            else:
                changed += self.observe(r["text"], persona=r["persona"], conversation_id=r["conversation_id"], now=now)
            with self._db.transaction() as con:
                con.execute("DELETE FROM pending WHERE id = ?", (r["id"],))
        return changed

    def _slot_value(self, mid: int) -> str | None:
        row = self._con.execute("SELECT slot_value FROM memories WHERE id = ?", (mid,)).fetchone()
        return row[0] if row else None

    def recall(self, query: str, k: int = 3, *, persona: str | None = None, now: datetime | None = None,
               min_cosine: float | None = None) -> list[Recalled]:
        """The top-k active memories for `query` (best first). Empty query -> [].

        A memory below the cosine threshold is never recalled, whatever its other scores. A
        query naming a date ("지난주에 말한 거", "다음 주 금요일") lifts memories said in that
        period or mentioning a date in it; `now` (default: the clock) resolves it. A memory
        about another one of a kind the query names (memory.about), or one that a memory said on
        a later day says has changed (memory.merge.changed_by), is left out.
        """
        if not isinstance(query, str) or not query.strip() or k <= 0:
            return []
        query = query[:MAX_MEMORY_CHARS]
        with self._lock:
            index = self._load_index()
            if index.n == 0:
                return []
            threshold = min_cosine if min_cosine is not None else self.min_cosine if self.min_cosine is not None \
                else getattr(self.embedder, "min_cosine", MIN_COSINE)
            mask = index.mask(persona)
            if not mask.any():
                return []
            dense = self.retriever != "bm25"
            cos = index.cosine(self.embedder.encode([query], kind="query")[0]) if dense \
                else np.zeros(index.n, dtype=np.float32)
            q_terms = tokenize(query)
            lex = self._lexical().scores(q_terms, index.n) if self.retriever != "dense" \
                else np.zeros(index.n, dtype=np.float32)
            dated = date_rows(query, now, index)
            asks_about = about.named(q_terms)
            # a few more than k: to fill the places of memories about another one the query names,
            # and of older ones a later memory says have changed
            top, score = rank(self.retriever, cos, lex, mask, threshold, dated, k + OTHERS_SLACK)
            if not len(top):
                return []
            candidates = [int(index.ids[r]) for r in top]
            terms = self._terms_of(candidates)
            by_id = {m.id: m for m in self._get_many(candidates)}
            if asks_about:
                top = [r for r in top if not about.about_another(q_terms, terms.get(int(index.ids[r]), ()))]
            top = self._without_changed(index, list(top), terms, by_id)[:k]
            ids = [int(index.ids[r]) for r in top]
            out = []
            for i, r in zip(ids, top):
                why = "+".join(w for w, hit in (("dense", dense), ("bm25", lex[r] > 0),
                                                ("date", dated is not None and dated[r])) if hit)
                out.append(Recalled(by_id[i], float(score[r]), float(cos[r]), float(lex[r]), why))
            return out

    @staticmethod
    def _without_changed(index: VectorIndex, rows: list[int], terms: dict[int, list[str]],
                         by_id: dict[int, Memory]) -> list[int]:
        """Leave out a candidate that one said on a later day says has changed (merge.changed_by):
        "요즘은 클라이밍 해" (March) over "필라테스 다닌 지 세 달 됨" (January), when observe did not
        link them. Memories said the same day are never compared."""
        def changed(r: int) -> bool:
            old = int(index.ids[r])
            return any(index.said[n] > index.said[r] > 0 and merge.changed_by(
                by_id[int(index.ids[n])].text, terms.get(int(index.ids[n]), ()), terms.get(old, ()),
                float(index.vecs[n] @ index.vecs[r])) for n in rows if n != r)

        return [r for r in rows if not changed(r)] if len(rows) > 1 else rows

    def list(self, include_superseded: bool = False) -> list[Memory]:
        where = "" if include_superseded else "WHERE superseded_by IS NULL"
        with self._lock:
            return [_row(r) for r in self._con.execute(f"SELECT {_COLUMNS} FROM memories {where} ORDER BY id")]

    def get(self, memory_id: int) -> Memory:
        mid = self._check_id(memory_id)
        with self._lock:
            r = self._con.execute(f"SELECT {_COLUMNS} FROM memories WHERE id = ?", (mid,)).fetchone()
        if r is None:
            raise UserError(f"no memory with ID {memory_id}")
        return _row(r)

    def _terms_of(self, ids: list[int]) -> dict[int, list[str]]:
        """Each memory's stored morphemes (memory.lexical), by id."""
        marks = ",".join("?" * len(ids))
        rows = self._con.execute(f"SELECT id, terms FROM memories WHERE id IN ({marks})", ids)
        return {int(r[0]): (r[1] or "").split() for r in rows}

    def _get_many(self, ids: list[int]) -> list[Memory]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return [_row(r) for r in self._con.execute(f"SELECT {_COLUMNS} FROM memories WHERE id IN ({marks})", ids)]

    def forget(self, memory_id: int) -> Memory:
        """Delete a memory, and the older memories it superseded (so the old fact does not come back)."""
        memory = self.get(memory_id)
        with self._lock:
            doomed, frontier = [memory.id], [memory.id]
            while frontier:
                marks = ",".join("?" * len(frontier))
                frontier = [r[0] for r in self._con.execute(
                    f"SELECT id FROM memories WHERE superseded_by IN ({marks})", frontier)]
                doomed += frontier
            marks = ",".join("?" * len(doomed))
            with self._db.transaction() as con:
                con.execute(f"DELETE FROM vectors WHERE memory_id IN ({marks})", doomed)
                con.execute(f"DELETE FROM memories WHERE id IN ({marks})", doomed)
            if self._index is not None:
                for mid in doomed:
                    self._index.set_active(mid, False)
                    if self._bm25 is not None and mid in self._index.row_of:
                        self._bm25.remove(self._index.row_of[mid])
        return memory

    def count(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM memories WHERE superseded_by IS NULL").fetchone()[0])

    # ------------------------------------------------------------ files
    def export_json(self, path: Path) -> int:
        """Write every memory (superseded ones too) as JSON; vectors are not exported. Returns the count."""
        memories = self.list(include_superseded=True)
        write_export(path, memories)
        return len(memories)

    def import_json(self, path: Path) -> int:
        """Add the memories of an export (or a bench file); texts already remembered are skipped."""
        read = read_export(path, MAX_MEMORY_CHARS)
        known = {m.text for m in self.list()}
        items = []
        for item in read:
            if item.text not in known:
                known.add(item.text)
                items.append(item)
        with self._lock:
            for persona in sorted({it.persona for it in items}, key=str):
                same = [it for it in items if it.persona == persona]
                for start in range(0, len(same), 256):
                    chunk = same[start:start + 256]
                    self._insert([it.text for it in chunk], persona=persona, conversation_id=None, now=None,
                                 event_dates=[it.event_date for it in chunk], created=[it.created_at for it in chunk],
                                 source="imported")
        return len(items)

    def add_raw(self, texts: list[str], persona: str | None = None) -> list[int]:
        """Insert texts as they are (no dedupe, no dates), embedded in batches: bench and bulk loads."""
        with self._lock:
            ids: list[int] = []
            for start in range(0, len(texts), 256):
                ids += self._insert(texts[start:start + 256], persona=persona, conversation_id=None, now=None,
                                    source="imported")
            return ids

    @staticmethod
    def _check_text(text: str) -> str:
        if not isinstance(text, str) or not text.strip():
            raise UserError("memory text is empty")
        text = re.sub(r"\s+", " ", text).strip()
        if len(text) > MAX_MEMORY_CHARS:
            raise UserError(f"memory text is too long ({len(text)} characters, at most {MAX_MEMORY_CHARS})")
        return text

    @staticmethod
    def _check_id(memory_id) -> int:
        try:
            return int(str(memory_id).lstrip("#"))
        except (TypeError, ValueError):
            raise UserError(f"memory ID must be a number, got {memory_id!r}") from None

