"""Performance benchmark: the bot against the raw libraries it wraps, in one run.

    python -m rag.bench            # full run (< 30 min on 2 cores) -> bench/results.json, BENCHMARKS.md
    python -m rag.bench --quick    # small sizes, few repeats, for checking (-> a temp folder)

The machine is shared and noisy, so every comparison is made inside the same run with the
two sides interleaved (ours, raw, raw, ours, ...) and summarised by medians. Sections:

1. ingest     ``Bot.ingest`` into a fresh store vs ``SentenceTransformer.encode`` of the same
              chunk texts; unchanged re-ingest vs first; ``rag ingest`` as a process, twice.
2. retrieval  1k/10k/100k-chunk stores (synthetic vectors beside recombined corpus sentences,
              cached under ~/.cache/rag-bench): dense, keyword, fused vs a raw Chroma query.
3. server     the 10k store copied into a ``chroma run`` server vs embedded.
4. answer     ``Bot.ask`` vs ``Llama.create_completion`` on the identical rendered prompt.
5. peer       the stock LlamaIndex recipe (VectorStoreIndex on Chroma + CitationQueryEngine).
6. memory     peak RSS of ``rag ask``, of the raw libraries doing the same work, of ``app.py``.
7. answer-1.5b  section 4 for the 1.5B preset, when installed and the time budget allows.

This module measures; it changes nothing in the bot. Stores are built in temporary folders
(the retrieval stores in the cache folder); the model cache is the default one.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from .config import PROJECT_DIR, Config

BENCH_STORE_VERSION = "2"  # 2: chunks carry their distinctive terms, as ingestion writes them
SEED = 1234
DIM = 384
STOPS = ["<|im_end|>", "<|endoftext|>"]
QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

# Section budgets (seconds) keep the full run under 30 minutes on a busy machine: a loop
# stops repeating when its section's budget would be overrun, and says so in the results.
FULL = dict(synthetic_articles=200, ingest_repeats=2, corpus_repeats=3, process_repeats=2,
            sizes=[1_000, 10_000, 100_000], queries=50, server_size=10_000, answer_questions=5,
            peer_questions=10, big_questions=3, min_questions=3, min_peer_questions=5,
            budget_s={"ingest": 420, "retrieval": 240, "server": 90, "answer": 210, "peer": 300,
                      "memory": 120, "answer_1_5b": 180})
QUICK = dict(synthetic_articles=20, ingest_repeats=2, corpus_repeats=2, process_repeats=1,
             sizes=[1_000, 10_000], queries=15, server_size=1_000, answer_questions=2,
             peer_questions=2, big_questions=1, min_questions=1, min_peer_questions=1,
             budget_s={"ingest": 240, "retrieval": 120, "server": 60, "answer": 120, "peer": 120,
                       "memory": 120, "answer_1_5b": 120})

T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[bench {time.perf_counter() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# -- statistics ----------------------------------------------------------------------------
def summary(xs: list[float]) -> dict:
    import numpy as np

    xs = [x for x in xs if x is not None]
    if not xs:
        return {"n": 0}
    a = np.asarray(xs, dtype=float)
    return {"n": len(xs), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "min": float(a.min()), "max": float(a.max()), "mean": float(a.mean())}


def median(xs: list[float]) -> float | None:
    import statistics

    xs = [x for x in xs if x is not None]
    return float(statistics.median(xs)) if xs else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def cpu_s() -> float:
    """CPU seconds of this process, all threads (user + system): less sensitive than wall time
    to other jobs on the machine, though spinning thread pools still inflate it."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Contention:
    """How many cores other processes used while we measured (from /proc/stat minus our own CPU).

    The machine is shared: a llama.cpp or torch job of someone else's on the 2 cores slows our
    2-thread pools far more than 2x (threads wait for each other at every barrier). Each timed
    measurement records ``foreign_cores``; ``wait_quiet`` waits (within a budget) for a calm moment.
    """

    HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, wait_budget_s: float):
        self.wait_budget_s = wait_budget_s
        self.waited_s = 0.0
        self.pids: set[int] = set()  # our own helper processes (e.g. the Chroma server)

    def _busy(self) -> float:
        try:
            f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except OSError:
            return 0.0
        user, nice, system, idle, iowait, irq, softirq, steal = (f + [0] * 8)[:8]
        return (user + nice + system + irq + softirq + steal) / self.HZ

    def _ours(self) -> float:
        total = cpu_s()
        for pid in list(self.pids):
            try:
                st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(st[11]) + int(st[12])) / self.HZ
            except (OSError, IndexError, ValueError):
                self.pids.discard(pid)
        return total

    def snapshot(self) -> tuple[float, float, float]:
        return time.perf_counter(), self._busy(), self._ours()

    def foreign(self, snap) -> float:
        t, busy, ours = snap
        t2, busy2, ours2 = self.snapshot()
        wall = max(t2 - t, 1e-6)
        return max(0.0, round(((busy2 - busy) - (ours2 - ours)) / wall, 2))

    def wait_quiet(self, threshold: float = 0.3, max_wait: float = 30.0) -> float:
        """Wait until other processes use less than ``threshold`` cores (0.5 s samples)."""
        t0 = time.perf_counter()
        while True:
            snap = self.snapshot()
            time.sleep(0.5)
            load = self.foreign(snap)
            waited = time.perf_counter() - t0
            if load < threshold or waited >= max_wait or self.waited_s + waited >= self.wait_budget_s:
                self.waited_s += waited
                return load
            time.sleep(1.5)


