"""Local training for persona adapters: data -> SFT (LoRA/QLoRA) -> report (and GGUF export).

Heavy libraries (torch, transformers, peft, trl) are imported inside the functions that need them.
"""
