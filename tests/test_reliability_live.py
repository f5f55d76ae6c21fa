"""A long-running Bot (as the UI keeps one) while `rag ingest` runs in another process (issue 21).

For about a minute the corpus folder is changed (articles added, edited, deleted) and another
process ingests it, while the open Bot keeps searching. Nothing may raise, and after each ingest
the open Bot must find what the other process wrote and nothing it removed; at the end every
search must agree with a fresh process's. Real Chroma in tmp_path, the real embedder, the real
CLI in child processes.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rag.config import Config
from rag.store import GENERATION_TTL

LIVE_SECONDS = 40  # of interleaved changes and searches (each ingest process takes 4-8 s)
TOPICS = ["lighthouse", "orchard", "glacier", "velodrome", "aquarium", "observatory", "vineyard",
          "monastery", "quarry", "brewery", "planetarium", "marina"]
TOWNS = ["Aberlin", "Brovik", "Castamar", "Dunholt", "Elsworth", "Fenmore", "Galtria", "Harwick",
         "Istrel", "Jorvale", "Kestrow", "Lundmere"]


def _write(corpus: Path, i: int, version: int) -> None:
    (corpus / f"art{i:02d}.txt").write_text(
        f"The {TOPICS[i]} of {TOWNS[i]} reopened to visitors this spring.\n"
        f"Edition {version}: the council of {TOWNS[i]} said the {TOPICS[i]} welcomed "
        f"{1000 + 37 * i + version} guests in its first week, more than the year before.\n"
        "It was reported by the local newspaper on Monday morning.\n")


def _query(i: int) -> str:
    return f"{TOPICS[i]} {TOWNS[i]} visitors"


def test_a_long_running_bot_and_ingests_in_another_process_agree(make_bot, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    live = {i: 0 for i in range(4)}  # article -> edition
    for i, v in live.items():
        _write(corpus, i, v)
    bot = make_bot(corpus)
    bot.ingest()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_STORE_DIR=str(tmp_path / "store"), RAG_HOME=str(tmp_path / "home"),
               RAG_CORPUS_DIR=str(corpus), RAG_MODELS_DIR=str(Config.from_env().model_cache),
               HF_HUB_OFFLINE="1")
    deadline, rounds, searches = time.time() + LIVE_SECONDS, 0, 0
    next_new = len(live)
    while time.time() < deadline or rounds < 3:
        # one change of each kind in turn: add a new article, edit one, delete one
        kind = ("add", "edit", "delete")[rounds % 3]
        if kind == "add" and next_new < len(TOPICS):
            live[next_new] = 0
            _write(corpus, next_new, 0)
            next_new += 1
        elif kind == "edit":
            i = sorted(live)[rounds % len(live)]
            live[i] += 1
            _write(corpus, i, live[i])
        elif len(live) > 2:
            i = sorted(live)[0]
            del live[i]
            (corpus / f"art{i:02d}.txt").unlink()
        proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while proc.poll() is None:  # the open Bot keeps answering while the other process writes
            for i in range(len(TOPICS)):
                bot.search(_query(i), 4)
                searches += 1
        out, err = proc.communicate()
        assert proc.returncode == 0, err[-2000:]
        time.sleep(GENERATION_TTL + 0.2)  # another process's change is seen within this time
        for i in range(len(TOPICS)):
            got = bot.search(_query(i), 4)
            assert {p.doc_id for p in got} <= {f"art{j:02d}" for j in live}, (kind, i, got)
            if i in live:  # found by meaning too, not only by its words
                assert got[0].doc_id == f"art{i:02d}" and got[0].dense_score is not None, (kind, i, got)
                assert f"{1000 + 37 * i + live[i]} guests" in got[0].text or \
                    f"{1000 + 37 * i + live[i]} guests" in bot.document_text(got[0].doc_id)
        rounds += 1
    assert rounds >= 3 and searches > rounds

    code = ("import json, sys\nfrom rag.bot import Bot\nfrom rag.config import Config\n"
            "bot = Bot.from_config(Config.from_env())\n"
            "qs = json.loads(sys.argv[1])\n"
            "print(json.dumps([[(p.doc_id, p.chunk_id) for p in bot.search(q, 4)] for q in qs]))")
    queries = [_query(i) for i in range(len(TOPICS))]
    fresh = subprocess.run([sys.executable, "-c", code, json.dumps(queries)], env=env,
                           capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    theirs = json.loads(fresh.stdout.strip().splitlines()[-1])
    ours = [[[p.doc_id, p.chunk_id] for p in bot.search(q, 4)] for q in queries]
    assert ours == theirs
