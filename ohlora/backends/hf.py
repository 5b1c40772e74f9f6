"""transformers + peft: CUDA when present, CPU otherwise.

GGUF bases are dequantized once into an HF folder (`ohlora.models.ensure_hf_copy`).
Persona adapters are PEFT folders loaded beside each other on one PeftModel.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from ohlora.backends.base import EngineBase, GenerationResult, pump
from ohlora.errors import UserError

if TYPE_CHECKING:
    from ohlora.models import BaseModel
    from ohlora.personas import Generation


class _TokenQueue:
    """A transformers streamer that hands new token ids to the consuming thread."""

    def __init__(self) -> None:
        self.q: queue.Queue[int | None] = queue.Queue()
        self._prompt_seen = False

    def put(self, value) -> None:  # called by generate()
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for tok in value.reshape(-1).tolist():
            self.q.put(int(tok))

    def end(self) -> None:
        self.q.put(None)

    def __iter__(self) -> Iterator[int]:
        while (tok := self.q.get()) is not None:
            yield tok


class _IncrementalDecoder:
    """Token id -> new UTF-8 bytes, decoding the whole reply so spaces and split bytes come out right."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.shown = ""

    def __call__(self, tok: int) -> bytes:
        self.ids.append(tok)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=False)
        if text.endswith("\ufffd") or not text.startswith(self.shown):
            return b""
        new, self.shown = text[len(self.shown):], text
        return new.encode("utf-8")


class HFBackend(EngineBase):
    name = "hf"

    def __init__(self, base: "BaseModel", n_ctx: int = 4096, n_threads: int = 0):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ohlora.models import ensure_hf_copy

        if n_threads > 0:
            torch.set_num_threads(n_threads)
        folder = ensure_hf_copy(base)
        self.base = base
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder)
            self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise UserError(f"{folder}: transformers could not load this model ({exc})") from None
        limit = getattr(self.model.config, "max_position_embeddings", n_ctx) or n_ctx
        self.n_ctx = min(n_ctx, limit)
        self._end_ids = {i for i in [self.tokenizer.eos_token_id] if i is not None}
        for marker in ("<end_of_turn>", "<|im_end|>", "<|eot_id|>"):
            tid = self.tokenizer.convert_tokens_to_ids(marker)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id:
                self._end_ids.add(tid)
        self._peft = None
        self.active_adapter: str | None = None
        self._cancel = threading.Event()
        self.last = GenerationResult()

    def set_adapter(self, name: str | None, path: Path | None = None) -> None:
        if name is None:
            self.active_adapter = None
            return
        if self._peft is None or name not in self._peft.peft_config:
            if path is None or not (Path(path) / "adapter_config.json").is_file():
                raise UserError(f"adapter '{name}': no PEFT adapter folder at {path}")
            from peft import PeftModel

            try:
                if self._peft is None:
                    self._peft = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
                    self._peft.eval()
                else:
                    self._peft.load_adapter(str(path), adapter_name=name)
            except (RuntimeError, ValueError) as exc:
                raise UserError(f"{path}: adapter does not fit this base model ({exc})") from None
        self._peft.set_adapter(name)
        self.active_adapter = name

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=True)["input_ids"]

    def stream(self, prompt: str, gen: "Generation", stop: Sequence[str] = ()) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        ids, max_new, state = self.start_stream(prompt, gen, stop)
        cancel = self._cancel

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs) -> bool:
                return cancel.is_set()

        streamer = _TokenQueue()
        sample = gen.temperature > 0
        kwargs = dict(
            input_ids=torch.tensor([ids], device=self.device),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=self.device),
            max_new_tokens=max_new,
            do_sample=sample,
            repetition_penalty=gen.repeat_penalty,
            eos_token_id=sorted(self._end_ids),
            pad_token_id=self.tokenizer.pad_token_id or sorted(self._end_ids)[0],
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([_Cancelled()]),
        )
        if sample:
            kwargs.update(temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k, min_p=gen.min_p or None)
        if gen.seed >= 0:
            torch.manual_seed(gen.seed)
        model = self._peft if self.active_adapter else self.model
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    if self._peft is not None and self.active_adapter is None:
                        with self._peft.disable_adapter():
                            self._peft.generate(**kwargs)
                    else:
                        model.generate(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        is_end = lambda tok: tok in self._end_ids  # noqa: E731
        piece = _IncrementalDecoder(self.tokenizer)
        try:
            yield from pump(state, streamer, is_end, piece, max_new)
        finally:
            self._cancel.set()
            worker.join()
            self.last = state.finish(state.reason)
        if errors:
            raise errors[0]
