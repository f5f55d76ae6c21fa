"""Section 3, Chroma server vs embedded: the cached synthetic store copied into a
``chroma run`` server and queried (raw, dense, fused) interleaved with the embedded copy.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from rag.store import chunk_record

from .harness import free_port, interleaved, log, ratio, stop, summary, wait_http
from .retrieval import question_vectors, retrieval_ops
from .synthetic import retrieval_store

PAGE = 5000  # records per Chroma read; Chroma accepts at most 5,461 per call


def copy_store(src, dst) -> None:
    """Copy every chunk and document record of ``src`` into ``dst``. Chunks are read from the raw
    Chroma collection (``Store`` has no public way to read vectors back), documents through
    ``Store``; writes go through ``Store``'s public methods only, then the generation is bumped
    as ingestion does."""
    offset = 0
    while True:
        got = src.chunks.get(include=["embeddings", "documents", "metadatas"], limit=PAGE, offset=offset)
        if not got["ids"]:
            break
        records = [chunk_record(t, m) for t, m in zip(got["documents"], got["metadatas"])]
        dst.add_chunks(got["ids"], got["embeddings"], [t for t, _ in records], [m for _, m in records])
        offset += len(got["ids"])
    records = src.documents()
    ids = sorted(records)
    for i in range(0, len(ids), PAGE):
        dst.mark_done_many([(d, records[d].fingerprint, records[d].metadata, src.document_text(d))
                            for d in ids[i:i + PAGE]])
    with dst.writing():  # settle the generation and build the keyword index, as ingestion does
        pass


def run(ctx: dict) -> dict:
    from rag.store import Store

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
        copy_store(emb_store, srv)
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
