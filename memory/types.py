"""The records the memory package hands out."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Memory:
    """One remembered fact. `id` is what `/forget ID` and `ohlora memory forget` take."""

    id: int
    text: str
    created_at: str  # ISO 8601, UTC
    persona: str | None = None
    conversation_id: int | None = None
    event_date: str | None = None  # ISO date a relative date in the text meant when said
    superseded_by: int | None = None
    slot: str | None = None  # e.g. "home", "name", "pref:오이"; same slot -> update/supersede
    updated_at: str | None = None
    source: str = "explicit"  # explicit | extracted | imported
    replaced: list[int] = field(default_factory=list)  # set by observe(): ids this one superseded

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "replaced"}
        return d


@dataclass
class Recalled:
    """A memory returned by recall, with its fused relevance score (higher is better) and why."""

    memory: Memory
    score: float
    cosine: float = 0.0  # dense similarity, for thresholds and display
    lexical: float = 0.0  # BM25 score of the query's morphemes / words (0: no term matched)
    why: str = ""  # which retrievers found it: "dense", "dense+bm25", "bm25", plus "+date" for a date match
