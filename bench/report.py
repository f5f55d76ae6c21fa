"""The targets table (goal, measured value, PASS/FAIL, the raw library's floor) and the
BENCHMARKS.md rendering, both computed from the results dict alone (``bench/results.json``).
"""
from __future__ import annotations

from .harness import ratio


def targets(R: dict) -> list[dict]:
    rows = []

    def add(name, target, value, ok, floor="", fmt="{:.2f}"):
        rows.append({"target": name, "goal": target,
                     "measured": None if value is None else (fmt.format(value) if isinstance(value, float) else value),
                     "status": ("NOT RUN" if isinstance(value, str) and value.startswith("not run") else "MEASURED")
                     if ok is None else ("PASS" if ok else "FAIL"), "floor": floor})

    ing = R.get("ingest") or {}
    syn = next((v for k, v in ing.items() if k.startswith("synthetic")), None)
    cor = ing.get("corpus")
    arc = R.get("archive") or {}
    rt = arc.get("rtqa_ingest") or {}
    if rt.get("throughput_vs_torch_encode") is not None:
        r = rt["throughput_vs_torch_encode"]
        n_pairs = len(rt.get("pairs") or []) or 1
        # issue 20: 3x where the CPU computes bfloat16 natively, 2x on an AVX2-only CPU (float32)
        goal = 3.0 if (R.get("meta", {}).get("machine") or {}).get("bf16", True) else 2.0
        add(f"ingestion throughput vs torch encode of the same model and chunks (`rag ingest` of rtqa-dev, "
            f"{rt['chunks']:,} chunks, whole process" + (f"; median of {n_pairs} pairs" if n_pairs > 1 else "") + ")",
            f">= {goal:.0f}x", r, r >= goal,
            f"torch encode {rt['torch_encode_chunks_per_s']:.1f} chunks/s (sample of {rt['sample_chunks']}); "
            f"ours {rt['ours_chunks_per_s']:.1f} chunks/s", "{:.2f}x")
        if rt.get("throughput_vs_minilm_torch_encode") is not None:
            r = rt["throughput_vs_minilm_torch_encode"]
            add("ingestion throughput of the default embedder vs yesterday's default, all-MiniLM-L6-v2, "
                "on torch (the same rtqa-dev chunks, same pairs)", ">= 1.0x", r, r >= 1.0,
                f"all-MiniLM-L6-v2 torch encode {rt['minilm_torch_encode_chunks_per_s']:.1f} chunks/s", "{:.2f}x")
        if rt.get("backend_encode_chunks_per_s"):
            r = rt["backend_encode_chunks_per_s"] / rt["torch_encode_chunks_per_s"]
            add(f"the embedding step alone: `{rt['embedder']}` encode vs torch encode, the same rtqa-dev chunks "
                f"(sample of {rt['sample_chunks']})", "reported", r, None,
                f"{rt['backend_encode_chunks_per_s']:.1f} vs {rt['torch_encode_chunks_per_s']:.1f} chunks/s",
                "{:.2f}x")
        px = rt.get("avx2_proxy") or {}
        if px.get("ratio") is not None:
            # issue 20's goal for an AVX2-only CPU is on the whole process (2x); the proxy times the
            # embedding step, which bounds it from above (ingestion adds reading, chunking, writes)
            add("the embedding step on an AVX2-only CPU, proxy: openvino float32 with oneDNN and MKL held to "
                f"AVX2, vs torch held the same (sample of {px['sample_chunks']}); the whole process can "
                "only be slower", ">= 2x", px["ratio"], px["ratio"] >= 2.0,
                f"{px['openvino_f32_chunks_per_s']:.1f} vs {px['torch_chunks_per_s']:.1f} chunks/s", "{:.2f}x")
    elif arc.get("skipped"):
        add("ingestion throughput vs torch encode, rtqa-dev", ">= 3x", "not run: no ../shared/bench", None)
    if syn and syn.get("throughput_vs_torch_encode") is not None:
        # informational: the target is set on real news (the row above); these recombined corpus
        # sentences make shorter chunks, so per-document costs (cleaning, language detection,
        # chunking, Chroma writes) weigh more against the embedding itself
        r = syn["throughput_vs_torch_encode"]
        add(f"ingestion throughput vs today's torch encode of the same chunks (synthetic, {syn['chunks']} "
            f"short chunks, in process; the target is on real news, row above)", "reported", r, None,
            f"torch encode {syn['raw_chunks_per_s']:.1f} chunks/s; the embedder's own encode "
            f"{syn['parts_s']['encode_in_ingest_batches']:.2f}s of ours {syn['ours_first_s']['p50']:.2f}s",
            "{:.2f}x")
    for label, d in (("synthetic", syn), ("corpus", cor)):
        if d and d.get("ratio_ours_over_backend_encode") is not None:
            r = d["ratio_ours_over_backend_encode"]
            add(f"ingestion time vs the same embedder's bare encode ({label}, {d['chunks']} chunks)", "<= 1.3x",
                r, r <= 1.3, f"bare encode in ingest's batches {d['parts_s']['encode_in_ingest_batches']:.2f}s",
                "{:.2f}x")
    for set_name, qd in (arc.get("quality") or {}).items():
        for metric, key in (("retrieval_recall_at_k", "recall_at_k"), ("MRR", "mrr")):
            diff = qd["default"][key] - qd["torch"][key]
            add(f"{metric} on {set_name}, {qd['default']['embedder']} vs torch ({qd['questions']} questions)",
                "within 0.01", f"{qd['default'][key]:.3f} vs {qd['torch'][key]:.3f} ({diff:+.3f})",
                abs(diff) <= 0.01 + 1e-9)
    if rt.get("peak_rss_mb"):
        m = rt["peak_rss_mb"]
        add("peak resident size of `rag ingest` on rtqa-dev", "<= 1,000 MB", m, m <= 1000,
            f"{rt['peak_from']}", "{:.0f} MB")
    re10 = arc.get("reingest_10k") or {}
    if re10.get("p50_s") is not None:
        add(f"unchanged re-ingest of a {re10['documents']:,}-document archive (`rag ingest`, process wall, p50)",
            "<= 5 s", re10["p50_s"], re10["p50_s"] <= 5.0, f"`rag --help` {re10['floor_rag_help_s']:.2f}s",
            "{:.2f} s")
    for label, d in (("synthetic", syn), ("corpus", cor)):
        if d:
            r = d["ratio_unchanged_over_first"]
            add(f"unchanged re-ingest vs first ({label}, in process)", "<= 2%", r * 100, r <= 0.02,
                f"file load+clean+language detection alone {d['parts_s']['load_clean_detect']:.2f}s", "{:.1f}%")
    pr = ing.get("process") or {}
    if pr.get("ratio_second_over_first") is not None:
        r = pr["ratio_second_over_first"]
        add("`rag ingest` second run vs first (process)", "< 20%", r * 100, r < 0.20,
            f"`python -c 'import chromadb'` {pr['floor_python_import_chromadb_s']:.2f}s", "{:.1f}%")
    ret = (R.get("retrieval") or {}).get("sizes", {})
    big = ret[max(ret, key=int)] if ret else None
    if big:
        size = int(max(ret, key=int))
        goal_ms = 60 if size >= 1_000_000 else 50
        f50 = big["fused"]["p50"] * 1e3
        floor = (f"raw Chroma {big['raw_chroma']['p50'] * 1e3:.1f} ms + BM25 {big['keyword']['p50'] * 1e3:.1f} ms "
                 f"= {big['floor_raw_plus_keyword_p50'] * 1e3:.1f} ms")
        add(f"fused retrieval p50 at {size:,} chunks (no question embedding)", f"<= {goal_ms} ms", f50,
            f50 <= goal_ms, floor, "{:.1f} ms")
        r = ratio(big["fused"]["p50"], big["floor_raw_plus_keyword_p50"])
        add(f"fused / (raw Chroma + BM25, run side by side) p50 at {size:,}", "<= 1.5x", r, r <= 1.5, floor,
            "{:.2f}x")
    ans = R.get("answer") or {}
    if ans.get("ratio_of_medians") is not None:
        r = ans["ratio_of_medians"]
        add("answer time vs raw llama.cpp, identical prompt (0.5B)", "<= 1.1x", r, r <= 1.1,
            f"raw create_completion p50 {ans['raw_total_s']['p50']:.2f}s", "{:.2f}x")
        t = ans["ours_ttft_s"]["p50"]
        add("time to first token, typical question (0.5B)", "<= 3 s", t, t <= 3.0,
            f"raw llama.cpp TTFT p50 {ans['raw_ttft_s']['p50']:.2f}s", "{:.2f} s")
    cold = (R.get("coldstart") or {}).get("p50") or {}
    if cold.get("process_start_to_first_token_s") is not None:
        add("`rag ask` start-up to first token, cold process, default preset (p50)", "measured, with where the time goes",
            cold["process_start_to_first_token_s"], None,
            ", ".join(f"{k[:-2]} {cold[k]:.2f}s" for k in
                      ("start_to_main_s", "open_store_s", "load_embedder_s", "load_model_s",
                       "question_to_first_token_s") if cold.get(k) is not None), "{:.2f} s")
    mem = (R.get("memory") or {}).get("rag_ask") or {}
    if mem.get("peak_rss_mb"):
        m = mem["peak_rss_mb"]
        fl = (R["memory"].get("floor_raw_libraries") or {}).get("peak_rss_mb")
        add("peak RSS of `rag ask` (0.5B, the first reader alone)", "<= 1,500 MB", m, m <= 1500,
            f"raw libraries alone {fl:.0f} MB" if fl else "", "{:.0f} MB")
    ui = (R.get("memory") or {}).get("ui") or {}
    if ui.get("peak_rss_mb") and len(ui.get("readers") or []) > 1:
        add(f"peak RSS of the chat UI with both readers of the cascade loaded ({' + '.join(ui['readers'])})",
            "reported", ui["peak_rss_mb"], None, "`python app.py`, models preloaded, no question asked",
            "{:.0f} MB")
    peer = R.get("peer") or {}
    if peer.get("ratio_ours_over_theirs_p50") is not None:
        r = peer["ratio_ours_over_theirs_p50"]
        cascade = (f" (ours: the default cascade, {peer['ours_escalated']} of {peer['questions']} answers by "
                   f"the second reader)") if peer.get("second_model") else ""
        add("median answer time vs stock LlamaIndex recipe" + cascade, "<= 0.5x", r, r <= 0.5,
            f"LlamaIndex p50 {peer['theirs_s']['p50']:.2f}s/answer", "{:.2f}x")
    return rows


