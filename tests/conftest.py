"""Shared fixtures: real Chroma in tmp_path, the real packaged embedder, the real default LLM."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from types import SimpleNamespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (servers in tests listen on loopback only)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def embedder():
    from rag.config import Config
    from rag.embedding import Embedder

    c = Config.from_env()  # the default backend, exported once into the shared models folder
    return Embedder(c.embedder, backend=c.embedder_backend, cache_root=c.model_cache / "embedders")


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    d = tmp_path / "corpus"
    shutil.copytree(CORPUS, d)
    return d


@pytest.fixture
def make_bot(tmp_path, embedder):
    from rag.bot import Bot
    from rag.config import Config
    from rag.store import Store

    def make(corpus: Path, store_dir: Path | None = None, llm=None, **cfg):
        store_dir = store_dir or tmp_path / "store"
        config = Config(corpus_dir=corpus, home=tmp_path / "home", store_dir=store_dir, **cfg)
        return Bot(config, Store(path=store_dir), embedder, llm=llm)

    return make


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    """Assembled presets are cached across tests (and runs) like in normal use."""
    from rag.config import Config

    return Config.from_env().model_cache


@pytest.fixture(scope="session")
def default_llm(shared_models_dir):
    from rag.config import Config
    from rag.models import DEFAULT_PRESET, load_llm

    c = Config.from_env()
    return load_llm(DEFAULT_PRESET, shared_models_dir, c.n_ctx, c.threads)


@pytest.fixture(scope="session")
def qa_bot(tmp_path_factory, embedder, default_llm):
    """The bundled corpus ingested once, answering with the real default model."""
    from rag.bot import Bot
    from rag.config import Config
    from rag.store import Store

    tmp = tmp_path_factory.mktemp("qa")
    shutil.copytree(CORPUS, tmp / "corpus")
    config = Config(corpus_dir=tmp / "corpus", home=tmp / "home", store_dir=tmp / "store")
    bot = Bot(config, Store(path=tmp / "store"), embedder, llm=default_llm)
    bot.ingest()
    return bot


APP_STARTUP_TIMEOUT_S = 300  # app.py ingests the corpus and loads the model before it answers


def _log_tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@contextmanager
def running_app(tmp: Path):
    """The real chat UI (``python app.py``) on 127.0.0.1 over a copy of the bundled corpus, with
    a store of its own in ``tmp``; stopped on exit. Fails the test (never skips) when it does
    not start."""
    from rag.config import Config

    corpus = tmp / "corpus"
    shutil.copytree(CORPUS, corpus)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_HOME=str(tmp / "home"), RAG_STORE_DIR=str(tmp / "store"), RAG_CORPUS_DIR=str(corpus),
               RAG_MODELS_DIR=str(Config.from_env().model_cache),  # the shared, assembled model
               HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    log_path = tmp / "app.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1",
                                 "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)

    def stop():
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + APP_STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n{_log_tail(log_path)}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail(f"app.py did not answer at {url} in {APP_STARTUP_TIMEOUT_S}s:\n{_log_tail(log_path)}")
            time.sleep(1)
        yield SimpleNamespace(url=url, corpus=corpus, store_dir=tmp / "store", log=log_path,
                              stop=stop, proc=proc)
    finally:
        stop()
