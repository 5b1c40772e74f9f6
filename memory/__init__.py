"""Long-term memory for ohlora: extract facts from user messages, embed, index, recall.

    from memory import MemoryStore, Memory, Recalled
    store = MemoryStore(path)              # embedder loads lazily on first need
    store.observe("나 부산 살아", persona="ohlora", conversation_id=1)
    store.recall("우리 동네 날씨 어때?", k=3)  # -> [Recalled(memory, score, cosine)]

Importing this package is cheap: torch and sentence-transformers load on first embedding.
"""

from memory.types import Memory, Recalled

__all__ = ["Memory", "MemoryStore", "Recalled"]


def __getattr__(name: str):
    if name == "MemoryStore":
        from memory.store import MemoryStore

        return MemoryStore
    raise AttributeError(name)
