"""The built-in embedder, made fast: Gemma 3 270M exported once to ONNX with int8 weights.

Why not the torch model: one query is bound by reading the weights, ~188 MB even in
bfloat16, which took ~35 ms on a 2-core machine. The ONNX copy, run by onnxruntime with
int8 weights (dynamic int8 activations), takes ~18 ms. Every projection is int8 except the
MLP down projections of the first 6 layers: their input (GELU(gate) x up) has outlier
channels. Measured on memory/bench/*.json (recall@3 sample / holdout, 20-token query):
all int8 .866 / .911 (16 ms); all down projections float .910 / .933 (22 ms); the first 6
float .881 / .889, Korean .867 / .833 (18 ms); the last 6 float .851 / .911.

Vectors are centred before normalising: the last-token states of Gemma share one large
direction (cosines between unrelated texts sit near 0.9), so the mean vector of a fixed
calibration set (the caller passes it: the app uses sentences of the shipped persona chats,
not the bench files) is subtracted.
That raised recall@3 in float32 and in int8 on both bench files.

The export (torch.onnx, dynamo) and quantization run once per base copy, ~1 minute, into
`<cache_dir>/<hf copy>-<version>/`; the folder appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from memory.embed import MAX_CHARS, Kind, QueryCache, prompt_eol
from ohlora.errors import UserError

VERSION = "q8d6-v1"  # bump when the export, the quantization or the calibration changes
FLOAT_DOWN_LAYERS = 6  # MLP down projections left in float32, from the first layer on
MAX_TOKENS = 512  # Gemma 3's sliding window; longer texts lose their middle
_MODEL, _MEAN, _INFO = "model.onnx", "mean.npy", "build.json"
_BUILD_LOCK = threading.Lock()


def onnx_dir_for(hf_dir: Path, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"{Path(hf_dir).name}-{VERSION}"


def _export(hf_dir: Path, path: Path) -> None:
    """float32 ONNX of: token ids (1, T) -> L2-normalised final hidden state of the last token."""
    import warnings

    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(hf_dir), dtype=torch.float32, attn_implementation="eager").eval()
    model.config.use_cache = False

    class LastToken(torch.nn.Module):
        def __init__(self, body) -> None:
            super().__init__()
            self.body = body

        def forward(self, input_ids):
            h = self.body(input_ids=input_ids, use_cache=False).last_hidden_state[:, -1]
            return torch.nn.functional.normalize(h, dim=-1)

    ids = torch.randint(1000, 20000, (1, 20))
    seq = torch.export.Dim("seq", min=2, max=MAX_TOKENS)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # torch.onnx prints progress
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastToken(model), (ids,), str(path), input_names=["input_ids"], output_names=["sentence_vector"],
            dynamic_shapes={"input_ids": {1: seq}}, dynamo=True, external_data=True, verbose=False,
        )


def _quantize(src: Path, dst: Path, down_rows: int) -> None:
    """int8 weights (per channel) for every MatMul with a constant weight, except the first
    FLOAT_DOWN_LAYERS down projections (weights with `down_rows` input rows, in graph order)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    downs = [n.name for n in graph.node if n.op_type == "MatMul" and len(n.input) > 1
             and shapes.get(n.input[1], (None,))[0] == down_rows]
    keep = downs[:FLOAT_DOWN_LAYERS]
    quantize_dynamic(
        str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"],
        nodes_to_exclude=keep, use_external_data_format=True, extra_options={"MatMulConstBOnly": True},
    )


def build(hf_dir: Path, out: Path, calibration: Sequence[str], say=None) -> Path:
    """Export, quantize and calibrate (mean of `calibration` vectors) into `out` (atomically). Returns `out`."""
    import tempfile

    from transformers import AutoConfig

    import logging

    from memory.embed import _quiet_loading

    say = say or (lambda msg: None)
    _quiet_loading()
    logging.disable(logging.WARNING)  # torch.onnx and onnxruntime log their internals meanwhile
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        say("memory embedder: exporting Gemma to ONNX (once, about a minute) …")
        _export(hf_dir, tmp / "fp32.onnx")
        say("memory embedder: int8 weights …")
        inter = AutoConfig.from_pretrained(str(hf_dir)).get_text_config().intermediate_size
        _quantize(tmp / "fp32.onnx", tmp / _MODEL, inter)
        for f in tmp.glob("fp32.onnx*"):
            f.unlink()
        say("memory embedder: calibrating …")
        if len(calibration) < 20:
            raise UserError("too few calibration sentences to build the memory embedder (need 20)")
        raw = _Runner(tmp / _MODEL, hf_dir)
        mean = np.mean([raw.embed(t) for t in calibration], axis=0).astype(np.float32)
        np.save(tmp / _MEAN, mean)
        (tmp / _INFO).write_text(json.dumps({"version": VERSION, "hf_copy": Path(hf_dir).name}) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        logging.disable(logging.NOTSET)
    return out


class _Runner:
    """onnxruntime session + tokenizer: text -> normalised last-token vector (not centred)."""

    def __init__(self, model_path: Path, hf_dir: Path) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, min(2, os.cpu_count() or 1))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(hf_dir))

    def embed(self, text: str) -> np.ndarray:
        ids = self.tokenizer(prompt_eol(text))["input_ids"]
        if len(ids) > MAX_TOKENS:  # keep the template's head and its "in one word" tail
            ids = ids[:64] + ids[-(MAX_TOKENS - 64):]
        return self.session.run(None, {"input_ids": np.asarray([ids], dtype=np.int64)})[0][0]


class GemmaOnnxEmbedder:
    """The `Embedder` the memory store uses by default (see the module docstring)."""

    def __init__(self, folder: Path, hf_dir: Path) -> None:
        self._runner = _Runner(folder / _MODEL, hf_dir)
        self._mean = np.load(folder / _MEAN).astype(np.float32)
        self.name = f"gemma3-270m-eol-{VERSION}:{Path(hf_dir).name}"
        self.dim = int(self._mean.shape[0])
        self._queries = QueryCache()
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], kind: Kind = "memory") -> np.ndarray:
        hit = self._queries.get(texts, kind)
        if hit is not None:
            return hit
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            for i, text in enumerate(texts):
                vec = self._runner.embed(text[:MAX_CHARS]) - self._mean
                out[i] = vec / max(float(np.linalg.norm(vec)), 1e-12)
        self._queries.put(texts, kind, out)
        return out


def gemma_onnx_embedder(hf_dir: Path, cache_dir: Path, calibration: Callable[[], Sequence[str]],
                        say=None) -> GemmaOnnxEmbedder:
    """The built-in embedder for the HF copy `hf_dir`; its ONNX copy is built into `cache_dir`
    on first use, centred on the mean vector of `calibration()` sentences."""
    folder = onnx_dir_for(hf_dir, cache_dir)
    with _BUILD_LOCK:
        if not (folder / _INFO).is_file():
            try:
                build(hf_dir, folder, list(calibration()), say)
            except ImportError as exc:
                raise UserError(f"the memory embedder needs onnxruntime, onnx and onnxscript ({exc.name} is missing)") from None
    return GemmaOnnxEmbedder(folder, hf_dir)
