"""Reliability probes (issue 12): nothing lost, nothing outside the corpus read, clear errors.

Real Chroma in tmp_path, the real packaged embedder, the real CLI; no model is needed here.
Each test is named for the probe it answers.
"""
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import Config, describe
from rag.errors import RagError

ROOT = Path(__file__).resolve().parent.parent


def _article(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / name
    f.write_text(f"{body}\nIt was reported by the local newspaper on Monday morning.\n")
    return f


def _rag(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=300)


# -- settings ---------------------------------------------------------------------------------
@pytest.mark.parametrize("env,message", [
    ({"RAG_TOP_K": "abc"}, "RAG_TOP_K='abc' is not a whole number; use one from 1 to 50"),
    ({"RAG_TOP_K": "0"}, r"top_k \(RAG_TOP_K\) = 0: must be a whole number from 1 to 50"),
    ({"RAG_CHUNK_TOKENS": "5"}, r"RAG_CHUNK_TOKENS\) = 5: must be a whole number from 32"),
    ({"RAG_N_CTX": "100"}, r"RAG_N_CTX\) = 100: must be a whole number from 512"),
    ({"RAG_QUOTES": "maybe"}, "RAG_QUOTES='maybe': use 1/true/yes/on or 0/false/no/off"),
])
def test_bad_settings_name_the_variable_and_the_range(env, message):
    with pytest.raises(RagError, match=message):
        Config.from_env(env)


def test_bad_settings_and_flags_are_clear_errors_on_the_command_line(tmp_path):
    out = _rag("search", "x", "--k", "-3", env={"RAG_HOME": str(tmp_path)})
    assert out.returncode == 2 and "top_k (RAG_TOP_K) = -3: must be a whole number from 1 to 50" in out.stderr
    assert "Traceback" not in out.stderr
    out = _rag("config", env={"RAG_TOP_K": "abc", "RAG_HOME": str(tmp_path)})
    assert out.returncode == 2 and "RAG_TOP_K='abc'" in out.stderr and "Traceback" not in out.stderr


def test_rag_config_masks_the_ui_password(tmp_path):
    cfg = Config.from_env({"RAG_UI_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in str(describe(cfg))
    out = _rag("config", env={"RAG_UI_PASSWORD": "hunter2-secret", "RAG_HOME": str(tmp_path)})
    assert out.returncode == 0 and "hunter2-secret" not in out.stdout and "(set, hidden)" in out.stdout


# -- corpus files -----------------------------------------------------------------------------
def test_metadata_json_that_is_a_list_is_a_clear_error(tmp_path):
    from rag.corpus import load_folder_or_files

    _article(tmp_path / "c", "a.txt", "Alpha beta gamma delta.")
    (tmp_path / "c" / "metadata.json").write_text('[{"title": "x"}]')
    loaded = load_folder_or_files([tmp_path / "c"])
    assert not loaded.documents and "must be an object mapping document ids" in loaded.errors[0][1]


def test_a_link_out_of_the_corpus_is_not_read_and_a_broken_link_is_reported(make_bot, tmp_path):
    corpus = tmp_path / "c"
    _article(corpus, "a.txt", "Alpha beta gamma delta.")
    secret = _article(tmp_path / "outside", "secret.txt", "The vault code is 4242-9911.")
    (corpus / "passwd.txt").symlink_to(secret)
    (corpus / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    bot = make_bot(corpus)
    rep = bot.ingest()
    assert rep.added == ["a"]
    errors = dict((Path(p).name, m) for p, m in rep.errors)
    assert "outside the folder" in errors["passwd.txt"] and "broken link" in errors["gone.txt"]
    assert all("4242" not in t for t in bot.store.all_chunk_texts().values())


def test_ingest_from_two_working_directories_keeps_both_folders(tmp_path, embedder):
    env = {"RAG_STORE_DIR": str(tmp_path / "store"), "RAG_HOME": str(tmp_path / "home")}
    _article(tmp_path / "one" / "corpus", "first.txt", "Alpha beta gamma delta from the first folder.")
    _article(tmp_path / "two" / "corpus", "second.txt", "Epsilon zeta eta theta from the second folder.")
    assert _rag("ingest", "corpus", env=env, cwd=tmp_path / "one").returncode == 0
    out = _rag("ingest", "corpus", env=env, cwd=tmp_path / "two")
    assert out.returncode == 0 and "removed" not in out.stdout.replace("removed 0", "")
    out = _rag("stats", "--json", env=env, cwd=tmp_path)
    import json

    assert sorted(json.loads(out.stdout)["per_document"]) == ["first", "second"]


def test_same_file_name_in_two_folders_and_a_reserved_name_are_errors(make_bot, tmp_path):
    a = _article(tmp_path / "a", "report.txt", "The first report says the bridge opens in May.")
    _article(tmp_path / "b", "report.txt", "The second report says the tunnel closes in June.")
    _article(tmp_path / "a", "__meta__.txt", "A file that would overwrite the store's own record.")
    bot = make_bot(tmp_path / "a")
    rep = bot.ingest([tmp_path / "a"])
    assert rep.added == ["report"] and "reserved" in dict(rep.errors)[str(tmp_path / "a" / "__meta__.txt")]
    rep = bot.ingest([tmp_path / "b"])
    assert not rep.added and not rep.updated and "already taken by" in rep.errors[0][1]
    assert "bridge" in bot.document_text("report") and str(a) in bot.stats()["per_document"]["report"]["source_path"]
    assert bot.store.meta().get("generation") is not None  # the registry record is intact


def test_clean_text_keeps_the_first_copy_of_a_repeated_line():
    from rag.corpus import clean_text

    line = "The council voted to close the bridge for repairs."
    assert clean_text(f"{line}\nOther news of the day follows here.\n{line}") == \
        f"{line}\nOther news of the day follows here."


# -- store ------------------------------------------------------------------------------------
def test_garbled_sqlite_is_the_recovery_message_not_a_panic(make_bot, corpus_copy, tmp_path):
    bot = make_bot(corpus_copy)
    bot.ingest()
    db = tmp_path / "store" / "chroma.sqlite3"
    data = bytearray(db.read_bytes())
    rng = random.Random(7)
    start = len(data) // 4
    data[start:start + 65536] = bytes(rng.randrange(256) for _ in range(min(65536, len(data) - start)))
    db.write_bytes(bytes(data))
    code = ("from rag.store import Store; from pathlib import Path; import sys\n"
            f"s = Store(path=Path({str(tmp_path / 'store')!r})); s.count(); s.documents(); "
            "s.dense_query([0.1] * 384, 3)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:  # damaged: the error must be the recovery message, not a panic
        assert "RagError" in out.stderr and "Recovery" in out.stderr, out.stderr[-2000:]
        assert "panicked" not in out.stderr and "PanicException" not in out.stderr.split("RagError")[0]


# -- models -----------------------------------------------------------------------------------
def test_hf_model_pin_is_checked(tmp_path):
    from rag.models import resolve

    local = tmp_path / "hf" / "Org__Repo" / "m.gguf"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"GGUF" + b"\0" * 100)
    assert resolve("hf:Org/Repo/m.gguf", tmp_path).location == str(local)
    with pytest.raises(RagError, match="fails its checksum"):
        resolve("hf:Org/Repo/m.gguf", tmp_path, sha256="0" * 64)


# -- store integrity and deletion ------------------------------------------------------------
def _synthetic(folder: Path, n: int) -> None:
    base = (ROOT / "corpus" / "001_23c006e8ca80271d.txt").read_text().split("\n")
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        lines = base[i % len(base):] + base[: i % len(base)]
        (folder / f"syn_{i:03d}.txt").write_text(f"Synthetic article {i}.\n" + "\n".join(lines))


def test_a_reader_during_an_ingest_leaves_no_stale_keyword_index(tmp_path, embedder):
    from rag.store import Store

    corpus, store_dir = tmp_path / "corpus", tmp_path / "store"
    _synthetic(corpus, 40)
    Store(path=store_dir)
    env = {**os.environ, "RAG_STORE_DIR": str(store_dir), "RAG_CORPUS_DIR": str(corpus),
           "RAG_HOME": str(tmp_path / "home"), "RAG_INGEST_BATCH": "32"}
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reads = 0
    while proc.poll() is None:  # a reader asking while the ingest writes
        Store(path=store_dir).keyword_index()
        reads += 1
    assert proc.wait() == 0, proc.stderr.read().decode()[-2000:]
    assert reads > 1  # the reader did ask while the ingest ran
    s = Store(path=store_dir)
    assert len(s.all_chunk_texts()) > 100
    assert s.keyword_index().ids == sorted(s.all_chunk_texts())  # exactly the store's chunks


def test_a_deleted_document_stays_deleted(make_bot, tmp_path):
    outside = tmp_path / "mine"
    f = _article(outside, "keep.txt", "The harbour reopened after the storm on Friday.")
    _article(outside, "other.txt", "The museum opened a new wing for modern art.")
    corpus = tmp_path / "corpus"
    g = _article(corpus, "local.txt", "The library extended its opening hours this week.")
    bot = make_bot(corpus)
    bot.ingest([outside, corpus])
    assert bot.delete_document("keep") > 0 and bot.delete_document("local") > 0
    assert f.exists() and not g.exists()  # the user's own file stays; the corpus folder's goes
    rep = bot.ingest([outside, corpus])
    assert rep.kept_deleted == ["keep"] and not rep.added and "keep" not in bot.stats()["per_document"]
    assert all("harbour" not in t for t in bot.store.all_chunk_texts().values())
    f.write_text("The harbour reopened after the storm on Friday, and ferries run again.\n"
                 "It was reported by the local newspaper on Monday morning.\n")
    assert bot.ingest([outside]).updated == ["keep"]  # an edited file is new content: it comes back
    with pytest.raises(RagError, match="no document"):
        bot.delete_document("nothing-here")


def test_a_rejected_upload_leaves_the_existing_article_untouched(make_bot, tmp_path):
    corpus = tmp_path / "corpus"
    f = _article(corpus, "keep.txt", "The harbour reopened after the storm on Friday.")
    before = f.read_bytes()
    bot = make_bot(corpus)
    bot.ingest()
    rep = bot.add_uploads([("keep.txt", b"\x00\x01binary junk" * 100), ("keep.md", b"# Keep\nA twin.\n"),
                           ("../escape.txt", b"Sneaky text that must not be written.\n")])
    errors = dict(rep.errors)
    assert "binary" in errors["keep.txt"] and "already exists as keep.txt" in errors["keep.md"]
    assert "contains a path" in errors["../escape.txt"] and not (tmp_path / "escape.txt").exists()
    assert f.read_bytes() == before and "harbour" in bot.document_text("keep")
    assert sorted(p.name for p in corpus.iterdir()) == ["keep.txt"]  # no temporary file left


# -- long documents ---------------------------------------------------------------------------
def _paragraph(n_chars: int, seed: int = 3) -> str:
    rng = random.Random(seed)
    words = "harbour council ferry storm tunnel budget vote bridge repairs mayor river".split()
    out, size = [], 0
    while size < n_chars:
        w = rng.choice(words) + ("," if rng.random() < 0.1 else "")
        out.append(w)
        size += len(w) + 1
    return " ".join(out)  # one paragraph, no full stop


def test_a_2mb_paragraph_chunks_in_linear_time_within_budget(embedder):
    # in a child process with a time bound: before the fix this took minutes (quadratic)
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from tests.test_reliability import _paragraph\n"
            "from rag.chunking import chunk_document, count_tokens\n"
            "from rag.embedding import Embedder\n"
            "e = Embedder('all-MiniLM-L6-v2'); t = _paragraph(2_000_000)\n"
            "cs = chunk_document('big', t, 120, pieces=e)\n"
            "assert all(t[c.start:c.end] == c.text and count_tokens(c.text) <= 120 and e.fits(c.text) for c in cs)\n"
            "assert len(t[cs[0].start:cs[-1].end]) > 1_990_000\n"
            "print(len(cs))") % str(ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) > 2000  # about 740 characters per 120-token chunk


def test_one_long_document_is_written_in_steps_and_resumes_where_it_stopped(make_bot, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "big.txt").write_text(_paragraph(60_000))
    bot = make_bot(corpus, ingest_batch=32)
    steps = []
    rep = bot.ingest(on_progress=lambda done, total: steps.append((done, total)))
    total = rep.chunks_embedded
    assert total > 64 and len(steps) >= total // 32 and steps[-1] == (total, total)
    clean = set(bot.store.all_chunk_texts())
    # a run killed inside the document: its first steps written, the document still pending
    rec = bot.store.documents()["big"]
    from rag.ingest import PENDING_FINGERPRINT

    kept = sorted(clean)[: total // 2]
    bot.store.delete_chunks_of_many(["big"], keep=set(kept))
    bot.store.mark_pending_many([("big", {**rec.metadata, PENDING_FINGERPRINT: rec.fingerprint})])
    rep = bot.ingest()
    assert rep.updated == ["big"] and rep.chunks_embedded == total - len(kept)  # only the rest
    assert set(bot.store.all_chunk_texts()) == clean
    assert bot.store.keyword_index().ids == sorted(clean)


def test_the_document_registry_is_read_a_page_at_a_time(make_bot, tmp_path, monkeypatch):
    """A registry larger than one read (at 1,000,000 chunks an unpaged read exceeded SQLite's
    variable limit) is read page by page, and answers the same."""
    import rag.store as store_module

    corpus = tmp_path / "corpus"
    for i in range(7):
        _article(corpus, f"a{i}.txt", f"The harbour of town number {i} reopened after the storm.")
    bot = make_bot(corpus)
    bot.ingest()
    whole = bot.store.documents(include_deleted=True)
    monkeypatch.setattr(store_module, "MAX_BATCH", 2)
    paged = store_module.Store(path=bot.config.store_path).documents(include_deleted=True)
    assert sorted(paged) == sorted(whole) == [f"a{i}" for i in range(7)]
    assert all(paged[d].fingerprint == whole[d].fingerprint for d in whole)
