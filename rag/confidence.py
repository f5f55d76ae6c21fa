"""Confidence: the chance that a verified answer is right, from the model's own probabilities.

After the draft, the model is asked in the same conversation whether the passages state its
answer to what was asked; P(yes) against P(no) is read from its next-token probabilities
(``LLM.yes_probability``: one forward pass over the check's few new tokens, since llama.cpp
still holds the answer's prompt and draft). That score and today's word rules
(``refuse.signals``: does the evidence address the question's subject, does it give the kind
of answer asked for) are combined by a logistic model into P(correct), fitted per reader on
the development sets by ``python -m bench.calibrate`` and stored with its provenance in
``rag/data/calibration.json``.

Off by default (``RAG_SELF_CHECK``): with the packaged readers P(yes) hardly separates right
answers from wrong ones (ROC AUC 0.39-0.69 on the development sets, docs/ablation.md row S), so
no preset is calibrated and the word rules decide. With the self-check on and a calibrated
reader, the bot answers when P(correct) >= ``min_confidence`` (default 0.5). Why 0.5: truthfulness
scores a right answer +1, a refusal 0 and a wrong answer -1, so answering is worth
P - (1 - P), positive exactly when P > 0.5; the threshold follows from the scoring, it is not
fitted. A reader with no calibration (a user's own GGUF or server) keeps the word rules alone.
This module does not generate or verify.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .types import LLM

CALIBRATION_FILE = Path(__file__).parent / "data" / "calibration.json"
# asked after the model's draft, in English like the system prompt; {question} is the asked one
CHECK = ("Check your answer. Do the passages state the answer to this question, exactly what "
         "it asks for: {question} Reply yes or no.")
FEATURES = ("logit_yes", "addresses_subject", "gives_kind_asked", "adds_to_question")
LOGIT_CLIP = 9.0  # |logit P(yes)| beyond this is float noise of a 0/1 probability


@dataclass(frozen=True)
class Confidence:
    p_yes: float  # the model's own check: P(yes) / (P(yes) + P(no))
    p_correct: float | None  # calibrated; None when this reader has no calibration
    signals: dict  # the word rules' verdicts that entered the model, by name

    def to_dict(self) -> dict:
        return {"p_yes": round(self.p_yes, 4),
                "p_correct": None if self.p_correct is None else round(self.p_correct, 4),
                **self.signals}


def check_messages(messages: list[dict], draft: str, question: str) -> list[dict]:
    """The answer's own conversation, its draft, and the yes/no check."""
    return [*messages, {"role": "assistant", "content": draft},
            {"role": "user", "content": CHECK.format(question=question)}]


def features(p_yes: float, signals: dict) -> list[float]:
    p = min(max(p_yes, 1e-12), 1 - 1e-12)
    logit = max(-LOGIT_CLIP, min(LOGIT_CLIP, math.log(p / (1 - p))))
    return [logit] + [float(signals[name]) for name in FEATURES[1:]]


@lru_cache(maxsize=1)
def calibrations() -> dict:
    """{reader model id: {"weights": [...], "bias": b, ...provenance}} from CALIBRATION_FILE."""
    if not CALIBRATION_FILE.exists():
        return {}
    data = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    return {k: v for k, v in data.get("readers", {}).items() if v.get("features") == list(FEATURES)}


def p_correct(model_id: str, p_yes: float, signals: dict) -> float | None:
    cal = calibrations().get(model_id)
    if cal is None:
        return None
    z = cal["bias"] + sum(w * x for w, x in zip(cal["weights"], features(p_yes, signals)))
    return 1 / (1 + math.exp(-z))


def assess(llm: LLM, messages: list[dict], draft: str, question: str, signals: dict) -> Confidence | None:
    """The model's check of its ``draft`` and, with a calibration, P(correct); None when the
    backend reports no probabilities."""
    p_yes = llm.yes_probability(check_messages(messages, draft, question))
    if p_yes is None:
        return None
    return Confidence(p_yes, p_correct(llm.model_id, p_yes, signals), dict(signals))
