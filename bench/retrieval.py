"""Section 2, retrieval at scale: on the cached 1k/10k/100k-chunk synthetic stores, the bot's
dense query, keyword query and fused ``Retriever.search`` vs a raw Chroma query of the same
collection (``store.chunks.query``: the raw library is the baseline, so it is read directly),
with the question vectors computed beforehand by the real embedder.
"""
from __future__ import annotations

import gc
import time

from . import pipeline
from .harness import interleaved, load_questions, log, median, ratio, summary
from .synthetic import retrieval_store


class PrecomputedEmbedder:
    """The real embedder's question vectors, computed beforehand, so that timing
    ``Retriever.search`` leaves question embedding out (it is measured on its own)."""

    def __init__(self, vectors: dict):
        self.vectors = vectors
        self.name = "precomputed"

    def encode(self, texts, show_progress: bool = False):
        import numpy as np

        return np.stack([self.vectors[t] for t in texts])

    def encode_queries(self, texts, languages):  # what the Retriever calls (vectors already final)
        return self.encode(texts)


def question_vectors(ctx: dict) -> tuple[list[str], dict, list[float]]:
    """The benchmark questions, their vectors by the real embedder, and the time each took
    (computed once per run, kept in ``ctx``)."""
    if "qvecs" not in ctx:
        qs = [r["question"] for r in load_questions(ctx["p"]["queries"])]
        emb = ctx["embedder"]
        for q in qs[:3]:
            emb.encode_queries([q], ["en"])
        vecs, times = {}, []
        for q in qs:
            a = time.perf_counter()
            vecs[q] = emb.encode_queries([q], ["en"])[0]
            times.append(time.perf_counter() - a)
        ctx["qvecs"] = (qs, vecs, times)
    return ctx["qvecs"]


def retrieval_ops(store, kw, qvecs: dict, k: int, n: int) -> tuple[dict, object, dict]:
    """The timed operations (raw Chroma, dense, keyword, fused) on one store, the retriever
    behind "fused", and a dict holding the last fused call's timings."""
    from rag.retrieve import Retriever

    retr = Retriever(store, PrecomputedEmbedder(qvecs))
    prepared = {q: pipeline.search_query(q) for q in qvecs}  # built before timing, as the vectors
    last = {}

    def fused(q):
        last["timings"] = retr.search(prepared[q], k).timings

    return {"raw_chroma": lambda q: store.chunks.query(query_embeddings=qvecs[q][None, :], n_results=n),
            "dense": lambda q: store.dense_query(qvecs[q], n),
            "keyword": lambda q: kw.query(q, n),
            "fused": fused}, retr, last


def run(ctx: dict) -> dict:
    from rag.text import distinctive_terms
    from rag.store import PACKED, Store

    p, base = ctx["p"], ctx["base"]
    qs, qvecs, embed_times = question_vectors(ctx)
    embed_all: list[float] = []
    out: dict = {"queries": len(qs), "k": base.top_k,
                 "vectors": "seeded Gaussian 384-d, L2-normalised (no cluster structure)", "sizes": {}}
    for n in p["sizes"]:
        folder, info = retrieval_store(n, ctx["sentences"])
        log(f"retrieval: {n:,} chunks")
        a = time.perf_counter()
        store = Store(path=folder)
        b = time.perf_counter()
        kw = store.keyword_index()
        c = time.perf_counter()
        n_results = max(24, 4 * base.top_k)  # Retriever's default pool
        ops, retr, _ = retrieval_ops(store, kw, qvecs, base.top_k, n_results)
        assert n_results == max(retr.pool, 4 * base.top_k)
        prepared = {q: pipeline.search_query(q) for q in qs}
        breakdown = {"embed_question_s": [], "dense_s": [], "keyword_s": [], "keyword_wait_s": [], "fuse_s": []}

        def fused_recorded(q, _f=retr):
            t = _f.search(prepared[q], base.top_k).timings
            for key in breakdown:
                breakdown[key].append(t[key])

        ops["fused"] = fused_recorded
        emb = ctx["embedder"]
        ops["embed_question"] = lambda q: emb.encode_queries([q], ["en"])
        ctx["cont"].wait_quiet()
        snap = ctx["cont"].snapshot()
        times = interleaved(ops, qs)
        foreign = ctx["cont"].foreign(snap)
        embed_all.extend(times.pop("embed_question"))
        missing = [c for c, _ in kw.query(qs[0], n_results)][:12]
        cand_texts = [t for _, _, t, _ in store.dense_query(qvecs[qs[0]], n_results)] + \
            [t for t, _ in store.get_chunks([c for c, _ in kw.query(qs[0], n_results)]).values()]
        micro = interleaved({"store.generation": lambda q: store.generation(),
                             "store.documents_cached": lambda q: store.documents(),
                             "store.keyword_index_cached": lambda q: store.keyword_index(),
                             "store.get_chunks_12": lambda q: store.get_chunks(missing),
                             "store.count": lambda q: store.count(),
                             "distinctive_terms_all_candidates": lambda q: [distinctive_terms(t) for t in cand_texts]},
                            qs)
        for key in breakdown:  # keep only the timed (non-warm-up) calls
            breakdown[key] = breakdown[key][-len(qs):]
        first = store.chunks.get(limit=1, include=["metadatas"])["metadatas"]
        res = {"layout": "packed" if first and PACKED in first[0] else "older layout",
               "store_open_s": b - a, "keyword_index_load_s": c - b, "n_results": n_results,
               "build": info.get("build", {}),
               **{name: summary(ts) for name, ts in times.items()},
               "fused_breakdown_p50": {k_: median(v) for k_, v in breakdown.items()},
               "store_calls_p50": {k_: median(v) for k_, v in micro.items()}, "foreign_cores": foreign,
               "fold_candidates": len(cand_texts)}
        res["ratio_fused_over_raw_p50"] = ratio(res["fused"]["p50"], res["raw_chroma"]["p50"])
        res["ratio_dense_over_raw_p50"] = ratio(res["dense"]["p50"], res["raw_chroma"]["p50"])
        res["floor_raw_plus_keyword_p50"] = res["raw_chroma"]["p50"] + res["keyword"]["p50"]
        out["sizes"][str(n)] = res
        log(f"  p50 ms: raw {res['raw_chroma']['p50'] * 1e3:.1f}, dense {res['dense']['p50'] * 1e3:.1f}, "
            f"keyword {res['keyword']['p50'] * 1e3:.1f}, fused {res['fused']['p50'] * 1e3:.1f}")
        del store, kw, ops, retr
        gc.collect()
    out["question_embedding_s"] = summary(embed_all)
    return out
