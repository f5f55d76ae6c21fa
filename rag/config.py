"""Configuration: one frozen dataclass, and the only place that reads RAG_* variables.

Configuration flows one way: defaults -> environment -> command-line flags ->
``Bot.from_config(cfg)``. Nothing else in the package looks at ``os.environ`` for settings.

Example: ``Config.from_env({"RAG_TOP_K": "3"}).top_k == 3``.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
BUNDLED_CORPUS = PROJECT_DIR / "corpus"


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rag"


@dataclass(frozen=True)
class Config:
    """Every setting of the bot. See the README's configuration table."""

    corpus_dir: Path = BUNDLED_CORPUS
    home: Path = field(default_factory=_default_home)
    store_dir: Path | None = None  # default: <home>/store
    models_dir: Path | None = None  # assembled model presets; default: <home>/models
    chroma_url: str | None = None  # e.g. http://127.0.0.1:8000 -> server mode
    collection: str = "articles"
    embedder: str = "all-MiniLM-L6-v2"  # packaged name or a sentence-transformers folder
    chunk_tokens: int = 120  # tiktoken cl100k tokens per chunk (upper bound)
    ingest_batch: int = 512  # chunks embedded and written per step (a killed ingest redoes one)
    top_k: int = 4
    model: str = "qwen2.5-coder-0.5b"  # preset name, .gguf path, hf:repo/file or http(s) URL
    model_sha256: str | None = None  # optional pin for a user-given .gguf
    n_ctx: int = 4096
    max_answer_tokens: int = 256
    quotes: bool = True  # answers also carry the passage sentences that answer the question
    context_tokens: int = 60  # per passage in the prompt: its most relevant sentences (0 = all)
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_question_chars: int = 1000
    max_upload_bytes: int = 2_000_000
    allow_downloads: bool = False  # hf: model specs only download when this is true
    port: int = 7860  # chat UI
    ui_password: str | None = None  # chat UI login (user "rag") when set

    @property
    def store_path(self) -> Path:
        return self.store_dir if self.store_dir is not None else self.home / "store"

    @property
    def model_cache(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.home / "models"

    @property
    def store_mode(self) -> str:
        return "server" if self.chroma_url else "embedded"

    def replace(self, **changes) -> "Config":
        """A copy with the given settings changed; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Config":
        env = os.environ if env is None else env
        out: dict = {}
        for f in dataclasses.fields(cls):
            raw = env.get("RAG_" + f.name.upper())
            if raw is None or raw == "":
                continue
            out[f.name] = _parse(f.name, f.type, raw)
        return cls(**out)


def _parse(name: str, type_: str, raw: str):
    t = str(type_)
    try:
        if "Path" in t:
            return Path(raw).expanduser()
        if t.startswith("int"):
            return int(raw)
        if t.startswith("bool"):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
    except ValueError:
        raise ValueError(f"RAG_{name.upper()}={raw!r} is not a valid {t}") from None
    return raw


# (setting, environment variable, default, meaning) -- printed by `rag config` and in the README.
def describe(cfg: Config) -> list[tuple[str, str, str]]:
    return [(f.name, "RAG_" + f.name.upper(), str(getattr(cfg, f.name))) for f in dataclasses.fields(cfg)]
