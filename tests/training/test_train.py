"""Training runs: interrupted + resumed tiny run, bad input, and the acceptance run on the real Gemma base."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest

from ohlora.errors import UserError
from tests.training.train_helpers import changes_logits
from training.sft import Interrupted, TrainConfig, train

pytestmark = pytest.mark.slow


def tiny_cfg(tiny_base: Path, chat_file: Path, out: Path, **kw) -> TrainConfig:
    opts = dict(data=str(chat_file), base=str(tiny_base), output=str(out), max_steps=3, batch_size=2,
                max_length=128, lr=1e-3, samples=0, progress=False, gguf=False, save_steps=100)
    opts.update(kw)
    return TrainConfig(**opts)


def _sigint_at_step(step: int):
    from transformers import TrainerCallback

    class Sigint(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == step:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

    return lambda trainer, interrupt: trainer.add_callback(Sigint())


@pytest.fixture(scope="module")
def resumed_run(tiny_base, tmp_path_factory):
    """Ctrl-C during step 2 -> checkpoint at step 2, no adapter; --resume finishes step 3."""
    chat = Path(__file__).parent / "data" / "tiny_chat.jsonl"
    out = tmp_path_factory.mktemp("run") / "adapter"
    partial = out.with_name("adapter.partial")
    with pytest.raises(Interrupted) as info:
        train(tiny_cfg(tiny_base, chat, out, samples=1, sample_tokens=4), on_trainer=_sigint_at_step(1))
    stopped = {
        "step": info.value.step,
        "out_exists": out.exists(),
        "checkpoints": sorted(p.name for p in partial.glob("checkpoint-*")),
        "samples_kept": (partial / "samples_before.json").is_file(),
    }
    with pytest.raises(UserError, match="interrupted run is in .*--resume"):
        train(tiny_cfg(tiny_base, chat, out))
    result = train(tiny_cfg(tiny_base, chat, out, resume=True, samples=1, sample_tokens=4))
    return stopped, result, out, partial


def test_interrupt_saves_checkpoint_and_resume_finishes(resumed_run):
    stopped, result, out, partial = resumed_run
    assert stopped == {"step": 2, "out_exists": False, "checkpoints": ["checkpoint-2"], "samples_kept": True}
    assert not partial.exists()
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "report.json", "loss.png", "ohlora_base.json"} <= names
    assert not any(n.startswith("checkpoint") for n in names)
    report = json.loads((out / "report.json").read_text())
    assert report["resumed"] is True and report["steps"] == 3
    assert [r["step"] for r in report["train_loss"]] == [3]  # the resumed part logs step 3
    assert report["tokens_per_s"] > 0 and report["peak_rss_mb"] > 0 and "torch" in report["versions"]
    assert report["settings"]["rank"] == 16 and len(report["samples_before"]) == len(report["samples_after"]) == 1
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 16 and cfg["lora_alpha"] == 32 and {m.rsplit(".", 1)[-1] for m in cfg["target_modules"]} >= {"q_proj", "down_proj"}


def test_adapter_on_another_base_is_refused(resumed_run, other_tiny_base, chat_file, tmp_path):
    _, _, out, _ = resumed_run
    with pytest.raises(UserError, match="adapter was trained on base 'tiny-gemma3'"):
        train(tiny_cfg(other_tiny_base, chat_file, tmp_path / "b", from_adapter=str(out)))
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()


def test_continue_from_adapter_on_same_base(resumed_run, tiny_base, chat_file, tmp_path):
    _, _, out, _ = resumed_run
    result = train(tiny_cfg(tiny_base, chat_file, tmp_path / "c", from_adapter=str(out), max_steps=1))
    assert (result.output / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize("kw,match", [
    ({"persona": "nobody", "data": None, "output": None, "base": None}, "unknown persona 'nobody'"),
    ({"data": "missing.jsonl"}, "data file not found: missing.jsonl"),
    ({"data": "notes.txt"}, "unknown data format '.txt'"),
    ({"qlora": True, "zero3": True}, "--qlora and DeepSpeed ZeRO-3 do not mix"),
    ({"resume": True}, "nothing to resume"),
    ({"output": None}, "--output DIR is required"),
    ({"rank": 0}, "--rank must be at least 1"),
    ({"data": "long.jsonl"}, "no usable training conversations; first problem: .*long.jsonl:1: too long"),
    ({"strict": True, "max_length": 40}, r"tiny_chat.jsonl:\d+: too long .*\(--strict\)"),
])
def test_bad_input(tiny_base, chat_file, tmp_path, monkeypatch, kw, match):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "notes.txt").write_text("hi")
    long_row = {"messages": [{"role": "user", "content": "아주 긴 질문 " * 100}, {"role": "assistant", "content": "응"}]}
    (tmp_path / "long.jsonl").write_text(json.dumps(long_row, ensure_ascii=False) + "\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=match):
        train(tiny_cfg(tiny_base, chat_file, tmp_path / "out", **kw))
    assert not (tmp_path / "out").exists()


def test_disk_full_leaves_no_adapter(tiny_base, chat_file, tmp_path, monkeypatch):
    import training.report

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "report.json")

    monkeypatch.setattr(training.report, "write_report", full)
    out = tmp_path / "out"
    with pytest.raises(UserError, match="disk full .*--resume"):
        train(tiny_cfg(tiny_base, chat_file, out, max_steps=1))
    assert not out.exists()  # only out.partial/, which is never taken for an adapter
    assert (out.with_name("out.partial") / "checkpoint-1").is_dir()  # what --resume continues from


def test_out_of_memory_is_a_clear_error(tiny_base, chat_file, tmp_path):
    def boom(trainer, interrupt):
        def train_oom(*a, **k):
            raise MemoryError

        trainer.train = train_oom

    out = tmp_path / "out"
    with pytest.raises(UserError, match="out of memory: lower --batch-size"):
        train(tiny_cfg(tiny_base, chat_file, out), on_trainer=boom)
    assert not out.exists()


def test_cli_register_and_main(tiny_base, chat_file, tmp_path):
    import argparse

    from training import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--persona", "ironman", "--max-steps", "3", "--qlora", "--no-packing"])
    cfg = cli.config_from_args(args)
    assert (cfg.persona, cfg.max_steps, cfg.qlora, cfg.packing, cfg.rank, cfg.lr) == ("ironman", 3, True, False, 16, 2e-4)
    assert args.func is cli.handler
    out = tmp_path / "cli-out"
    rc = cli.main(["--data", str(chat_file), "--base", str(tiny_base), "--output", str(out), "--max-steps", "1",
                   "--batch-size", "4", "--max-length", "128", "--samples", "0", "--no-gguf", "--no-progress"])
    assert rc == 0 and (out / "adapter_config.json").is_file()
    assert cli.main(["--data", str(chat_file)]) == 2  # no --output: an error message, exit 2


def test_acceptance_real_gemma_adapter_changes_output(gemma_hf, chat_file, tmp_path):
    """A tiny CPU run on the real Gemma 3 270M writes an adapter the transformers backend loads and uses."""
    out = tmp_path / "adapter"
    result = train(TrainConfig(data=str(chat_file), base="", output=str(out), max_steps=2, batch_size=2,
                               max_length=128, lr=1e-3, samples=0, progress=False, gguf=False))
    assert result.report["steps"] == 2
    assert all(p.stat().st_size < 20 * 2**20 for p in out.iterdir())
    assert changes_logits(out) > 1e-3


def test_csv_eval_file_with_custom_columns(tiny_base, tmp_path):
    """The eval file is read with the run's --question-col/--answer-col for the samples too."""
    import csv

    for name, rows in (("train.csv", [("안녕?", "안녕!"), ("뭐 해?", "코딩 중.")]), ("eval.csv", [("잘 자", "너도.")])):
        with (tmp_path / name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["q", "a"])
            w.writerows(rows)
    cfg = tiny_cfg(tiny_base, tmp_path / "train.csv", tmp_path / "out", eval_data=str(tmp_path / "eval.csv"),
                   question_col="q", answer_col="a", max_steps=1, samples=1, sample_tokens=2)
    report = train(cfg).report
    assert report["data"]["eval_conversations"] == 1
    assert [s["prompt"] for s in report["samples_before"]] == ["잘 자"]
