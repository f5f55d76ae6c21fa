"""``python -m bench``: run the sections, save results and report after each one.

The sections share one ``ctx`` dict: ``p`` (the FULL or QUICK sizes), ``base`` (Config from
the environment), ``tmp`` (scratch folder, removed at the end), ``embedder`` (loaded once) and
``embedder_load_s``, ``cont`` (Contention), ``sentences`` (corpus sentences for synthetic text),
``budget`` (the current section's Budget); sections add ``qvecs``, ``answer_store``,
``answer_questions`` and ``answer_prompt`` for later ones.
"""
from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from rag.config import Config

from . import __doc__ as PACKAGE_DOC
from . import answer as answer_section
from . import archive as archive_section
from . import coldstart as coldstart_section
from . import ingest as ingest_section
from . import memory as memory_section
from . import peer as peer_section
from . import retrieval as retrieval_section
from . import server as server_section
from .harness import ROOT, T0, Budget, Contention, close_llama, loadavg, log, machine_info
from .report import render_markdown, targets
from .synthetic import corpus_sentences

SECTIONS = ("ingest", "retrieval", "archive", "server", "answer", "coldstart", "peer", "memory", "answer_1_5b")

# Section budgets (seconds) keep the full run under 30 minutes on a busy machine: a loop
# stops repeating when its section's budget would be overrun, and says so in the results.
FULL = dict(synthetic_articles=200, ingest_repeats=2, corpus_repeats=3, process_repeats=2, archive_pairs=3,
            sizes=[1_000, 10_000, 1_000_000], queries=50, server_size=10_000, answer_questions=5,
            peer_questions=10, big_questions=3, min_questions=3, min_peer_questions=5,
            budget_s={"ingest": 420, "retrieval": 240, "archive": 1800, "server": 90, "answer": 210,
                      "coldstart": 120, "peer": 300, "memory": 120, "answer_1_5b": 180})
QUICK = dict(synthetic_articles=20, ingest_repeats=2, corpus_repeats=2, process_repeats=1, archive_pairs=1,
             sizes=[1_000, 10_000], queries=15, server_size=1_000, answer_questions=2,
             peer_questions=2, big_questions=1, min_questions=1, min_peer_questions=1,
             budget_s={"ingest": 240, "retrieval": 120, "archive": 1800, "server": 60, "answer": 120,
                       "coldstart": 120, "peer": 120, "memory": 120, "answer_1_5b": 120})


