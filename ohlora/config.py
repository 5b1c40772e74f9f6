"""Settings: XDG paths, one TOML file, environment overrides.

Precedence, lowest first: built-in defaults, `config.toml`, `OHLORA_*` environment
variables, command-line flags (applied by the CLI). `OHLORA_HOME` relocates config,
data and cache under one folder (the tests point it at a temp dir).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from ohlora.errors import UserError

APP = "ohlora"


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def db_file(self) -> Path:
        return self.data_dir / "ohlora.db"

    @property
    def memory_db_file(self) -> Path:
        return self.data_dir / "memory.db"

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def user_personas_dir(self) -> Path:
        return self.data_dir / "personas"


def get_paths() -> Paths:
    home = os.environ.get("OHLORA_HOME")
    if home:
        root = Path(home).expanduser()
        return Paths(root / "config", root / "data", root / "cache")
    import platformdirs

    return Paths(
        Path(platformdirs.user_config_dir(APP)),
        Path(platformdirs.user_data_dir(APP)),
        Path(platformdirs.user_cache_dir(APP)),
    )


@dataclass
class Settings:
    """Everything a user may set in config.toml (top-level keys) or as OHLORA_<KEY>."""

    persona: str = "ohlora"
    backend: str = "llamacpp"  # a name in ohlora.backends.BACKENDS
    base: str = ""  # empty: the packaged Gemma 3 270M; else a GGUF file or HF folder
    n_ctx: int = 4096
    n_threads: int = 0  # 0: llama.cpp picks
    memory: bool = True
    memory_k: int = 3
    embedder: str = ""  # a name in ohlora.registry.EMBEDDERS ("" = built-in), or a sentence-transformers model
    theme: str = "textual-dark"
    user_name: str = ""  # what {{user}} in a character card becomes ("" = 사용자 / User)
    swipes_ahead: int = 1  # alternatives the chat app writes in the background for the last reply
    guard: bool = True  # the app answers clock questions and harmful / crisis messages itself (ohlora.guards)
    lines: bool = True  # a message nearly like one in the persona's data gets the written reply (ohlora.guards.lines)
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "extra"]


def _coerce(key: str, value: object, source: str) -> object:
    kind = type(getattr(Settings(), key))
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise UserError(f"{source}: key '{key}' must be true or false, got {value!r}")
    if kind is int:
        try:
            return int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise UserError(f"{source}: key '{key}' must be an integer, got {value!r}") from None
    if not isinstance(value, str):
        raise UserError(f"{source}: key '{key}' must be a string, got {value!r}")
    if key == "backend":
        from ohlora.backends.table import BACKENDS

        if value not in BACKENDS:
            raise UserError(f"{source}: key 'backend' must be one of {', '.join(BACKENDS)}, got {value!r}")
    return value


def load_settings(paths: Paths | None = None) -> Settings:
    """Read config.toml and OHLORA_* overrides; raise UserError naming file and key."""
    paths = paths or get_paths()
    values: dict[str, object] = {}
    cfg = paths.config_file
    if cfg.exists():
        try:
            raw = tomllib.loads(cfg.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{cfg}: invalid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise UserError(f"{cfg}: not UTF-8 text") from None
        for key, value in raw.items():
            if key not in Settings.keys():
                raise UserError(f"{cfg}: unknown key '{key}' (known: {', '.join(Settings.keys())})")
            values[key] = _coerce(key, value, str(cfg))
    for key in Settings.keys():
        env = os.environ.get(f"OHLORA_{key.upper()}")
        if env is not None:
            values[key] = _coerce(key, env, f"environment OHLORA_{key.upper()}")
    return Settings(**values)  # type: ignore[arg-type]
