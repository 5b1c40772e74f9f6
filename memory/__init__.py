"""Long-term memory for ohlora: extract facts from user messages, embed, index, recall.

    from memory import MemoryStore, BackgroundMemory, Memory, Recalled
    store = MemoryStore(path, embedder)    # an Embedder, or a function that loads one on first need
    store.observe("나 부산 살아", persona="ohlora", conversation_id=1)
    store.recall("우리 동네 날씨 어때?", k=3)  # -> [Recalled(memory, score, cosine)]
    memory = BackgroundMemory(store)       # the embedder loads in a thread; observations queue meanwhile

Importing this package is cheap: numpy, Kiwi and the embedder load on first use. The
package imports nothing from the app: the caller passes the embedder (see `ohlora.registry`).
"""

from memory.types import Memory, Recalled

__all__ = ["BackgroundMemory", "Memory", "MemoryStore", "Recalled"]


def __getattr__(name: str):
    if name == "MemoryStore":
        from memory.store import MemoryStore

        return MemoryStore
    if name == "BackgroundMemory":
        from memory.background import BackgroundMemory

        return BackgroundMemory
    raise AttributeError(name)
