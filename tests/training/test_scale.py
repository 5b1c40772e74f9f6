"""Training that scales out, for real, on the CPU and the real Gemma 3 270M (a few steps each):
QLoRA (4-bit NF4 base), DDP on 2 ranks, DeepSpeed ZeRO-3 on 2 ranks, 2 nodes on loopback, a rank
killed mid-run and --resume.

The distributed runs go through `training.launch` (the launcher `ohlora train --nproc` uses) and
`training.cli` itself; `dist_driver.py` adds probes that write what each rank holds.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.train_helpers import changes_logits
from training.sft import TrainConfig, train

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
DRIVER = Path(__file__).with_name("dist_driver.py")
RUN_TIMEOUT = 900  # seconds per launched run (a quiet 2-core machine: 30-60 s)
# `ohlora train ... --nproc N`, with dist_driver.py as what each rank runs
LAUNCH = ("import sys; from training import cli, launch; from training.model import quiet_libraries; "
          "quiet_libraries(); p = cli.argparse.ArgumentParser(); cli.add_arguments(p); "
          "raise SystemExit(launch.relaunch(p.parse_args(sys.argv[2:]), cli.add_arguments, entry=[sys.argv[1]]))")
LORA_MODULES = 18 * 7  # Gemma 3 270M: 18 layers x (q, k, v, o, gate, up, down)


def _four_conversations(folder: Path) -> Path:
    path = folder / "four.jsonl"
    path.write_text("".join(DATA.joinpath("tiny_chat.jsonl").read_text(encoding="utf-8").splitlines(True)[:4]),
                    encoding="utf-8")
    return path


def _flags(data: Path, base: Path, out: Path, **kw) -> list[str]:
    opts = {"data": data, "base": base, "output": out, "max-steps": 3, "batch-size": 2, "max-length": 128,
            "lr": 1e-3, "dropout": 0.0, "warmup": 0.0, "samples": 0, "save-steps": 100}
    opts.update(kw)
    flags = []
    for key, value in opts.items():
        flags += [f"--{key}"] if value is True else [f"--{key}", str(value)]
    return flags + ["--no-gguf", "--no-progress"]


def _env(tmp: Path, probe: Path | None = None, kill: str | None = None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "OHLORA_HOME": str(tmp / "home")}
    env.pop("OHLORA_TEST_KILL", None)
    if probe is not None:
        probe.mkdir(parents=True, exist_ok=True)
        env["OHLORA_TEST_PROBE_DIR"] = str(probe)
    if kill is not None:
        env["OHLORA_TEST_KILL"] = kill
    return env


def _start(flags: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", LAUNCH, str(DRIVER), *flags], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(procs: list[subprocess.Popen]) -> list[tuple[int, str]]:
    results = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=RUN_TIMEOUT)
            results.append((p.returncode, out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return results


def _probes(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("rank*.json"))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _adapter(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


# --- QLoRA -------------------------------------------------------------------------------------

def test_qlora_on_the_cpu_trains_a_4bit_base(gemma_hf, tmp_path):
    """bitsandbytes >= 0.46.1 does NF4 on the CPU: the base really is 4-bit, the loss falls, and the
    adapter works in chat (transformers) and as adapter.gguf in llama.cpp."""
    import bitsandbytes as bnb
    import llama_cpp

    from ohlora.models import resolve_base

    seen = {}

    def probe(trainer, interrupt):
        mods = list(trainer.model.modules())
        seen["linear4bit"] = sum(isinstance(m, bnb.nn.Linear4bit) for m in mods)
        seen["packed"] = {str(m.weight.dtype) for m in mods if isinstance(m, bnb.nn.Linear4bit)}
        seen["optim"] = getattr(trainer.args.optim, "value", trainer.args.optim)
        seen["repacked"] = sum(bool(getattr(m.weight.quant_state, "packing_format_for_cpu", False))
                               for m in mods if isinstance(m, bnb.nn.Linear4bit))

    two = tmp_path / "two.jsonl"
    two.write_text("".join(DATA.joinpath("tiny_chat.jsonl").read_text(encoding="utf-8").splitlines(True)[:2]),
                   encoding="utf-8")
    out = tmp_path / "adapter"
    result = train(TrainConfig(data=str(two), base="", output=str(out), qlora=True, max_steps=3, batch_size=2,
                               max_length=128, lr=2e-3, dropout=0.0, warmup=0.0, samples=1, sample_tokens=2,
                               progress=False, save_steps=100), on_trainer=probe)
    assert seen["linear4bit"] == LORA_MODULES and seen["packed"] == {"torch.uint8"}  # NF4, two weights a byte
    assert seen["optim"] == "adamw_torch"  # CPU: nothing to page to
    # the sample answered before training ran the 4-bit layers in eval mode: they must not have
    # been repacked for bitsandbytes' inference-only AVX-512 BF16 kernel (it has no backward)
    assert seen["repacked"] == 0
    losses = [r["loss"] for r in result.report["train_loss"]]
    assert len(losses) == 3 and losses[-1] < losses[0], losses  # the same batch each step
    assert result.report["settings"]["qlora"] is True
    assert changes_logits(out) > 1e-3

    base_gguf = Path(resolve_base("").path)
    assert result.gguf is not None and result.gguf.is_file()
    llm = llama_cpp.Llama(str(base_gguf), n_ctx=64, verbose=False, n_threads=2)
    try:
        assert llama_cpp.llama_adapter_lora_init(llm.model, str(result.gguf).encode())
    finally:
        llm.close()


# --- DDP ---------------------------------------------------------------------------------------

# ||W_ddp - W_one|| / ||W_one||, for all lora_A and for all lora_B matrices (measured: 1.7e-5 and 4.5e-5;
# the float sums run in another order). Not max |ΔW|: Adam's first steps move a weight by about lr
# whatever the size of its gradient, so a gradient near 0 whose sign differs gives a visible single difference.
DDP_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def ddp_runs(gemma_hf, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    data = _four_conversations(tmp)
    probe = tmp / "probe"
    # float32 on both sides: this checks DDP's arithmetic; bf16 (the default on a CPU with native
    # bf16) rounds differently with the summation order and ends ~1e-2 apart (measured 8.3e-3)
    (rc, log), = _wait([_start(_flags(data, gemma_hf, tmp / "ddp", bf16="off") + ["--nproc", "2"], _env(tmp, probe))])
    assert rc == 0, log[-4000:]
    one = train(TrainConfig(data=str(data), base=str(gemma_hf), output=str(tmp / "one"), max_steps=3, batch_size=4,
                            max_length=128, lr=1e-3, dropout=0.0, warmup=0.0, samples=0, progress=False, gguf=False,
                            save_steps=100, bf16="off"))
    return tmp, log, _probes(probe), one


def test_ddp_ranks_hold_identical_weights_after_each_step(ddp_runs):
    tmp, log, probes, _ = ddp_runs
    assert "launching DDP on the CPU: 2 process(es)" in log and "--nproc_per_node 2" in log
    assert [p["rank"] for p in probes] == [0, 1] and {p["world_size"] for p in probes} == {2}
    steps = [[s["step"] for s in p["steps"]] for p in probes]
    assert steps == [[1, 2, 3], [1, 2, 3]]
    assert [s["lora_sha256"] for s in probes[0]["steps"]] == [s["lora_sha256"] for s in probes[1]["steps"]]
    assert len({s["lora_sha256"] for s in probes[0]["steps"]}) == 3  # and they did change every step
    report = json.loads((tmp / "ddp" / "report.json").read_text())
    assert report["settings"]["world_size"] == 2 and report["steps"] == 3


def test_ddp_adapter_matches_one_process_with_the_same_global_batch(ddp_runs):
    """2 ranks x batch 2 == 1 process x batch 4 (every step sees all 4 conversations; no dropout)."""
    tmp, _, _, one = ddp_runs
    a, b = _adapter(tmp / "ddp"), _adapter(one.output)
    assert a.keys() == b.keys() and len(a) == 2 * LORA_MODULES
    assert max(t.abs().max().item() for k, t in b.items() if "lora_B" in k) > 1e-3  # trained (B starts at 0)
    for part in ("lora_A", "lora_B"):
        keys = [k for k in a if part in k]
        diff = sum(float(((a[k] - b[k]) ** 2).sum()) for k in keys) ** 0.5
        norm = sum(float((b[k] ** 2).sum()) for k in keys) ** 0.5
        assert diff / norm < DDP_TOLERANCE, (part, diff / norm)
    ddp = json.loads((tmp / "ddp" / "report.json").read_text())
    for key in ("loss", "grad_norm"):  # the same global loss and gradient at every step
        assert [r[key] for r in ddp["train_loss"]] == pytest.approx([r[key] for r in one.report["train_loss"]], rel=1e-4)
    assert (ddp["tokens_trained"], ddp["target_tokens"]) == (one.report["tokens_trained"], one.report["target_tokens"])


# --- ZeRO-3 ------------------------------------------------------------------------------------

def test_zero3_partitions_parameters_and_saves_a_whole_adapter(gemma_hf, tmp_path):
    """Partitioned: at the start of training each rank's ZeRO-3 parameters hold about half the
    model's elements (`ds_tensor`), and none are gathered (`p.data` is empty)."""
    data = _four_conversations(tmp_path)
    probe = tmp_path / "probe"
    out = tmp_path / "z3"
    (rc, log), = _wait([_start(_flags(data, gemma_hf, out, **{"max-steps": 2}) + ["--nproc", "2", "--launcher", "deepspeed"],
                               _env(tmp_path, probe))])
    assert rc == 0, log[-4000:]
    assert "launching DeepSpeed ZeRO-3 on the CPU" in log and "DS_ACCELERATOR=cpu" in log
    probes = _probes(probe)
    assert [p["rank"] for p in probes] == [0, 1]
    for p in probes:
        assert p["zero_params"] > 0 and p["params_visible"] == 0
        assert p["params_total"] > 268_000_000  # Gemma 3 270M + the LoRA
        assert 0.49 < p["params_held"] / p["params_total"] < 0.51, p  # half each (plus padding)
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["zero3"] is True and report["settings"]["world_size"] == 2 and report["steps"] == 2
    adapter = _adapter(out)
    assert len(adapter) == 2 * LORA_MODULES  # whole: every module's A and B, gathered from both ranks
    for key, t in adapter.items():
        assert t.dim() == 2 and t.numel() > 0 and (t.shape[0] == 16 if "lora_A" in key else t.shape[1] == 16), key
    assert max(t.abs().max().item() for k, t in adapter.items() if "lora_B" in k) > 1e-4  # trained
    assert changes_logits(out) > 1e-4  # and chat's engine loads it


