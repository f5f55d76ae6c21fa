"""Section 7, archive scale on real news and on a 10,000-document folder.

- ``rag ingest`` of ``rtqa-dev`` (the team's development set in ``../shared/bench``), paired runs, as a
  process into a fresh store: wall time, peak RSS, chunks/s, against today's torch encode
  (sentence-transformers) of a sample of the same chunks; then the same command unchanged.
- Retrieval quality (recall at k, MRR) on ``rtqa-dev`` and ``xlqa-dev`` with the configured
  embedder beside the torch embedder, in the same run (stores cached between runs).
- Unchanged re-ingest of a 10,000-document archive (synthetic, cached) as a process.

The first two need ``../shared/bench`` (not part of a user's clone): without it they are
skipped and the results say so; the third always runs.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from .harness import ROOT, log, median, rag_command, rag_env, ratio, run_measured, summary
from .synthetic import cache_root

SAMPLE_CHUNKS = 600  # every 26th chunk of rtqa-dev; torch encodes multilingual-e5-small at ~31 chunks/s on 2 quiet cores, so the whole set would add ~8 minutes per pair
ARCHIVE_DOCS = 10_000
ARCHIVE_VERSION = "1"


def shared_bench(path: Path | None) -> Path | None:
    path = Path(path or ROOT.parent / "shared" / "bench").resolve()
    return path if (path / "rtqa-dev" / "corpus").is_dir() else None


def run(ctx: dict) -> dict:
    sb = ctx.get("shared_bench")
    out: dict = {}
    if sb is None:
        out["skipped"] = (f"{ctx.get('shared_bench_asked') or ROOT.parent / 'shared' / 'bench'} is not here "
                          "(the team's development sets, not part of a clone): the rtqa-dev ingest and the "
                          "retrieval-quality comparison were not run")
        log("archive: " + out["skipped"])
    else:
        out["rtqa_ingest"] = ingest_process(ctx, sb / "rtqa-dev" / "corpus")
        out["quality"] = {}
        for name in ("rtqa-dev", "xlqa-dev"):
            if (sb / name / "corpus").is_dir():
                out["quality"][name] = quality(ctx, sb / name)
    out["reingest_10k"] = reingest_archive(ctx)
    return out


def ingest_process(ctx: dict, corpus: Path) -> dict:
    """``rag ingest CORPUS`` into a fresh store, paired with today's torch encode of a sample of
    the same chunks, ``archive_pairs`` times (the ratio is the median of the pairs': one timing
    of torch moved 84-94 chunks/s between runs on this VM); then the same command unchanged."""
    from rag.store import Store

    torch_emb, emb = ctx["torch_embedder"](), ctx["embedder"]
    runs, pairs, sample, chunks, foreign = [], [], None, None, []
    for r in range(ctx["p"]["archive_pairs"]):
        store_dir = ctx["tmp"] / f"rtqa-store-{r}"
        env = rag_env(ctx["base"], store_dir)
        ctx["cont"].wait_quiet()
        snap = ctx["cont"].snapshot()
        log(f"archive: rag ingest {corpus} (fresh store, pair {r + 1})")
        run_ = run_measured(rag_command() + ["ingest", str(corpus)], env=env, cwd=ROOT, timeout=3600)
        foreign.append(ctx["cont"].foreign(snap))
        if run_["rc"]:
            return {"error": f"rag ingest failed: {run_['stderr'][-800:]}"}
        m = re.search(r"embedded (\d+) chunks", run_["stdout"])
        chunks = int(m.group(1)) if m else None
        runs.append(run_)
        if sample is None:
            texts = Store(path=store_dir).all_chunk_texts()
            ids = sorted(texts)
            step = max(1, len(ids) // SAMPLE_CHUNKS)
            sample = [texts[i] for i in ids[::step]][:SAMPLE_CHUNKS]
        ctx["cont"].wait_quiet()
        a = time.perf_counter()
        torch_emb.encode(sample)  # the same model on sentence-transformers/torch (its prefix included)
        torch_rate = len(sample) / (time.perf_counter() - a)
        a = time.perf_counter()
        ctx["minilm_torch"]().encode(sample)  # yesterday's default embedder on torch (issue 22's baseline)
        minilm_rate = len(sample) / (time.perf_counter() - a)
        ours_rate = chunks / run_["wall_s"] if chunks else None
        pairs.append({"ingest_wall_s": run_["wall_s"], "ours_chunks_per_s": ours_rate,
                      "torch_encode_chunks_per_s": torch_rate, "ratio": ratio(ours_rate, torch_rate),
                      "minilm_torch_encode_chunks_per_s": minilm_rate,
                      "ratio_vs_minilm_torch": ratio(ours_rate, minilm_rate),
                      "peak_rss_mb": run_["peak_rss_mb"]})
        log(f"  pair {r + 1}: rag ingest {run_['wall_s']:.1f}s ({chunks} chunks, {ours_rate:.1f} chunks/s, peak "
            f"{run_['peak_rss_mb']:.0f} MB); torch encode {torch_rate:.1f} chunks/s; ratio {pairs[-1]['ratio']:.2f}x")
    second = run_measured(rag_command() + ["ingest", str(corpus)], env=env, cwd=ROOT)
    log(f"  unchanged {second['wall_s']:.2f}s")
    a = time.perf_counter()
    emb.encode(sample)
    ours_raw_s = time.perf_counter() - a
    first = runs[0]
    peak = max(runs, key=lambda x: x["peak_rss_mb"])
    torch_rate = median([p_["torch_encode_chunks_per_s"] for p_ in pairs])
    log(f"  median of {len(pairs)} pairs: ratio {median([p_['ratio'] for p_ in pairs]):.2f}x; "
        f"{emb.name} encode {len(sample) / ours_raw_s:.1f} chunks/s")
    proxy = avx2_proxy(ctx, sample)
    return {"corpus": str(corpus), "documents_line": first["stdout"].strip().splitlines()[-2:],
            "avx2_proxy": proxy,
            "chunks": chunks, "first_wall_s": median([x["wall_s"] for x in runs]), "first_cpu_s": first["cpu_s"],
            "peak_rss_mb": peak["peak_rss_mb"], "peak_from": peak["peak_from"], "pairs": pairs,
            "unchanged_wall_s": second["wall_s"], "unchanged_says": second["stdout"].strip().splitlines()[-2:],
            "foreign_cores": foreign, "embedder": emb.name,
            "ours_chunks_per_s": median([p_["ours_chunks_per_s"] for p_ in pairs]), "sample_chunks": len(sample),
            "torch_encode_chunks_per_s": torch_rate, "backend_encode_chunks_per_s": len(sample) / ours_raw_s,
            "throughput_vs_torch_encode": median([p_["ratio"] for p_ in pairs]),
            "minilm_torch_encode_chunks_per_s": median([p_["minilm_torch_encode_chunks_per_s"] for p_ in pairs]),
            "throughput_vs_minilm_torch_encode": median([p_["ratio_vs_minilm_torch"] for p_ in pairs])}


AVX2_SCRIPT = """
import json, sys, time
from rag import embedding
from rag.config import Config
from rag.embedding import Embedder
sample = json.load(open(sys.argv[1], encoding="utf-8"))
base = Config.from_env()
root = base.model_cache / "embedders"
# what openvino_precision answers on a CPU without bfloat16 (OpenVINO still reports BF16 here)
embedding.openvino_precision = lambda core=None: ("f32", "no native bfloat16 (AVX2 only)")
ours = Embedder(base.embedder, backend="openvino", cache_root=root)
torch_ = Embedder(base.embedder, backend="torch", cache_root=root)
rates = {"openvino_f32": [], "torch": []}
for _ in range(2):
    for name, e in (("openvino_f32", ours), ("torch", torch_)):
        e.encode(sample[:32])
        a = time.perf_counter()
        e.encode(sample)
        rates[name].append(len(sample) / (time.perf_counter() - a))
