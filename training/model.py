"""The model being trained: the base (float32, bf16 or 4-bit), its target-only loss, the LoRA on it."""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import TYPE_CHECKING

from ohlora.errors import UserError

from training.config import TrainConfig

if TYPE_CHECKING:
    from training.plan import Devices


def default_threads() -> None:
    """Use every core unless the user set OMP_NUM_THREADS."""
    if "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)


def quiet_libraries() -> None:
    """Silence two import-time lines that are no use here: bitsandbytes' note that a CPU kernel
    from the Hub is missing (an inference-only gemv kernel; training uses the dequantizing path) and
    DeepSpeed's 'Setting accelerator to CPU' guess (set it, on a machine without CUDA)."""
    import logging
    import warnings

    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*all_gather_into_tensor. is deprecated")  # once per ZeRO-3 gather
    if "DS_ACCELERATOR" not in os.environ:
        import torch

        if not torch.cuda.is_available():
            os.environ["DS_ACCELERATOR"] = "cpu"


def load_model(hf_dir: Path, dev: "Devices", cfg: TrainConfig):
    """The base from its HF folder: 4-bit NF4 under --qlora (CUDA or CPU), bf16 under bf16 (a bf16
    GPU, or a CPU with native bf16), float32 otherwise."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict = {"attn_implementation": "sdpa" if cfg.attn == "auto" else cfg.attn}
    if cfg.qlora:
        from transformers import BitsAndBytesConfig

        # compute in bf16 under bf16 (a bf16 GPU or a CPU with native bf16), else fp16 on CUDA;
        # float32 on other CPUs (bf16 is emulated there, and fp16 matmuls are slow)
        compute = torch.bfloat16 if dev.bf16 else (torch.float16 if dev.cuda else torch.float32)
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        kwargs["dtype"] = compute
        # one 4-bit copy per process: this rank's GPU under DDP, or the CPU
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0")) if dev.cuda else "cpu"}
    else:
        # under bf16 (GPU or CPU) the frozen base is stored in bf16: autocast would multiply in
        # bf16 anyway, so this loses nothing, halves the base's memory and saves autocast a
        # float32 -> bf16 copy of every weight at every forward; the LoRA stays float32 (peft)
        kwargs["dtype"] = torch.bfloat16 if dev.bf16 else torch.float32
    try:
        model = AutoModelForCausalLM.from_pretrained(str(hf_dir), **kwargs)
    except torch.OutOfMemoryError:
        raise UserError("out of memory while loading the base model; try --qlora or a smaller base") from None
    model.config.use_cache = False
    if cfg.qlora and not dev.cuda:
        keep_4bit_trainable(model)
    if cfg.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=dev.gradient_checkpointing)
    return model


_OUTPUT: list = []


def _target_loss_output():
    """The output of a target-loss forward: the loss and how many target tokens it averaged.
    A declared field, so DDP can flatten and rebuild the output (an extra key would not survive)."""
    if not _OUTPUT:
        from dataclasses import dataclass

        from transformers.modeling_outputs import CausalLMOutputWithPast

        @dataclass
        class TargetLossOutput(CausalLMOutputWithPast):
            n_target: int | None = None

        _OUTPUT.append(TargetLossOutput)
    return _OUTPUT[0]


def keep_4bit_trainable(model) -> int:
    """bitsandbytes (0.50) on a CPU with AVX-512 BF16 repacks a Linear4bit's weight for its fast
    inference kernel on the first forward in eval mode (our samples, an evaluation), and never
    back: later training forwards then go through `gemv_4bit`, which has no backward, and the
    gradient through the base layers is silently lost. Keep every layer on the trainable path."""
    n = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n


def patch_target_loss(model) -> None:
    """Let `model(..., labels=..., ohlora_target_loss=True)` return the target-only loss.

    The loss runs inside the model's forward, so DDP / DeepSpeed hooks see a normal forward.
    """
    from trl.trainer.utils import maybe_gather_lm_head_ctx

    from training.loss import target_cross_entropy

    original = model.forward
    softcap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)

    def forward(self, *args, ohlora_target_loss=False, labels=None, num_items_in_batch=None, **kwargs):
        if not ohlora_target_loss:
            if labels is not None:
                kwargs["labels"] = labels
            if num_items_in_batch is not None:
                kwargs["num_items_in_batch"] = num_items_in_batch
            return original(*args, **kwargs)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        kwargs["use_cache"] = False
        backbone = getattr(self, self.base_model_prefix)
        hidden = backbone(*args, **kwargs).last_hidden_state
        head = self.get_output_embeddings()
        with maybe_gather_lm_head_ctx(head.weight):
            loss, n = target_cross_entropy(hidden, labels, head.weight, softcap, num_items_in_batch)
        return _target_loss_output()(loss=loss, n_target=n)

    model.forward = types.MethodType(forward, model)


def wrap_lora(model, cfg: TrainConfig, from_adapter: Path | None = None):
    """A new LoRA (rank, alpha, dropout, targets from `cfg`), or `from_adapter` to continue training.

    `from_adapter` has been checked already (`training.plan.check_from_adapter`)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if from_adapter is not None:
        return no_cast_under_autocast(PeftModel.from_pretrained(model, str(from_adapter), is_trainable=True))
    targets: str | list[str] = cfg.targets if cfg.targets == "all-linear" else [t.strip() for t in cfg.targets.split(",") if t.strip()]
    lcfg = LoraConfig(
        r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
        bias="none", task_type="CAUSAL_LM",
    )
    try:
        return no_cast_under_autocast(get_peft_model(model, lcfg))
    except ValueError as exc:
        raise UserError(f"--targets {cfg.targets}: {exc}") from None


def _cast_input_dtype(self, x, dtype):
    if x is None or x.dtype == dtype:
        return x
    import torch

    if torch.is_autocast_enabled(x.device.type):
        return x
    return x.to(dtype=dtype)


def no_cast_under_autocast(model):
    """peft casts each LoRA layer's input to the LoRA's dtype (float32); under bf16 autocast
    that is two copies of the activations per layer for nothing (autocast casts it straight
    back to bf16 for the matmul), and the dropout then keeps a float32 copy for backward.
    Under autocast the input stays as it is; without autocast (samples) peft's cast stands."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            module._cast_input_dtype = types.MethodType(_cast_input_dtype, module)
    return model