# --- 2 nodes on loopback, a rank killed, --resume ------------------------------------------------

@pytest.fixture(scope="module")
def two_nodes(gemma_hf, tmp_path_factory):
    """Node 0 and node 1 (one rank each) rendezvous on 127.0.0.1; rank 1 is killed (SIGKILL) as
    step 3 of 4 begins; then the same two commands with --resume."""
    tmp = tmp_path_factory.mktemp("nodes")
    data = _four_conversations(tmp)
    out = tmp / "adapter"

    def both(extra: list[str], kill: str | None):
        port = str(_free_port())
        base = _flags(data, gemma_hf, out, **{"max-steps": 4, "save-steps": 1}) + extra + [
            "--nproc", "1", "--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port", port]
        return _wait([_start(base + ["--node-rank", str(i)], _env(tmp, kill=kill)) for i in (0, 1)])

    killed = both([], kill="1:2")
    after_kill = {"out_exists": out.exists(), "checkpoints": sorted(p.name for p in out.with_name("adapter.partial").glob("checkpoint-*"))}
    resumed = both(["--resume"], kill=None)
    return out, killed, after_kill, resumed


def test_a_killed_rank_stops_the_others_with_a_clear_line(two_nodes):
    out, killed, after_kill, _ = two_nodes
    (rc0, log0), (rc1, log1) = killed
    assert rc0 != 0 and rc1 != 0
    # gloo's words for the dead peer vary with where it was caught: "Connection closed/reset by peer"
    assert re.search(r"error: rank 0 stopped at step 2: another process of this run is gone \(.*Connection "
                     r"(closed|reset) by peer.*\); no adapter was written; the last checkpoint is checkpoint-2", log0), log0[-3000:]
    assert "training stopped: a process of this run failed" in log0
    assert "checkpoint-2: run the same command with --resume" in log0
    assert "SIGKILL" in log1  # node 1's rank died of the kill, not of an error
    assert after_kill == {"out_exists": False, "checkpoints": ["checkpoint-2"]}  # no adapter, a whole checkpoint


def test_two_nodes_on_loopback_resume_and_finish(two_nodes):
    out, _, _, resumed = two_nodes
    for rc, log in resumed:
        assert rc == 0, log[-4000:]
    assert "node 0 of 2 (rendezvous 127.0.0.1:" in resumed[0][1]
    report = json.loads((out / "report.json").read_text())
    assert report["resumed"] is True and report["steps"] == 4 and report["settings"]["world_size"] == 2
    assert [r["step"] for r in report["train_loss"]] == [3, 4]
    assert not out.with_name("adapter.partial").exists() and len(_adapter(out)) == 2 * LORA_MODULES
