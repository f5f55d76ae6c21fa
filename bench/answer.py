"""Section 4, answering: ``Bot.stream`` (retrieval, prompt, generation, verification) vs a
separate raw ``llama_cpp.Llama`` running ``create_completion(stream=True)`` on the identical
rendered prompt, questions alternating which side goes first. Also used for the 1.5B preset.
"""
from __future__ import annotations

import gc
import time

from rag.config import Config

from . import pipeline
from .harness import ROOT, STOPS, close_llama, cpu_s, load_questions, log, median, ratio, summary


def corpus_bot(ctx: dict, llm=None, model: str | None = None, second_llm=None):
    """A new Bot over the bundled corpus in a temporary store (ingested once per run), its
    config naming ``model`` (default: the configured one) when ``llm`` is that model; with
    ``second_llm`` it answers as the default cascade does."""
    from rag.bot import Bot
    from rag.store import Store

    base = ctx["base"]
    store_dir = ctx["tmp"] / "answer-store"
    cfg = base.replace(corpus_dir=ROOT / "corpus", store_dir=store_dir, model=model)
    bot = Bot(cfg, Store(path=store_dir, collection=cfg.collection), ctx["embedder"], llm=llm,
              second_llm=second_llm)
    if "answer_store" not in ctx:
        bot.ingest()
        ctx["answer_store"] = store_dir
    return bot


def second_reader(ctx: dict):
    """The configured cascade's second reader, loaded; None when ``RAG_SECOND_MODEL`` is none."""
    from rag.models import load_llm

    base = ctx["base"]
    name = base.second_reader
    return None if name is None else load_llm(name, base.model_cache, base.n_ctx, base.threads)


def pick_questions(bot, n: int) -> list[str]:
    """The first ``n`` answerable English questions that pass the evidence gate (so the LLM runs)."""
    out = []
    for row in load_questions(only_answerable_en=True):
        q = row["question"]
        if pipeline.gate_passes(bot, q):
            out.append(q)
        if len(out) == n:
            break
    return out


def raw_llama(path: str, cfg: Config):
    from llama_cpp import Llama

    return Llama(model_path=path, n_ctx=cfg.n_ctx, n_threads=cfg.threads, n_threads_batch=cfg.threads,
                 n_batch=512, seed=0, verbose=False)


def run(ctx: dict, preset: str, n_questions: int, min_questions: int) -> tuple[dict, object]:
    """The section's results, and the Bot it used (its LLM still loaded, for the peer section)."""
    from rag.models import load_llm

    base = ctx["base"]
    log(f"answer: loading {preset}")
    a = time.perf_counter()
    llm = load_llm(preset, base.model_cache, base.n_ctx, base.threads, None, False)
    ours_load = time.perf_counter() - a
    a = time.perf_counter()
    raw = raw_llama(llm.path, base)
    raw_load = time.perf_counter() - a
    bot = corpus_bot(ctx, llm=llm, model=preset)
    questions = pick_questions(bot, n_questions)
    # the identical prompt the bot will build (retrieval is deterministic)
    prompts = [pipeline.prompt_for(bot, q) for q in questions]
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
                    elif hasattr(item, "refused"):  # the Answer (an Evidence comes first)
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
