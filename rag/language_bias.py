"""Language bias removal for a multilingual embedder: each vector minus its language's mean.

Multilingual encoders place a text near other texts of its own language whatever they say: a
Chinese question lands on Chinese passages. Subtracting each language's mean vector (and
renormalising) removes that shared offset, so a question meets passages by meaning across
languages (docs/ablation.md, rows P*).

Which mean: the mean of a fixed set of PARALLEL sentences (``rag/data/parallel.tsv``: the same 40
news-like statements written in English, Chinese and Italian for this project), embedded as
passages by the model in use. Because the sentences say the same things in every language, the
means differ by language only, not by topic; a corpus's own per-language means would also carry
whatever its articles in that language happen to be about (in a typical archive the Chinese
articles and the English ones cover different stories), would be noisy or missing for a language
with few or no passages (a question in Chinese over English articles), and would move with every
ingest, so every stored vector would have to be centred again. A fixed reference has none of
these problems: nothing is fitted to a corpus, server and embedded stores agree, and the store's
vectors stay valid as the corpus changes (the centring is part of the embedder's name, so a
change to it re-embeds a store at the next ``rag ingest``).

A language outside the reference (French, say) gets the mean of the reference languages' means
(the offset common to all texts); a text whose language is unknown ("und": a short question)
gets the mean of the language its vector lies nearest to.

Example: center(vectors, ["zh", "en"]) -> unit vectors of (v0 - mean_zh) and (v1 - mean_en).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

REFERENCE = Path(__file__).with_name("data") / "parallel.tsv"
LANGUAGES = ("en", "zh", "it")  # the columns of the reference file, in order
VERSION = "lc1"  # part of the embedder's name: a change here re-embeds stores


def reference_sentences() -> dict[str, list[str]]:
    cols = {lang: [] for lang in LANGUAGES}
    for line in REFERENCE.read_text("utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        for lang, text in zip(LANGUAGES, line.split("\t")):
            cols[lang].append(text.strip())
    return cols


def reference_digest() -> str:
    return hashlib.sha256(REFERENCE.read_bytes() + VERSION.encode()).hexdigest()


class LanguageCentering:
    """Per-language mean vectors and the centring they define (see the module docstring)."""

    def __init__(self, means: dict):
        import numpy as np

        self.means = {lang: np.asarray(m, dtype="float32") for lang, m in means.items()}
        self.common = np.mean(np.stack(list(self.means.values())), axis=0)

    @classmethod
    def from_encoder(cls, encode_passages, cache: Path | None = None, key: str = "") -> "LanguageCentering":
        """Means of the reference sentences as ``encode_passages(texts)`` embeds them, read from
        ``cache`` when it was written for the same reference and ``key`` (the embedder's name)."""
        import numpy as np

        stamp = f"{reference_digest()}|{key}"
        if cache is not None and cache.exists():
            try:
                saved = json.loads(cache.read_text())
                if saved.get("stamp") == stamp:
                    return cls(saved["means"])
            except (OSError, ValueError, KeyError, TypeError):
                pass  # recomputed below
        means = {lang: np.asarray(encode_passages(texts), dtype="float32").mean(axis=0)
                 for lang, texts in reference_sentences().items()}
        if cache is not None:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp")
                tmp.write_text(json.dumps({"stamp": stamp, "means": {k: v.tolist() for k, v in means.items()}}))
                tmp.replace(cache)
            except OSError:
                pass  # a read-only models folder: computed again next time
        return cls(means)

    def mean_of(self, language: str, vector=None):
        if language in self.means:
            return self.means[language]
        if language in ("", "und") and vector is not None:
            return self.means[self.nearest(vector)]
        return self.common

    def nearest(self, vector) -> str:
        """The reference language whose mean the vector lies nearest to (cosine)."""
        return max(self.means, key=lambda lang: float(vector @ self.means[lang]))

    def center(self, vectors, languages: list[str]):
        """Unit vectors of each vector minus its language's mean."""
        import numpy as np

        vectors = np.asarray(vectors, dtype="float32")
        if len(vectors) == 0:
            return vectors
        shifted = np.stack([v - self.mean_of(lang, v) for v, lang in zip(vectors, languages)])
        norms = np.linalg.norm(shifted, axis=1, keepdims=True)
        return shifted / np.maximum(norms, 1e-12)
