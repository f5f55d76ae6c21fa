"""The same store code against a real `chroma run` server on 127.0.0.1."""
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def chroma_server(tmp_path):
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    assert chroma.exists(), "the chroma CLI is installed with chromadb"
    proc = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "server-data"),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("chroma server did not start")
    yield url
    proc.terminate()
    proc.wait(10)


def test_ingest_search_update_against_server(chroma_server, tmp_path, embedder):
    from rag.bot import Bot
    from rag.config import Config

    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    cfg = Config(corpus_dir=corpus, home=tmp_path / "home", chroma_url=chroma_server)
    bot = Bot.from_config(cfg)
    bot.embedder = embedder
    bot.retriever.embedder = embedder
    rep = bot.ingest()
    assert len(rep.added) == 5
    stats = bot.stats()
    assert stats["mode"] == "server" and stats["store"] == chroma_server
    assert stats["chunks"] == rep.chunks_embedded > 0
    # the article that gives the date is found (two of the five say Tongyi Qianwen opened to the public)
    assert "001_23c006e8ca80271d" in [p.doc_id for p in bot.search("When did Tongyi Qianwen open to the public?", 3)]
    assert bot.ingest().chunks_embedded == 0

    # a second client with an empty local keyword folder rebuilds BM25 from the server once
    cfg2 = cfg.replace(home=tmp_path / "other-home")
    bot2 = Bot.from_config(cfg2)
    assert bot2.store.keyword_index().query("DingTalk OPPO Zhejiang", 3)
    (corpus / "004_d8b5d23c2dad080a.txt").unlink()
    assert bot.ingest().removed == ["004_d8b5d23c2dad080a"]
    assert "004_d8b5d23c2dad080a" not in bot2.stats()["per_document"]
    # bot2's keyword index notices the server's new generation (within GENERATION_TTL) and rebuilds
    from rag.store import GENERATION_TTL

    time.sleep(GENERATION_TTL + 0.2)
    assert all(c.split(":")[0] != "004_d8b5d23c2dad080a" for c in bot2.store.keyword_index().ids)


def test_unreachable_server_is_a_clear_error(tmp_path):
    from rag.config import Config
    from rag.bot import Bot
    from rag.errors import RagError

    with pytest.raises(RagError, match="cannot reach the Chroma server"):
        Bot.from_config(Config(home=tmp_path, chroma_url=f"http://127.0.0.1:{free_port()}"))


def test_day_filter_against_server(chroma_server, tmp_path, embedder):
    """The chunks' ``day`` is a field the server filters on too (issue 23)."""
    import json

    from rag.bot import Bot
    from rag.config import Config
    from rag.dates import published_where
    from rag.store import unpack

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    dated = {"early": "2023-08-19", "late": "2023-10-02", "undated": ""}
    for name in dated:
        (corpus / f"{name}.txt").write_text(f"Alibaba opened its Qwen model to the public. The {name} copy.")
    (corpus / "metadata.json").write_text(json.dumps({n: {"date": d} for n, d in dated.items()}))
    bot = Bot.from_config(Config(corpus_dir=corpus, home=tmp_path / "home", chroma_url=chroma_server))
    bot.embedder = bot.retriever.embedder = embedder
    assert sorted(bot.ingest().added) == sorted(dated)

    def docs(where):
        got = bot.store.chunks.get(where=where, include=["metadatas"])
        return sorted({unpack(m)["doc_id"] for m in got["metadatas"]})

    assert docs(published_where(as_of="2023-09-13")) == ["early", "undated"]
    assert docs(published_where(within=("2023-09-01", None))) == ["late"]
