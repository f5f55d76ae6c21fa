"""Section 8, cold start: ``rag ask --timings`` as a new process (store already ingested, files
in the OS cache), three times: process start to first token, and where that time goes
(interpreter and ``import rag.cli``, opening the store, loading the embedder, loading the
model, analysing the question, retrieval, prompt evaluation up to the first token).
"""
from __future__ import annotations

import json

from .answer import corpus_bot
from .harness import ROOT, load_questions, log, median, rag_command, rag_env, run_measured

STAGES = ("start_to_main_s", "open_store_s", "load_embedder_s", "load_model_s", "answer.analyse_s",
          "answer.retrieval_s", "question_to_first_token_s", "process_start_to_first_token_s")


def run(ctx: dict, repeats: int = 3) -> dict:
    if "answer_store" not in ctx:
        corpus_bot(ctx)
    base = ctx["base"]
    q = (ctx.get("answer_questions") or [load_questions(1, True)[0]["question"]])[0]
    env = rag_env(base, ctx["answer_store"], RAG_CORPUS_DIR=str(ROOT / "corpus"))
    runs = []
    for r in range(repeats):
        ctx["cont"].wait_quiet()
        res = run_measured(rag_command() + ["ask", "--timings", q], env=env, cwd=ROOT)
        line = next((l for l in res["stderr"].splitlines() if l.startswith("timings ")), None)
        if res["rc"] or line is None:
            return {"error": f"rag ask --timings failed: {res['stderr'][-800:]}"}
        t = json.loads(line[len("timings "):])
        t["process_wall_s"] = res["wall_s"]
        runs.append(t)
        log(f"coldstart r{r}: first token {t['process_start_to_first_token_s']:.2f}s after process start "
            f"(process {res['wall_s']:.2f}s)")
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float)) and not isinstance(runs[0][k], bool)]
    return {"question": q, "model": base.model, "embedder_backend": base.embedder_backend, "runs": runs,
            "p50": {k: median([r[k] for r in runs if r.get(k) is not None]) for k in keys}}
