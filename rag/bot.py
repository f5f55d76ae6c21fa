"""The core object: one ``Bot`` owns config, store, embedder, retriever and LLM, and wires the
stages of an answer in order. It knows what each stage takes and returns, not how it works.

    question --query.analyse--> Query --retrieve--> passages --gate--> (refuse early)
      --prompt.build--> messages --llm.stream--> draft --verify--> sentences
      --quotes--> + verbatim quotes --refuse--> (refuse) --cite--> Answer

Front ends (``rag`` CLI, the chat UI, ``rag eval``) only parse input, call a ``Bot`` method and
format the result; every change to the corpus (uploads and deletions included) goes through
it. Collaborators are passed in; ``Bot.from_config`` builds the real ones.

    bot = Bot.from_config(Config.from_env())
    bot.ingest()
    answer = bot.ask("When did Tongyi Qianwen open to the public?")
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Iterator

from . import cascade, confidence, corpus, prompt as prompting, query as querying, when
from .cite import make_citations, render_text
from .config import RANGES, Config
from .embedding import Embedder
from .errors import RagError
from .gate import evidence_gate
from .ingest import IngestReport, ingest
from .quotes import introduce, qualifiers, quote_sentences, select_quotes
from .refuse import refusal, refusal_reason, signals
from .retrieve import Retriever, SearchResult
from .store import Store
from .types import LLM, Answer, Escalation, Evidence, Passage, Query
from .verify import is_model_refusal, verify


class Bot:
    def __init__(self, config: Config, store: Store, embedder: Embedder, llm: LLM | None = None,
                 second_llm: LLM | None = None):
        """``llm`` and ``second_llm`` (the cascade's larger reader) default to the configured
        models, loaded on first use; a bot given its ``llm`` has a second reader only when given
        one too."""
        self.config = config
        self.store = store
        self.embedder = embedder
        self.retriever = Retriever(store, embedder)
        self._llm = llm
        self._second = second_llm
        self._second_from_config = llm is None and second_llm is None
        self._llm_lock = threading.Lock()
        self._ingest_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config | None = None, llm: LLM | None = None,
                    second_llm: LLM | None = None) -> "Bot":
        config = config or Config.from_env()
        keyword_dir = None
        if config.chroma_url:
            from .store import _sanitize

            keyword_dir = config.home / "keyword" / f"{_sanitize(config.chroma_url)}__{config.collection}"
        store = Store(path=config.store_path, url=config.chroma_url, collection=config.collection,
                      keyword_dir=keyword_dir)
        return cls(config, store, Embedder(config.embedder, backend=config.embedder_backend,
                                           cache_root=config.model_cache / "embedders"), llm=llm,
                   second_llm=second_llm)

    # -- knowledge base -------------------------------------------------------------------
    def ingest(self, paths: list[Path | str] | None = None, progress: bool = False,
               on_progress=None) -> IngestReport:
        paths = [Path(p) for p in (paths or [self.config.corpus_dir])]
        with self._ingest_lock:
            return ingest(paths, self.store, self.embedder, self.config.chunk_tokens,
                          progress=progress, on_progress=on_progress,
                          batch_chunks=self.config.ingest_batch)

    def add_uploads(self, files: list[tuple[str, bytes]], on_progress=None) -> IngestReport:
        """Save uploaded files (name, content) into the corpus folder and ingest them.

        A file with an unsafe name, over the size limit, or that is not a readable article is
        reported in ``errors`` and nothing of it is written: an existing article of the same
        name keeps its file and its chunks. A new file that ingestion refuses (a reserved name,
        an id another folder's file holds) is removed again."""
        saved, new, errors = [], set(), []
        for name, data in files:
            try:
                if len(data) > self.config.max_upload_bytes:
                    raise RagError(f"{len(data):,} bytes; the limit is {self.config.max_upload_bytes:,} "
                                   "(RAG_MAX_UPLOAD_BYTES)")
                existed = corpus.corpus_target(self.config.corpus_dir, name).exists()
                saved.append(corpus.save_upload(self.config.corpus_dir, name, data))
                if not existed:
                    new.add(os.path.abspath(saved[-1]))
            except RagError as e:
                errors.append((name, str(e)))
        rep = self.ingest(saved, on_progress=on_progress) if saved else IngestReport()
        for i, (path, message) in enumerate(rep.errors):
            if os.path.abspath(path) in new:  # refused: not left in the corpus folder
                Path(path).unlink(missing_ok=True)
                rep.errors[i] = (Path(path).name, message + "; the upload was not kept")
        rep.errors = errors + rep.errors
        return rep

    def delete_document(self, doc_id: str) -> int:
        """Remove a document for good: its chunks go, and its file too when that lies in the
        corpus folder; a file elsewhere (the user's own) stays, and a tombstone keeps the next
        ``ingest`` from bringing it back until the file's content changes. Returns the number
        of chunks removed."""
        with self._ingest_lock:
            rec = self.store.documents().get(doc_id)
            if rec is None:
                raise RagError(f"no document {doc_id!r} in the store")
            with self.store.writing():
                n = len(self.store.delete_chunks_of(doc_id))
                if corpus.remove_from_folder(self.config.corpus_dir, rec.metadata.get("source_path", "")):
                    self.store.forget_document(doc_id)
                else:
                    self.store.mark_deleted(rec)
        return n

    def document_text(self, doc_id: str) -> str:
        """The cleaned text of a stored document (citation spans index into it)."""
        return self.store.document_text(doc_id)

    def warm_up(self) -> None:
        """Load the embedder and the LLMs now, so the first question does not wait for them."""
        self.embedder.encode(["warm-up"])
        self.llm
        self.second_llm

    def stats(self) -> dict:
        docs = self.store.documents()
        return {"documents": len(docs), "chunks": self.store.count(),
                "store": self.store.location, "mode": self.config.store_mode,
                "collection": self.config.collection, "embedder": self.embedder.name,
                "embedder_path": str(self.embedder.path),
                "embedder_runtime": self.embedder.runtime,
                "per_document": {d: {"chunks": int(r.metadata.get("n_chunks", 0)),
                                     "title": r.metadata.get("title", ""),
                                     "date": r.metadata.get("date", ""),
                                     "language": r.metadata.get("language", ""),
                                     "state": r.state,
                                     "source_path": r.metadata.get("source_path", "")}
                                 for d, r in sorted(docs.items())}}

    # -- answering ------------------------------------------------------------------------
    @property
    def llm(self) -> LLM:
        with self._llm_lock:
            if self._llm is None:
                from .models import load_llm

                c = self.config
                self._llm = load_llm(c.model, c.model_cache, c.n_ctx, c.threads, c.model_sha256,
                                     c.allow_downloads)
            return self._llm

    @property
    def second_llm(self) -> LLM | None:
        """The cascade's larger reader (``RAG_SECOND_MODEL``), or None: "none", the same model
        as the first, or a bot given its own ``llm`` and no second one."""
        with self._llm_lock:
            c = self.config
            if self._second is None and self._second_from_config and c.second_reader:
                from .models import load_llm

                self._second = load_llm(c.second_reader, c.model_cache, c.n_ctx, c.threads, None,
                                        c.allow_downloads)
            return self._second

    def analyse(self, question: str, history: list[tuple[str, str]] | None = None,
                as_of=None) -> Query:
        """The question checked and analysed once (condensed with ``history``, translated when
        not in English, its time words resolved against ``as_of``: a ``datetime.date``,
        "YYYY-MM-DD" or None = today); the model is loaded only when one of those needs it."""
        as_of = when.as_of_date(as_of)  # a bad date is an error before any model is loaded
        return querying.analyse(self._check_question(question), lambda: self.llm, history,
                                translated=self.config.translate, as_of=as_of)

    def search(self, question: str, k: int | None = None, as_of=None) -> list[Passage]:
        """Passages for ``question`` as of ``as_of`` (default today): none published after it."""
        return self.retrieve(self.analyse(question, as_of=as_of), k).passages

    def retrieve(self, query: Query, k: int | None = None) -> SearchResult:
        t0 = time.perf_counter()
        lo, hi, _ = RANGES["top_k"]
        if k is not None and not (isinstance(k, int) and lo <= k <= hi):
            raise RagError(f"k = {k!r}: ask for {lo} to {hi} passages (as RAG_TOP_K allows)")
        res = self.retriever.search(query, k or self.config.top_k)
        return SearchResult(res.passages, {"retrieval_s": time.perf_counter() - t0, **res.timings})

    def prompt(self, query: Query, passages: list[Passage], llm: LLM | None = None) -> prompting.Prompt:
        """The chat messages for ``query`` over ``passages`` within the context of ``llm``
        (default: the first reader)."""
        return prompting.build(llm or self.llm, query, passages, query.versions(passages),
                               self.config.max_answer_tokens, self.config.context_tokens)

    def ask(self, question: str, k: int | None = None,
            history: list[tuple[str, str]] | None = None, as_of=None) -> Answer:
        result = None
        for item in self.stream(question, k, history, as_of=as_of):
            result = item
        return result

    def chat(self, history: list[tuple[str, str]], question: str, k: int | None = None,
             as_of=None) -> Answer:
        """Answer a follow-up: ``history`` is [(user question, bot answer), ...], oldest first."""
        return self.ask(question, k, history, as_of=as_of)

    def stream(self, question: str, k: int | None = None,
               history: list[tuple[str, str]] | None = None, as_of=None) -> Iterator[str | Answer]:
        """Yield the ``Evidence`` (the sources' own sentences that answer the question, when there
        are any) as soon as retrieval is done, then the draft's text pieces as they are
        generated, then the verified ``Answer``; its ``timings["first_text_s"]`` is when the first
        of these reached the caller.

        With ``history``, the question is first condensed into a standalone one (the
        ``Answer.question`` field holds what was actually asked). ``as_of`` (a date or
        "YYYY-MM-DD"; default today): articles published after it are not evidence.
        """
        t0 = time.perf_counter()
        query = self.analyse(question, history, as_of=as_of)
        timings = {"analyse_s": time.perf_counter() - t0}
        res = self.retrieve(query, k)
        first = None
        for item in self.answer(query, res.passages, {**timings, **res.timings}):
            if first is None and (not isinstance(item, str) or item.strip()):
                first = time.perf_counter() - t0
            if isinstance(item, Answer):
                item.timings["first_text_s"] = first
            yield item

    def answer(self, query: Query, passages: list[Passage], timings: dict | None = None
               ) -> Iterator[str | Evidence | Escalation | Answer]:
        """The stages after retrieval: gate, prompt, generate (streamed), verify, quote, refuse,
        cite; then, when the answer would be refused, the cascade's second reader (rag.cascade).
        Yields the evidence, the draft's pieces, an ``Escalation`` before a second draft, then
        the ``Answer``."""
        timings = dict(timings or {})
        llm = self.llm
        reason = evidence_gate(query, passages)
        if reason:
            reason += when.empty_window(query.when, passages)  # "... (as of ..., this week)"
            yield refusal(query.text, passages, reason, query.language, timings=timings, model=llm.model_id)
            return
        p = self.prompt(query, passages)
        quotes = select_quotes(query.versions(p.passages), p.passages) if self.config.quotes else []
        # a later source that answers too is quoted as well; when.dated puts the newest first
        quotes += when.newer_answer(quotes, p.passages,
                                    lambda ps: select_quotes(query.versions(ps), ps, max_quotes=1))
        if quotes:  # the sources' own words first, while the model reads the prompt
            sentences = introduce(when.dated(quote_sentences(quotes, []), p.passages), query.language,
                                  p.passages)
            yield Evidence(render_text(sentences), make_citations(sentences, p.passages), p.passages)
        result = yield from self._draft(llm, query, p, quotes, timings)
        second = self.second_llm if cascade.wants_second(result) else None  # loaded when first needed
        if cascade.escalates(result, llm, second):
            t0 = time.perf_counter()
            yield Escalation(second.model_id, result.refusal_reason)
            p2 = self.prompt(query, p.passages, second)
            first_reason = result.refusal_reason
            result = yield from self._draft(second, query, p2, quotes, timings)
            result.escalated = first_reason
            result.timings["escalation_s"] = time.perf_counter() - t0
        yield result

    def _draft(self, llm: LLM, query: Query, p: prompting.Prompt, quotes: list, timings: dict):
        """Stream ``llm``'s draft for prompt ``p`` (yields its pieces); returns the checked Answer."""
        stats: dict = {}
        pieces = []
        for piece in llm.stream(p.messages, self.config.max_answer_tokens, stats):
            pieces.append(piece)
            yield piece
        timings = {**timings, "prompt_s": stats.get("prompt_s", 0.0), "generation_s": stats.get("generate_s", 0.0)}
        return self._finish(llm, query, "".join(pieces), p, stats, timings, quotes)

    def _finish(self, llm: LLM, query: Query, draft: str, p: prompting.Prompt, stats: dict, timings: dict,
                quotes: list) -> Answer:
        """Verify the draft; the answer is its supported sentences, then ``quotes`` (the evidence
        already shown) and the sentences that qualify a drafted claim."""
        t0 = time.perf_counter()
        model_id = llm.model_id
        passages = p.passages
        drafted, flagged = verify(draft, query, passages)
        quotes = list(quotes)
        if self.config.quotes:
            # a drafted claim the source calls a rumour keeps the source's words
            quotes += [q for d in drafted for n in d.citations for q in qualifiers(d.text, n, passages[n - 1])]
        sentences = introduce(drafted + quote_sentences(quotes, drafted), query.language, passages)
        timings = {**timings, "verify_s": time.perf_counter() - t0}
        rules, conf = {}, None
        if sentences:
            t1 = time.perf_counter()
            rules = signals(query, sentences, passages)
            if self.config.self_check:
                conf = confidence.assess(llm, p.messages, draft, query.text, rules)
            timings["check_s"] = time.perf_counter() - t1
        reason = refusal_reason(query, is_model_refusal(draft), sentences, rules, conf,
                                self.config.min_confidence / 100)
        tokens = {"prompt": stats.get("prompt_tokens", 0), "completion": stats.get("completion_tokens", 0)}
        checked = conf.to_dict() if conf else dict(rules)
        if reason:
            return refusal(query.text, passages, reason, query.language, flagged=flagged, draft=draft,
                           dropped_passages=p.dropped, timings=timings, tokens=tokens, model=model_id,
                           confidence=checked)
        sentences = when.dated(sentences, passages)  # newest source's quote first, older ones dated
        return Answer(query.text, render_text(sentences), make_citations(sentences, passages), passages,
                      False, "", sentences, flagged, draft, p.dropped, timings, tokens, model_id, checked)

    def _check_question(self, question: str) -> str:
        q = " ".join((question or "").split())
        if not q:
            raise RagError("the question is empty; type a question about the articles")
        if len(q) > self.config.max_question_chars:
            raise RagError(f"the question is {len(q)} characters long; the limit is "
                           f"{self.config.max_question_chars} (RAG_MAX_QUESTION_CHARS)")
        return q