def main(argv: list[str] | None = None) -> int:
    head, _, rest = PACKAGE_DOC.partition("\n\n")
    ap = argparse.ArgumentParser(prog="python -m bench", description=head, epilog=rest,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes and few repeats, for checking")
    ap.add_argument("--out", type=Path, help="results JSON (default bench/results.json; --quick: a temp folder)")
    ap.add_argument("--md", type=Path, help="report (default BENCHMARKS.md; --quick: a temp folder)")
    ap.add_argument("--only", "--sections", dest="only", metavar="SECTIONS",
                    help="comma-separated sections to run (default all): " + ",".join(SECTIONS))
    ap.add_argument("--shared-bench", type=Path, default=None,
                    help="the team's development sets (default ../shared/bench beside the clone); the "
                         "archive section's rtqa-dev and xlqa-dev parts are skipped, and say so, without them")
    ap.add_argument("--budget-min", type=float, default=28.0,
                    help="skip the optional 1.5B section when it would end past this many minutes")
    args = ap.parse_args(argv)
    p = dict(QUICK if args.quick else FULL)
    if args.quick:
        qdir = Path(tempfile.gettempdir()) / "rag-bench-quick"
        out = args.out or qdir / "results.json"
        md = args.md or qdir / "BENCHMARKS.md"
    else:
        out = args.out or ROOT / "bench" / "results.json"
        md = args.md or ROOT / "BENCHMARKS.md"
    sections = {s.strip() for s in (args.only or ",".join(SECTIONS)).split(",") if s.strip()}
    if sections - set(SECTIONS):
        ap.error(f"unknown section(s) {', '.join(sorted(sections - set(SECTIONS)))}; "
                 f"choose from {', '.join(SECTIONS)}")

    from rag.embedding import Embedder, force_offline

    force_offline()
    base = Config.from_env()
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    R: dict = {"meta": {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                        "command": "python -m bench" + (" --quick" if args.quick else "")
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
    emb = Embedder(base.embedder, backend=base.embedder_backend, cache_root=base.model_cache / "embedders")
    a = time.perf_counter()
    emb.encode(["warm-up"])
    load_s = time.perf_counter() - a
    torch_embs: list = []

    def torch_embedder():  # the ingestion baseline, loaded on first use (a section may not need it)
        if not torch_embs:
            torch_embs.append(emb if base.embedder_backend == "torch" else
                              Embedder(base.embedder, backend="torch", cache_root=base.model_cache / "embedders"))
            torch_embs[0].encode(["warm-up"])
        return torch_embs[0]

    minilm: list = []

    def minilm_torch():  # issue 22's baseline: yesterday's default (all-MiniLM-L6-v2 on torch)
        if not minilm:
            minilm.append(Embedder("all-MiniLM-L6-v2", backend="torch"))
            minilm[0].encode(["warm-up"])
        return minilm[0]

    llms: list = []

    def shared_llm():  # loaded on first use by the archive section (xlqa's translations), then closed
        if not llms:
            from rag.models import load_llm

            llms.append(load_llm(base.model, base.model_cache, base.n_ctx, base.threads))
        return llms[0]

    ctx = {"p": p, "base": base, "tmp": tmp, "embedder": emb, "embedder_load_s": load_s,
           "torch_embedder": torch_embedder, "minilm_torch": minilm_torch, "llm": shared_llm,
           "shared_bench": archive_section.shared_bench(args.shared_bench),
           "shared_bench_asked": args.shared_bench,
           "cont": Contention(wait_budget_s=30.0 if args.quick else 240.0),
           "sentences": corpus_sentences(ROOT / "corpus")}
    R["meta"]["embedder"] = emb.name
    R["meta"]["embedder_runtime"] = emb.runtime  # which path embeds on this CPU, and why
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
        section("ingest", lambda: ingest_section.run(ctx))
        section("retrieval", lambda: retrieval_section.run(ctx))

        def archive():
            try:
                return archive_section.run(ctx)
            finally:
                while llms:
                    close_llama(llms.pop().llama)
                gc.collect()

        section("archive", archive)
        section("server", lambda: server_section.run(ctx))

        def answer():
            nonlocal bot
            res, bot = answer_section.run(ctx, base.model, p["answer_questions"], p["min_questions"])
            return res

        section("answer", answer)
        section("coldstart", lambda: coldstart_section.run(ctx))

        def peer():
            nonlocal bot
            if bot is None:
                from rag.models import load_llm

                bot = answer_section.corpus_bot(ctx, llm=load_llm(base.model, base.model_cache, base.n_ctx, base.threads))
            # ours as a user gets it: the default cascade (the second reader when the first would refuse)
            second = answer_section.second_reader(ctx)
            ours = bot if second is None else answer_section.corpus_bot(ctx, llm=bot.llm, second_llm=second)
            try:
                return peer_section.run(ctx, ours)
            finally:
                if second is not None:
                    close_llama(second.llama)
                    gc.collect()

        section("peer", peer)
        model_path = bot.llm.path if bot is not None else None

        def memory():
            nonlocal model_path
            if model_path is None:
                from rag.models import PRESETS, assemble_preset

                model_path = str(assemble_preset(PRESETS[base.model], base.model_cache))
            return memory_section.run(ctx, model_path)

        if bot is not None:
            close_llama(bot.llm.llama)
            bot = None
            gc.collect()
        section("memory", memory)

        def big():
            from rag import RagError
            from rag.models import PRESETS, assemble_preset

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
            res, b = answer_section.run(ctx, preset, p["big_questions"], 1)
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
