"""Verified sentences -> the answer text with [n] markers, and a ``Citation`` per passage cited.

A citation points at the passage (its span in the document) and at the passage sentence that
backs the claim best (the quote span), so a reader lands on the exact supporting words; in a
PDF or DOCX, the citation also names the page the quote starts on.
This module neither verifies nor refuses.

Example: render_text([Sentence("It opened on 13 September", [1])]) -> "It opened on 13 September [1]."
"""
from __future__ import annotations

from .grounding import best_sentence
from .readers import page_of
from .text import SENTENCE_END_CHARS
from .types import Citation, Passage, Sentence


def make_citations(sentences: list[Sentence], passages: list[Passage]) -> list[Citation]:
    out: dict[int, Citation] = {}
    for s in sentences:
        for n in s.citations:
            if n in out:
                continue
            p = passages[n - 1]
            qs, qe = best_sentence(s.text, p.text)
            out[n] = Citation(number=n, doc_id=p.doc_id, title=p.title, url=p.url,
                              publisher=p.publisher, date=p.date, chunk_id=p.chunk_id,
                              start=p.start, end=p.end, quote=p.text[qs:qe],
                              quote_start=p.start + qs, quote_end=p.start + qe,
                              page=page_of({"page": p.page, "page_breaks": p.page_breaks}, p.start + qs))
    return [out[n] for n in sorted(out)]


def render_text(sentences: list[Sentence]) -> str:
    parts = []
    for s in sentences:
        body = s.text.rstrip()
        end = body[-1] if body and body[-1] in SENTENCE_END_CHARS else "."
        body = body.rstrip(SENTENCE_END_CHARS)
        parts.append(f"{body} " + "".join(f"[{n}]" for n in s.citations) + end)
    return " ".join(parts)
