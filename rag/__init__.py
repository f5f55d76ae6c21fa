"""rag: grounded, cited question answering over a folder of news articles, fully local.

Public API (pinned by tests/test_api.py): ``Bot``, ``Config``, ``Answer``, ``Citation``,
``Passage``, ``IngestReport``, ``RagError``. Importing ``rag`` is cheap: torch, chromadb,
llama_cpp and gradio load only when a ``Bot`` first needs them.
"""
from __future__ import annotations

__all__ = ["Bot", "Config", "Answer", "Citation", "Passage", "IngestReport", "RagError"]
__version__ = "0.1.0"

from .config import Config
from .errors import RagError


def __getattr__(name):  # lazy: `import rag` must not import chromadb or torch
    if name == "Bot":
        from .bot import Bot
        return Bot
    if name in ("Answer", "Citation", "Passage"):
        from . import types
        return getattr(types, name)
    if name == "IngestReport":
        from .ingest import IngestReport
        return IngestReport
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
