"""One data file of a training run, read with the run's format options and encoded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ohlora.errors import UserError

from training.data import Conversation, Problem, load_data
from training.encode import Encoded, Encoder, encode_rows

if TYPE_CHECKING:
    from ohlora.personas import Persona

    from training.config import TrainConfig


@dataclass
class Split:
    """One data file, read and encoded: every row parsed, the usable ones as tokens, what was skipped."""

    rows: list[Conversation]
    encoded: list[Encoded]
    problems: list[Problem]
    n_read: int  # rows read, skipped ones included


def load_split(path: str, encoder: Encoder, persona: "Persona | None", cfg: "TrainConfig", what: str) -> Split:
    """Read `path` with the run's format, columns and strictness, then encode it; a file with no
    usable conversation is a UserError (`what`: "training" or "eval")."""
    ds = load_data(path, cfg.fmt, cfg.strict, cfg.question_col, cfg.answer_col, cfg.system_col)
    encoded, too_long = encode_rows(ds.rows, encoder, persona, cfg.max_length, cfg.seed)
    if too_long and cfg.strict:
        raise UserError(f"{too_long[0]} (--strict)")
    problems = ds.problems + too_long
    if not encoded:
        first = f"; first problem: {problems[0]}" if problems else ""
        raise UserError(f"{path}: no usable {what} conversations{first}")
    return Split(ds.rows, encoded, problems, len(ds.rows) + len(ds.problems))
