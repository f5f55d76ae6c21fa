"""The evidence gate: refuse before generation when no passage could hold the answer.

A passage may hold the answer when it names one of the question's names or numbers, shares
enough of its content words, or is close to it in embedding space. The gate compares words, so
it judges only questions asked in English; a translated question is left to verification,
which compares names and numbers. This module neither retrieves nor prompts.

Example: "Who is the CEO of OpenAI?" over passages that never say "OpenAI", share one word of
four ("CEO") and lie far from it in embedding space -> a reason to refuse.
"""
from __future__ import annotations

from . import text as tx
from .types import Passage, Query

MIN_SHARED_WORDS = 0.34  # a third of the question's content words in one passage
MIN_DENSE_SIMILARITY = 0.5  # cosine: all-MiniLM-L6-v2 puts a paraphrase of the question above it


def evidence_gate(query: Query, passages: list[Passage]) -> str:
    """A reason to refuse before generation, or "" when the passages may hold an answer."""
    if query.english:
        return ""
    if not passages:
        return "no passage was retrieved"
    q_names = query.names | query.numbers
    q_words = tx.content_words(query.text)
    for p in passages:
        norm = tx.normalize(p.text)
        if any(n in norm for n in q_names):
            return ""
        if q_words and len(q_words & tx.content_words(p.text)) / len(q_words) >= MIN_SHARED_WORDS:
            return ""
        if p.dense_score is not None and p.dense_score >= MIN_DENSE_SIMILARITY:
            return ""
    return "no retrieved passage mentions the question's names or enough of its words"
