"""GGUF through llama-cpp-python; persona LoRA adapters switched on the live context.

The base GGUF is loaded once. Every adapter GGUF is loaded beside it on first use;
switching persona calls `llama_set_adapters_lora` on the context and clears the KV
cache: no reload of the model.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from ohlora.backends.base import EngineBase, GenerationResult, pump
from ohlora.errors import UserError

if TYPE_CHECKING:
    from ohlora.models import BaseModel
    from ohlora.personas import Generation


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence llama.cpp's C-level log lines (they bypass Python's sys.stderr)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (e.g. under Textual)
        fd = -1
    if fd < 0:
        yield
        return
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


class LlamaCppBackend(EngineBase):
    name = "llamacpp"

    def __init__(self, base: "BaseModel", n_ctx: int = 4096, n_threads: int = 0):
        if base.kind != "gguf":
            raise UserError(f"{base.path}: the llamacpp backend needs a GGUF file (use --backend hf for HF folders)")
        from ohlora.models import check_gguf_file

        check_gguf_file(base.path)
        import llama_cpp

        self._lc = llama_cpp
        self.base = base
        kwargs = {"n_threads": n_threads} if n_threads > 0 else {"n_threads": os.cpu_count() or 2}
        try:
            with quiet_stderr():
                # flash attention: the same output, and reading a new turn after a long history
                # costs less (92 tokens after 2,100: 0.47 -> 0.37 s on 2 cores)
                self.llm = llama_cpp.Llama(str(base.path), n_ctx=n_ctx, verbose=False, flash_attn=True, **kwargs)
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"{base.path}: llama.cpp could not load this model ({exc})") from None
        self.n_ctx = self.llm.n_ctx()
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self._adapters: dict[str, ctypes.c_void_p] = {}
        self.active_adapter: str | None = None
        self._cancel = threading.Event()
        self.last = GenerationResult()

    # -- adapters ---------------------------------------------------------------
    def load_adapter(self, name: str, path: Path) -> None:
        """Load an adapter GGUF next to the base (once); it stays ready for switching."""
        if name in self._adapters:
            return
        from ohlora.models import check_gguf_file

        check_gguf_file(Path(path))
        with _quiet_stderr():  # llama.cpp names every tensor it cannot repack (a warning per layer)
            handle = self._lc.llama_adapter_lora_init(self.llm.model, str(path).encode())
        if not handle:
            raise UserError(f"{path}: llama.cpp refused this LoRA adapter (built for another base model?)")
        self._adapters[name] = handle

    def set_adapter(self, name: str | None, path: Path | None = None) -> None:
        if name is not None and name not in self._adapters:
            if path is None:
                raise UserError(f"adapter '{name}' is not loaded")
            self.load_adapter(name, path)
        if name == self.active_adapter:
            return
        if name is None:
            rc = self._lc.llama_set_adapters_lora(self.llm.ctx, None, 0, None)
        else:
            arr = (self._lc.llama_adapter_lora_p_ctypes * 1)(self._adapters[name])
            scales = (ctypes.c_float * 1)(1.0)
            rc = self._lc.llama_set_adapters_lora(self.llm.ctx, arr, 1, scales)
        if rc != 0:
            raise UserError(f"llama.cpp could not activate adapter '{name}' (code {rc})")
        self.active_adapter = name
        self.reset_cache()

    def reset_cache(self) -> None:
        """Forget the KV cache: it was computed under another adapter."""
        self.llm.reset()
        mem = self._lc.llama_get_memory(self.llm.ctx)
        if mem is not None:
            self._lc.llama_memory_clear(mem, True)

    def warm(self, text: str) -> None:
        """Evaluate `text` now so the next `stream` whose prompt starts with it reads only the
        rest (generate() keeps the longest matching token prefix of what was evaluated). The
        last token is left out: it may tokenize differently once the prompt goes on."""
        tokens = self.tokenize(text)[:-1]
        llm = self.llm
        same = 0
        for a, b in zip(llm._input_ids, tokens):
            if a != b:
                break
            same += 1
        if same >= len(tokens) or len(tokens) >= self.n_ctx:
            return
        llm.n_tokens = same  # eval() drops the cache from here on, then appends
        llm.eval(tokens[same:])

    # -- generation -------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def stream(self, prompt: str, gen: "Generation", stop: Sequence[str] = ()) -> Iterator[str]:
        tokens, max_new, state = self.start_stream(prompt, gen, stop)
        if gen.seed >= 0:
            self.llm.set_seed(gen.seed)
        generator = self.llm.generate(
            tokens,
            temp=gen.temperature,
            top_p=gen.top_p,
            top_k=gen.top_k,
            min_p=gen.min_p,
            repeat_penalty=gen.repeat_penalty,
        )
        is_end = lambda tok: bool(self._lc.llama_vocab_is_eog(self._vocab, tok))  # noqa: E731
        piece = lambda tok: self.llm.detokenize([tok], special=True)  # noqa: E731
        try:
            yield from pump(state, generator, is_end, piece, max_new)
        finally:
            generator.close()
            self.last = state.finish(state.reason)


@contextlib.contextmanager
def _quiet_stderr():
    """stderr to /dev/null for the block, both the file descriptor (llama.cpp's C code) and sys.stderr
    (llama-cpp-python's log callback prints there); stdout is left alone: the TUI draws on it."""
    sys.stderr.flush()
    saved_fd, saved_obj = os.dup(2), sys.stderr
    null = open(os.devnull, "w")
    try:
        os.dup2(null.fileno(), 2)
        sys.stderr = null
        yield
    finally:
        sys.stderr = saved_obj
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        null.close()
