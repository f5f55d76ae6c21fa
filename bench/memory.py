"""Section 6, memory: peak RSS of ``rag ask`` (a process, store already ingested), of the raw
libraries doing the same work in a bare process (the floor), and of ``app.py`` (the UI).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

from .answer import corpus_bot
from .harness import (ROOT, free_port, load_questions, log, proc_status, rag_command, ratio, run_measured,
                      stop, wait_http)

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


def run(ctx: dict, model_path: str) -> dict:
    base, tmp = ctx["base"], ctx["tmp"]
    if "answer_store" not in ctx:
        corpus_bot(ctx)
    q = (ctx.get("answer_questions") or [load_questions(1, True)[0]["question"]])[0]
    env = {**os.environ, "RAG_STORE_DIR": str(ctx["answer_store"]), "RAG_CORPUS_DIR": str(ROOT / "corpus")}
    log("memory: rag ask (the first reader alone)")
    # the first reader alone (RAG_SECOND_MODEL=none): whether the cascade's second reader loads
    # depends on the question; its cost is the UI's row below, which preloads both readers
    ask = run_measured(rag_command() + ["ask", "--quiet", q], env={**env, "RAG_SECOND_MODEL": "none"}, cwd=ROOT)
    out: dict = {"rag_ask": {"peak_rss_mb": ask["peak_rss_mb"], "wall_s": ask["wall_s"], "rc": ask["rc"],
                             "peak_from": ask["peak_from"], "second_model": "none",
                             "question": q, "stderr_tail": ask["stderr"][-300:] if ask["rc"] else ""}}
    prompt_file = tmp / "floor-prompt.txt"
    prompt_file.write_text(ctx.get("answer_prompt") or q, "utf-8")
    log("memory: raw libraries floor")
    fl = run_measured([sys.executable, "-c", FLOOR_SCRIPT, str(ctx["embedder"].path), model_path,
                       str(prompt_file), str(base.n_ctx), str(base.threads)], cwd=ROOT)
    out["floor_raw_libraries"] = {"peak_rss_mb": fl["peak_rss_mb"], "wall_s": fl["wall_s"], "rc": fl["rc"],
                                  "what": "sentence-transformers encode + Llama load + 64-token completion "
                                          "of the same prompt, nothing else imported",
                                  "stderr_tail": fl["stderr"][-300:] if fl["rc"] else ""}
    out["ratio_rag_ask_over_floor"] = ratio(ask["peak_rss_mb"], fl["peak_rss_mb"])
    out["ui"] = run_ui(ctx, env)
    return out


def run_ui(ctx: dict, env: dict) -> dict:
    app = ROOT / "app.py"
    if not app.exists():
        return {"skipped": "no app.py"}
    log("memory: app.py")
    port = free_port()
    logpath = ctx["tmp"] / "app.log"
    logf = open(logpath, "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(app), "--port", str(port)], cwd=ROOT,
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
                "model_preloaded": loaded, "questions_asked": 0, "port": port,
                "readers": [m for m in (ctx["base"].model, ctx["base"].second_reader) if m]}
    finally:
        stop(proc)
        logf.close()
