"""Incremental ingestion against real Chroma (embedded, in tmp_path) and the real embedder."""
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.errors import RagError

ROOT = Path(__file__).resolve().parent.parent


def _snapshot(bot):
    got = bot.store.chunks.get(include=["metadatas"])
    return sorted(zip(got["ids"], (m["doc_id"] for m in got["metadatas"])))


def test_add_update_delete(make_bot, corpus_copy):
    bot = make_bot(corpus_copy)
    rep = bot.ingest()
    assert len(rep.added) == 5 and rep.chunks_embedded == bot.store.count() > 0
    before = _snapshot(bot)

    again = bot.ingest()
    assert again.chunks_embedded == 0 and len(again.unchanged) == 5 and not again.added

    # edit one article: exactly its chunks are replaced
    f = corpus_copy / "003_f9e897daee002606.txt"
    f.write_text(f.read_text() + "\nAlibaba also said the Zorblax benchmark improved by 42 percent.\n")
    rep = bot.ingest()
    assert rep.updated == ["003_f9e897daee002606"] and not rep.added
    after = _snapshot(bot)
    others = lambda snap: [x for x in snap if x[1] != "003_f9e897daee002606"]
    assert others(after) == others(before)
    assert {i for i, d in after if d == "003_f9e897daee002606"} != {i for i, d in before if d == "003_f9e897daee002606"}
    assert bot.search("Zorblax benchmark", 1)[0].doc_id == "003_f9e897daee002606"
    assert bot.stats()["chunks"] == len(after)

    # delete the file: its chunks and record go, and keyword search no longer finds it
    f.unlink()
    rep = bot.ingest()
    assert rep.removed == ["003_f9e897daee002606"]
    assert all(d != "003_f9e897daee002606" for _, d in _snapshot(bot))
    assert "003_f9e897daee002606" not in bot.stats()["per_document"]
    assert bot.store.keyword_index().query("Zorblax", 5) == []


