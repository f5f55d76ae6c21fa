"""Reliability, second round (issue 21): each test is named for the row it answers.

Real Chroma in tmp_path, the real packaged embedder, the real CLI in a child process; no
language model is loaded (a model server is a real HTTP server in this process).
"""
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rag.config import Config
from rag.errors import RagError

ROOT = Path(__file__).resolve().parent.parent


def _article(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / name
    f.write_text(f"{body}\nIt was reported by the local newspaper on Monday morning.\n")
    return f


def _env(tmp_path: Path, **extra) -> dict:
    """A child process's environment: its own store and home, the shared embedder exports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_STORE_DIR=str(tmp_path / "store"), RAG_HOME=str(tmp_path / "home"),
               RAG_MODELS_DIR=str(Config.from_env().model_cache), HF_HUB_OFFLINE="1")
    env.update(extra)
    return env


def _rag(tmp_path, *args, timeout=300, **extra):
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                          env=_env(tmp_path, **extra), cwd=tmp_path, timeout=timeout)


HTML = ("<html><head><title>Harbour news</title></head><body><p>The harbour reopened after the "
        "storm on Friday, and the ferries run again.</p></body></html>")


# -- rows 1 and 2: one content hash for a file ------------------------------------------------
def test_row1_a_deleted_html_document_stays_deleted(make_bot, tmp_path):
    h = tmp_path / "h"
    h.mkdir()
    (h / "page.html").write_text(HTML)
    bot = make_bot(tmp_path / "corpus")  # the file lies outside the corpus folder: it stays
    assert bot.ingest([h]).added == ["page"]
    assert bot.delete_document("page") > 0
    rep = bot.ingest([h])
    assert rep.kept_deleted == ["page"] and not rep.added and not rep.updated
    assert "page" not in bot.stats()["per_document"]


def test_a_deleted_document_stays_deleted_when_cleaning_changes(make_bot, tmp_path, monkeypatch):
    """A new release that changes cleaning (CLEANER_VERSION) re-ingests every document, but a
    document the user deleted stays deleted: its tombstone matches the file's bytes and metadata,
    not the cleaner's version (found while fixing row 1)."""
    from rag import ingest

    h = tmp_path / "h"
    h.mkdir()
    (h / "page.html").write_text(HTML)
    _article(h, "kept.txt", "The harbour reopened on Friday after the storm.")
    bot = make_bot(tmp_path / "corpus")
    assert sorted(bot.ingest([h]).added) == ["kept", "page"]
    assert bot.delete_document("page") > 0
    monkeypatch.setattr(ingest, "CLEANER_VERSION", ingest.CLEANER_VERSION + "-next")  # the next release
    rep = bot.ingest([h])
    assert rep.updated == ["kept"] and rep.kept_deleted == ["page"], rep.summary()
    assert "page" not in bot.stats()["per_document"]


def test_row2_an_unchanged_html_file_is_not_embedded_again(tmp_path):
    h = tmp_path / "h"
    h.mkdir()
    (h / "page.html").write_text(HTML)
    first = _rag(tmp_path, "ingest", "h")
    assert first.returncode == 0 and "added    page" in first.stdout, first.stderr[-2000:]
    second = _rag(tmp_path, "ingest", "h")
    assert "updated 0" in second.stdout and "unchanged 1" in second.stdout, second.stdout
    assert "embedding model loaded: no" in second.stdout


# -- row 3: a long-running Bot and another process's ingest -----------------------------------
def test_row3_an_open_bot_sees_another_process_add_and_remove(make_bot, tmp_path):
    from rag.store import GENERATION_TTL

    corpus = tmp_path / "A"
    for i in range(3):
        _article(corpus, f"a{i}.txt", f"Article {i} about harbour number {i} and the ferry timetable of town {i}.")
    bot = make_bot(corpus)
    bot.ingest()
    assert {p.doc_id for p in bot.search("harbour ferry timetable", 8)} == {"a0", "a1", "a2"}
    _article(corpus, "zebra.txt", "Zebra crossing painted at the zoo of Zurich by the council.")
    assert _rag(tmp_path, "ingest", "A").returncode == 0  # another process, the same store
    time.sleep(GENERATION_TTL + 0.2)
    top = bot.search("zebra crossing zoo Zurich", 8)[0]
    assert top.doc_id == "zebra" and top.dense_score is not None and top.dense_score > 0.5
    (corpus / "a1.txt").unlink()
    assert _rag(tmp_path, "ingest", "A").returncode == 0
    time.sleep(GENERATION_TTL + 0.2)
    got = bot.search("harbour ferry timetable", 8)  # raised KeyError: 'doc_id'
    assert {p.doc_id for p in got} == {"a0", "a2", "zebra"}


# -- row 5: a file name that is not UTF-8 ------------------------------------------------------
def test_row5_a_file_name_that_is_not_utf8_is_skipped_and_the_rest_ingested(tmp_path):
    d = tmp_path / "d"
    _article(d, "good.txt", "The harbour reopened after the storm on Friday.")
    with open(os.fsencode(d) + b"/caf\xe9.txt", "wb") as f:
        f.write(b"Text about the cafe on the square, reopened on Friday.")
    out = _rag(tmp_path, "ingest", "d")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "added    good" in out.stdout and "not valid UTF-8" in out.stderr and "caf" in out.stderr


# -- row 6 (and row 15's pipe): a read error is about one file ---------------------------------
def test_row6_a_link_to_a_folder_is_reported_and_the_other_files_ingested(tmp_path):
    d = tmp_path / "d"
    _article(d, "good.txt", "The harbour reopened after the storm on Friday.")
    (d / "sub").mkdir()
    (d / "x.txt").symlink_to("sub")
    out = _rag(tmp_path, "ingest", "d")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "added    good" in out.stdout and "x.txt: not a regular file" in out.stderr


def test_row6_a_file_deleted_between_scan_and_read_is_an_error_about_it_alone(tmp_path):
    from rag.corpus import scan_folder_or_files

    d = tmp_path / "d"
    f = _article(d, "gone.txt", "The harbour reopened after the storm on Friday.")
    scan = scan_folder_or_files([d])
    f.unlink()
    with pytest.raises(RagError, match="cannot be read"):
        scan.files[0].load()


def test_row15_a_link_to_a_pipe_does_not_hang_ingest(tmp_path):
    d = tmp_path / "d"
    _article(d, "good.txt", "The harbour reopened after the storm on Friday.")
    os.mkfifo(d / "pipe")
    (d / "p.txt").symlink_to("pipe")
    out = _rag(tmp_path, "ingest", "d", timeout=120)
    assert out.returncode == 0 and "added    good" in out.stdout
    assert "p.txt: not a regular file" in out.stderr


# -- row 7: metadata.json field types ---------------------------------------------------------
@pytest.mark.parametrize("fields,message", [
    ({"language": ["en"]}, "field 'language' of 'doc' is [\"en\"], not a string"),
    ({"publisher": 7}, "field 'publisher' of 'doc' is 7, not a string"),
])
def test_row7_a_metadata_field_of_the_wrong_type_is_a_clear_error(tmp_path, fields, message):
    from rag.corpus import scan_folder_or_files

    d = tmp_path / "d"
    _article(d, "doc.txt", "The harbour reopened after the storm on Friday.")
    _article(d, "other.txt", "The museum opened a new wing for modern art.")
    (d / "metadata.json").write_text(json.dumps({"doc": fields}))
    scan = scan_folder_or_files([d])
    assert [pf.id for pf in scan.files] == ["other"]
    (path, error), = scan.errors
    assert path.endswith("doc.txt") and "metadata.json" in error and message in error


# -- row 12: a keyword ids.json that does not match its index -----------------------------------
@pytest.mark.parametrize("cut", ["shorter", "empty"])
def test_row12_a_keyword_ids_file_that_does_not_match_the_index_is_rebuilt(make_bot, tmp_path, cut):
    from rag.store import Store

    corpus = tmp_path / "corpus"
    for i in range(4):
        _article(corpus, f"a{i}.txt", f"The harbour of town number {i} reopened after the storm.")
    bot = make_bot(corpus)
    bot.ingest()
    ids_file = tmp_path / "store" / "keyword" / "articles" / "ids.json"
    ids = json.loads(ids_file.read_text())
    ids_file.write_text(json.dumps(ids[:-1] if cut == "shorter" else []))
    s = Store(path=tmp_path / "store")
    assert s.keyword_index().ids == sorted(s.all_chunk_texts()) == ids
    assert s.keyword_index().query("harbour town", 8)
    assert json.loads(ids_file.read_text()) == ids  # rebuilt on disk too (a settled store)


# -- row 13: a file replaced by a folder -------------------------------------------------------
def test_row13_a_file_replaced_by_a_folder_of_the_same_name_is_removed(make_bot, tmp_path):
    d = tmp_path / "d"
    c = _article(d, "c.txt", "The harbour reopened after the storm on Friday.")
    _article(d, "b.txt", "The museum opened a new wing for modern art.")
    bot = make_bot(tmp_path / "corpus")
    assert sorted(bot.ingest([d]).added) == ["b", "c"]
    c.unlink()
    c.mkdir()
    rep = bot.ingest([d])
    assert rep.removed == ["c"] and sorted(bot.stats()["per_document"]) == ["b"]
    assert all("harbour" not in t for t in bot.store.all_chunk_texts().values())


# -- row 14: RAG_CHROMA_URL -------------------------------------------------------------------
@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999", "ftp://127.0.0.1:8000",
                                 "http://"])
