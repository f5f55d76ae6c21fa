"""Documents -> chunks: token-aware, sentence-respecting, with stable ids and character spans.

Sizes are counted with tiktoken (cl100k_base, from llama-index-core's offline cache). A chunk
packs whole sentences up to ``max_tokens``; a sentence longer than that is cut at word
boundaries. An optional ``pieces`` (the embedder's own tokenizer and word-piece limit) vetoes a
chunk, which is then split further, so the embedder never truncates a chunk.

Every chunk keeps ``doc.text[start:end] == chunk.text`` and an id derived from the document id,
the span and the text: re-chunking an unchanged document yields the same ids.

Worked example (max_tokens=6): "One two. Three four five. Six." has sentences of 3, 4 and 2
tokens; "One two. Three four five." would be 7, so the chunks are ["One two.",
"Three four five. Six."] (6 tokens) with spans (0, 8) and (9, 30).
"""
from __future__ import annotations

import hashlib
import os
import re
from bisect import bisect_right
from functools import lru_cache
from typing import Iterator, Protocol

from .text import sentence_spans
from .types import Chunk

CHUNKER_VERSION = "2"


def tiktoken_cache_dir() -> str:
    """llama-index-core ships cl100k_base; tiktoken would otherwise download it."""
    import importlib.util

    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llama-index-core is not installed; run the README's set-up command")
    return os.path.join(list(spec.submodule_search_locations)[0], "_static", "tiktoken_cache")


@lru_cache(maxsize=1)
def _encoding():
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", tiktoken_cache_dir())
    import tiktoken

    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))


class WordPieces(Protocol):
    """The embedder's own tokenizer: a chunk longer than ``piece_limit`` pieces would be truncated."""
    piece_limit: int

    def count_pieces(self, texts: list[str], keep: bool = False) -> list[int]:
        """Pieces per text, the model's special tokens included; ``keep``: these are the chunks
        that will be embedded (the embedder may keep their pieces)."""


def chunk_document(doc_id: str, text: str, max_tokens: int = 120,
                   pieces: WordPieces | None = None) -> list[Chunk]:
    sentences = sentence_spans(text)
    limit = pieces.piece_limit if pieces else 0
    counts = pieces.count_pieces([text[s:e] for s, e in sentences]) if pieces else [0] * len(sentences)
    units, unit_counts = [], []  # (start, end) units within both budgets, and their word pieces
    for (s, e), n in zip(sentences, counts):
        if (e - s <= max_tokens * WINDOW_CHARS_PER_TOKEN and n <= limit or not pieces) \
                and count_tokens(text[s:e]) <= max_tokens and text[s:e] == text[s:e].strip():
            units.append((s, e))  # what _split_long yields for a sentence within budget
            unit_counts.append(n)
            continue
        cut = list(_split_long(text, s, e, max_tokens, pieces))
        units.extend(cut)
        unit_counts.extend(pieces.count_pieces([text[a:b] for a, b in cut]) if pieces else [0] * len(cut))
    spans = _pack(text, units, max_tokens, pieces, unit_counts)
    if pieces and any(n > limit for n in pieces.count_pieces([text[s:e] for s, e in spans], keep=True)):
        spans = _pack(text, units, max_tokens, pieces, None)  # an estimate was short: count each step
    return [Chunk(id=chunk_id(doc_id, s, e, text[s:e]), doc_id=doc_id, text=text[s:e],
                  start=s, end=e, index=i) for i, (s, e) in enumerate(spans)]


def _pack(text: str, units: list[tuple[int, int]], max_tokens: int, pieces: WordPieces | None,
          counts: list[int] | None) -> list[tuple[int, int]]:
    """Whole units packed in order into spans within both budgets.

    The word pieces of a growing span are estimated from its units' ``counts`` less the special
    tokens repeated; that is exact when units are separated by spaces or punctuation, as
    sentences are. The span is counted exactly only when the estimate is over the limit, so it
    is closed where a full count would close it. Without ``counts`` every step is counted (the
    fallback when a packed span turns out over the limit after all)."""
    special = pieces.count_pieces([""])[0] if pieces and counts is not None else 0
    spans, cur_s, cur_e, est = [], None, None, 0
    for i, (s, e) in enumerate(units):
        if cur_s is not None:
            est += (counts[i] - special) if counts is not None else 0
            full = count_tokens(text[cur_s:e]) > max_tokens
            if not full and pieces and (counts is None or est > pieces.piece_limit):
                full = pieces.count_pieces([text[cur_s:e]])[0] > pieces.piece_limit
            if full:
                spans.append((cur_s, cur_e))
                cur_s = None
        if cur_s is None:
            cur_s, est = s, (counts[i] if counts is not None else 0)
        cur_e = e
    if cur_s is not None:
        spans.append((cur_s, cur_e))
    return spans


# a piece of an over-long sentence is looked for within this many characters per token of the
# budget: cl100k tokens of prose average about 4 characters, so the window always holds a
# whole piece, and the work per piece stays bounded (a 2 MB paragraph is linear, not quadratic)
WINDOW_CHARS_PER_TOKEN = 12


def _split_long(text: str, s: int, e: int, max_tokens: int,
                pieces: WordPieces | None) -> Iterator[tuple[int, int]]:
    """Cut an over-long sentence at word (or, for CJK, character) boundaries."""
    def ok(piece: str) -> bool:
        return count_tokens(piece) <= max_tokens and (
            pieces is None or pieces.count_pieces([piece])[0] <= pieces.piece_limit)

    spaces = [s + m.start() for m in re.finditer(r"\s+", text[s:e])]
    window = max_tokens * WINDOW_CHARS_PER_TOKEN
    start = s
    while start < e:
        while start < e and text[start].isspace():  # checked as yielded: " harbour" is one
            start += 1                                # token, "harbour" may be two
        if start == e:
            break
        stop = min(e, start + window)
        if stop == e and ok(text[start:e]):  # the rest fits (for a short sentence: all of it)
            end = e
        else:  # the largest cut within the window that keeps the piece within limits
            if spaces:
                cand = spaces[bisect_right(spaces, start):bisect_right(spaces, stop)]
            else:
                cand = list(range(start + 1, stop + 1))
            lo, hi, best = 0, len(cand) - 1, None
            while lo <= hi:
                mid = (lo + hi) // 2
                if ok(text[start:cand[mid]]):
                    best, lo = cand[mid], mid + 1
                else:
                    hi = mid - 1
            end = best if best is not None else (cand[0] if cand else stop)
        a, b = start, end
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            yield a, b
        start = end


def chunk_id(doc_id: str, start: int, end: int, text: str) -> str:
    h = hashlib.sha256(f"{CHUNKER_VERSION}\0{doc_id}\0{start}\0{end}\0{text}".encode()).hexdigest()
    return f"{doc_id}:{h[:16]}"
