"""Draft -> verified sentences: keep what a given passage backs, re-point citations.

For each sentence of the model's draft: markers naming no given passage are ignored; the
sentence is kept with the cited passages that support it (``grounding.support``), or, when it
cites none that does, with the best-supporting passage; a sentence no passage supports is
dropped into ``flagged``. Sentences of nothing but markers, the model's own refusals and echoed
questions are not claims. This module does not decide refusal.

Example: draft "It opened on September 13 [2]." where passage 1 says so and passage 2 does not
-> [Sentence("It opened on September 13", citations=[1])].
"""
from __future__ import annotations

import re

from . import text as tx
from .grounding import support
from .types import Passage, Query, Sentence

REFUSAL_TOKEN = "NOT IN SOURCES"
# the model saying it found nothing, in its own words
_MODEL_REFUSAL = re.compile(
    r"(passages|sources|text|articles?) (do|does) not (contain|mention|say|provide|answer)"
    r"|not (mentioned|provided|stated|specified) in the (passages|sources|text)"
    r"|(cannot|can't|unable to) (answer|find|determine)")


def is_model_refusal(draft: str) -> bool:
    d = tx.normalize(draft)
    return REFUSAL_TOKEN.casefold() in d or bool(_MODEL_REFUSAL.search(d))


def verify(draft: str, query: Query, passages: list[Passage]) -> tuple[list[Sentence], list[str]]:
    """(kept sentences with their supporting citations, flagged unsupported sentences)."""
    kept, flagged = [], []
    for raw in tx.split_sentences(draft):
        plain = tx.strip_markers(raw)
        if not re.search(r"[^\W_]", plain) or is_model_refusal(plain):
            continue  # nothing but markers or punctuation ("[2] [2] [2] ...")
        if plain.rstrip().endswith(("?", "？")):  # an echoed question is not an answer
            flagged.append(plain)
            continue
        if not query.yes_no and query.restated_by(plain):  # nor a restated one (a yes/no
            flagged.append(plain)  # question's "yes" restates it, so it is kept for the checks)
            continue
        cited = [n for n in tx.markers(raw) if 1 <= n <= len(passages)]
        checks = {}
        for n in range(1, len(passages) + 1):
            p = passages[n - 1]  # the title is part of what a passage says ("THE DECODER says ...")
            evidence = tx.without_instructions(p.text)  # a passage's orders to the model back nothing
            checks[n] = support(plain, f"{p.title}\n{evidence}", query.same_language(p))
        good_cited = [n for n in cited if checks[n].supported]
        if good_cited:
            kept.append(Sentence(plain, good_cited, max(checks[n].score for n in good_cited)))
            continue
        best = max(checks, key=lambda n: (checks[n].supported, checks[n].score, -n)) if checks else None
        if best is not None and checks[best].supported:
            kept.append(Sentence(plain, [best], checks[best].score))
        else:
            flagged.append(plain)
    return kept, flagged
