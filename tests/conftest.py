"""Shared fixtures: real Chroma in tmp_path, the real packaged embedder, the real default LLM."""
from __future__ import annotations

import os
import shutil
import socket
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
    from rag.embedding import Embedder

    return Embedder("all-MiniLM-L6-v2")  # fails (never skips) when the package is missing


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