def test_second_ingest_does_not_load_the_model(tmp_path, corpus_copy):
    env = {**os.environ, "RAG_STORE_DIR": str(tmp_path / "s"), "RAG_CORPUS_DIR": str(corpus_copy)}
    first = subprocess.run([sys.executable, "-m", "rag.cli", "ingest"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([sys.executable, "-m", "rag.cli", "ingest"], env=env, capture_output=True, text=True)
    assert "embedded 0 chunks" in second.stdout and "embedding model loaded: no" in second.stdout
    assert "sentence_transformers" not in second.stderr


def test_bad_inputs_leave_the_store_intact(make_bot, corpus_copy, tmp_path):
    bot = make_bot(corpus_copy)
    bot.ingest()
    before = _snapshot(bot)
    with pytest.raises(RagError, match="no such file or folder"):
        bot.ingest([tmp_path / "missing"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "bin.txt").write_bytes(bytes(range(256)) * 4)
    (bad / "latin.txt").write_bytes("perché già".encode("latin-1"))
    (bad / "x.docx").write_bytes(b"PK\x03\x04")
    rep = bot.ingest([bad])
    assert len(rep.errors) == 4 and not rep.added and not rep.removed
    assert _snapshot(bot) == before
    # a corrupted file replacing a good one: reported, and the good version stays searchable
    (corpus_copy / "001_23c006e8ca80271d.txt").write_bytes(b"garbage \xc3\x28 bytes \xa0\xa1")
    rep = bot.ingest()
    assert rep.errors and not rep.removed and _snapshot(bot) == before


def test_corrupt_store_is_a_clear_error(tmp_path, embedder):
    from rag.store import Store

    d = tmp_path / "store"
    Store(path=d)
    (d / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(RagError, match="corrupt"):
        Store(path=d).count()


def _synthetic_corpus(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    base = (ROOT / "corpus" / "001_23c006e8ca80271d.txt").read_text().split("\n")
    for i in range(n):
        lines = base[i % len(base):] + base[: i % len(base)]
        (folder / f"syn_{i:03d}.txt").write_text(f"Synthetic article {i}.\n" + "\n".join(lines))


def test_kill_and_resume(tmp_path):
    corpus = tmp_path / "corpus"
    _synthetic_corpus(corpus, 60)
    # small steps, so that the kill lands between written and unwritten batches
    env = {**os.environ, "RAG_STORE_DIR": str(tmp_path / "s"), "RAG_CORPUS_DIR": str(corpus),
           "RAG_INGEST_BATCH": "64"}
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", "--progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait until the first batches are being written, then kill without warning
    deadline = time.time() + 240
    seen = ""
    while time.time() < deadline:
        ch = proc.stderr.read(1)
        if not ch and proc.poll() is not None:
            break
        seen += ch
        m = re.findall(r"embedding:.*?\| (\d+)/(\d+) ", seen[-300:])
        if m and 0 < int(m[-1][0]) < int(m[-1][1]):
            break  # some batches are written, others are not
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "ingestion finished before it could be killed"
    # four more kills at random moments, each after a third of the articles changed, so every
    # run has work to do (a kill may land in start-up, embedding, writing or the index rebuild)
    rng = random.Random(20261123)
    for _ in range(4):
        for f in rng.sample(sorted(corpus.iterdir()), 20):
            lines = f.read_text().split("\n")
            rng.shuffle(lines)
            f.write_text("\n".join(lines))
        proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 15.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    resumed = subprocess.run([sys.executable, "-m", "rag.cli", "ingest"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    from rag.bot import Bot
    from rag.config import Config
    from rag.chunking import chunk_document
    from rag.corpus import load_folder_or_files

    bot = Bot.from_config(Config(store_dir=tmp_path / "s", corpus_dir=corpus))
    expected = {c.id for d in load_folder_or_files([corpus]).documents
                for c in chunk_document(d.id, d.text, bot.config.chunk_tokens, pieces=bot.embedder)}
    got = bot.store.chunks.get(include=[])["ids"]
    assert len(got) == len(set(got)) and set(got) == expected  # no duplicates, no orphans
    assert all(r.state == "done" for r in bot.store.documents().values())
    assert set(bot.store.keyword_index().ids) == expected
    third = subprocess.run([sys.executable, "-m", "rag.cli", "ingest"], env=env, capture_output=True, text=True)
    assert "embedded 0 chunks" in third.stdout


def test_ingestion_streams_files_a_window_at_a_time(make_bot, tmp_path, monkeypatch):
    """Files are read and chunked a bounded window at a time: the progress total grows window by
    window and ends equal to the chunks written; a file that turns unreadable after the scan is
    reported and skipped without losing the others."""
    import rag.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "WINDOW_BYTES", 4000)
    corpus = tmp_path / "corpus"
    _synthetic_corpus(corpus, 8)  # ~2.5 KB each: one or two files per window
    bot = make_bot(corpus, ingest_batch=16)
    steps = []
    rep = bot.ingest(on_progress=lambda done, total: steps.append((done, total)))
    totals = [t for _, t in steps]
    # the total grew as windows were chunked: not known up front (chunking runs one window ahead)
    assert totals[0] < totals[-1] and totals == sorted(totals), steps
    assert steps[-1] == (rep.chunks_embedded, rep.chunks_embedded) and len(rep.added) == 8
    assert all(d <= t for d, t in steps) and [d for d, _ in steps] == sorted(d for d, _ in steps)

    # a file emptied between the scan and its window: an error for it, the rest written
    (corpus / "syn_100.txt").write_text("Synthetic article 100.\n" + "The harbour reopened. " * 50)
    (corpus / "syn_101.txt").write_text("Synthetic article 101.\n" + "The museum opened a wing. " * 50)
    real_load = ingest_module.PendingFile.load

    def load_after_change(pf):
        if pf.id == "syn_100":
            pf.path.write_text("   \n")  # only whitespace now: no article text
        return real_load(pf)

    monkeypatch.setattr(ingest_module.PendingFile, "load", load_after_change)
    rep = bot.ingest()
    assert [p for p, _ in rep.errors] == [str(corpus / "syn_100.txt")] and rep.added == ["syn_101"]
    assert "syn_100" not in bot.store.documents() and "syn_101" in bot.store.documents()


def test_ask_timings_say_where_cold_start_up_goes(tmp_path, corpus_copy):
    """`rag ask --timings` (real store, embedder and default model): one JSON line whose stages
    add up to the first token's time after process start."""
    import json

    env = {**os.environ, "RAG_STORE_DIR": str(tmp_path / "s"), "RAG_CORPUS_DIR": str(corpus_copy)}
    assert subprocess.run([sys.executable, "-m", "rag.cli", "ingest"], env=env, capture_output=True).returncode == 0
    r = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--timings",
                        "When did Tongyi Qianwen open to the public?"], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    line = [l for l in r.stderr.splitlines() if l.startswith("timings ")]
    assert len(line) == 1, r.stderr[-2000:]
    t = json.loads(line[0][len("timings "):])
    stages = ("start_to_main_s", "open_store_s", "load_embedder_s", "load_model_s", "question_to_first_token_s")
    assert all(isinstance(t[k], float) and t[k] >= 0 for k in stages), t
    assert abs(sum(t[k] for k in stages) - t["process_start_to_first_token_s"]) < 0.01
    assert t["answer.retrieval_s"] < t["question_to_first_token_s"] and t["refused"] is False
    assert "Sources:" in r.stdout  # the answer itself is printed as by `rag ask`


def test_a_failed_write_stops_ingestion_and_the_next_run_completes_it(make_bot, tmp_path, monkeypatch):
    """Writes run on a thread of their own: its error reaches the caller (not lost with the
    thread), nothing after it is written, and the next run leaves no duplicates or orphans."""
    corpus = tmp_path / "corpus"
    _synthetic_corpus(corpus, 12)
    bot = make_bot(corpus, ingest_batch=32)
    real_add, calls = type(bot.store).add_chunks, []

    def failing_add(store, *args):
        calls.append(1)
        if len(calls) == 3:
            raise RagError("the disk is full (a test)")
        return real_add(store, *args)

    monkeypatch.setattr(type(bot.store), "add_chunks", failing_add)
    with pytest.raises(RagError, match="disk is full"):
        bot.ingest()
    assert len(calls) == 3  # the steps after the failed one were not written
    monkeypatch.setattr(type(bot.store), "add_chunks", real_add)
    rep = bot.ingest()
    assert rep.chunks_embedded > 0 and all(r.state == "done" for r in bot.store.documents().values())
    got = bot.store.chunks.get(include=[])["ids"]
    assert len(got) == len(set(got)) == sum(bot.store.chunk_counts().values())
    assert set(bot.store.keyword_index().ids) == set(got)


def test_keyword_index_prepared_while_writing_scores_as_a_full_rebuild(make_bot, corpus_copy, tmp_path):
    """Chunks are tokenised for BM25 as they are written; the index that ends ingestion must
    score exactly as one rebuilt from every chunk text in Chroma."""
    from rag.store import KeywordIndex

    bot = make_bot(corpus_copy)
    bot.ingest()
    (corpus_copy / "extra.txt").write_text("Alibaba Cloud opened a data centre in Milan.\n"
                                           "The Qwen model answers in Italian and Chinese.")
    bot.ingest()  # a second change: prepared chunks beside chunks read back from Chroma
    built = bot.store.keyword_index()
    full = KeywordIndex(tmp_path / "full")
    full.rebuild(bot.store.all_chunk_texts(), 0, persist=False)
    assert built.ids == full.ids and len(built.ids) == bot.store.count()
    for q in ("Qwen open source model", "Alibaba Cloud Milan data centre", "modello linguistico", "zzzz"):
        a, b = built.query(q, 8), full.query(q, 8)
        assert [i for i, _ in a] == [i for i, _ in b]
        assert all(abs(x - y) < 1e-6 for (_, x), (_, y) in zip(a, b))


def test_a_store_written_in_the_older_layouts_reads_the_same(make_bot, corpus_copy, tmp_path):
    """Records are written packed (one JSON field, plus doc_id and day), documents' texts apart. A store
    written before (a field per field; a chunk's text as its Chroma document or in field
    chunk_text; a document's text as its record's document) must read the same."""
    import json

    from rag.store import Store

    bot = make_bot(corpus_copy)
    bot.ingest()
    s = bot.store
    chunks = s.chunks.get(include=["embeddings", "metadatas"])
    packed = s.get_chunks(chunks["ids"])
    records = s.documents()
    texts = {d: s.document_text(d) for d in records}
    assert all(texts.values()) and all(t for t, _ in packed.values())
    assert all(set(m) == {"doc_id", "day", "packed"} for m in chunks["metadatas"])  # store.FILTERED
    # rewrite every record as the older layouts had it (an upsert would merge fields)
    s.chunks.delete(ids=chunks["ids"])
    s.docs.delete(ids=list(records))
    for k, (i, v) in enumerate(zip(chunks["ids"], chunks["embeddings"])):
        text, meta = packed[i]
        as_doc = k % 2 == 0  # half with the text as the document, half in chunk_text
        s.chunks.add(ids=[i], embeddings=[v], documents=[text] if as_doc else None,
                        metadatas=[meta if as_doc else {**meta, "chunk_text": text}])
    for d, rec in records.items():
        s.docs.add(ids=[d], embeddings=[[0.0]], documents=[texts[d]],
                      metadatas=[{**rec.metadata, "fingerprint": rec.fingerprint, "state": rec.state}])
    s.texts.delete(ids=list(records))
    assert "packed" not in json.dumps(s.chunks.get(include=["metadatas"])["metadatas"])
    s = bot.store = Store(path=s.path)  # nothing cached from before the rewrite
    assert s.get_chunks(chunks["ids"]) == packed
    assert s.documents() == records
    assert {d: s.document_text(d) for d in records} == texts
    again = bot.ingest()  # nothing changed: nothing embedded again
    assert again.chunks_embedded == 0 and len(again.unchanged) == len(records)
