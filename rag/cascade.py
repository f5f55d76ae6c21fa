"""Cascade: the small reader answers first; the larger one only when that answer would be refused.

Measured on the development sets (docs/ablation.md, row R): with the same retrieval and the same
checks, the 1.5B reader alone was no better than the 0.5B one over 254 paired questions
(truthfulness +0.012, 95% interval [-0.055, +0.079]) at 1.7x the latency, but asking it only
for the questions whose 0.5B answer the checks refuse raised answer_correctness by +0.047
[+0.021, +0.078] at the same truthfulness (+0.004 [-0.031, +0.039]), and most questions never
wait for it. A refusal by the evidence gate (before any model is asked) is final: the second
reader would read the same passages. This module only holds the rule; ``Bot.answer`` runs it.
"""
from __future__ import annotations

from .types import LLM, Answer


def wants_second(answer: Answer) -> bool:
    """Would a second reader be asked? For a refusal made after a model drafted (``tokens`` is
    set once one did), not for the evidence gate's."""
    return answer.refused and "completion" in answer.tokens


def escalates(answer: Answer, first: LLM, second: LLM | None) -> bool:
    """Ask ``second`` again: ``wants_second`` and ``second`` is another model."""
    return wants_second(answer) and second is not None and second.model_id != first.model_id
