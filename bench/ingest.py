"""Section 1, ingestion: ``Bot.ingest`` (configured embedder) into a fresh store vs today's torch
encode (``SentenceTransformer.encode``) of the same chunk texts (bundled corpus and synthetic articles), unchanged re-ingest vs first,
where the time goes step by step, and ``rag ingest`` as a process, twice.
"""
from __future__ import annotations

import os
import sys
import time

from .harness import ROOT, cpu_s, log, median, ratio, rag_command, run_measured, summary
from .synthetic import write_synthetic_folder


def run(ctx: dict) -> dict:
    import hashlib

    from rag.bot import Bot
    from rag.chunking import chunk_document
    from rag.corpus import load_folder_or_files
    from rag.ingest import BATCH_CHUNKS, doc_metadata
    from rag.store import Store

    p, base, tmp, emb = ctx["p"], ctx["base"], ctx["tmp"], ctx["embedder"]
    torch_emb = ctx["torch_embedder"]()
    out: dict = {"embedder_load_s": ctx["embedder_load_s"], "embedder": emb.name, "raw": torch_emb.name}
    folders = {"corpus": (ROOT / "corpus", p["corpus_repeats"]),
               f"synthetic-{p['synthetic_articles']}": (
                   write_synthetic_folder(tmp / "synthetic", p["synthetic_articles"], ctx["sentences"]),
                   p["ingest_repeats"])}
    for name, (folder, repeats) in folders.items():
        log(f"ingest: {name}")
        t0 = time.perf_counter()
        docs = load_folder_or_files([folder]).documents
        t1 = time.perf_counter()
        chunks = [c for d in docs for c in chunk_document(d.id, d.text, base.chunk_tokens, pieces=emb)]
        t2 = time.perf_counter()
        texts = [c.text for c in chunks]
        ours_first, ours_second, raw, ours_cpu, raw_cpu = [], [], [], [], []
        foreign = {"ours": [], "raw": []}
        cont = ctx["cont"]
        vectors = None
        done, pair_s = 0, 0.0
        for r in range(repeats):
            reserve = 45.0 * p["process_repeats"] if name != "corpus" else 0.0
            if r and not ctx["budget"].allows(pair_s * 1.15 + reserve):
                log(f"  {name}: stopping after {r} repeat(s) (section time budget)")
                break
            pair_t0 = time.perf_counter()
            for side in (("ours", "raw") if r % 2 == 0 else ("raw", "ours")):
                cont.wait_quiet()
                snap = cont.snapshot()
                if side == "ours":
                    store_dir = tmp / f"ingest-{name}-{r}"
                    cfg = base.replace(corpus_dir=folder, store_dir=store_dir)
                    bot = Bot(cfg, Store(path=store_dir, collection=cfg.collection), emb)
                    a, ca = time.perf_counter(), cpu_s()
                    rep = bot.ingest()
                    b, cb = time.perf_counter(), cpu_s()
                    rep2 = bot.ingest()
                    c = time.perf_counter()
                    assert rep.chunks_embedded == len(texts), (rep.chunks_embedded, len(texts))
                    assert rep2.chunks_embedded == 0 and len(rep2.unchanged) == len(docs)
                    ours_first.append(b - a)
                    ours_second.append(c - b)
                    ours_cpu.append(cb - ca)
                    del bot
                else:  # today's torch encode (sentence-transformers) of the same chunks
                    a, ca = time.perf_counter(), cpu_s()
                    vectors = torch_emb.model.encode(texts, batch_size=torch_emb.batch_size,
                                                     normalize_embeddings=True, convert_to_numpy=True,
                                                     show_progress_bar=False)
                    raw.append(time.perf_counter() - a)
                    raw_cpu.append(cpu_s() - ca)
                foreign[side].append(cont.foreign(snap))
                log(f"  {name} r{r} {side}: {(ours_first if side == 'ours' else raw)[-1]:.2f}s "
                    f"(other processes: {foreign[side][-1]:.2f} cores)")
            pair_s = time.perf_counter() - pair_t0
            done += 1
        # where the time goes: the same steps one by one, raw Chroma writes, keyword index
        store_dir = tmp / f"ingest-{name}-parts"
        st = Store(path=store_dir)
        a = time.perf_counter()
        for f in sorted(folder.iterdir()):  # the floor of change detection: read and hash each file
            if f.is_file():
                hashlib.sha256(f.read_bytes()).hexdigest()
        read_hash_s = time.perf_counter() - a
        a = time.perf_counter()
        # the registry calls ingest makes (batched, on an empty chunk collection)
        st.mark_pending_many([(d.id, doc_metadata(d)) for d in docs])
        st.delete_chunks_of_many([d.id for d in docs])
        st.mark_done_many([(d.id, "bench", doc_metadata(d, 1), d.text) for d in docs])
        registry_s = time.perf_counter() - a
        groups, cur = [], []  # encode in ingest's batches (whole documents, >= BATCH_CHUNKS chunks)
        for d in docs:
            cur += [c.text for c in chunks if c.doc_id == d.id]
            if len(cur) >= BATCH_CHUNKS:
                groups.append(cur)
                cur = []
        if cur:
            groups.append(cur)
        a = time.perf_counter()
        for g in groups:
            emb.encode(g)
        batched_encode_s = time.perf_counter() - a
        ids = [c.id for c in chunks]
        metas = [{"doc_id": c.doc_id, "start": c.start, "end": c.end, "index": c.index} for c in chunks]
        a = time.perf_counter()
        st.add_chunks(ids, vectors.tolist(), texts, metas)
        b = time.perf_counter()
        with st.writing():  # settle the generation and build the keyword index, as ingestion does
            pass
        st.keyword_index()
        c = time.perf_counter()
        n = len(texts)
        res = {
            "documents": len(docs), "chunks": n, "repeats": done, "repeats_planned": repeats,
            "ours_first_s": summary(ours_first), "ours_unchanged_s": summary(ours_second),
            "raw_encode_s": summary(raw),
            "ours_chunks_per_s": n / median(ours_first), "raw_chunks_per_s": n / median(raw),
            "ratio_ours_over_raw": ratio(median(ours_first), median(raw)),
            "throughput_vs_torch_encode": ratio(median(raw), median(ours_first)),
            "ratio_ours_over_backend_encode": ratio(median(ours_first), batched_encode_s),
            "ratio_paired": [o / r for o, r in zip(ours_first, raw)],
            "ours_cpu_s": summary(ours_cpu), "raw_cpu_s": summary(raw_cpu),
            "ratio_cpu_ours_over_raw": ratio(median(ours_cpu), median(raw_cpu)),
            "foreign_cores": foreign,
            "ratio_unchanged_over_first": median([s / f for s, f in zip(ours_second, ours_first)]),
            "parts_s": {"load_clean_detect": t1 - t0, "chunk_with_fits": t2 - t1,
                        "encode_raw_median": median(raw), "chroma_upsert": b - a,
                        "keyword_index_build": c - b, "read_and_hash_files": read_hash_s,
                        "registry_calls_per_doc": registry_s, "encode_in_ingest_batches": batched_encode_s,
                        "ingest_batches": len(groups)},
        }
        if name.startswith("synthetic"):
            k = 1000 / p["synthetic_articles"]
            res["extrapolated_1000_articles"] = {
                "note": f"linear extrapolation x{k:g} from {p['synthetic_articles']} measured articles",
                "chunks": round(n * k), "ours_first_s": median(ours_first) * k,
                "raw_encode_s": median(raw) * k, "ours_unchanged_s": median(ours_second) * k}
        out[name] = res
    out["process"] = run_process(ctx)
    return out


