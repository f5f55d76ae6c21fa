"""Question -> ranked, de-duplicated passages (dense + BM25 fused by reciprocal rank fusion).

Near-duplicates are folded: when two candidate chunks from different documents say the same
thing (the same article in two languages, a syndicated copy), only the better-ranked one keeps
a place and the other is listed in its ``duplicates``. "The same thing" is measured without a
multilingual model: the distinctive names and numbers the two chunks share (words that most
other candidates lack), or a near-identical embedding. This module does not prompt a model.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from . import when
from .store import chunk_terms
from .types import Passage, Query

# reciprocal rank fusion's k: 60, the value of Cormack et al. (2009) that fusion libraries keep
RRF_K = 60
CANDIDATE_POOL = 24  # chunks each list (dense, BM25) contributes before folding, at least 4 x k
# two chunks of different documents say the same thing when they share this many of their
# distinctive names and numbers (not common among the candidates), and this share of the fewer
SAME_CONTENT_TERMS, SAME_CONTENT_SHARE = 4, 0.6
# ... or, for a declared translation: 2 names and 0.4 of them, or the same relative position
TRANSLATION_TERMS, TRANSLATION_SHARE, TRANSLATION_POSITION = 2, 0.4, 0.1


@dataclass
class SearchResult:
    passages: list[Passage]
    timings: dict[str, float]


class Retriever:
    def __init__(self, store, embedder, pool: int = CANDIDATE_POOL):
        self.store = store
        self.embedder = embedder
        self.pool = pool
        self._keyword_worker = None  # a thread: BM25 runs while Chroma answers the dense query

    def search(self, query: Query, k: int = 4) -> SearchResult:
        """Top ``k`` passages for the question and (when asked in another language) its English
        translation, both joining the fusion."""
        t0 = time.perf_counter()
        self.store.check_embedder(self.embedder.name)
        queries = query.search_texts
        # the question in its language, then its English translation (when there is one)
        vectors = self.embedder.encode_queries(queries, [query.language] + ["en"] * (len(queries) - 1))
        t1 = time.perf_counter()
        n = max(self.pool, 4 * k)
        lists, dense_sim, kw_score, payload = [], {}, {}, {}
        if self._keyword_worker is None:
            from concurrent.futures import ThreadPoolExecutor

            self._keyword_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-bm25")
        keyword = self._keyword_worker.submit(self._keyword_hits, queries, when.keyword_pool(query.when, n))
        for q, v in zip(queries, vectors):
            dense = [d for d in self.store.dense_query(v, n, where=when.dense_where(query.when))
                     if when.admits(query.when, d[3])]  # as of, and the question's period
            recent_where = when.recent_where(query.when, self.store.latest_day())  # the prior's own list
            recent = self.store.dense_query(v, n, where=recent_where) if recent_where else []
            lists += [(None, [c for c, *_ in got]) for got in (dense, recent) if got]  # any language
            for cid, sim, text, meta in dense + recent:
                dense_sim[cid] = max(sim, dense_sim.get(cid, -1.0))
                payload[cid] = (text, meta)
        t2 = time.perf_counter()
        hits_per_query, keyword_s = keyword.result()
        payload.update(self.store.get_chunks(list({c for h in hits_per_query for c, _ in h} - payload.keys())))
        hits_per_query = [when.keep_hits(query.when, h, payload, n) for h in hits_per_query]
        for lang, hits in zip(_languages(query), hits_per_query):
            lists.append((lang, [c for c, _ in hits]))  # words match words of their own language
            for cid, s in hits:
                kw_score[cid] = max(s, kw_score.get(cid, 0.0))
        t3 = time.perf_counter()
        fused = _fuse(lists, payload)
        fused = when.reweigh(query.when, fused, payload)  # the recency prior (1 under a named period)
        # a chunk without its record (deleted while the query ran) is no passage
        order = sorted((c for c in fused if c in payload and "doc_id" in payload[c][1]),
                       key=lambda c: (-fused[c], c))
        passages = self._fold(order, payload, fused, dense_sim, kw_score, k, _languages(query)[0])
        t4 = time.perf_counter()
        # keyword_s: the BM25 work itself (it overlaps dense_s); keyword_wait_s: what it added
        return SearchResult(passages, {"embed_question_s": t1 - t0, "dense_s": t2 - t1,
                                       "keyword_s": keyword_s, "keyword_wait_s": t3 - t2,
                                       "fuse_s": t4 - t3})

    def _keyword_hits(self, queries: list[str], n: int) -> tuple[list[list[tuple[str, float]]], float]:
        t = time.perf_counter()
        kw = self.store.keyword_index()
        return [kw.query(q, n) for q in queries], time.perf_counter() - t

    def _fold(self, order, payload, fused, dense_sim, kw_score, k, language=None) -> list[Passage]:
        """The top ``k`` chunks, near-duplicates folded into the better-ranked one; when the two
        are the same content in two languages, the one in the question's ``language`` stands for
        both (in its place in the ranking): the reader and the checks read the asker's language,
        and an English question about an article and its Italian translation gets the English."""
        def passage(cid, rank, score_of):
            text, meta = payload[cid]
            return Passage(
                rank=rank, chunk_id=cid, doc_id=meta["doc_id"], text=text,
                start=int(meta["start"]), end=int(meta["end"]), score=round(fused[score_of], 6),
                dense_score=round(dense_sim[cid], 4) if cid in dense_sim else None,
                keyword_score=round(kw_score[cid], 4) if cid in kw_score else None,
                title=meta.get("title", ""), publisher=meta.get("publisher", ""),
                url=meta.get("url", ""), date=meta.get("date", ""),
                language=meta.get("language", ""),
                page=meta.get("page"), page_breaks=meta.get("page_breaks") or [])

        def entry(cid):
            meta = payload[cid][1]
            return {"doc_id": meta["doc_id"], "chunk_id": cid, "title": meta.get("title", ""),
                    "start": int(meta["start"]), "end": int(meta["end"])}

        terms = {c: chunk_terms(*payload[c]) for c in order}
        df: dict[str, int] = {}
        for ts in terms.values():
            for t in ts:
                df[t] = df.get(t, 0) + 1
        common = {t for t, c in df.items() if c > max(2, len(order) // 3)}
        kept: list[Passage] = []
        for cid in order:
            text, meta = payload[cid]
            doc_id = meta["doc_id"]
            dup_of = None
            for p in kept:
                if p.doc_id != doc_id and self._same_content(cid, p.chunk_id, terms, common,
                                                            doc_id, p.doc_id, payload):
                    dup_of = p
                    break
            if dup_of is not None:
                if language and meta.get("language") == language != dup_of.language:
                    i = kept.index(dup_of)  # the asker's language stands for both, in its place
                    kept[i] = passage(cid, dup_of.rank, dup_of.chunk_id)
                    kept[i].duplicates = dup_of.duplicates + [entry(dup_of.chunk_id)]
                else:
                    dup_of.duplicates.append(entry(cid))
                continue
            if len(kept) < k:
                kept.append(passage(cid, len(kept) + 1, cid))
        return kept

    @staticmethod
    def _same_content(a, b, terms, common, doc_a, doc_b, payload) -> bool:
        ta, tb = terms[a] - common, terms[b] - common
        shared = len(ta & tb)
        smaller = max(1, min(len(ta), len(tb)))
        # a chunk carries its document's fields (``translation_of`` from metadata.json among
        # them), so no per-query read of the document registry is needed at any store size
        declared = (payload[a][1].get("translation_of") == doc_b
                    or payload[b][1].get("translation_of") == doc_a)
        if declared:  # a translation: same names, or the same place in the article
            return ((shared >= TRANSLATION_TERMS and shared / smaller >= TRANSLATION_SHARE)
                    or abs(_position(payload[a][1]) - _position(payload[b][1])) <= TRANSLATION_POSITION)
        return shared >= SAME_CONTENT_TERMS and shared / smaller >= SAME_CONTENT_SHARE


def _languages(query: Query) -> list[str | None]:
    """The language each of ``query.search_texts`` is written in (None: too short to tell)."""
    first = query.language if query.language not in ("", "und") else None
    return [first] + ["en"] * (len(query.search_texts) - 1)


def _fuse(lists: list[tuple[str | None, list[str]]], payload: dict) -> dict[str, float]:
    """Reciprocal rank fusion, each chunk's score averaged over the lists able to rank it.

    A dense list (a multilingual embedder) ranks passages of every language (``None``); a keyword
    list ranks only passages in its own language, since words match words of their language. A
    passage in another language is absent from the keyword list because that list cannot see it,
    not because it ranks low, so that list does not vote on it: summing, as plain RRF does,
    would let every same-language passage that BM25 also finds outrank the passage in another
    language that answers the question (xlqa-dev, en->zh: retrieval recall 0.50 summed).
    With one language in the store every list ranks every chunk, and the order is plain RRF's.

    Example: lists [(None, [a, b]), ("en", [b])], a in Chinese, b in English ->
    a: 1/61 over 1 list = 0.0164; b: (1/62 + 1/61) / 2 = 0.0163.
    """
    fused: dict[str, float] = {}
    for _, lst in lists:
        for r, cid in enumerate(lst):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + r + 1)
    out = {}
    for cid, total in fused.items():
        lang = (payload.get(cid, ("", {}))[1] or {}).get("language") or None
        judges = sum(1 for ll, _ in lists if ll is None or lang is None or ll == lang)
        out[cid] = total / max(1, judges)
    return out


def _position(meta: dict) -> float:
    """Relative position of a chunk's middle in its document (0 = start, 1 = end)."""
    n = float(meta.get("n_chars") or 0) or 1.0
    return (int(meta["start"]) + int(meta["end"])) / 2 / n