def test_row14_a_malformed_chroma_url_is_a_clear_error(url):
    with pytest.raises(RagError, match=r"RAG_CHROMA_URL"):
        Config.from_env({"RAG_CHROMA_URL": url})
    assert Config.from_env({"RAG_CHROMA_URL": "http://127.0.0.1:8000"}).store_mode == "server"


def test_row14_a_malformed_chroma_url_on_the_command_line(tmp_path):
    out = _rag(tmp_path, "stats", RAG_CHROMA_URL="http://[::1")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "RAG_CHROMA_URL" in out.stderr and "http://127.0.0.1:8000" in out.stderr


# -- a model server: a real OpenAI-compatible HTTP server on 127.0.0.1 -------------------------
class _ModelServer:
    """Streams ``events`` (the lines after "data: ") to every chat request; counts requests."""

    def __init__(self, events: list[str]):
        outer = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for e in events:
                    self.wfile.write(f"data: {e}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _piece(text: str) -> str:
    return json.dumps({"choices": [{"delta": {"content": text}}]})


# -- row 11: a malformed stream from a model server ---------------------------------------------
@pytest.mark.parametrize("events,message", [
    (['{"error":"x"}'], "reported an error: x"),
    (["{not json"], "sent a malformed stream event"),
    ([_piece("The harbour"), '{"choices": []}'], "sent a malformed stream event"),
])
def test_row11_a_malformed_model_server_stream_is_a_clear_error(events, message):
    from rag.models import EndpointLLM, ModelSpec

    with _ModelServer(events) as server:
        llm = EndpointLLM(ModelSpec("endpoint", server.url, server.url))
        with pytest.raises(RagError, match=message) as e:
            list(llm.stream([{"role": "user", "content": "When did the harbour reopen?"}], 16, {}))
    assert server.url in str(e.value)


# -- rows 9 and 10: rag eval's inputs and outputs ---------------------------------------------
Q = {"id": "q1", "category": "single", "language": "en", "answerable": True,
     "question": "When did the harbour reopen?", "reference_answer": "On Friday.",
     "key_facts": [["Friday"]], "gold_sources": [["harbour"]]}


def _eval_setup(tmp_path):
    corpus = tmp_path / "corpus"
    _article(corpus, "harbour.txt", "The harbour reopened after the storm on Friday.")
    qdir = tmp_path / "qs"
    qdir.mkdir()
    (qdir / "q.jsonl").write_text(json.dumps(Q) + "\n")
    return corpus, qdir / "q.jsonl"


def test_row9_a_malformed_judge_labels_file_is_reported_and_the_run_still_written(tmp_path):
    corpus, questions = _eval_setup(tmp_path)
    (questions.parent / "judge_labels.jsonl").write_text("{bad\n")
    with _ModelServer([_piece("The harbour reopened on Friday [1].")]) as server:
        out = _rag(tmp_path, "eval", "--questions", str(questions), "--out", str(tmp_path / "o"),
                   "--model", server.url, RAG_CORPUS_DIR=str(corpus))
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert "judge_labels.jsonl: line 1" in out.stderr and server.requests >= 1
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["n_questions"] == 1 and summary["judge_accuracy"] == []
    assert "line 1" in summary["judge_labels_problem"]


def test_row9_an_out_folder_that_cannot_be_created_fails_before_any_question(tmp_path):
    corpus, questions = _eval_setup(tmp_path)
    (tmp_path / "afile").write_text("not a folder")
    with _ModelServer([_piece("The harbour reopened on Friday [1].")]) as server:
        out = _rag(tmp_path, "eval", "--questions", str(questions), "--out", str(tmp_path / "afile" / "o"),
                   "--model", server.url, RAG_CORPUS_DIR=str(corpus))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert "--out" in out.stderr and "afile" in out.stderr and server.requests == 0


def test_row10_question_lines_that_are_not_objects_or_have_flat_groups_are_named(tmp_path):
    from rag.evaluate import read_questions

    f = tmp_path / "q.jsonl"
    f.write_text("\n".join([json.dumps(Q), "[1, 2, 3]", json.dumps({**Q, "id": "flat", "key_facts": ["Friday"]}),
                            json.dumps({**Q, "id": "flat2", "gold_sources": ["harbour"]}), '"text"']) + "\n")
    qs, problems = read_questions(f)
    assert [q["id"] for q in qs] == ["q1"]
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 5"]
    assert "not a JSON object" in problems[0] and "list of lists of strings" in problems[1]
    assert "'gold_sources'" in problems[2]


@pytest.mark.parametrize("content,message", [(None, "cannot be read"), (b"\xff\xfe\xfa{", "not UTF-8")])
def test_row10_a_missing_or_undecodable_questions_file_is_a_clear_error(tmp_path, content, message):
    f = tmp_path / "q.jsonl"
    if content is not None:
        f.write_bytes(content)
    out = _rag(tmp_path, "eval", "--questions", str(f), "--out", str(tmp_path / "o"))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert f"--questions {f}" in out.stderr and message in out.stderr


def test_row15_eval_limit_below_one_is_refused(tmp_path):
    corpus, questions = _eval_setup(tmp_path)
    out = _rag(tmp_path, "eval", "--questions", str(questions), "--out", str(tmp_path / "o"), "--limit", "-1")
    assert out.returncode == 2 and "--limit -1" in out.stderr and "Traceback" not in out.stderr


# -- row 4: a new Chroma server behind the same URL ---------------------------------------------
def _chroma_server(data: Path, port: int) -> subprocess.Popen:
    import urllib.request

    chroma = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen([str(chroma), "run", "--path", str(data), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail("chroma server did not start")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(20)


def test_row4_a_new_server_behind_the_same_url_gets_a_new_keyword_index(tmp_path, embedder):
    from conftest import free_port
    from rag.bot import Bot

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = Config(corpus_dir=tmp_path / "P", home=tmp_path / "home", chroma_url=url)

    def bot():
        b = Bot.from_config(cfg)
        b.embedder = b.retriever.embedder = embedder
        return b

    _article(tmp_path / "P", "harbour.txt", "The harbour reopened after the storm on Friday.")
    _article(tmp_path / "Q", "museum.txt", "The museum opened a new wing for modern sculpture.")
    server = _chroma_server(tmp_path / "S1", port)
    try:
        assert bot().ingest([tmp_path / "P"]).added == ["harbour"]
    finally:
        _stop(server)
    server = _chroma_server(tmp_path / "S2", port)  # another store, the same URL
    try:
        assert bot().ingest([tmp_path / "Q"]).added == ["museum"]
        got = bot().search("museum wing modern sculpture", 4)
        assert [p.doc_id for p in got] == ["museum"] and got[0].keyword_score is not None
    finally:
        _stop(server)


# -- row 8: a truncated vector index file --------------------------------------------------------
def _chunk_index_folder(store: Path) -> Path:
    import sqlite3

    con = sqlite3.connect(store / "chroma.sqlite3")
    (seg,), = con.execute("SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
                          "WHERE c.name = 'articles' AND s.scope = 'VECTOR'").fetchall()
    con.close()
    return store / seg


def test_row8_a_truncated_vector_index_file_is_the_recovery_message(tmp_path):
    for i in range(3):
        _article(tmp_path / "corpus", f"a{i}.txt", f"The harbour of town number {i} reopened after the storm.")
    assert _rag(tmp_path, "ingest", "corpus").returncode == 0
    data = _chunk_index_folder(tmp_path / "store") / "data_level0.bin"
    assert data.stat().st_size > 1000
    os.truncate(data, 1000)
    for args in (("search", "harbour town"), ("ingest", "corpus")):
        out = _rag(tmp_path, *args)
        assert out.returncode == 2 and "Traceback" not in out.stderr, (args, out.stdout, out.stderr[-2000:])
        assert "It may be corrupt" in out.stderr and "data_level0.bin" in out.stderr, out.stderr


def test_row8_an_index_holding_fewer_elements_than_its_capacity_is_not_corrupt(tmp_path):
    """hnswlib writes the records of the elements present, not of the capacity (a fresh rtqa-dev
    store was called corrupt by a check that expected the capacity): a sound store of 2,600
    chunks written in steps of 1,000, as ingestion writes, opens; cutting a record in half is
    still found."""
    import struct

    import numpy as np

    from rag.store import Store, check_vector_files

    store = Store(path=tmp_path / "store")
    rng = np.random.default_rng(0)
    n = 2600
    vecs = rng.standard_normal((n, 384)).astype("float32")
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    for lo in range(0, n, 1000):
        ids = range(lo, min(n, lo + 1000))
        with store.writing():
            store.add_chunks([f"d:{i}" for i in ids], vecs[lo:lo + len(ids)], [f"text {i}" for i in ids],
                             [{"doc_id": "d", "start": 0, "end": 1, "index": i} for i in ids])
    del store
    folder = _chunk_index_folder(tmp_path / "store")
    _, _, capacity, count, per = struct.unpack_from("<IQQQQ", (folder / "header.bin").read_bytes())
    data = folder / "data_level0.bin"
    assert 0 < count < capacity and data.stat().st_size < capacity * per  # the case that was misread
    check_vector_files(tmp_path / "store", "articles")
    os.truncate(data, data.stat().st_size - per // 2)
    with pytest.raises(RagError, match="data_level0.bin"):
        check_vector_files(tmp_path / "store", "articles")


# -- row 15: the small ones ---------------------------------------------------------------------
def test_row15_markdown_front_matter_is_metadata_not_title_or_text(tmp_path):
    from rag.corpus import load_file

    f = tmp_path / "note.md"
    f.write_text('---\ntitle: "Harbour reopens"\ndate: 2024-03-01\n---\n# Harbour\n\n'
                 "The harbour reopened after the storm on Friday.\n")
    doc = load_file(f)
    assert doc.title == "Harbour reopens" and doc.date.startswith("2024-03-01")
    assert "---" not in doc.text and "title:" not in doc.text and "reopened" in doc.text


def test_row15_uploads_refused_at_ingest_leave_no_file_in_the_corpus(make_bot, tmp_path):
    _article(tmp_path / "elsewhere", "report.txt", "The first report says the bridge opens in May.")
    corpus = tmp_path / "corpus"
    _article(corpus, "keep.txt", "The harbour reopened after the storm on Friday.")
    bot = make_bot(corpus)
    bot.ingest([tmp_path / "elsewhere", corpus])
    rep = bot.add_uploads([("__meta__.txt", b"A file named like the store's own record.\n"),
                           ("report.txt", b"A second report says the tunnel closes in June.\n")])
    errors = dict(rep.errors)
    assert "reserved" in errors["__meta__.txt"] and "already taken" in errors["report.txt"]
    assert sorted(p.name for p in corpus.iterdir()) == ["keep.txt"]
    assert "bridge" in bot.document_text("report")


def test_row15_ui_messages_name_files_not_absolute_paths(make_bot, tmp_path):
    from rag_ui.app import BotPool, delete, upload

    _article(tmp_path / "elsewhere", "report.txt", "The first report says the bridge opens in May.")
    corpus = tmp_path / "corpus"
    _article(corpus, "keep.txt", "The harbour reopened after the storm on Friday.")
    bot = make_bot(corpus)
    bot.ingest([tmp_path / "elsewhere", corpus])
    up = tmp_path / "upload" / "report.txt"
    _article(up.parent, up.name, "A second report says the tunnel closes in June.")
    pool = BotPool(bot)
    shown = upload(pool, [str(up)]) + delete(pool, "keep")
    assert "already taken by report.txt" in shown and "deleted keep.txt from the corpus folder" in shown
    assert str(tmp_path) not in shown


def test_row15_rag_home_that_is_a_file_is_named_as_such(tmp_path):
    (tmp_path / "afile").write_text("x")
    out = _rag(tmp_path, "stats", RAG_HOME=str(tmp_path / "afile"), RAG_STORE_DIR="")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "is a file, not a folder" in out.stderr and "It may be corrupt" not in out.stderr


def test_row15_a_deleted_chroma_sqlite3_is_not_an_empty_store(tmp_path):
    _article(tmp_path / "corpus", "a.txt", "The harbour reopened after the storm on Friday.")
    assert _rag(tmp_path, "ingest", "corpus").returncode == 0
    (tmp_path / "store" / "chroma.sqlite3").unlink()
    out = _rag(tmp_path, "stats")
    assert out.returncode == 2 and "chroma.sqlite3 is missing" in out.stderr and "It may be corrupt" in out.stderr


def test_row15_a_folder_given_as_the_model_is_named_a_folder(tmp_path):
    from rag.models import resolve

    with pytest.raises(RagError, match="is a folder; give a .gguf model file"):
        resolve(str(tmp_path), tmp_path / "models")


@pytest.mark.parametrize("k", [-1, 0, 51, 100000])
def test_row15_the_api_refuses_k_outside_1_to_50(make_bot, tmp_path, k):
    corpus = tmp_path / "corpus"
    _article(corpus, "keep.txt", "The harbour reopened after the storm on Friday.")
    bot = make_bot(corpus)
    bot.ingest()
    with pytest.raises(RagError, match=r"1 to 50 passages"):
        bot.search("When did the harbour reopen?", k=k)
    assert bot.search("When did the harbour reopen?", k=50)


def test_row15_short_english_keyword_queries_are_not_translated():
    from rag.query import analyse
    from rag.text import language_of

    def no_model():
        raise AssertionError("the model was asked for")

    for q in ("gasoline prices Russia oil", "oil exports sanctions", "Tongyi Qianwen launch date"):
        assert language_of(q) == "und", q
        assert analyse(q, no_model).english is None
    assert language_of("Chi ha sostituito Daniel Zhang alla guida di Alibaba?") == "it"
    assert language_of("When did Tongyi Qianwen open to the public?") == "en"
