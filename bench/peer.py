"""Section 5, peer: the stock LlamaIndex recipe (``VectorStoreIndex`` on Chroma +
``CitationQueryEngine``, same GGUF, same packaged embedder folder) vs ``Bot.ask``, per answer.
"""
from __future__ import annotations

import gc
import os
import time

from .harness import ROOT, STOPS, close_llama, load_questions, log, median, ratio, summary

QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def _chatml(messages) -> str:
    body = "".join(f"<|im_start|>{m.role.value}\n{m.content}<|im_end|>\n" for m in messages)
    if not messages or messages[0].role.value != "system":
        body = f"<|im_start|>system\n{QWEN_DEFAULT_SYSTEM}<|im_end|>\n" + body
    return body + "<|im_start|>assistant\n"


def _chatml_completion(text: str) -> str:
    return (f"<|im_start|>system\n{QWEN_DEFAULT_SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n")


def run(ctx: dict, bot) -> dict:
    from rag.chunking import tiktoken_cache_dir

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
    docs = SimpleDirectoryReader(input_dir=str(ROOT / "corpus"), exclude=["metadata.json"]).load_data()
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
                row["ours"] = {"s": time.perf_counter() - t0, "refused": ans.refused, "escalated": bool(ans.escalated),
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
           "second_model": bot.second_llm.model_id if bot.second_llm is not None else None,
           "ours_escalated": sum(r["ours"]["escalated"] for r in rows),
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
