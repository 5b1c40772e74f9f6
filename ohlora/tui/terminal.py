"""The app and the terminal: a private copy of the terminal for Textual, fd 2 for C libraries.

C libraries (llama.cpp, onnxruntime) write to fd 2 and silence themselves by pointing fd 2
at /dev/null while a model loads. On a shared fd that would scribble on the screen or
swallow Textual's frames; so Textual draws on a private copy of the terminal fd and fd 2
goes to a log file. Python code that writes to sys.stderr inside the app reaches Textual's
own capture (never the screen), and `real_stderr()` gives model loaders a file on fd 2.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def fileno(stream: Any) -> int:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return -1


@contextmanager
def real_stderr() -> Iterator[None]:
    """A sys.stderr backed by fd 2 while Textual captures sys.stderr (its capture reports
    fileno -1, and the llama.cpp backend redirects `sys.stderr.fileno()` to be quiet)."""
    captured = sys.stderr
    if fileno(captured) >= 0:
        yield
        return
    sys.stderr = fd2 = open(2, "w", closefd=False)
    try:
        yield
    finally:
        if sys.stderr is fd2:
            sys.stderr = captured


@contextmanager
def private_terminal(log_file: Path) -> Iterator[None]:
    """Textual draws on a private dup of the terminal; fd 2 goes to `log_file` meanwhile."""
    term = sys.__stderr__
    if term is None or not term.isatty():
        yield
        return
    term.flush()
    private = os.dup(term.fileno())
    saved = os.dup(2)
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        log = os.open(os.devnull, os.O_WRONLY)
    os.dup2(log, 2)
    os.close(log)
    sys.__stderr__ = open(private, "w", encoding=term.encoding or "utf-8", errors="replace", closefd=True)  # type: ignore[misc]
    try:
        yield
    finally:
        sys.__stderr__.flush()
        sys.__stderr__.close()
        sys.__stderr__ = term  # type: ignore[misc]
        os.dup2(saved, 2)
        os.close(saved)