class Budget:
    """Seconds left for the current section."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()

    def allows(self, estimate_s: float) -> bool:
        return self.left() >= estimate_s


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- machine -------------------------------------------------------------------------------
def machine_info() -> dict:
    cpu, mem_kb, flags = "", 0, set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    versions = {}
    from importlib import metadata

    for pkg in ("chromadb", "llama_cpp_python", "sentence-transformers", "torch", "bm25s",
                "llama-index-core", "llama-index-llms-llama-cpp", "llama-index-embeddings-huggingface",
                "llama-index-vector-stores-chroma", "gradio"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "ram_gib": round(mem_kb / 2**20, 1),
            "simd": sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")),
            "python": platform.python_version(), "platform": platform.platform(),
            "versions": versions}


# -- helpers -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def proc_status(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM", "VmRSS")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0]) / 1000.0  # kB -> MB
    except OSError:
        pass
    return out


def run_measured(cmd: list[str], env: dict | None = None, cwd: Path | None = None,
                 timeout: float = 900) -> dict:
    """Run a process to completion: wall seconds, peak RSS (MB), CPU seconds, exit code, output.

    The peak comes from GNU time (``/usr/bin/time -f %M``): the rusage that ``wait4`` gives
    for a child of *this* process is useless here, because Linux carries the parent's
    high-water RSS across the (v)fork + exec into the child's ``ru_maxrss`` (it read exactly the
    benchmark's own 2.2 GB for two different children). Without GNU time, /proc VmHWM is polled.
    """
    gnu_time = Path("/usr/bin/time")
    with tempfile.TemporaryDirectory() as d:
        tf = Path(d) / "time.txt"
        full = ([str(gnu_time), "-f", "%M %U %S", "-o", str(tf)] + cmd) if gnu_time.exists() else cmd
        hwm = 0.0
        t0 = time.perf_counter()
        with open(Path(d) / "out", "wb") as out, open(Path(d) / "err", "wb") as err:
            p = subprocess.Popen(full, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            deadline = time.time() + timeout
            while p.poll() is None:
                if not gnu_time.exists():
                    hwm = max(hwm, proc_status(p.pid).get("VmHWM", 0.0))
                if time.time() > deadline:
                    p.kill()
                    p.wait()
                    break
                time.sleep(0.02)
        wall = time.perf_counter() - t0
        cpu = None
        if tf.exists():
            try:
                last = tf.read_text().strip().splitlines()[-1].split()
                hwm, cpu = int(last[0]) / 1000.0, float(last[1]) + float(last[2])
            except (ValueError, IndexError):
                pass
        return {"wall_s": wall, "peak_rss_mb": hwm, "rc": p.returncode, "cpu_s": cpu,
                "peak_from": "GNU time %M" if gnu_time.exists() else "polled /proc VmHWM",
                "stdout": (Path(d) / "out").read_text("utf-8", "replace")[-2000:],
                "stderr": (Path(d) / "err").read_text("utf-8", "replace")[-2000:]}


def rag_command() -> list[str]:
    script = Path(sys.executable).parent / "rag"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]


def load_questions(n: int | None = None, only_answerable_en: bool = False) -> list[dict]:
    rows = [json.loads(l) for l in (PROJECT_DIR / "eval" / "questions.jsonl").read_text("utf-8").splitlines()
            if l.strip()]
    if only_answerable_en:
        rows = [r for r in rows if r.get("answerable") and r.get("language") == "en"]
    return rows[:n] if n else rows


def close_llama(llama) -> None:
    try:
        llama.close()
    except Exception:
        pass


# -- synthetic text ------------------------------------------------------------------------
def corpus_sentences(corpus_dir: Path) -> list[str]:
    """English sentences of the bundled corpus, the material synthetic articles are made of."""
    from .chunking import sentence_spans
    from .corpus import load_folder_or_files

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


# ==========================================================================================
# 1. ingestion
# ==========================================================================================
def bench_ingest(ctx: dict) -> dict:
    import hashlib

    from .bot import Bot
    from .ingest import BATCH_CHUNKS, doc_metadata
    from .chunking import chunk_document
    from .corpus import load_folder_or_files
    from .store import Store

    p, base, tmp, emb = ctx["p"], ctx["base"], ctx["tmp"], ctx["embedder"]
    out: dict = {"embedder_load_s": ctx["embedder_load_s"]}
    folders = {"corpus": (PROJECT_DIR / "corpus", p["corpus_repeats"]),
               f"synthetic-{p['synthetic_articles']}": (
                   write_synthetic_folder(tmp / "synthetic", p["synthetic_articles"], ctx["sentences"]),
                   p["ingest_repeats"])}
    for name, (folder, repeats) in folders.items():
        log(f"ingest: {name}")
        t0 = time.perf_counter()
        docs = load_folder_or_files([folder]).documents
        t1 = time.perf_counter()
        chunks = [c for d in docs for c in chunk_document(d.id, d.text, base.chunk_tokens, fits=emb.fits)]
        t2 = time.perf_counter()
        texts = [c.text for c in chunks]
        ours_first, ours_second, raw, ours_cpu, raw_cpu = [], [], [], [], []
        foreign = {"ours": [], "raw": []}
        cont = ctx["cont"]
        vectors = None
        done = 0
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
                else:
                    a, ca = time.perf_counter(), cpu_s()
                    vectors = emb.model.encode(texts, batch_size=emb.batch_size, normalize_embeddings=True,
                                               convert_to_numpy=True, show_progress_bar=False)
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
        st.mark_pending_many([(d.id, doc_metadata(d), d.text) for d in docs])
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
        st.bump_generation()
        st.keyword_index()
        c = time.perf_counter()
        n = len(texts)
        res = {
            "documents": len(docs), "chunks": n, "repeats": done, "repeats_planned": repeats,
            "ours_first_s": summary(ours_first), "ours_unchanged_s": summary(ours_second),
            "raw_encode_s": summary(raw),
            "ours_chunks_per_s": n / median(ours_first), "raw_chunks_per_s": n / median(raw),
            "ratio_ours_over_raw": ratio(median(ours_first), median(raw)),
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
    out["process"] = bench_ingest_process(ctx)
    return out


def bench_ingest_process(ctx: dict) -> dict:
    """`rag ingest` as a user runs it: a fresh store, then the same command again."""
    p, tmp = ctx["p"], ctx["tmp"]
    firsts, seconds, notes, cpu1, cpu2, foreign = [], [], [], [], [], []
    for r in range(p["process_repeats"]):
        env = {**os.environ, "RAG_STORE_DIR": str(tmp / f"proc-store-{r}"),
               "RAG_CORPUS_DIR": str(PROJECT_DIR / "corpus")}
        ctx["cont"].wait_quiet()
        snap = ctx["cont"].snapshot()
        a = run_measured(rag_command() + ["ingest"], env=env, cwd=PROJECT_DIR)
        fa = ctx["cont"].foreign(snap)
        ctx["cont"].wait_quiet()
        snap = ctx["cont"].snapshot()
        b = run_measured(rag_command() + ["ingest"], env=env, cwd=PROJECT_DIR)
        foreign.append((fa, ctx["cont"].foreign(snap)))
        if a["rc"] or b["rc"]:
            return {"error": f"rag ingest failed: {a['stderr'][-500:]} {b['stderr'][-500:]}"}
        firsts.append(a["wall_s"])
        seconds.append(b["wall_s"])
        cpu1.append(a["cpu_s"])
        cpu2.append(b["cpu_s"])
        notes.append(b["stdout"].strip().splitlines()[-1] if b["stdout"].strip() else "")
        log(f"  rag ingest r{r}: first {a['wall_s']:.2f}s, second {b['wall_s']:.2f}s")
    floor = run_measured([sys.executable, "-c", "import chromadb"], cwd=PROJECT_DIR)
    bare = run_measured([sys.executable, "-c", "pass"], cwd=PROJECT_DIR)
    return {"first_s": summary(firsts), "second_s": summary(seconds),
            "ratio_second_over_first": ratio(median(seconds), median(firsts)),
            "first_cpu_s": summary(cpu1), "second_cpu_s": summary(cpu2),
            "ratio_cpu_second_over_first": ratio(median(cpu2), median(cpu1)), "foreign_cores": foreign,
            "second_run_says": notes[-1] if notes else "",
            "floor_python_import_chromadb_s": floor["wall_s"], "floor_python_bare_s": bare["wall_s"]}


# ==========================================================================================
# 2. retrieval at scale
# ==========================================================================================
class PrecomputedEmbedder:
    """The real embedder's question vectors, computed beforehand, so that timing
    ``Retriever.search`` leaves question embedding out (it is measured on its own)."""

    def __init__(self, vectors: dict):
        self.vectors = vectors
        self.name = "precomputed"

    def encode(self, texts, show_progress: bool = False):
        import numpy as np

        return np.stack([self.vectors[t] for t in texts])


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag-bench"


def retrieval_store(n: int, sentences: list[str]) -> tuple[Path, dict]:
    """A store of ``n`` synthetic chunks in the layout ``rag.store.Store`` writes, cached."""
    import hashlib

    import chromadb

    from .chunking import chunk_id
    from .retrieve import terms_field
    from .store import Store

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
    batch = 5000
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        vecs = vec_rng.standard_normal((hi - lo, DIM), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        ids, texts, metas = [], [], []
        doc_ids, doc_texts, doc_metas = [], [], []
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
            doc_ids.append(doc_id)
            doc_texts.append(doc_text)
            doc_metas.append({"doc_id": doc_id, "title": title, "publisher": "", "url": "", "date": "",
                              "language": "en", "n_chars": len(doc_text), "n_chunks": len(parts),
                              "fingerprint": "bench", "state": "done"})
        a = time.perf_counter()
        store.chunks.add(ids=ids, embeddings=vecs, documents=texts, metadatas=metas)
        b = time.perf_counter()
        store.docs.upsert(ids=doc_ids, embeddings=[[0.0]] * len(doc_ids), metadatas=doc_metas,
                          documents=doc_texts)
        build["add_s"] += b - a
        build["docs_s"] += time.perf_counter() - b
    store.bump_generation()
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


def interleaved(ops: dict, queries: list, warmup: int = 3) -> dict[str, list[float]]:
    """Time each op on each query; the op order rotates from query to query."""
    names = list(ops)
    for q in queries[:warmup]:
        for name in names:
            ops[name](q)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, q in enumerate(queries):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            a = time.perf_counter()
            ops[name](q)
            times[name].append(time.perf_counter() - a)
    return times


def question_vectors(ctx: dict) -> tuple[list[str], dict, list[float]]:
    if "qvecs" not in ctx:
        qs = [r["question"] for r in load_questions(ctx["p"]["queries"])]
        emb = ctx["embedder"]
        for q in qs[:3]:
            emb.encode([q])
        vecs, times = {}, []
        for q in qs:
            a = time.perf_counter()
            vecs[q] = emb.encode([q])[0]
            times.append(time.perf_counter() - a)
        ctx["qvecs"] = (qs, vecs, times)
    return ctx["qvecs"]


def retrieval_ops(store, kw, qvecs: dict, k: int, n: int) -> dict:
    from .retrieve import Retriever

    retr = Retriever(store, PrecomputedEmbedder(qvecs))
    last = {}

    def fused(q):
        last["timings"] = retr.search(q, k).timings

    return {"raw_chroma": lambda q: store.chunks.query(query_embeddings=qvecs[q][None, :], n_results=n),
            "dense": lambda q: store.dense_query(qvecs[q], n),
            "keyword": lambda q: kw.query(q, n),
            "fused": fused}, retr, last


def bench_retrieval(ctx: dict) -> dict:
    from .retrieve import distinctive_terms
    from .store import Store

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
        breakdown = {"embed_question_s": [], "dense_s": [], "keyword_s": [], "keyword_wait_s": [], "fuse_s": []}

        def fused_recorded(q, _f=retr):
            t = _f.search(q, base.top_k).timings
            for key in breakdown:
                breakdown[key].append(t[key])

        ops["fused"] = fused_recorded
        emb = ctx["embedder"]
        ops["embed_question"] = lambda q: emb.encode([q])
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
        res = {"store_open_s": b - a, "keyword_index_load_s": c - b, "n_results": n_results,
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


# ==========================================================================================
# 3. Chroma server vs embedded
# ==========================================================================================
def bench_server(ctx: dict) -> dict:
    from .store import MAX_BATCH, Store

    p, base, tmp = ctx["p"], ctx["base"], ctx["tmp"]
    n = p["server_size"]
    qs, qvecs, _ = question_vectors(ctx)
    folder, _ = retrieval_store(n, ctx["sentences"])
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        return {"skipped": f"no chroma CLI at {chroma}"}
    port = free_port()
    data = tmp / "chroma-server"
    logf = open(tmp / "chroma-server.log", "wb")
    proc = subprocess.Popen([str(chroma), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    ctx["cont"].pids.add(proc.pid)
    try:
        url = f"http://127.0.0.1:{port}"
        if not wait_http(url + "/api/v2/heartbeat", 120, proc):
            return {"skipped": "the chroma server did not start: " + (tmp / "chroma-server.log").read_text()[-500:]}
        log(f"server: copying the {n:,}-chunk store to {url}")
        emb_store = Store(path=folder)
        srv = Store(url=url, keyword_dir=tmp / "server-keyword")
        a = time.perf_counter()
        for src, dst, include in ((emb_store.chunks, srv.chunks, ["embeddings", "documents", "metadatas"]),
                                  (emb_store.docs, srv.docs, ["embeddings", "documents", "metadatas"])):
            offset = 0
            while True:
                got = src.get(include=include, limit=MAX_BATCH, offset=offset)
                if not got["ids"]:
                    break
                dst.upsert(ids=got["ids"], embeddings=got["embeddings"], documents=got["documents"],
                           metadatas=got["metadatas"])
                offset += len(got["ids"])
        copy_s = time.perf_counter() - a
        assert srv.count() == n
        srv_kw = srv.keyword_index()
        emb_kw = emb_store.keyword_index()
        n_results = max(24, 4 * base.top_k)
        e_ops, _, _ = retrieval_ops(emb_store, emb_kw, qvecs, base.top_k, n_results)
        s_ops, _, _ = retrieval_ops(srv, srv_kw, qvecs, base.top_k, n_results)
        ops = {"embedded_raw": e_ops["raw_chroma"], "server_raw": s_ops["raw_chroma"],
               "embedded_dense": e_ops["dense"], "server_dense": s_ops["dense"],
               "embedded_fused": e_ops["fused"], "server_fused": s_ops["fused"]}
        ctx["cont"].wait_quiet()
        snap = ctx["cont"].snapshot()
        times = interleaved(ops, qs)
        res = {"chunks": n, "copy_s": copy_s, **{k: summary(v) for k, v in times.items()},
               "foreign_cores": ctx["cont"].foreign(snap)}
        for what in ("raw", "dense", "fused"):
            res[f"ratio_server_over_embedded_{what}_p50"] = ratio(res[f"server_{what}"]["p50"],
                                                                 res[f"embedded_{what}"]["p50"])
        log(f"  fused p50 ms: embedded {res['embedded_fused']['p50'] * 1e3:.1f}, "
            f"server {res['server_fused']['p50'] * 1e3:.1f}")
        del emb_store, srv
        return res
    finally:
        stop(proc)
        logf.close()


# ==========================================================================================
# 4. answering
# ==========================================================================================
def corpus_bot(ctx: dict, llm=None):
    """A Bot over the bundled corpus in a temporary store (ingested once per run)."""
    from .bot import Bot
    from .store import Store

    base = ctx["base"]
    store_dir = ctx["tmp"] / "answer-store"
    cfg = base.replace(corpus_dir=PROJECT_DIR / "corpus", store_dir=store_dir)
    bot = Bot(cfg, Store(path=store_dir, collection=cfg.collection), ctx["embedder"], llm=llm)
    if "answer_store" not in ctx:
        bot.ingest()
        ctx["answer_store"] = store_dir
    return bot


def pick_questions(bot, n: int) -> list[str]:
    """The first ``n`` answerable English questions that pass the evidence gate (so the LLM runs)."""
    from .answer import evidence_gate

    out = []
    for row in load_questions(only_answerable_en=True):
        q = row["question"]
        if not evidence_gate(q, bot.retrieve(q)[2]):
            out.append(q)
        if len(out) == n:
            break
    return out


def raw_llama(path: str, cfg: Config):
    from llama_cpp import Llama

    return Llama(model_path=path, n_ctx=cfg.n_ctx, n_threads=cfg.threads, n_threads_batch=cfg.threads,
                 n_batch=512, seed=0, verbose=False)


def bench_answer(ctx: dict, preset: str, n_questions: int, min_questions: int) -> dict:
    from .models import load_llm

    base = ctx["base"]
    log(f"answer: loading {preset}")
    a = time.perf_counter()
    llm = load_llm(preset, base.model_cache, base.n_ctx, base.threads, None, False)
    ours_load = time.perf_counter() - a
    a = time.perf_counter()
    raw = raw_llama(llm.path, base)
    raw_load = time.perf_counter() - a
    bot = corpus_bot(ctx, llm=llm)
    bot.config = bot.config.replace(model=preset)
    questions = pick_questions(bot, n_questions)
    prompts = []
    for q in questions:  # the identical prompt the bot will build (retrieval is deterministic)
        messages, kept, dropped, n_tok = bot.build_prompt(q, bot.retrieve(q)[2])
        prompts.append(llm.render(messages))
    shared = [0]  # prompt tokens each question shares with the one before (llama.cpp reuses them)
    toks = [llm.llama.tokenize(pr.encode("utf-8"), add_bos=False, special=True) for pr, _ in prompts]
    for prev, cur in zip(toks, toks[1:]):
        shared.append(next((j for j, (x, y) in enumerate(zip(prev, cur)) if x != y), min(len(prev), len(cur))))
    rows = []
    q_s = 0.0
    for i, (q, (prompt, stops)) in enumerate(zip(questions, prompts)):
        if i >= min_questions and not ctx["budget"].allows(q_s * 1.2):
            log(f"  stopping after {i} questions (section time budget)")
            break
        q_t0 = time.perf_counter()
        row = {"question": q, "prefix_shared_with_previous": shared[i]}
        for side in (("ours", "raw") if i % 2 == 0 else ("raw", "ours")):
            ctx["cont"].wait_quiet()
            snap = ctx["cont"].snapshot()
            c0 = cpu_s()
            if side == "ours":
                t0 = time.perf_counter()
                first, final = None, None
                for item in bot.stream(q):
                    if isinstance(item, str):
                        first = first or time.perf_counter()
                    else:
                        final = item
                t1 = time.perf_counter()
                first = first or t1
                tm, tok = final.timings, final.tokens
                row["ours"] = {"total_s": t1 - t0, "ttft_s": first - t0, "llm_prompt_s": tm.get("prompt_s"),
                               "generation_s": tm.get("generation_s"), "retrieval_s": tm.get("retrieval_s"),
                               "verify_s": tm.get("verify_s"), "prompt_tokens": tok.get("prompt"),
                               "completion_tokens": tok.get("completion"), "refused": final.refused,
                               "answer": final.text[:200], "draft": final.draft, "cpu_s": cpu_s() - c0,
                               "foreign_cores": ctx["cont"].foreign(snap)}
            else:
                t0 = time.perf_counter()
                first, pieces = None, []
                for out in raw.create_completion(prompt, max_tokens=base.max_answer_tokens, temperature=0.0,
                                                 top_k=1, top_p=1.0, repeat_penalty=1.0,
                                                 stop=stops + STOPS, stream=True):
                    piece = out["choices"][0]["text"]
                    if piece:
                        first = first or time.perf_counter()
                        pieces.append(piece)
                t1 = time.perf_counter()
                first = first or t1
                text = "".join(pieces)
                row["raw"] = {"total_s": t1 - t0, "ttft_s": first - t0, "generation_s": t1 - first,
                              "prompt_tokens": len(raw.tokenize(prompt.encode("utf-8"), add_bos=False,
                                                                special=True)),
                              "completion_tokens": llm.count_tokens(text) if text else 0, "draft": text,
                              "cpu_s": cpu_s() - c0, "foreign_cores": ctx["cont"].foreign(snap)}
        o, r = row["ours"], row["raw"]
        row["same_prompt_tokens"] = o["prompt_tokens"] == r["prompt_tokens"]
        row["same_draft"] = o["draft"] == r["draft"]
        row["ratio_total"] = o["total_s"] / r["total_s"]
        for side in (o, r):
            side["prompt_tok_per_s"] = side["prompt_tokens"] / (side.get("llm_prompt_s") or side["ttft_s"])
            side["gen_tok_per_s"] = (side["completion_tokens"] / side["generation_s"]
                                     if side["generation_s"] else None)
        log(f"  q{i + 1}: ours {o['total_s']:.2f}s (ttft {o['ttft_s']:.2f}), raw {r['total_s']:.2f}s "
            f"(ttft {r['ttft_s']:.2f}); {o['prompt_tokens']} prompt + {o['completion_tokens']} answer tokens; "
            f"other processes {o['foreign_cores']:.2f}/{r['foreign_cores']:.2f} cores")
        rows.append(row)
        q_s = time.perf_counter() - q_t0

    def col(side, key, rows_=rows):
        return [r[side][key] for r in rows_ if r[side].get(key) is not None]

    later = rows[1:]
    res = {"preset": preset, "model_path": llm.path, "questions": len(rows), "questions_planned": n_questions,
           "load_s": {"ours_load_llm_incl_sha256": ours_load, "raw_llama": raw_load},
           "ours_total_s": summary(col("ours", "total_s")), "raw_total_s": summary(col("raw", "total_s")),
           "ours_ttft_s": summary(col("ours", "ttft_s")), "raw_ttft_s": summary(col("raw", "ttft_s")),
           "ours_prompt_tok_per_s_p50": median(col("ours", "prompt_tok_per_s")),
           "raw_prompt_tok_per_s_p50": median(col("raw", "prompt_tok_per_s")),
           "ours_gen_tok_per_s_p50": median(col("ours", "gen_tok_per_s")),
           "raw_gen_tok_per_s_p50": median(col("raw", "gen_tok_per_s")),
           "prompt_tokens_p50": median(col("ours", "prompt_tokens")),
           "completion_tokens_p50": median(col("ours", "completion_tokens")),
           "ours_retrieval_s_p50": median(col("ours", "retrieval_s")),
           "ours_verify_s_p50": median(col("ours", "verify_s")),
           "ratio_total_p50": median([r["ratio_total"] for r in rows]),
           "ratio_cpu": ratio(median(col("ours", "cpu_s")), median(col("raw", "cpu_s"))),
           "ratio_of_medians": ratio(median(col("ours", "total_s")), median(col("raw", "total_s"))),
           "first_question": {"ours_ttft_s": rows[0]["ours"]["ttft_s"], "raw_ttft_s": rows[0]["raw"]["ttft_s"],
                              "prompt_tokens": rows[0]["ours"]["prompt_tokens"]},
           "later_questions": {"prefix_tokens_shared_p50": median([r["prefix_shared_with_previous"] for r in later]),
                               "ms_per_uncached_prompt_token_p50": median(
                                   [1e3 * r["ours"]["llm_prompt_s"] / max(1, r["ours"]["prompt_tokens"]
                                                                           - r["prefix_shared_with_previous"])
                                    for r in later]),
                               "ours_ttft_s_p50": median(col("ours", "ttft_s", later)),
                               "raw_ttft_s_p50": median(col("raw", "ttft_s", later))},
           "foreign_cores_max": max(max(r["ours"]["foreign_cores"], r["raw"]["foreign_cores"]) for r in rows),
           "foreign_cores_p50": median([r[s_]["foreign_cores"] for r in rows for s_ in ("ours", "raw")]),
           "identical_prompts": sum(r["same_prompt_tokens"] for r in rows),
           "identical_drafts": sum(r["same_draft"] for r in rows),
           "rows": [{**r, "ours": {k: v for k, v in r["ours"].items() if k != "draft"},
                     "raw": {k: v for k, v in r["raw"].items() if k != "draft"}} for r in rows]}
    ctx["answer_questions"] = questions
    ctx["answer_prompt"] = prompts[0][0] if prompts else ""
    close_llama(raw)
    del raw
    gc.collect()
    return res, bot


# ==========================================================================================
# 5. peer: the stock LlamaIndex recipe
# ==========================================================================================
def _chatml(messages) -> str:
    body = "".join(f"<|im_start|>{m.role.value}\n{m.content}<|im_end|>\n" for m in messages)
    if not messages or messages[0].role.value != "system":
        body = f"<|im_start|>system\n{QWEN_DEFAULT_SYSTEM}<|im_end|>\n" + body
    return body + "<|im_start|>assistant\n"


def _chatml_completion(text: str) -> str:
    return (f"<|im_start|>system\n{QWEN_DEFAULT_SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n")


def bench_peer(ctx: dict, bot) -> dict:
    from .chunking import tiktoken_cache_dir

    p, base, tmp = ctx["p"], ctx["base"], ctx["tmp"]
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", tiktoken_cache_dir())
    try:
        import chromadb
        from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
        from llama_index.core.query_engine import CitationQueryEngine
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
        from llama_index.llms.llama_cpp import LlamaCPP
        from llama_index.vector_stores.chroma import ChromaVectorStore
    except ImportError as e:
        return {"skipped": f"LlamaIndex integrations missing ({e}); pip install llama-index-llms-llama-cpp "
                           "llama-index-embeddings-huggingface llama-index-vector-stores-chroma"}
    log("peer: building the LlamaIndex recipe")
    a = time.perf_counter()
    embed = HuggingFaceEmbedding(model_name=str(ctx["embedder"].path), device="cpu")
    llm = LlamaCPP(model_path=bot.llm.path, temperature=0.0, max_new_tokens=base.max_answer_tokens,
                   context_window=base.n_ctx, generate_kwargs={"stop": STOPS},
                   model_kwargs={"n_threads": base.threads, "n_threads_batch": base.threads, "n_batch": 512},
                   messages_to_prompt=_chatml, completion_to_prompt=_chatml_completion, verbose=False)
    load_s = time.perf_counter() - a
    a = time.perf_counter()
    docs = SimpleDirectoryReader(input_dir=str(PROJECT_DIR / "corpus"), exclude=["metadata.json"]).load_data()
    client = chromadb.PersistentClient(path=str(tmp / "peer-chroma"))
    coll = client.get_or_create_collection("peer")
    sc = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=coll))
    index = VectorStoreIndex.from_documents(docs, storage_context=sc, embed_model=embed)
    index_s = time.perf_counter() - a
    engine = CitationQueryEngine.from_args(index, llm=llm)
    questions = [r["question"] for r in load_questions(p["peer_questions"])]
    rows = []
    q_s = 0.0
    for i, q in enumerate(questions):
        if i >= p["min_peer_questions"] and not ctx["budget"].allows(q_s * 1.2):
            log(f"  stopping after {i} questions (section time budget)")
            break
        q_t0 = time.perf_counter()
        row = {"question": q}
        for side in (("ours", "theirs") if i % 2 == 0 else ("theirs", "ours")):
            ctx["cont"].wait_quiet()
            snap = ctx["cont"].snapshot()
            t0 = time.perf_counter()
            if side == "ours":
                ans = bot.ask(q)
                row["ours"] = {"s": time.perf_counter() - t0, "refused": ans.refused,
                               "llm_called": bool(ans.tokens.get("prompt")), "answer": ans.text[:200],
                               "prompt_tokens": ans.tokens.get("prompt"), "completion_tokens": ans.tokens.get("completion")}
            else:
                resp = engine.query(q)
                row["theirs"] = {"s": time.perf_counter() - t0, "answer": str(resp)[:200],
                                 "sources": len(resp.source_nodes)}
            row[side]["foreign_cores"] = ctx["cont"].foreign(snap)
        log(f"  q{i + 1}: ours {row['ours']['s']:.2f}s, theirs {row['theirs']['s']:.2f}s; other processes "
            f"{row['ours']['foreign_cores']:.2f}/{row['theirs']['foreign_cores']:.2f} cores")
        rows.append(row)
        q_s = time.perf_counter() - q_t0
    ours = [r["ours"]["s"] for r in rows]
    theirs = [r["theirs"]["s"] for r in rows]
    res = {"questions": len(rows), "questions_planned": len(questions),
           "peer_load_llm_and_embedder_s": load_s, "peer_index_s": index_s,
           "ours_s": summary(ours), "theirs_s": summary(theirs),
           "ratio_ours_over_theirs_p50": ratio(median(ours), median(theirs)),
           "ours_refused": sum(r["ours"]["refused"] for r in rows),
           "foreign_cores_max": max(max(r["ours"]["foreign_cores"], r["theirs"]["foreign_cores"]) for r in rows),
           "ours_llm_called": sum(r["ours"]["llm_called"] for r in rows),
           "recipe": "SimpleDirectoryReader -> VectorStoreIndex(ChromaVectorStore) -> "
                     "CitationQueryEngine.from_args(index, llm=LlamaCPP) with the engine's defaults "
                     "(similarity_top_k=2, citation_chunk_size=512, compact); LlamaCPP given ChatML "
                     "prompts, temperature 0, the same threads/n_ctx/max tokens as the bot",
           "rows": rows}
    close_llama(llm._model)
    del engine, index, llm, embed
    gc.collect()
    return res


# ==========================================================================================
# 6. memory
# ==========================================================================================
FLOOR_SCRIPT = """
import os, sys
os.environ["HF_HUB_OFFLINE"] = "1"
from sentence_transformers import SentenceTransformer
from llama_cpp import Llama
m = SentenceTransformer(sys.argv[1], device="cpu")
m.encode(["a question"], normalize_embeddings=True)
l = Llama(model_path=sys.argv[2], n_ctx=int(sys.argv[4]), n_threads=int(sys.argv[5]),
          n_threads_batch=int(sys.argv[5]), n_batch=512, verbose=False)
