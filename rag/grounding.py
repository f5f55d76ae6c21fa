"""Does a passage back a sentence? The deterministic support check, used by verification.

``support(sentence, passage)``: every number and name of the sentence must occur in the
passage, and (when both are in the same language) enough of its content words too.
``best_sentence`` finds the passage sentence that backs a claim best (the citation's quote).

Example: support("It opened on September 13 [1].", "... starting on September 13th. ...")
-> supported (13 and September occur; content words overlap).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import text as tx

# share of a sentence's (stemmed) content words its passage must hold, same language: half
# lets a paraphrase through and stops a claim about something else (docs/ablation.md, row A)
MIN_WORD_OVERLAP = 0.5


@dataclass
class Support:
    supported: bool
    score: float  # fraction of the sentence's checks that the passage satisfies
    missing: list[str]  # names/numbers absent from the passage


def support(sentence: str, passage: str, same_language: bool = True) -> Support:
    sentence = tx.MARKER.sub("", sentence)
    p_norm = tx.plain(passage)
    p_nums = tx.numbers(passage)
    s_nums, s_names = tx.numbers(sentence), tx.names(sentence)
    missing = [n for n in s_nums if n not in p_nums]
    missing += [w for w in s_names if tx.straighten(w) not in p_norm]
    words = tx.stems(sentence)
    p_words = tx.stems(passage)
    overlap = len(words & p_words) / len(words) if words else 1.0
    checks = len(s_nums) + len(s_names)
    key_score = 1.0 - (len(missing) / checks) if checks else 1.0
    if same_language:
        supported = not missing and overlap >= MIN_WORD_OVERLAP
        score = (key_score + overlap) / 2
    else:  # only names and numbers can be compared across languages
        supported = not missing and checks > 0
        score = key_score if checks else 0.0
    return Support(supported, round(score, 3), missing)


def best_sentence(sentence: str, passage: str) -> tuple[int, int]:
    """Span of the passage sentence sharing most words/numbers with ``sentence``."""
    want = tx.stems(sentence) | tx.numbers(sentence) | tx.names(sentence)
    best, best_score = (0, len(passage)), -1.0
    for s, e in tx.sentence_spans(passage):
        part = passage[s:e]
        have = tx.stems(part) | tx.numbers(part) | tx.names(part)
        score = len(want & have)
        if score > best_score:
            best, best_score = (s, e), score
    return best
