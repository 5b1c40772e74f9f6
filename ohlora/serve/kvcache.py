"""A KV snapshot per persona adapter on a llama.cpp engine, so a persona switch does not re-read the
persona's prompt.

Switching adapter clears the KV cache (it was computed under the other adapter), and then the next
prompt is read from its first token: ~240 tokens of persona text, which on a busy 2-core CPU costs
seconds, on every request when the queue alternates personas. After each reply the server copies
the KV cells of sequence 0 (a few MB for Gemma 3 270M) under the active adapter's name; when a
request finds the cache empty after a switch, the snapshot of its adapter is put back and
llama-cpp-python's own prefix match reuses every token the new prompt shares with it.

This reaches into llama-cpp-python's `Llama` (n_tokens, input_ids) from outside the engine; it
checks what it needs and does nothing for other engines. Its place is `LlamaCppBackend.set_adapter`.
"""

from __future__ import annotations

import ctypes
import logging
from collections import OrderedDict
from typing import Any

log = logging.getLogger("ohlora.serve")


class AdapterKVCache:
    def __init__(self, max_bytes: int = 512 << 20) -> None:
        self.max_bytes = max_bytes
        self._snaps: OrderedDict[tuple[int, str | None], tuple[bytes, Any, int]] = OrderedDict()
        self.restored = 0
        self.disabled = False

    @staticmethod
    def _parts(engine) -> tuple[Any, Any] | None:
        llm = getattr(engine, "llm", None)
        if getattr(engine, "name", "") != "llamacpp" or llm is None:
            return None
        import llama_cpp

        needed = ("llama_state_seq_get_size", "llama_state_seq_get_data", "llama_state_seq_set_data")
        if not all(hasattr(llama_cpp, n) for n in needed) or not hasattr(llm, "input_ids"):
            return None
        return llm, llama_cpp

    def save(self, engine) -> None:
        """After a reply: keep the KV cells of the prompt and reply under the active adapter."""
        parts = None if self.disabled else self._parts(engine)
        if parts is None:
            return
        llm, lc = parts
        n = int(llm.n_tokens)
        if n <= 0:
            return
        try:
            ctx = llm._ctx.ctx
            size = int(lc.llama_state_seq_get_size(ctx, 0))
            buf = (ctypes.c_uint8 * size)()
            got = int(lc.llama_state_seq_get_data(ctx, buf, size, 0))
            if got <= 0:
                return
            key = (id(engine), getattr(engine, "active_adapter", None))
            self._snaps[key] = (bytes(memoryview(buf)[:got]), llm.input_ids[:n].copy(), n)
            self._snaps.move_to_end(key)
            while sum(len(s[0]) for s in self._snaps.values()) > self.max_bytes and len(self._snaps) > 1:
                self._snaps.popitem(last=False)
        except Exception as exc:  # noqa: BLE001 - an optimization: never worth a failed request
            log.warning("KV snapshot off: %s", exc)
            self.disabled = True

    def restore(self, engine) -> bool:
        """Before a prompt: if the cache was just cleared by a switch, put the adapter's snapshot back."""
        parts = None if self.disabled else self._parts(engine)
        if parts is None or int(parts[0].n_tokens) != 0:
            return False
        llm, lc = parts
        snap = self._snaps.get((id(engine), getattr(engine, "active_adapter", None)))
        if snap is None:
            return False
        data, ids, n = snap
        try:
            ctx = llm._ctx.ctx
            mem = lc.llama_get_memory(ctx)
            if mem is not None:
                lc.llama_memory_clear(mem, True)
            src = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
            if int(lc.llama_state_seq_set_data(ctx, src, len(data), 0)) != len(data):
                llm.reset()
                return False
            llm.input_ids[:n] = ids
            llm.n_tokens = n
            llm._requires_eval = True  # logits come from a decode, not from the snapshot
            self.restored += 1
            return True
        except Exception as exc:  # noqa: BLE001
            log.warning("KV snapshot off: %s", exc)
            self.disabled = True
            try:
                llm.reset()
                mem = lc.llama_get_memory(llm._ctx.ctx)
                if mem is not None:
                    lc.llama_memory_clear(mem, True)
            except Exception:  # noqa: BLE001
                pass
            return False
