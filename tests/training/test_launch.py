"""`ohlora train --nproc/--launcher/--nnodes`: the launcher command each setting gets (no process starts),
and the --qlora / ZeRO-3 checks made before anything loads."""

from __future__ import annotations

import argparse
import sys
import types

import pytest

from ohlora.errors import UserError
from training import cli, launch
from training.config import TrainConfig


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p.parse_args(list(argv))


def _command(*argv: str, cuda: bool = False, gpus: int = 0):
    args = _args(*argv)
    opt = launch.options(args, gpus)
    return launch.command(opt, launch.child_argv(args, cli.add_arguments), cuda)


@pytest.fixture(autouse=True)
def _two_cores(monkeypatch):
    monkeypatch.setattr(launch.os, "cpu_count", lambda: 2)
    for key in ("OMP_NUM_THREADS", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)


def test_one_process_is_not_a_launch():
    assert not launch.requested(_args("--persona", "ironman"))
    assert not launch.requested(_args("--persona", "ironman", "--nproc", "1"))
    assert launch.requested(_args("--nproc", "2"))
    assert launch.requested(_args("--launcher", "deepspeed"))
    assert launch.requested(_args("--nnodes", "2", "--master-addr", "h"))


def test_torchrun_on_the_cpu():
    argv, env = _command("--persona", "ironman", "--max-steps", "3", "--no-gguf", "--nproc", "2")
    assert argv[:6] == [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]
    assert argv[6:] == ["-m", "training.cli", "--persona", "ironman", "--max-steps", "3", "--no-gguf"]
    assert env == {"OMP_NUM_THREADS": "1"}  # 2 cores, 2 ranks: one thread each


def test_accelerate_never_takes_the_single_process_trap():
    """`accelerate launch --cpu --num_processes 2` runs ONE process; --multi_gpu + ACCELERATE_USE_CPU runs two."""
    argv, env = _command("--data", "d.jsonl", "--output", "o", "--nproc", "2", "--launcher", "accelerate")
    assert argv[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert "--multi_gpu" in argv and "--cpu" not in argv
    assert argv[argv.index("--num_processes") + 1] == "2"
    assert env["ACCELERATE_USE_CPU"] == "1"
    assert argv[-6:] == ["-m", "training.cli", "--data", "d.jsonl", "--output", "o"]


def test_accelerate_counts_processes_over_all_machines():
    argv, _ = _command("--nproc", "2", "--nnodes", "3", "--node-rank", "1", "--master-addr", "10.0.0.1",
                       "--launcher", "accelerate", cuda=True, gpus=2)
    assert argv[argv.index("--num_processes") + 1] == "6"  # accelerate's --num_processes is the total
    assert argv[argv.index("--machine_rank") + 1] == "1"
    assert argv[argv.index("--main_process_ip") + 1] == "10.0.0.1"
    assert argv[argv.index("--main_process_port") + 1] == str(launch.DEFAULT_PORT)


def test_deepspeed_is_zero3_on_gloo_cpu():
    argv, env = _command("--data", "d.jsonl", "--output", "o", "--nproc", "2", "--launcher", "deepspeed")
    assert "torch.distributed.run" in argv and argv[-1] == "--zero3"
    assert env == {"OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu"}


def test_several_machines_rendezvous_on_node_0():
    argv, env = _command("--nproc", "1", "--nnodes", "2", "--node-rank", "1", "--master-addr", "127.0.0.1",
                         "--master-port", "29611")
    i = argv.index("--nnodes")
    assert argv[i:i + 8] == ["--nnodes", "2", "--node_rank", "1", "--master_addr", "127.0.0.1", "--master_port", "29611"]
    assert "--standalone" not in argv and env == {"OMP_NUM_THREADS": "2"}


def test_gpus_default_to_one_process_each_and_keep_their_threads():
    argv, env = _command("--launcher", "torchrun", cuda=True, gpus=4)
    assert argv[argv.index("--nproc_per_node") + 1] == "4" and env == {}


@pytest.mark.parametrize("argv,match", [
    (["--nnodes", "2"], "--nnodes 2 needs --master-addr"),
    (["--nnodes", "2", "--node-rank", "2", "--master-addr", "h"], r"--node-rank must be in 0\.\.1"),
    (["--nproc", "0"], "--nproc must be at least 1"),
    (["--nproc", "2", "--master-port", "70000"], "--master-port must be in"),
])
def test_bad_launch_flags(argv, match):
    with pytest.raises(UserError, match=match):
        launch.options(_args(*argv), 0)


def test_more_processes_than_gpus_and_nested_launch(monkeypatch):
    with pytest.raises(UserError, match="more than the 2 GPU"):
        launch.options(_args("--nproc", "3"), 2)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match="already one rank of a distributed run"):
        launch.options(_args("--nproc", "2"), 0)


