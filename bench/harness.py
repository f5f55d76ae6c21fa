"""Measuring on a shared, noisy machine: timing statistics, how busy the other processes
were, section time budgets, child processes (peak memory, HTTP readiness), machine facts.

Nothing here imports the bot; ``ROOT`` is the checkout the benchmark runs from (found from this
file, since the ``bench`` package runs from the checkout and is not installed).
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout: corpus/, eval/, app.py, BENCHMARKS.md
STOPS = ["<|im_end|>", "<|endoftext|>"]  # ChatML end markers, for the raw llama.cpp sides

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
    cpu, mem_kb, flags, ident = "", 0, set(), {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            for key in ("vendor_id", "cpu family", "model"):
                if line.split(":")[0].strip() == key and key not in ident:
                    ident[key] = line.split(":", 1)[1].strip()
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
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "cpu_kind": cpu_kind(cpu, ident, flags),
            "bf16": bool(flags & {"avx512_bf16", "amx_bf16"}), "ram_gib": round(mem_kb / 2**20, 1),
            "simd": sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")),
            "python": platform.python_version(), "platform": platform.platform(),
            "versions": versions}


def cpu_kind(name: str, ident: dict, flags: set) -> str:
    """The CPU kinds of ../shared/docs/environment.md by family and model, e.g. "AMD EPYC Zen 3
    (family 25, model 1): AVX2, no AVX-512", so figures are quoted with the kind they came from."""
    fam, model = ident.get("cpu family", "?"), ident.get("model", "?")
    gen = {"25": {"1": "Zen 3", "17": "Zen 4"}, "26": {}}.get(fam, {}).get(model) or \
        ("Zen 5" if fam == "26" else "")
    simd = ("AVX-512" + (" BF16" if "avx512_bf16" in flags else "") + (" VNNI" if "avx512_vnni" in flags else "")
            if "avx512f" in flags else "AVX2, no AVX-512" if "avx2" in flags else "no AVX2")
    return f"{name}{' ' + gen if gen else ''} (family {fam}, model {model}): {simd}"


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


def rag_env(base, store_dir: Path, **more: str) -> dict:
    """The environment for a `rag` process of this run: its store, and the run's models folder
    and embedder backend (so the process reuses the export and answers with the same vectors)."""
    return {**os.environ, "RAG_STORE_DIR": str(store_dir), "RAG_MODELS_DIR": str(base.model_cache),
            "RAG_EMBEDDER_BACKEND": base.embedder_backend, **more}


def rag_command() -> list[str]:
    script = Path(sys.executable).parent / "rag"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]


def load_questions(n: int | None = None, only_answerable_en: bool = False) -> list[dict]:
    rows = [json.loads(l) for l in (ROOT / "eval" / "questions.jsonl").read_text("utf-8").splitlines()
            if l.strip()]
    if only_answerable_en:
        rows = [r for r in rows if r.get("answerable") and r.get("language") == "en"]
    return rows[:n] if n else rows


def close_llama(llama) -> None:
    try:
        llama.close()
    except Exception:
        pass
