"""Answers for `ohlora eval`: each prompt in a fresh single-turn chat, through the real session."""

from __future__ import annotations

from typing import Callable

from training.evaluate import Answer


def generate_answers(persona, prompts, settings, base_only: bool = False,
                     progress: Callable[[], None] | None = None, base: str | None = None) -> list[Answer]:
    """One fresh single-turn chat per prompt, with the persona's own generation settings."""
    from ohlora.chat import ChatSession

    session = ChatSession(settings, persona, use_adapter=not base_only, base_override=base)
    answers = []
    for prompt, ref in prompts:
        session.history.clear()
        for _ in session.send(prompt):
            pass
        r = session.last
        answers.append(Answer(prompt, r.text, r.stop_reason, r.completion_tokens, r.tokens_per_s, ref))
        if progress:
            progress()
    return answers