def fmt_s(x, unit="s", scale=1.0, nd=2):
    return "-" if x is None else f"{x * scale:.{nd}f} {unit}".strip()


def render_markdown(R: dict) -> str:
    m = R["meta"]
    mi = m["machine"]
    L = ["# Benchmarks", "",
         "Generated by `python -m bench" + (" --quick" if m["quick"] else "") + "` (`make bench`); "
         "the numbers below are from one run. Every comparison with a raw library was measured in the "
         "same run, the two sides interleaved, and is summarised by its median (p50) and p95.", "",
         "## Machine and run", "",
         f"- date: {m['date']}",
         f"- command: `{m['command']}`",
         f"- total run time: {m['total_s'] / 60:.1f} min",
         f"- CPU: {mi.get('cpu_kind') or mi['cpu_model']} ({mi['nproc']} cores visible, `nproc`); SIMD flags: "
         f"{', '.join(mi['simd']) or '-'}",
         f"- Embedding path: `{m.get('embedder')}`, {m.get('embedder_runtime') or '-'}",
         f"- RAM: {mi['ram_gib']} GiB; Python {mi['python']}; {mi['platform']}",
         "- packages: " + ", ".join(f"{k} {v}" for k, v in mi["versions"].items() if v),
         f"- load average (1/5/15 min) at start {m['loadavg_start']}, at end {m.get('loadavg_end')}: "
         "the machine is shared, other jobs may have competed for the 2 cores; ratios are more "
         "trustworthy than absolute times. Each measurement also records how many cores *other* "
         "processes used meanwhile (`/proc/stat` minus our own CPU; 'other cores' below); before each "
         f"timed step the run waited up to 30 s for them to drop under 0.3 cores (waited "
         f"{m.get('waited_for_quiet_s', 0)} s in all).", ""]
    if m.get("notes"):
        L += ["Notes:", ""] + [f"- {n}" for n in m["notes"]] + [""]
    T = R.get("targets") or []
    if T:
        L += ["## Targets", "", "| target | goal | measured | status | floor (raw library alone) |",
              "| --- | --- | --- | --- | --- |"]
        L += [f"| {t['target']} | {t['goal']} | {t['measured']} | **{t['status']}** | {t['floor']} |" for t in T]
        L += [""]
    ing = R.get("ingest")
    if ing:
        L += ["## 1. Ingestion", "",
              f"`Bot.ingest` with the configured embedder (`{ing.get('embedder', '?')}`) into a fresh temporary "
              f"store (embedder already loaded: {ing['embedder_load_s']:.1f} s to load it is not included) vs "
              "today's torch encode, `SentenceTransformer.encode`, of the same chunk texts (batch 32, "
              "normalised): 'raw' below. Throughput vs torch = raw time / ours.", "",
              "| corpus | docs | chunks | ours first (p50) | torch encode (p50) | ours / raw | ours / raw, CPU s | ours chunks/s | raw chunks/s | unchanged re-ingest (p50) | unchanged / first | other cores (max) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        parts = []
        for name, d in ing.items():
            if not isinstance(d, dict) or "chunks" not in d:
                continue
            fc = max(d["foreign_cores"]["ours"] + d["foreign_cores"]["raw"])
            L.append(f"| {name} | {d['documents']} | {d['chunks']} | {d['ours_first_s']['p50']:.2f} s | "
                     f"{d['raw_encode_s']['p50']:.2f} s | {d['ratio_ours_over_raw']:.2f}x | "
                     f"{fmt_s(d['ratio_cpu_ours_over_raw'], 'x')} | "
                     f"{d['ours_chunks_per_s']:.1f} | {d['raw_chunks_per_s']:.1f} | "
                     f"{d['ours_unchanged_s']['p50']:.3f} s | {d['ratio_unchanged_over_first'] * 100:.1f}% | {fc:.2f} |")
            ps = d["parts_s"]
            parts.append(f"| {name} | {ps['read_and_hash_files']:.2f} | {ps['load_clean_detect']:.2f} | "
                         f"{ps['chunk_with_fits']:.2f} | {ps['encode_raw_median']:.2f} | "
                         f"{ps['encode_in_ingest_batches']:.2f} ({ps['ingest_batches']}) | "
                         f"{ps['registry_calls_per_doc']:.2f} | {ps['chroma_upsert']:.2f} | {ps['keyword_index_build']:.2f} |")
            ex = d.get("extrapolated_1000_articles")
            if ex:
                L.append(f"| 1,000 articles (**extrapolated**, x{1000 / int(name.split('-')[1]):g}) | 1000 | "
                         f"~{ex['chunks']} | ~{ex['ours_first_s']:.0f} s | ~{ex['raw_encode_s']:.0f} s | "
                         f"{d['ratio_ours_over_raw']:.2f}x | | | | ~{ex['ours_unchanged_s']:.1f} s | | |")
        L += ["", "Repeats: " + ", ".join(f"{k}: {v['repeats']}" for k, v in ing.items() if isinstance(v, dict) and "repeats" in v) + " "
              "(ours and raw alternated). Synthetic articles are seeded recombinations of the corpus's English "
              "sentences (~3 KB each, no metadata.json, so language detection runs as for a user's folder).", "",
              "Where ingestion time goes (each step timed once on its own, seconds):", "",
              "| corpus | read + SHA-256 files only | load + clean + detect language | chunk (with word-piece checks) | encode all at once (raw, p50) | encode in ingest's batches (n) | registry calls (pending, delete, done per doc) | Chroma upsert | keyword index build |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"] + parts + [""]
        pr = ing.get("process") or {}
        if "first_s" in pr:
            L += ["`rag ingest` as a process (RAG_STORE_DIR=fresh temp folder, RAG_CORPUS_DIR=corpus), whole-process wall time:", "",
                  "| first run (p50) | second run, unchanged (p50) | second / first | same in CPU s | `python -c 'import chromadb'` | `python -c pass` |",
                  "| --- | --- | --- | --- | --- | --- |",
                  f"| {pr['first_s']['p50']:.2f} s | {pr['second_s']['p50']:.2f} s | {pr['ratio_second_over_first'] * 100:.1f}% | "
                  f"{fmt_s(pr['first_cpu_s'].get('p50'), 's')} -> {fmt_s(pr['second_cpu_s'].get('p50'), 's')} | "
                  f"{pr['floor_python_import_chromadb_s']:.2f} s | {pr['floor_python_bare_s']:.2f} s |", "",
                  f"Second run printed: `{pr.get('second_run_says', '')}`", ""]
        elif pr:
            L += [f"`rag ingest` process: {pr}", ""]
    ret = R.get("retrieval")
    if ret:
        qe = ret["question_embedding_s"]
        L += ["## 2. Retrieval at scale", "",
              f"Stores of synthetic chunks (texts recombined from corpus sentences, 7 chunks per document, "
              f"vectors {ret['vectors']}), written through `Store` when first built and cached under "
              "`~/.cache/rag-bench/` (a cache built before records were packed keeps the older layout, which "
              "`Store` reads as well; each size's layout is beside it). "
              f"{ret['queries']} questions from eval/questions.jsonl, question vectors from the real embedder "
              f"computed beforehand; k={ret['k']}, candidate pool n_results as the retriever uses. "
              "raw = `collection.query(query_embeddings=..., n_results=n)`; dense = `Store.dense_query`; "
              "keyword = `KeywordIndex.query`; fused = `Retriever.search` (dense + BM25 + RRF + fold, "
              "question embedding excluded).", "",
              f"Question embedding alone: p50 {qe['p50'] * 1e3:.1f} ms, p95 {qe['p95'] * 1e3:.1f} ms.", "",
              "| chunks | raw Chroma p50 / p95 | dense p50 / p95 | keyword p50 / p95 | fused p50 / p95 | fused / raw (p50) | dense / raw | other cores |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        brk = []
        for n, d in ret["sizes"].items():
            cell = lambda k: f"{d[k]['p50'] * 1e3:.1f} / {d[k]['p95'] * 1e3:.1f} ms"
            layout = f" ({d['layout']})" if d.get("layout") else ""
            L.append(f"| {int(n):,}{layout} | {cell('raw_chroma')} | {cell('dense')} | {cell('keyword')} | {cell('fused')} | "
                     f"{d['ratio_fused_over_raw_p50']:.2f}x | {d['ratio_dense_over_raw_p50']:.2f}x | {d['foreign_cores']:.2f} |")
            b = d["fused_breakdown_p50"]
            bd = d.get("build") or {}
            sc = d["store_calls_p50"]
            brk.append(f"| {int(n):,} | {b['dense_s'] * 1e3:.1f} | {b['keyword_s'] * 1e3:.1f} "
                       f"({b.get('keyword_wait_s', 0) * 1e3:.1f}) | {b['fuse_s'] * 1e3:.1f} | "
                       f"{sc['store.count'] * 1e3:.1f} | {sc['store.generation'] * 1e3:.1f} | "
                       f"{sc['store.documents_cached'] * 1e3:.1f} | {sc['store.keyword_index_cached'] * 1e3:.1f} | "
                       f"{sc['store.get_chunks_12'] * 1e3:.1f} | "
                       f"{sc['distinctive_terms_all_candidates'] * 1e3:.1f} ({d['fold_candidates']}) | "
                       f"{d['store_open_s']:.2f} s | {d['keyword_index_load_s']:.2f} s | "
                       f"{bd.get('vectors_per_s', 0):.0f} ({bd.get('total_s', 0) / 60:.1f} min in all, once; cached) |")
        L += ["", "Where fused time goes: `Retriever.search`'s own step timings (BM25 runs in a worker thread "
              "while Chroma answers the dense query; in brackets the time the keyword step added after the "
              "dense one), then single `Store` calls (p50 ms; `documents()` and `keyword_index()` read the "
              "store generation, cached for 2 s; `count()` is not called per query; the fold reads each chunk's "
              "distinctive terms from its metadata, written at ingestion, instead of computing them), and store "
              "set-up:", "",
              "| chunks | dense step | keyword step (added) | fuse + fold step | count() | generation() | documents() cached | keyword_index() cached | get_chunks(12) | distinctive_terms on all candidates (n) | open store | load keyword index | build: vectors/s added (whole build) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"] + brk + [""]
    arc = R.get("archive")
    if arc:
        L += ["## 7. Archive scale", ""]
        if arc.get("skipped"):
            L += [f"Skipped: {arc['skipped']}.", ""]
        rt = arc.get("rtqa_ingest") or {}
        if "chunks" in rt:
            fc = rt["foreign_cores"]
            fc = max(fc) if isinstance(fc, list) else fc
            pairs = rt.get("pairs") or []
            L += [f"`rag ingest {rt['corpus']}` as a process into a fresh store, embedder `{rt['embedder']}` "
                  "(export already cached), then the same command again"
                  + (f"; medians of {len(pairs)} pairs of (ingest, torch encode), run in turn" if pairs else "")
                  + ":", "",
                  "| chunks | ingest wall | CPU s (first) | peak RSS | ours chunks/s | torch encode chunks/s (sample) | "
                  "bare encode chunks/s, same embedder | throughput vs torch | unchanged run wall | other cores |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
                  f"| {rt['chunks']:,} | {rt['first_wall_s']:.1f} s | {fmt_s(rt['first_cpu_s'], 's', nd=1)} | "
                  f"{rt['peak_rss_mb']:.0f} MB | {rt['ours_chunks_per_s']:.1f} | "
                  f"{rt['torch_encode_chunks_per_s']:.1f} ({rt['sample_chunks']}) | "
                  f"{rt['backend_encode_chunks_per_s']:.1f} | {rt['throughput_vs_torch_encode']:.2f}x | "
                  f"{rt['unchanged_wall_s']:.2f} s | {fc:.2f} |", ""]
            if pairs:
                L += ["| pair | ingest wall | ours chunks/s | torch encode chunks/s | ratio | peak RSS |",
                      "| --- | --- | --- | --- | --- | --- |"]
                L += [f"| {i + 1} | {x['ingest_wall_s']:.1f} s | {x['ours_chunks_per_s']:.1f} | "
                      f"{x['torch_encode_chunks_per_s']:.1f} | {x['ratio']:.2f}x | {x['peak_rss_mb']:.0f} MB |"
                      for i, x in enumerate(pairs)]
                L += [""]
            L += ["The torch rate is measured on an evenly spaced sample of the same stored chunks "
                  "(sentence-transformers, batch 32); ours is the whole process: start-up, reading, cleaning, "
                  "language detection, chunking, embedding, Chroma writes and the keyword index. "
                  f"First run printed: `{' / '.join(rt.get('documents_line') or [])}`.", ""]
        elif rt:
            L += [f"rtqa-dev ingest: {rt}", ""]
        q = arc.get("quality") or {}
        if q:
            L += ["Retrieval quality, configured embedder beside torch, same questions, same run (answerable "
                  "questions with gold sources; k as configured; each asked as of its question date when it has one, "
                  "as `rag eval` does; xlqa questions not in English are translated "
                  "by the default model first, the same way for both):", "",
                  "| set | questions | embedder | recall at k | MRR | recall by (question, source) language |",
                  "| --- | --- | --- | --- | --- | --- |"]
            for name, d in q.items():
                for label in ("default", "torch"):
                    e = d[label]
                    cells = ", ".join(f"{c} {v:.2f}" for c, v in e["recall_by_cell"].items()) or "-"
                    L.append(f"| {name} | {d['questions']} | `{e['embedder']}` | {e['recall_at_k']:.3f} | "
                             f"{e['mrr']:.3f} | {cells} |")
            L += [""]
        r10 = arc.get("reingest_10k") or {}
        if "wall_s" in r10:
            L += [f"Unchanged re-ingest of a {r10['documents']:,}-document archive ({r10['chunks']:,} chunks; "
                  "synthetic short articles, store cached under `~/.cache/rag-bench/`), `rag ingest FOLDER` as a "
                  f"process: p50 {r10['wall_s']['p50']:.2f} s (p95 {r10['wall_s']['p95']:.2f} s, CPU p50 "
                  f"{fmt_s(r10['cpu_s'].get('p50'), 's')}); `rag --help` alone {r10['floor_rag_help_s']:.2f} s. "
                  f"It printed: `{' / '.join(r10['says'])}`.", ""]
        elif r10:
            L += [f"10k re-ingest: {r10}", ""]
    cs = R.get("coldstart")
    if cs and "p50" in cs:
        p50 = cs["p50"]
        L += ["## 8. Cold start: `rag ask --timings`", "",
              f"A new process each time (store ingested, files in the OS cache), {len(cs['runs'])} runs, p50 "
              f"seconds; question: \"{cs['question']}\"; model `{cs['model']}`, embedder backend "
              f"`{cs['embedder_backend']}`.", "",
              "| process start to `main` (interpreter, `import rag.cli`) | open store (imports chromadb) | load embedder | load model | "
              "question: analyse | question: retrieve | question to first token (incl. analyse, retrieve, prompt) | "
              "**process start to first token** | whole process |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
              "| " + " | ".join(fmt_s(p50.get(k)) for k in (
                  "start_to_main_s", "open_store_s", "load_embedder_s", "load_model_s", "answer.analyse_s",
                  "answer.retrieval_s", "question_to_first_token_s")) +
              f" | **{fmt_s(p50.get('process_start_to_first_token_s'))}** | {fmt_s(p50.get('process_wall_s'))} |", ""]
    elif cs:
        L += ["## 8. Cold start", "", f"{cs}", ""]
    srv = R.get("server")
    if srv:
        if "skipped" in srv:
            L += ["## 3. Chroma server vs embedded", "", f"Skipped: {srv['skipped']}", ""]
        else:
            cell = lambda k: f"{srv[k]['p50'] * 1e3:.1f} / {srv[k]['p95'] * 1e3:.1f} ms"
            L += ["## 3. Chroma server vs embedded", "",
                  f"The {srv['chunks']:,}-chunk store copied into `chroma run --host 127.0.0.1` "
                  f"({srv['copy_s']:.1f} s to copy), queried interleaved with the embedded copy "
                  f"(other cores: {srv['foreign_cores']:.2f}, the server's own CPU counted as ours).", "",
                  "| query | embedded p50 / p95 | server p50 / p95 | server / embedded (p50) |",
                  "| --- | --- | --- | --- |"]
            for w in ("raw", "dense", "fused"):
                L.append(f"| {w} | {cell('embedded_' + w)} | {cell('server_' + w)} | "
                         f"{srv[f'ratio_server_over_embedded_{w}_p50']:.2f}x |")
            L += [""]
    for key, title in (("answer", "## 4. Answering (default preset)"), ("answer_1_5b", "## 4b. Answering (1.5B preset)")):
        a = R.get(key)
        if not a:
            continue
        if "skipped" in a:
            L += [title, "", f"Skipped: {a['skipped']}", ""]
            continue
        L += [title, "",
              f"`{a['preset']}`: `Bot.stream` (retrieval, prompt, generation, verification) vs a separate raw "
              "`llama_cpp.Llama` with the same settings running `create_completion(stream=True)` on the identical "
              f"prompt (rendered with the bot's `LocalLLM.render`); {a['questions']} questions"
              + (f" (of {a['questions_planned']} planned: the section's time budget ran out)"
                 if a.get("questions_planned", a["questions"]) > a["questions"] else "") + ", alternating "
              f"which goes first. Identical prompt tokens: {a['identical_prompts']}/{a['questions']}; identical "
              f"drafts: {a['identical_drafts']}/{a['questions']}. Model load: ours "
              f"{a['load_s']['ours_load_llm_incl_sha256']:.1f} s (incl. SHA-256 check), raw {a['load_s']['raw_llama']:.1f} s.", "",
              "| | ours p50 / p95 | raw llama.cpp p50 / p95 | ours / raw |", "| --- | --- | --- | --- |",
              f"| total per answer | {a['ours_total_s']['p50']:.2f} / {a['ours_total_s']['p95']:.2f} s | "
              f"{a['raw_total_s']['p50']:.2f} / {a['raw_total_s']['p95']:.2f} s | {a['ratio_of_medians']:.2f}x "
              f"(per-question median {a['ratio_total_p50']:.2f}x; CPU s {fmt_s(a.get('ratio_cpu'), 'x')}) |",
              f"| time to first token | {a['ours_ttft_s']['p50']:.2f} / {a['ours_ttft_s']['p95']:.2f} s | "
              f"{a['raw_ttft_s']['p50']:.2f} / {a['raw_ttft_s']['p95']:.2f} s | "
              f"{ratio(a['ours_ttft_s']['p50'], a['raw_ttft_s']['p50']):.2f}x |",
              f"| prompt tokens/s (p50) | {a['ours_prompt_tok_per_s_p50']:.0f} | {a['raw_prompt_tok_per_s_p50']:.0f} | |",
              f"| generation tokens/s (p50) | {fmt_s(a['ours_gen_tok_per_s_p50'], '', nd=1)} | "
              f"{fmt_s(a['raw_gen_tok_per_s_p50'], '', nd=1)} | |",
              f"| first question TTFT (cold prefix cache) | {a['first_question']['ours_ttft_s']:.2f} s | "
              f"{a['first_question']['raw_ttft_s']:.2f} s | |",
              f"| later questions TTFT (p50, system prompt cached) | {fmt_s(a['later_questions']['ours_ttft_s_p50'])} | "
              f"{fmt_s(a['later_questions']['raw_ttft_s_p50'])} | |", "",
              f"Other processes used {a['foreign_cores_p50']:.2f} cores (p50, max {a['foreign_cores_max']:.2f}) "
              "while these were measured. "
              f"Prompt {a['prompt_tokens_p50']:.0f} tokens and answer {a['completion_tokens_p50']:.0f} tokens (p50). "
              f"Our extra steps (p50): retrieval incl. question embedding {fmt_s(a['ours_retrieval_s_p50'], 'ms', 1e3, 1)}, "
              f"verification {fmt_s(a['ours_verify_s_p50'], 'ms', 1e3, 1)}. Prompt tokens/s = prompt tokens / "
              "prompt time (ours: llama.cpp's prompt time; raw: its TTFT), cached prefix tokens included. "
              f"Consecutive prompts share only {fmt_s(a['later_questions'].get('prefix_tokens_shared_p50'), 'tokens', nd=0)} "
              "(p50: the system prompt and the start of the passage list), so llama.cpp's prefix cache saves little; "
              f"each uncached prompt token costs {fmt_s(a['later_questions'].get('ms_per_uncached_prompt_token_p50'), 'ms', nd=1)} (p50).", "",
              "| question | ours total / TTFT | raw total / TTFT | prompt + answer tokens | other cores ours / raw |",
              "| --- | --- | --- | --- | --- |"]
        for r in a["rows"]:
            o, w = r["ours"], r["raw"]
            L.append(f"| {r['question'][:70]} | {o['total_s']:.2f} / {o['ttft_s']:.2f} s | {w['total_s']:.2f} / "
                     f"{w['ttft_s']:.2f} s | {o['prompt_tokens']} + {o['completion_tokens']} | "
                     f"{o['foreign_cores']:.2f} / {w['foreign_cores']:.2f} |")
        L.append("")
    peer = R.get("peer")
    if peer:
        L += ["## 5. Peer: stock LlamaIndex recipe", ""]
        if "skipped" in peer:
            L += [f"Skipped: {peer['skipped']}", ""]
        else:
            L += [f"Recipe: {peer['recipe']}. Same 0.5B GGUF, same packaged embedder folder. "
                  f"{peer['questions']} first questions of eval/questions.jsonl"
                  + (f" (of {peer['questions_planned']} planned: the section's time budget ran out)"
                     if peer.get("questions_planned", peer["questions"]) > peer["questions"] else "")
                  + ", alternating which side goes first.", "",
                  "| | ours | LlamaIndex | ours / theirs (p50) |", "| --- | --- | --- | --- |",
                  f"| seconds per answer p50 / p95 | {peer['ours_s']['p50']:.2f} / {peer['ours_s']['p95']:.2f} | "
                  f"{peer['theirs_s']['p50']:.2f} / {peer['theirs_s']['p95']:.2f} | {peer['ratio_ours_over_theirs_p50']:.2f}x |", "",
                  f"Ours refused {peer['ours_refused']} of {peer['questions']} (the LLM ran for "
                  f"{peer['ours_llm_called']}); a refusal by the evidence gate costs no generation. "
                  f"LlamaIndex set-up (not in the per-answer time): load {peer['peer_load_llm_and_embedder_s']:.1f} s, "
                  f"index {peer['peer_index_s']:.1f} s. Other processes used up to {peer['foreign_cores_max']:.2f} "
                  "cores meanwhile.", "",
                  "| question | ours s | LlamaIndex s | ours refused | other cores ours / theirs |",
                  "| --- | --- | --- | --- | --- |"]
            L += [f"| {r['question'][:70]} | {r['ours']['s']:.2f} | {r['theirs']['s']:.2f} | {r['ours']['refused']} | "
                  f"{r['ours']['foreign_cores']:.2f} / {r['theirs']['foreign_cores']:.2f} |" for r in peer["rows"]]
            L += [""]
    mem = R.get("memory")
    if mem:
        ra, fl, ui = mem.get("rag_ask", {}), mem.get("floor_raw_libraries", {}), mem.get("ui", {})
        L += ["## 6. Memory", "", "| process | peak RSS | wall time | note |", "| --- | --- | --- | --- |",
              f"| `rag ask` (default model, the first reader alone, store ingested) | {ra.get('peak_rss_mb', 0):.0f} MB | {ra.get('wall_s', 0):.1f} s | "
              f"exit {ra.get('rc')}; peak from {ra.get('peak_from', '')} |",
              f"| raw libraries, same work (floor) | {fl.get('peak_rss_mb', 0):.0f} MB | {fl.get('wall_s', 0):.1f} s | {fl.get('what', '')} |"]
        if "skipped" in ui:
            L.append(f"| `python app.py` | - | - | skipped: {ui['skipped'][:200]} |")
        elif ui:
            L.append(f"| `python app.py` (UI) | {ui.get('peak_rss_mb') or 0:.0f} MB (VmHWM) | HTTP ready after "
                     f"{ui['http_ready_s']:.1f} s | models preloaded ({' + '.join(ui.get('readers') or [])}): "
                     f"{ui['model_preloaded']}; no question asked |")
        L += ["", "MB = 10^6 bytes. RSS includes the memory-mapped GGUF pages the process touched.", ""]
    if R.get("errors"):
        L += ["## Errors", ""] + [f"- {k}: {v}" for k, v in R["errors"].items()] + [""]
    return "\n".join(L)
