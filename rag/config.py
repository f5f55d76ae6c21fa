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

from .errors import RagError


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rag"


@dataclass(frozen=True)
class Config:
    """Every setting of the bot. See the README's configuration table."""

    corpus_dir: Path = field(default_factory=lambda: Path.cwd() / "corpus")  # the folder `rag ingest` reads
    home: Path = field(default_factory=_default_home)
    store_dir: Path | None = None  # default: <home>/store
    models_dir: Path | None = None  # assembled model presets; default: <home>/models
    chroma_url: str | None = None  # e.g. http://127.0.0.1:8000 -> server mode
    collection: str = "articles"
    embedder: str = "multilingual-e5-small"  # packaged/assembled name (rag.embedding) or a sentence-transformers folder
    embedder_backend: str = "openvino"  # openvino | torch | onnx | onnx-int8 (see EMBEDDER_BACKENDS)
    chunk_tokens: int = 120  # tiktoken cl100k tokens per chunk (upper bound)
    ingest_batch: int = 2048  # chunks embedded and written per step (a killed ingest redoes one)
    top_k: int = 4
    model: str = "qwen2.5-coder-0.5b"  # preset name, .gguf path, hf:repo/file or http(s) URL
    # the cascade's larger reader, asked only when the first one's answer would be refused
    # (rag.cascade); "none" = no second reader
    second_model: str = "qwen2.5-coder-1.5b"
    model_sha256: str | None = None  # optional pin for a user-given .gguf
    n_ctx: int = 4096
    max_answer_tokens: int = 256
    quotes: bool = True  # answers also carry the passage sentences that answer the question
    translate: bool = True  # a question not in English is also searched and checked in English (model)
    self_check: bool = False  # ask the reader to check its answer, P(yes) (rag.confidence)
    min_confidence: int = 50  # percent: with self_check and a calibrated reader, the P(correct) to answer
    context_tokens: int = 60  # per passage in the prompt: its most relevant sentences (0 = all)
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_question_chars: int = 1000
    max_upload_bytes: int = 2_000_000
    allow_downloads: bool = False  # hf: model specs only download when this is true
    port: int = 7860  # chat UI
    ui_password: str | None = None  # chat UI login (user "rag") when set

    def __post_init__(self):
        for name, (lo, hi, why) in RANGES.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise RagError(f"{_label(name)} = {v!r}: must be a whole number from {lo} to {hi} ({why})")
        if self.chroma_url:
            _check_url("chroma_url", self.chroma_url)
        if self.embedder_backend not in EMBEDDER_BACKENDS:
            raise RagError(f"{_label('embedder_backend')} = {self.embedder_backend!r}: use one of "
                           f"{', '.join(EMBEDDER_BACKENDS)}")
        if self.n_ctx < self.max_answer_tokens + MIN_PROMPT_TOKENS:
            raise RagError(f"{_label('n_ctx')} = {self.n_ctx} leaves no room for a prompt: it must be at "
                           f"least {_label('max_answer_tokens')} ({self.max_answer_tokens}) + {MIN_PROMPT_TOKENS}")

    @property
    def store_path(self) -> Path:
        return self.store_dir if self.store_dir is not None else self.home / "store"

    @property
    def model_cache(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.home / "models"

    @property
    def second_reader(self) -> str | None:
        """The cascade's second reader's name, or None: "none"/"off"/empty, or the same model as the first."""
        name = self.second_model.strip()
        return name if name and name.lower() not in ("none", "off") and name != self.model else None

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


# every whole-number setting: (lowest, highest, why); checked however the value was given
RANGES = {
    "chunk_tokens": (32, 2000, "tokens per chunk; below 32 a chunk is a fragment of a sentence"),
    "ingest_batch": (1, 5000, "chunks per ingestion step; Chroma takes at most 5,461 per call"),
    "top_k": (1, 50, "passages per answer"),
    "min_confidence": (0, 100, "percent; 50 maximises truthfulness, 0 refuses only when nothing is verified"),
    "n_ctx": (512, 131072, "the model's context window in tokens"),
    "max_answer_tokens": (16, 8192, "tokens the model may write"),
    "context_tokens": (0, 4000, "prompt tokens per passage, 0 for whole passages"),
    "threads": (1, 1024, "CPU threads"),
    "max_question_chars": (1, 100_000, "characters per question"),
    "max_upload_bytes": (1, 1_000_000_000, "bytes per uploaded file"),
    "port": (1, 65535, "a TCP port"),
}
# how chunks are embedded (rag.embedding; the ONNX ones are exported locally on first use)
EMBEDDER_BACKENDS = ("openvino", "torch", "onnx", "onnx-int8")
MIN_PROMPT_TOKENS = 256  # the instructions and one short passage
SECRETS = {"ui_password"}  # printed masked
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _check_url(name: str, url: str) -> None:
    """An http(s) server address with a host and a valid port ("127.0.0.1:8000" reads as http)."""
    from urllib.parse import urlsplit

    why = "use http:// or https://, a host and a port"
    try:
        u = urlsplit(url if "://" in url else "http://" + url)
        u.port  # raises for a port outside 0-65535 or not a number
        ok = u.scheme in ("http", "https") and bool(u.hostname)
    except ValueError as e:
        ok, why = False, str(e)
    if not ok:
        raise RagError(f"{_label(name)} = {url!r} is not a server URL ({why}); give one like "
                       "http://127.0.0.1:8000, or unset it for the embedded store")


def _label(name: str) -> str:
    return f"{name} (RAG_{name.upper()})"


def _parse(name: str, type_: str, raw: str):
    t = str(type_)
    if "Path" in t:
        return Path(raw).expanduser()
    if t.startswith("int"):
        try:
            return int(raw.strip())
        except ValueError:
            lo, hi, why = RANGES[name]
            raise RagError(f"RAG_{name.upper()}={raw!r} is not a whole number; use one from {lo} to "
                           f"{hi} ({why})") from None
    if t.startswith("bool"):
        v = raw.strip().lower()
        if v not in _TRUE | _FALSE:
            raise RagError(f"RAG_{name.upper()}={raw!r}: use 1/true/yes/on or 0/false/no/off")
        return v in _TRUE
    return raw


# (setting, environment variable, value) -- printed by `rag config`; secrets masked
def describe(cfg: Config) -> list[tuple[str, str, str]]:
    def shown(name: str) -> str:
        v = getattr(cfg, name)
        return "(set, hidden)" if name in SECRETS and v else str(v)

    return [(f.name, "RAG_" + f.name.upper(), shown(f.name)) for f in dataclasses.fields(cfg)]