def test_child_gets_every_training_flag_back():
    argv = ["--persona", "ironman", "--format", "csv", "--question-col", "q", "--no-gguf", "--no-packing",
            "--qlora", "--lr", "0.001", "--recipe", "shipped", "--bf16", "off", "--resume"]
    child = launch.child_argv(_args(*argv, "--nproc", "2", "--master-port", "1234"), cli.add_arguments)
    assert cli.config_from_args(_args(*child)) == cli.config_from_args(_args(*argv))
    assert "--nproc" not in child and "--master-port" not in child


def _fake_bnb(monkeypatch, version: str) -> None:
    monkeypatch.setitem(sys.modules, "bitsandbytes", types.SimpleNamespace(__version__=version))


def test_qlora_on_the_cpu_needs_bitsandbytes_0_46_1(monkeypatch):
    import torch

    from training.plan import device_plan

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _fake_bnb(monkeypatch, "0.45.5")
    with pytest.raises(UserError, match=r"--qlora on the CPU needs bitsandbytes >= 0\.46\.1 \(this is 0\.45\.5"):
        device_plan(TrainConfig(qlora=True))
    _fake_bnb(monkeypatch, "0.46.1")
    monkeypatch.setattr("training.plan.native_cpu_bf16", lambda: False)
    dev = device_plan(TrainConfig(qlora=True))
    assert not dev.cuda and not dev.bf16
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # not installed
    with pytest.raises(UserError, match="--qlora needs bitsandbytes >= 0.46.1: pip install"):
        device_plan(TrainConfig(qlora=True))


def test_bf16_on_the_cpu_follows_the_cpu_unless_asked(monkeypatch):
    """auto: bf16 where the CPU has it natively (AVX-512 BF16, AMX), float32 elsewhere; on/off win."""
    import torch

    from training.plan import device_plan

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for native in (True, False):
        monkeypatch.setattr("training.plan.native_cpu_bf16", lambda native=native: native)
        assert device_plan(TrainConfig()).bf16 is native
        assert device_plan(TrainConfig(bf16="on")).bf16 is True
        assert device_plan(TrainConfig(bf16="off")).bf16 is False


def test_qlora_and_zero3_do_not_mix(monkeypatch):
    from training.plan import device_plan

    _fake_bnb(monkeypatch, "0.50.0")
    with pytest.raises(UserError, match="--qlora and DeepSpeed ZeRO-3 do not mix"):
        device_plan(TrainConfig(qlora=True, zero3=True))
    with pytest.raises(UserError, match="--qlora and --launcher deepspeed"):
        launch.relaunch(_args("--persona", "ironman", "--qlora", "--launcher", "deepspeed"), cli.add_arguments)


def test_zero3_config_uses_the_trainers_optimizer():
    from training.plan import Devices
    from training.trainer import zero3_config

    ds = zero3_config(Devices(cuda=False, bf16=False, gradient_checkpointing=False, world_size=2, rank=0))
    assert ds["zero_optimization"]["stage"] == 3 and ds["zero_force_ds_cpu_optimizer"] is False
    assert ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
