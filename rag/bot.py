"""The core object: one ``Bot`` owns config, store, embedder, retriever and LLM.

Front ends (``rag`` CLI, ``app.py``, ``rag eval``) only parse input, call a ``Bot`` method and
format the result. Collaborators are passed in; ``Bot.from_config`` builds the real ones.

    bot = Bot.from_config(Config.from_env())
    bot.ingest()
    answer = bot.ask("When did Tongyi Qianwen open to the public?")
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

from . import answer as answering, grounding
from .config import Config
from .embedding import Embedder
from .errors import RagError
from .ingest import IngestReport, ingest
from .retrieve import Passage, Retriever
from .store import Store


class Bot:
    def __init__(self, config: Config, store: Store, embedder: Embedder, llm=None):
        self.config = config
        self.store = store
        self.embedder = embedder
        self.retriever = Retriever(store, embedder)
        self._llm = llm
        self._llm_lock = threading.Lock()
        self._ingest_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config | None = None, llm=None) -> "Bot":
        config = config or Config.from_env()
        keyword_dir = None
        if config.chroma_url:
            from .store import _sanitize

            keyword_dir = config.home / "keyword" / f"{_sanitize(config.chroma_url)}__{config.collection}"
        store = Store(path=config.store_path, url=config.chroma_url, collection=config.collection,
                      keyword_dir=keyword_dir)
        return cls(config, store, Embedder(config.embedder), llm=llm)

    # -- knowledge base -------------------------------------------------------------------
    def ingest(self, paths: list[Path | str] | None = None, progress: bool = False,
               on_progress=None) -> IngestReport:
        paths = [Path(p) for p in (paths or [self.config.corpus_dir])]
        with self._ingest_lock:
            return ingest(paths, self.store, self.embedder, self.config.chunk_tokens,
                          progress=progress, on_progress=on_progress,
                          batch_chunks=self.config.ingest_batch)

    def delete_document(self, doc_id: str) -> int:
        with self._ingest_lock:
            if doc_id not in self.store.documents():
                raise RagError(f"no document {doc_id!r} in the store")
            self.store.bump_generation()
            n = len(self.store.delete_chunks_of(doc_id))
            self.store.forget_document(doc_id)
            self.store.keyword_index()
            return n

    def document_text(self, doc_id: str) -> str:
        """The cleaned text of a stored document (citation spans index into it)."""
        return self.store.document_text(doc_id)

    def warm_up(self) -> None:
        """Load the embedder and the LLM now, so the first question does not wait for them."""
        self.embedder.encode(["warm-up"])
        self.llm

    def search(self, question: str, k: int | None = None) -> list[Passage]:
        question = self._check_question(question)
        return self.retriever.search(question, k or self.config.top_k).passages

    def stats(self) -> dict:
        docs = self.store.documents()
        return {"documents": len(docs), "chunks": self.store.count(),
                "store": self.store.location, "mode": self.config.store_mode,
                "collection": self.config.collection, "embedder": self.embedder.name,
                "embedder_path": str(self.embedder.path),
                "per_document": {d: {"chunks": int(r.metadata.get("n_chunks", 0)),
                                     "title": r.metadata.get("title", ""),
                                     "date": r.metadata.get("date", ""),
                                     "language": r.metadata.get("language", ""),
                                     "state": r.state,
                                     "source_path": r.metadata.get("source_path", "")}
                                 for d, r in sorted(docs.items())}}

    # -- answering ------------------------------------------------------------------------
    @property
    def llm(self):
        with self._llm_lock:
            if self._llm is None:
                from .models import load_llm

                c = self.config
                self._llm = load_llm(c.model, c.model_cache, c.n_ctx, c.threads, c.model_sha256,
                                     c.allow_downloads)
            return self._llm

    def ask(self, question: str, k: int | None = None,
            history: list[tuple[str, str]] | None = None) -> answering.Answer:
        result = None
        for item in self.stream(question, k, history):
            result = item
        return result

    def chat(self, history: list[tuple[str, str]], question: str, k: int | None = None) -> answering.Answer:
        """Answer a follow-up: ``history`` is [(user question, bot answer), ...], oldest first."""
        return self.ask(question, k, history)

    def condense(self, history: list[tuple[str, str]] | None, question: str) -> str:
        """A follow-up ("and who replaced him?") rewritten as a standalone question."""
        question = self._check_question(question)
        if not history:
            return question
        return answering.condense_question(self.llm, history, question)

    def stream(self, question: str, k: int | None = None,
               history: list[tuple[str, str]] | None = None) -> Iterator[str | answering.Answer]:
        """Yield the draft's text pieces as they are generated, then the verified ``Answer``.

        With ``history``, the question is first condensed into a standalone one (the
        ``Answer.question`` field holds what was actually asked).
        """
        question = self.condense(history, question)
        lang, english, passages, timings = self.retrieve(question, k)
        # the gate compares words, so it only judges questions asked in English; a translated
        # question is left to verification, which compares names and numbers
        reason = "" if english else answering.evidence_gate(question, passages)
        llm = self.llm
        if reason:
            yield answering.refusal(question, passages, reason, timings, llm.model_id)
            return
        messages, kept, dropped, _ = self.build_prompt(question, passages, lang, english)
        stats: dict = {}
        pieces = []
        for piece in llm.stream(messages, self.config.max_answer_tokens, stats):
            pieces.append(piece)
            yield piece
        timings.update(prompt_s=stats.get("prompt_s", 0.0), generation_s=stats.get("generate_s", 0.0))
        yield answering.finish(question, "".join(pieces), kept, lang, stats, timings, dropped,
                               llm.model_id, english_question=english, with_quotes=self.config.quotes)

    def retrieve(self, question: str, k: int | None = None) -> tuple[str, str | None, list[Passage], dict]:
        """The question's language, its English translation (None for English questions), the
        passages for it (the translation joins the search) and the timings."""
        t0 = time.perf_counter()
        lang = _question_language(question)
        english = None
        if lang not in ("en", "und"):
            english = answering.translate_question(self.llm, question)
        timings = {"translate_s": time.perf_counter() - t0}
        t1 = time.perf_counter()
        res = self.retriever.search(question, k or self.config.top_k,
                                    extra_queries=[english] if english else None)
        timings.update(retrieval_s=time.perf_counter() - t1, **res.timings)
        return lang, english, res.passages, timings

    def build_prompt(self, question: str, passages: list[Passage], lang: str = "en",
                     english: str | None = None) -> tuple[list[dict], list[Passage], int, int]:
        """The chat messages for ``question`` over ``passages`` (compacted to the question's most
        relevant sentences when ``context_tokens`` is set), the passages kept within the model's
        context window, how many were dropped, and the prompt's token count."""
        llm = self.llm
        texts = None
        if self.config.context_tokens > 0:
            versions = answering.question_versions(question, lang, english, passages)
            texts = [answering.compact(versions, p, self.config.context_tokens, llm.count_tokens)
                     for p in passages]
        return answering.fit_context(llm, question, passages, self.config.max_answer_tokens, texts)

    def _check_question(self, question: str) -> str:
        q = " ".join((question or "").split())
        if not q:
            raise RagError("the question is empty; type a question about the articles")
        if len(q) > self.config.max_question_chars:
            raise RagError(f"the question is {len(q)} characters long; the limit is "
                           f"{self.config.max_question_chars} (RAG_MAX_QUESTION_CHARS)")
        return q


def _question_language(question: str) -> str:
    from .corpus import detect_language

    if grounding.CJK.search(question):
        return "zh"
    return detect_language(question) if len(question) >= 20 else "und"
