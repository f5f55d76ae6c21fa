"""Synthetic material: articles recombined from the corpus's English sentences (for the
ingestion section) and cached stores of 1k-100k synthetic chunks (for retrieval and server).

The stores are written through ``rag.store.Store``'s public methods only, in the order
ingestion writes (documents pending, chunks, documents done; one generation bump), and cached
under ``$XDG_CACHE_HOME/rag-bench`` keyed by ``BENCH_STORE_VERSION`` and what they are built from.
"""
from __future__ import annotations

import gc
import json
import os
import random
import shutil
import time
from pathlib import Path

from .harness import log

# 2: chunks carry their distinctive terms, as ingestion writes them
# 3: written through Store.add_chunks / mark_pending_many / mark_done_many (was raw Chroma add and
#    upsert); batches hold whole documents (a document no longer straddles two batches)
BENCH_STORE_VERSION = "3"
SEED = 1234
DIM = 384


def corpus_sentences(corpus_dir: Path) -> list[str]:
    """English sentences of the bundled corpus, the material synthetic articles are made of."""
    from rag.chunking import sentence_spans
    from rag.corpus import load_folder_or_files

    out, seen = [], set()
    for d in load_folder_or_files([corpus_dir]).documents:
        if d.language != "en":
            continue
        for s, e in sentence_spans(d.text):
            t = d.text[s:e]
            if 30 <= len(t) <= 400 and t not in seen:
                seen.add(t)
                out.append(t)
    return out


def synthetic_article(rng: random.Random, sentences: list[str], i: int) -> str:
    """A title line and paragraphs of 3-5 sentences drawn without replacement (~3 KB)."""
    picks = rng.sample(sentences, min(len(sentences), rng.randint(18, 34)))
    paras, j = [], 0
    while j < len(picks):
        k = rng.randint(3, 5)
        paras.append(" ".join(picks[j:j + k]))
        j += k
    title = f"Synthetic report {i:05d}: " + " ".join(picks[0].split()[:6]).rstrip(".,;:")
    return title + "\n\n" + "\n\n".join(paras) + "\n"


def write_synthetic_folder(folder: Path, n: int, sentences: list[str], seed: int = SEED) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for i in range(n):
        (folder / f"syn_{i:05d}.txt").write_text(synthetic_article(rng, sentences, i), "utf-8")
    return folder


def cache_root() -> Path:
    """Where the synthetic retrieval stores are kept between runs (``$XDG_CACHE_HOME/rag-bench``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-bench"


def retrieval_store(n: int, sentences: list[str]) -> tuple[Path, dict]:
    """A store of ``n`` synthetic chunks in the layout ``rag.store.Store`` writes, cached."""
    import hashlib

    import chromadb

    from rag.chunking import chunk_id
    from rag.store import terms_field
    from rag.store import Store

    sig = {"version": BENCH_STORE_VERSION, "n": n, "seed": SEED, "dim": DIM, "chromadb": chromadb.__version__,
           "sentences": hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:16]}
    folder = cache_root() / f"store-{n}"
    marker = folder / "bench-store.json"
    if marker.exists():
        try:
            info = json.loads(marker.read_text())
            if {k: info.get(k) for k in sig} == sig:
                return folder, info
        except ValueError:
            pass
    log(f"retrieval: building the {n:,}-chunk store in {folder} (cached for later runs)")
    shutil.rmtree(folder, ignore_errors=True)
    import numpy as np

    rng = random.Random(SEED + n)
    vec_rng = np.random.default_rng(SEED + n)
    per_doc = 7
    t0 = time.perf_counter()
    store = Store(path=folder)
    build = {"add_s": 0.0, "docs_s": 0.0}
    batch = 4998  # whole documents (a multiple of per_doc) and within Chroma's 5,000 per call
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        vecs = vec_rng.standard_normal((hi - lo, DIM), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        ids, texts, metas = [], [], []
        docs = []  # (id, metadata, text), registered the way ingestion does it
        for d0 in range(lo, hi, per_doc):
            d = d0 // per_doc
            doc_id = f"syn{d:07d}"
            parts = [" ".join(rng.sample(sentences, rng.randint(3, 6))) for _ in range(min(per_doc, hi - d0))]
            doc_text = "\n".join(parts)
            title = f"Synthetic report {d:07d}"
            pos = 0
            for i, t in enumerate(parts):
                s, e = pos, pos + len(t)
                pos = e + 1
                ids.append(chunk_id(doc_id, s, e, t))
                texts.append(t)
                metas.append({"doc_id": doc_id, "title": title, "publisher": "", "url": "", "date": "",
                              "language": "en", "n_chars": len(doc_text), "start": s, "end": e, "index": i,
                              "terms": terms_field(t)})
            docs.append((doc_id, {"doc_id": doc_id, "title": title, "publisher": "", "url": "", "date": "",
                                  "language": "en", "n_chars": len(doc_text), "n_chunks": len(parts)},
                         doc_text))
        a = time.perf_counter()
        store.mark_pending_many([(i, m) for i, m, _ in docs])
        b = time.perf_counter()
        store.add_chunks(ids, vecs, texts, metas)
        c = time.perf_counter()
        store.mark_done_many([(i, "bench", m, t) for i, m, t in docs])
        build["add_s"] += c - b
        build["docs_s"] += (b - a) + (time.perf_counter() - c)
        if n >= 100_000 and (hi // batch) % 20 == 0:
            log(f"  {hi:,} / {n:,} chunks written ({time.perf_counter() - t0:.0f}s)")
    with store.writing():  # settle the generation and build the keyword index, as ingestion does
        pass
    a = time.perf_counter()
    store.keyword_index()
    build["keyword_index_s"] = time.perf_counter() - a
    build["total_s"] = time.perf_counter() - t0
    build["vectors_per_s"] = n / build["add_s"]
    assert store.count() == n
    del store
    gc.collect()
    info = {**sig, "build": build}
    marker.write_text(json.dumps(info, indent=1))
    log(f"  built in {build['total_s']:.1f}s ({build['vectors_per_s']:.0f} vectors/s)")
    return folder, info