print(json.dumps(rates))
"""


def avx2_proxy(ctx: dict, sample: list[str]) -> dict:
    """The embedding step as an AVX2-only CPU (AMD EPYC Zen 3) runs it, measured on this one: the
    float32 path with oneDNN (OpenVINO's and torch's kernels) and MKL held to AVX2
    (``ONEDNN_MAX_CPU_ISA=AVX2``, ``MKL_ENABLE_INSTRUCTIONS=AVX2``, ``ATEN_CPU_CAPABILITY=avx2``),
    vs torch under the same limits, in a process of its own. A proxy: the instruction set is
    Zen 3's, the clocks, caches and memory are this machine's."""
    import json
    import os
    import sys

    if not str(ctx["base"].embedder_backend).startswith("openvino"):
        return {"skipped": "the configured backend is not openvino"}
    file = ctx["tmp"] / "avx2-sample.json"
    file.write_text(json.dumps(sample), "utf-8")
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
           "ATEN_CPU_CAPABILITY": "avx2"}
    ctx["cont"].wait_quiet()
    log("archive: the embedding step held to AVX2 (proxy for an AVX2-only CPU)")
    r = run_measured([sys.executable, "-c", AVX2_SCRIPT, str(file)], env=env, cwd=ROOT)
    if r["rc"]:
        return {"error": r["stderr"][-800:]}
    rates = json.loads(r["stdout"].strip().splitlines()[-1])
    ours, torch_ = median(rates["openvino_f32"]), median(rates["torch"])
    log(f"  AVX2 proxy: openvino f32 {ours:.1f} chunks/s, torch {torch_:.1f} chunks/s, {ours / torch_:.2f}x")
    return {"sample_chunks": len(sample), "openvino_f32_chunks_per_s": ours, "torch_chunks_per_s": torch_,
            "ratio": ours / torch_, "runs": rates,
            "env": {k: env[k] for k in ("ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")}}


def quality(ctx: dict, set_dir: Path) -> dict:
    """Retrieval recall at k and MRR of the answerable questions, configured embedder vs torch,
    each question asked as of its ``question_date`` when it has one (as ``rag eval`` does)."""
    import json

    from rag.bot import Bot
    from rag.evaluate import corpus_key, retrieval_scores
    from rag.store import Store

    base = ctx["base"]
    questions = [json.loads(line) for line in (set_dir / "questions.jsonl").read_text("utf-8").splitlines()
                 if line.strip()]
    questions = [q for q in questions if q.get("answerable") and q.get("gold_sources")]
    out: dict = {"questions": len(questions), "k": base.top_k}
    for label, emb in (("default", ctx["embedder"]), ("torch", ctx["torch_embedder"]())):
        backend = "torch" if label == "torch" else base.embedder_backend
        cfg = base.replace(corpus_dir=set_dir / "corpus", embedder_backend=backend)
        store_dir = cache_root() / "quality-stores" / corpus_key(set_dir / "corpus", cfg)
        cfg = cfg.replace(store_dir=store_dir)
        bot = Bot(cfg, Store(path=store_dir, collection=cfg.collection), emb, llm=ctx["llm"]())
        a = time.perf_counter()
        rep = bot.ingest([set_dir / "corpus"])
        log(f"archive: {set_dir.name} {emb.name}: store {rep.summary()}")
        ingest_s = time.perf_counter() - a
        recalls, rrs, cells = [], [], {}
        for q in questions:
            # as `rag eval` asks: as of the question's date (RealTime QA's question_date), if any
            r, rr = retrieval_scores(q["gold_sources"], bot.search(q["question"], base.top_k,
                                                                   as_of=q.get("question_date") or None))
            recalls.append(r)
            rrs.append(rr)
            if q.get("source_language"):
                cells.setdefault(f"{q['language']}->{q['source_language']}", []).append(r)
        out[label] = {"embedder": emb.name, "recall_at_k": sum(recalls) / len(recalls),
                      "mrr": sum(rrs) / len(rrs), "store_ingest_s": ingest_s,
                      "recall_by_cell": {c: sum(v) / len(v) for c, v in sorted(cells.items())}}
        log(f"  {emb.name}: recall@{base.top_k} {out[label]['recall_at_k']:.3f}, MRR {out[label]['mrr']:.3f}")
    out["recall_diff"] = out["default"]["recall_at_k"] - out["torch"]["recall_at_k"]
    out["mrr_diff"] = out["default"]["mrr"] - out["torch"]["mrr"]
    return out


def archive_folder(sentences: list[str]) -> Path:
    """10,000 short synthetic articles (a title and 3-6 corpus sentences each), cached."""
    import random

    folder = cache_root() / f"archive-{ARCHIVE_DOCS}-v{ARCHIVE_VERSION}" / "corpus"
    marker = folder.parent / "complete"
    if marker.exists():
        return folder
    log(f"archive: writing {ARCHIVE_DOCS:,} articles into {folder} (cached for later runs)")
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    for i in range(ARCHIVE_DOCS):
        body = " ".join(rng.sample(sentences, rng.randint(3, 6)))
        (folder / f"a{i:05d}.txt").write_text(f"Archive report {i:05d}\n\n{body}\n", "utf-8")
    marker.write_text("ok\n")
    return folder


def reingest_archive(ctx: dict) -> dict:
    """``rag ingest`` of an unchanged 10,000-document folder: process wall time (p50 of 3)."""
    from rag.bot import Bot
    from rag.store import Store

    base, emb = ctx["base"], ctx["embedder"]
    folder = archive_folder(ctx["sentences"])
    store_dir = folder.parent / f"store-{re.sub(r'[^A-Za-z0-9._-]+', '_', emb.name)}"
    cfg = base.replace(corpus_dir=folder, store_dir=store_dir)
    a = time.perf_counter()
    rep = Bot(cfg, Store(path=store_dir, collection=cfg.collection), emb).ingest([folder])
    log(f"archive: 10k store ready ({rep.summary()}; {time.perf_counter() - a:.1f}s)")
    env = rag_env(ctx["base"], store_dir)
    walls, cpus, says = [], [], ""
    for _ in range(3):
        ctx["cont"].wait_quiet()
        r = run_measured(rag_command() + ["ingest", str(folder)], env=env, cwd=ROOT)
        if r["rc"]:
            return {"error": f"rag ingest failed: {r['stderr'][-800:]}"}
        walls.append(r["wall_s"])
        cpus.append(r["cpu_s"])
        says = r["stdout"].strip().splitlines()[-2:]
        log(f"  unchanged re-ingest of {ARCHIVE_DOCS:,} documents: {r['wall_s']:.2f}s")
    floor = run_measured(rag_command() + ["--help"], cwd=ROOT)
    return {"documents": ARCHIVE_DOCS, "chunks": Store(path=store_dir).count(), "wall_s": summary(walls),
            "cpu_s": summary(cpus), "says": says, "p50_s": median(walls),
            "floor_rag_help_s": floor["wall_s"]}