def run_process(ctx: dict) -> dict:
    """`rag ingest` as a user runs it: a fresh store, then the same command again."""
    p, tmp = ctx["p"], ctx["tmp"]
    firsts, seconds, notes, cpu1, cpu2, foreign = [], [], [], [], [], []
    for r in range(p["process_repeats"]):
        env = {**os.environ, "RAG_STORE_DIR": str(tmp / f"proc-store-{r}"),
               "RAG_CORPUS_DIR": str(ROOT / "corpus")}
        ctx["cont"].wait_quiet()
        snap = ctx["cont"].snapshot()
        a = run_measured(rag_command() + ["ingest"], env=env, cwd=ROOT)
        fa = ctx["cont"].foreign(snap)
        ctx["cont"].wait_quiet()
        snap = ctx["cont"].snapshot()
        b = run_measured(rag_command() + ["ingest"], env=env, cwd=ROOT)
        foreign.append((fa, ctx["cont"].foreign(snap)))
        if a["rc"] or b["rc"]:
            return {"error": f"rag ingest failed: {a['stderr'][-500:]} {b['stderr'][-500:]}"}
        firsts.append(a["wall_s"])
        seconds.append(b["wall_s"])
        cpu1.append(a["cpu_s"])
        cpu2.append(b["cpu_s"])
        notes.append(b["stdout"].strip().splitlines()[-1] if b["stdout"].strip() else "")
        log(f"  rag ingest r{r}: first {a['wall_s']:.2f}s, second {b['wall_s']:.2f}s")
    floor = run_measured([sys.executable, "-c", "import chromadb"], cwd=ROOT)
    bare = run_measured([sys.executable, "-c", "pass"], cwd=ROOT)
    return {"first_s": summary(firsts), "second_s": summary(seconds),
            "ratio_second_over_first": ratio(median(seconds), median(firsts)),
            "first_cpu_s": summary(cpu1), "second_cpu_s": summary(cpu2),
            "ratio_cpu_second_over_first": ratio(median(cpu2), median(cpu1)), "foreign_cores": foreign,
            "second_run_says": notes[-1] if notes else "",
            "floor_python_import_chromadb_s": floor["wall_s"], "floor_python_bare_s": bare["wall_s"]}
