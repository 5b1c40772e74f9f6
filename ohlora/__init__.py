"""ohlora: chat with persona LoRA adapters in your terminal."""

__version__ = "0.1.0"