l.create_completion(open(sys.argv[3], encoding="utf-8").read(), max_tokens=64, temperature=0.0)
"""


def bench_memory(ctx: dict, model_path: str) -> dict:
    base, tmp = ctx["base"], ctx["tmp"]
    if "answer_store" not in ctx:
        corpus_bot(ctx)
    q = (ctx.get("answer_questions") or [load_questions(1, True)[0]["question"]])[0]
    env = {**os.environ, "RAG_STORE_DIR": str(ctx["answer_store"]), "RAG_CORPUS_DIR": str(PROJECT_DIR / "corpus")}
    log("memory: rag ask")
    ask = run_measured(rag_command() + ["ask", "--quiet", q], env=env, cwd=PROJECT_DIR)
    out: dict = {"rag_ask": {"peak_rss_mb": ask["peak_rss_mb"], "wall_s": ask["wall_s"], "rc": ask["rc"],
                             "peak_from": ask["peak_from"],
                             "question": q, "stderr_tail": ask["stderr"][-300:] if ask["rc"] else ""}}
    prompt_file = tmp / "floor-prompt.txt"
    prompt_file.write_text(ctx.get("answer_prompt") or q, "utf-8")
    log("memory: raw libraries floor")
    fl = run_measured([sys.executable, "-c", FLOOR_SCRIPT, str(ctx["embedder"].path), model_path,
                       str(prompt_file), str(base.n_ctx), str(base.threads)], cwd=PROJECT_DIR)
    out["floor_raw_libraries"] = {"peak_rss_mb": fl["peak_rss_mb"], "wall_s": fl["wall_s"], "rc": fl["rc"],
                                  "what": "sentence-transformers encode + Llama load + 64-token completion "
                                          "of the same prompt, nothing else imported",
                                  "stderr_tail": fl["stderr"][-300:] if fl["rc"] else ""}
    out["ratio_rag_ask_over_floor"] = ratio(ask["peak_rss_mb"], fl["peak_rss_mb"])
    out["ui"] = bench_ui_memory(ctx, env)
    return out


def bench_ui_memory(ctx: dict, env: dict) -> dict:
    app = PROJECT_DIR / "app.py"
    if not app.exists():
        return {"skipped": "no app.py"}
    log("memory: app.py")
    port = free_port()
    logpath = ctx["tmp"] / "app.log"
    logf = open(logpath, "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(app), "--port", str(port)], cwd=PROJECT_DIR,
                            env={**env, "RAG_PORT": str(port)}, stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        if not wait_http(f"http://127.0.0.1:{port}/", 240, proc):
            return {"skipped": "app.py did not answer HTTP: " + logpath.read_text("utf-8", "replace")[-500:]}
        http_s = time.perf_counter() - t0
        loaded = False
        end = time.time() + 180
        while time.time() < end and proc.poll() is None:  # the model is preloaded in a thread
            text = logpath.read_text("utf-8", "replace")
            if " loaded" in text and "model" in text or "could not be loaded" in text:
                loaded = "could not be loaded" not in text
                break
            time.sleep(0.5)
        time.sleep(1.0)
        st = proc_status(proc.pid)
        return {"peak_rss_mb": st.get("VmHWM"), "rss_mb": st.get("VmRSS"), "http_ready_s": http_s,
                "model_preloaded": loaded, "questions_asked": 0, "port": port}
    finally:
        stop(proc)
        logf.close()


# ==========================================================================================
# targets and report
# ==========================================================================================
def targets(R: dict) -> list[dict]:
    rows = []

    def add(name, target, value, ok, floor="", fmt="{:.2f}"):
        rows.append({"target": name, "goal": target,
                     "measured": None if value is None else (fmt.format(value) if isinstance(value, float) else value),
                     "status": "n/a" if ok is None else ("PASS" if ok else "FAIL"), "floor": floor})

    ing = R.get("ingest") or {}
    syn = next((v for k, v in ing.items() if k.startswith("synthetic")), None)
    cor = ing.get("corpus")
    for label, d in (("synthetic", syn), ("corpus", cor)):
        if d:
            r = d["ratio_ours_over_raw"]
            add(f"ingestion time vs raw encode ({label}, {d['chunks']} chunks)", "<= 1.3x", r, r <= 1.3,
                f"raw encode {d['raw_chunks_per_s']:.1f} chunks/s ({d['raw_encode_s']['p50']:.2f}s)",
                "{:.2f}x")
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
    big = ret.get("100000") or (ret[max(ret, key=int)] if ret else None)
    if big:
        size = max(ret, key=int) if "100000" not in ret else "100000"
        f50 = big["fused"]["p50"] * 1e3
        floor = (f"raw Chroma {big['raw_chroma']['p50'] * 1e3:.1f} ms + BM25 {big['keyword']['p50'] * 1e3:.1f} ms "
                 f"= {big['floor_raw_plus_keyword_p50'] * 1e3:.1f} ms")
        add(f"fused retrieval p50 at {int(size):,} chunks (no question embedding)", "<= 50 ms", f50, f50 <= 50,
            floor, "{:.1f} ms")
        r = big["ratio_fused_over_raw_p50"]
        add(f"fused / raw dense Chroma query p50 at {int(size):,}", "<= 1.5x", r, r <= 1.5, floor, "{:.2f}x")
    ans = R.get("answer") or {}
    if ans.get("ratio_of_medians") is not None:
        r = ans["ratio_of_medians"]
        add("answer time vs raw llama.cpp, identical prompt (0.5B)", "<= 1.1x", r, r <= 1.1,
            f"raw create_completion p50 {ans['raw_total_s']['p50']:.2f}s", "{:.2f}x")
        t = ans["ours_ttft_s"]["p50"]
        add("time to first token, typical question (0.5B)", "<= 3 s", t, t <= 3.0,
            f"raw llama.cpp TTFT p50 {ans['raw_ttft_s']['p50']:.2f}s", "{:.2f} s")
    mem = (R.get("memory") or {}).get("rag_ask") or {}
    if mem.get("peak_rss_mb"):
        m = mem["peak_rss_mb"]
        fl = (R["memory"].get("floor_raw_libraries") or {}).get("peak_rss_mb")
        add("peak RSS of `rag ask` (0.5B)", "<= 1,500 MB", m, m <= 1500,
            f"raw libraries alone {fl:.0f} MB" if fl else "", "{:.0f} MB")
    peer = R.get("peer") or {}
    if peer.get("ratio_ours_over_theirs_p50") is not None:
        r = peer["ratio_ours_over_theirs_p50"]
        add("median answer time vs stock LlamaIndex recipe", "<= 0.5x", r, r <= 0.5,
            f"LlamaIndex p50 {peer['theirs_s']['p50']:.2f}s/answer", "{:.2f}x")
    return rows


def fmt_s(x, unit="s", scale=1.0, nd=2):
    return "-" if x is None else f"{x * scale:.{nd}f} {unit}".strip()


def render_markdown(R: dict) -> str:
    m = R["meta"]
    mi = m["machine"]
    L = ["# Benchmarks", "",
         "Generated by `python -m rag.bench" + (" --quick" if m["quick"] else "") + "` (`make bench`); "
         "the numbers below are from one run. Every comparison with a raw library was measured in the "
         "same run, the two sides interleaved, and is summarised by its median (p50) and p95.", "",
         "## Machine and run", "",
         f"- date: {m['date']}",
         f"- command: `{m['command']}`",
         f"- total run time: {m['total_s'] / 60:.1f} min",
         f"- CPU: {mi['cpu_model']} ({mi['nproc']} cores visible, `nproc`); SIMD flags: {', '.join(mi['simd']) or '-'}",
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
              f"`Bot.ingest` into a fresh temporary store (embedder already loaded: "
              f"{ing['embedder_load_s']:.1f} s to load it is not included) vs "
              "`SentenceTransformer.encode` of the same chunk texts (batch 32, normalised).", "",
              "| corpus | docs | chunks | ours first (p50) | raw encode (p50) | ours / raw | ours / raw, CPU s | ours chunks/s | raw chunks/s | unchanged re-ingest (p50) | unchanged / first | other cores (max) |",
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
              f"vectors {ret['vectors']}), in the layout `Store` writes, cached under `~/.cache/rag-bench/`. "
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
            L.append(f"| {int(n):,} | {cell('raw_chroma')} | {cell('dense')} | {cell('keyword')} | {cell('fused')} | "
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
                       f"{bd.get('vectors_per_s', 0):.0f} |")
        L += ["", "Where fused time goes: `Retriever.search`'s own step timings (BM25 runs in a worker thread "
              "while Chroma answers the dense query; in brackets the time the keyword step added after the "
              "dense one), then single `Store` calls (p50 ms; `documents()` and `keyword_index()` read the "
              "store generation, cached for 2 s; `count()` is not called per query; the fold reads each chunk's "
              "distinctive terms from its metadata, written at ingestion, instead of computing them), and store "
              "set-up:", "",
              "| chunks | dense step | keyword step (added) | fuse + fold step | count() | generation() | documents() cached | keyword_index() cached | get_chunks(12) | distinctive_terms on all candidates (n) | open store | load keyword index | build: vectors/s added |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"] + brk + [""]
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
              f"| `rag ask` (default model, store ingested) | {ra.get('peak_rss_mb', 0):.0f} MB | {ra.get('wall_s', 0):.1f} s | "
              f"exit {ra.get('rc')}; peak from {ra.get('peak_from', '')} |",
              f"| raw libraries, same work (floor) | {fl.get('peak_rss_mb', 0):.0f} MB | {fl.get('wall_s', 0):.1f} s | {fl.get('what', '')} |"]
        if "skipped" in ui:
            L.append(f"| `python app.py` | - | - | skipped: {ui['skipped'][:200]} |")
        elif ui:
            L.append(f"| `python app.py` (UI) | {ui.get('peak_rss_mb') or 0:.0f} MB (VmHWM) | HTTP ready after "
                     f"{ui['http_ready_s']:.1f} s | model preloaded: {ui['model_preloaded']}; no question asked |")
        L += ["", "MB = 10^6 bytes. RSS includes the memory-mapped GGUF pages the process touched.", ""]
    if R.get("errors"):
        L += ["## Errors", ""] + [f"- {k}: {v}" for k, v in R["errors"].items()] + [""]
    return "\n".join(L)


# ==========================================================================================
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rag.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes and few repeats, for checking")
    ap.add_argument("--out", type=Path, help="results JSON (default bench/results.json; --quick: a temp folder)")
    ap.add_argument("--md", type=Path, help="report (default BENCHMARKS.md; --quick: a temp folder)")
    ap.add_argument("--only", help="comma-separated sections: ingest,retrieval,server,answer,peer,memory,answer_1_5b")
    ap.add_argument("--budget-min", type=float, default=28.0,
                    help="skip the optional 1.5B section when it would end past this many minutes")
    args = ap.parse_args(argv)
    p = dict(QUICK if args.quick else FULL)
    if args.quick:
        qdir = Path(tempfile.gettempdir()) / "rag-bench-quick"
        out = args.out or qdir / "results.json"
        md = args.md or qdir / "BENCHMARKS.md"
    else:
        out = args.out or PROJECT_DIR / "bench" / "results.json"
        md = args.md or PROJECT_DIR / "BENCHMARKS.md"
    sections = set((args.only or "ingest,retrieval,server,answer,peer,memory,answer_1_5b").split(","))

    from .embedding import Embedder, force_offline

    force_offline()
    base = Config.from_env()
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    R: dict = {"meta": {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                        "command": "python -m rag.bench" + (" --quick" if args.quick else "")
                                   + (f" --only {args.only}" if args.only else ""),
                        "quick": args.quick, "params": p, "machine": machine_info(),
                        "loadavg_start": loadavg(), "model_cache": str(base.model_cache),
                        "config": {"threads": base.threads, "n_ctx": base.n_ctx, "top_k": base.top_k,
                                   "chunk_tokens": base.chunk_tokens, "max_answer_tokens": base.max_answer_tokens,
                                   "model": base.model}, "notes": [], "loadavg_by_section": {}},
         "errors": {}}

    def save():
        R["meta"]["total_s"] = time.perf_counter() - T0
        R["meta"]["waited_for_quiet_s"] = round(ctx["cont"].waited_s, 1) if ctx else None
        R["meta"]["loadavg_end"] = loadavg()
        R["targets"] = targets(R)
        out.parent.mkdir(parents=True, exist_ok=True)
        md.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(R, indent=1, ensure_ascii=False, default=str) + "\n", "utf-8")
        md.write_text(render_markdown(R) + "\n", "utf-8")

    ctx: dict = {}
    log(f"start ({'quick' if args.quick else 'full'}); scratch {tmp}; results -> {out}")
    emb = Embedder(base.embedder)
    a = time.perf_counter()
    emb.encode(["warm-up"])
    ctx = {"p": p, "base": base, "tmp": tmp, "embedder": emb, "embedder_load_s": time.perf_counter() - a,
           "cont": Contention(wait_budget_s=30.0 if args.quick else 240.0),
           "sentences": corpus_sentences(PROJECT_DIR / "corpus")}
    bot = None

    def section(name, fn):
        if name not in sections:
            return None
        a_ = time.perf_counter()
        la = loadavg()
        ctx["budget"] = Budget(p["budget_s"].get(name, 300))
        try:
            res = fn()
        except Exception as e:  # one failing section must not lose the others' numbers
            R["errors"][name] = f"{e.__class__.__name__}: {e}"
            log(f"{name} FAILED: {e}\n{traceback.format_exc()}")
            res = None
        else:
            R[name] = res
        R["meta"]["loadavg_by_section"][name] = {"start": la, "end": loadavg(),
                                                 "seconds": round(time.perf_counter() - a_, 1)}
        save()
        return res

    try:
        section("ingest", lambda: bench_ingest(ctx))
        section("retrieval", lambda: bench_retrieval(ctx))
        section("server", lambda: bench_server(ctx))

        def answer():
            nonlocal bot
            res, bot = bench_answer(ctx, base.model, p["answer_questions"], p["min_questions"])
            return res

        section("answer", answer)

        def peer():
            nonlocal bot
            if bot is None:
                from .models import load_llm

                bot = corpus_bot(ctx, llm=load_llm(base.model, base.model_cache, base.n_ctx, base.threads))
            return bench_peer(ctx, bot)

        section("peer", peer)
        model_path = bot.llm.path if bot is not None else None

        def memory():
            nonlocal model_path
            if model_path is None:
                from .models import PRESETS, assemble_preset

                model_path = str(assemble_preset(PRESETS[base.model], base.model_cache))
            return bench_memory(ctx, model_path)

        if bot is not None:
            close_llama(bot.llm.llama)
            bot = None
            gc.collect()
        section("memory", memory)

        def big():
            from .errors import RagError
            from .models import PRESETS, assemble_preset

            preset = "qwen2.5-coder-1.5b"
            elapsed = (time.perf_counter() - T0) / 60
            need = 2.0 + 1.0 * p["big_questions"]
            if elapsed + need > args.budget_min:
                return {"skipped": f"time budget: {elapsed:.1f} min elapsed, ~{need:.0f} min needed, "
                                   f"budget {args.budget_min:g} min"}
            try:
                assemble_preset(PRESETS[preset], base.model_cache)
            except RagError as e:
                return {"skipped": f"{e}"}
            res, b = bench_answer(ctx, preset, p["big_questions"], 1)
            close_llama(b.llm.llama)
            return res

        section("answer_1_5b", big)
    finally:
        save()
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"done in {(time.perf_counter() - T0) / 60:.1f} min -> {out}, {md}")
    for t in R["targets"]:
        log(f"  {t['status']:4} {t['target']}: {t['measured']} (goal {t['goal']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
