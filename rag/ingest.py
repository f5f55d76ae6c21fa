"""Incremental ingestion: embed only new or changed documents; resumable after a kill.

Protocol (each step is durable before the next begins), inside ``Store.writing()``:
  1. the store's generation is raised (no keyword index matches it until step 5);
  2. each document is marked ``pending`` in the registry;
  3. its old chunks are deleted (by document id, so orphans of any earlier attempt go too);
  4. new chunks are embedded and upserted with content-derived ids, then the document is
     marked ``done`` with its fingerprint;
  5. after the last write the generation is raised again and settled, and the keyword index is
     rebuilt from exactly the chunks in Chroma and stamped with it.
A run killed anywhere leaves documents ``pending`` or with old fingerprints: the next run
treats them as changed and redoes steps 2-4, so there are no duplicates and no orphans.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from .chunking import CHUNKER_VERSION, chunk_document
from .config import Config
from .corpus import CLEANER_VERSION, Document, PendingFile, scan_folder_or_files
from .errors import RagError
from .readers import chunk_pages
from .store import DELETED, terms_field

# chunks embedded and written per step (Config.ingest_batch): bigger steps pad less (encode sorts
# by length within a call) and write in bigger Chroma calls (rtqa-dev: 2,048 took 59 s where 512
# took 61.5 s); a killed run redoes at most one step
BATCH_CHUNKS = Config.ingest_batch
# file bytes read and chunked ahead of embedding: memory stays bounded however large the archive
WINDOW_BYTES = 1_000_000


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_deleted: list[str] = field(default_factory=list)  # deleted by the user, file unchanged
    errors: list[tuple[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_deleted: int = 0
    embedder_loaded: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"added {len(self.added)}, updated {len(self.updated)}, removed {len(self.removed)}, "
                f"unchanged {len(self.unchanged)}, skipped {len(self.errors)}"
                + (f", kept deleted {len(self.kept_deleted)}" if self.kept_deleted else "") + "; "
                f"embedded {self.chunks_embedded} chunks, deleted {self.chunks_deleted} "
                f"in {self.seconds:.2f}s")


def fingerprint(content_hash: str, embedder_name: str, chunk_tokens: int) -> str:
    sig = f"{content_hash}|{embedder_name}|{chunk_tokens}|{CHUNKER_VERSION}|{CLEANER_VERSION}"
    return hashlib.sha256(sig.encode()).hexdigest()


CONTENT_HASH = "content_hash"  # in a document record: its text's hash, whatever embedder made it


def doc_metadata(doc: Document, n_chunks: int | None = None) -> dict:
    m = {**{k: v for k, v in doc.extra.items() if isinstance(v, (str, int, float, bool))},
         **doc.metadata(), CONTENT_HASH: doc.content_hash}
    if n_chunks is not None:
        m["n_chunks"] = n_chunks
    return m


def ingest(paths: list[Path], store, embedder, chunk_tokens: int, progress: bool = False,
           on_progress=None, batch_chunks: int = BATCH_CHUNKS) -> IngestReport:
    """Bring the store in line with ``paths``. A missing path raises before the store is touched.

    ``on_progress(done_chunks, total_chunks)`` is called as batches finish (for the UI).
    """
    t0 = time.perf_counter()
    records = store.documents(include_deleted=True)

    def unchanged(doc_id: str, content_hash: str) -> bool:  # done, or deleted by the user
        rec = records.get(doc_id)
        if rec and rec.state == DELETED and rec.metadata.get(CONTENT_HASH):
            return rec.metadata[CONTENT_HASH] == content_hash  # deleted stays deleted, any embedder
        return bool(rec and rec.state in ("done", DELETED)
                    and rec.fingerprint == fingerprint(content_hash, embedder.name, chunk_tokens))

    scan = scan_folder_or_files(paths, unchanged=unchanged)  # hashed; unchanged files not cleaned
    rep = IngestReport(errors=scan.errors)
    for doc_id in scan.unchanged:
        (rep.kept_deleted if records[doc_id].state == DELETED else rep.unchanged).append(doc_id)
    todo: list[PendingFile] = []
    for pf in scan.files:
        rec = records.get(pf.id)
        other = _held_by_another_file(rec, pf)
        if other:
            rep.errors.append((pf.source_path, f"document id {pf.id!r} is already taken by {other}; "
                                               "rename one of the two files (ids are file names)"))
            continue
        (rep.updated if rec else rep.added).append(pf.id)
        todo.append(pf)
    folders = [Path(p).resolve() for p in paths if Path(p).is_dir()]
    found = {pf.id for pf in scan.files} | set(scan.unchanged)
    gone = [r.id for r in records.values() if r.id not in found and _source_gone(r, folders)]
    if todo or gone or store.unsettled():  # unsettled: an earlier run was killed mid-write
        with store.writing():  # the keyword index is rebuilt once, after the last write
            for doc_id in gone:
                rep.chunks_deleted += len(store.delete_chunks_of(doc_id))
                store.forget_document(doc_id)
                rep.removed.append(doc_id)
            if todo:
                store.record_embedder(embedder.name)
                _embed_and_write(todo, store, embedder, chunk_tokens, rep, progress, on_progress,
                                 batch_chunks, records)
    rep.embedder_loaded = embedder.loaded
    rep.seconds = time.perf_counter() - t0
    return rep


def _held_by_another_file(rec, doc: "Document | PendingFile") -> str:
    """The path of another, still existing file whose document has ``doc``'s id, or ""."""
    src = rec.metadata.get("source_path", "") if rec else ""
    if not src or not doc.source_path or os.path.abspath(src) == doc.source_path or not Path(src).exists():
        return ""
    return src


def _source_gone(rec, folders: list[Path]) -> bool:
    src = rec.metadata.get("source_path")
    if not src:
        return False
    p = Path(src).resolve()
    return any(p.parent == f for f in folders) and not p.is_file()  # gone, or now a folder


def _windows(todo: list[PendingFile], limit_bytes: int):
    """Consecutive groups of files of at most ``limit_bytes`` together (a bigger file alone); the
    first ones smaller (from 1/16 of it, doubling), so that embedding starts sooner."""
    group, size = [], 0
    limit = max(1, limit_bytes // RAMP)
    for pf in todo:
        if group and size + pf.size > limit:
            yield group
            group, size = [], 0
            limit = min(limit_bytes, limit * 2)
        group.append(pf)
        size += pf.size
    if group:
        yield group


RAMP = 16  # the first window and step are this much smaller than the others


def _embed_and_write(todo, store, embedder, chunk_tokens, rep, progress, on_progress, batch_chunks,
                     records):
    """Read, chunk, embed and write ``todo`` as a stream: files are loaded and chunked a window
    of at most WINDOW_BYTES at a time, and chunks are embedded and written in steps of at most
    ``batch_chunks``, across and within documents (one long document spans several steps). The
    progress total grows as windows are chunked; the bar moves as steps are written.

    Three threads share the work: this one embeds; one reads and chunks the next window
    (``_Ahead``); one writes the previous step (``_Writer``), at most one step behind and in
    order, so the write protocol is unchanged. Steps reach the embedder as one stream
    (``encode_lists``), so it starts on a step while the last one's batches finish, and the last
    steps get smaller, so the final write, which nothing overlaps, is short. (rtqa-dev, 15,606
    chunks, 2 cores: 90 s one step after another, 68 s on three threads; 57 s with steps of
    2,048, batches sorted by word pieces and BM25 tokens prepared by the writer; 52 s with
    packed Chroma records, see ``store.WRITE_BATCH``.)

    A document is marked pending, with the fingerprint it is being written for, before its first
    chunk is written, and done after its last. A run killed inside a long document resumes it:
    chunks already written for that same fingerprint are kept, not embedded again."""
    bar = None
    total = 0
    writer = _Writer(lambda done: _report(bar, on_progress, done, total))
    windows = _Ahead(_chunked_windows(todo, embedder, chunk_tokens))

    def steps():
        nonlocal bar, total
        step = _Step(store, embedder, rep)
        first = size = max(1, batch_chunks // RAMP)  # doubling up to batch_chunks
        for chunked, errors in windows:
            for pf, message in errors:  # unreadable after all: reported, its old data (if any) untouched
                rep.errors.append((pf.source_path, message))
                for ids in (rep.added, rep.updated):
                    if pf.id in ids:
                        ids.remove(pf.id)
            total += sum(len(chunks) for _, _, chunks in chunked)
            if progress and bar is None and total:
                from tqdm import tqdm

                bar = tqdm(total=total, unit="chunk", desc="embedding", leave=False)
            elif bar:
                bar.total = total
                bar.refresh()
            for doc, fp, chunks in chunked:
                rec = records.get(doc.id)
                keep: set[str] = set()
                if rec and rec.state == "pending" and rec.metadata.get(PENDING_FINGERPRINT) == fp:
                    keep = store.chunk_ids_of(doc.id) & {c.id for c in chunks}
                step.start(doc, fp, len(chunks), keep)
                for c in chunks:
                    if c.id in keep:
                        continue
                    step.chunks.append((doc, c))
                    if len(step.chunks) >= size:
                        yield step.cut()
                        size = min(batch_chunks, size * 2)
                writer.kept(len(keep))
        while len(step.chunks) > first:  # the last steps halve, down to the first one's size
            yield step.cut(len(step.chunks) // 2)
        yield step.cut()

    cuts: deque = deque()

    def texts():
        for cut in steps():
            cuts.append(cut)
            yield cut.texts

    stream = embedder.encode_lists(texts())
    try:
        for vectors in stream:
            writer.submit(partial(cuts.popleft().write, vectors))
    finally:
        stream.close()
        windows.close()
        writer.close()  # the step in flight is written (or fails) before the store is settled
    if bar:
        bar.close()


PENDING_FINGERPRINT = "pending_fingerprint"  # in a pending record: the content being written


def _chunked_windows(todo, embedder, chunk_tokens):
    """Per window of files: ([(doc, fingerprint, chunks)], [(file, load error)])."""
    for window in _windows(todo, WINDOW_BYTES):
        chunked, errors = [], []
        for pf in window:
            try:
                doc = pf.load()
            except RagError as e:
                errors.append((pf, str(e)))
                continue
            chunks = chunk_document(doc.id, doc.text, chunk_tokens, pieces=embedder)
            chunked.append((doc, fingerprint(doc.content_hash, embedder.name, chunk_tokens), chunks))
        yield chunked, errors


class _Ahead:
    """Iterates ``items`` on a thread of its own, one item ahead of the caller: the next window
    is read and chunked while this one is embedded (tokenisers and inference release the GIL).
    An error of ``items`` is raised to the caller in its place; ``close`` waits for the item in
    progress and asks for no more."""

    _END = object()

    def __init__(self, items):
        from concurrent.futures import ThreadPoolExecutor

        self.items = iter(items)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="rag-ingest-chunk")
        self.next = self.pool.submit(next, self.items, self._END)

    def __iter__(self):
        while True:
            item = self.next.result()
            if item is self._END:
                return
            self.next = self.pool.submit(next, self.items, self._END)
            yield item

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _report(bar, on_progress, done: int, total: int) -> None:
    if bar:
        bar.update(done - bar.n)
    if on_progress:
        on_progress(done, total)


class _Writer:
    """Runs steps' writes in order on one thread, at most one step behind the caller; a write's
    error is raised to the caller at its next ``submit`` or at ``close``. ``on_written(chunks)``
    is called on the caller's thread with the running count of chunks written or kept."""

    def __init__(self, on_written):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(1, thread_name_prefix="rag-ingest-write")
        self.in_flight = None
        self.on_written = on_written
        self.done = 0

    def kept(self, n: int) -> None:
        self.done += n

    def _settle(self) -> None:
        if self.in_flight is not None:
            future, self.in_flight = self.in_flight, None
            self.done += future.result()
            self.on_written(self.done)

    def submit(self, write) -> None:
        self._settle()
        self.in_flight = self.pool.submit(write)

    def close(self) -> None:
        try:
            self._settle()
        finally:
            self.pool.shutdown(wait=True)


class _Step:
    """One ingestion step: the documents begun in it and the chunks to embed and write."""

    def __init__(self, store, embedder, rep):
        self.store, self.embedder, self.rep = store, embedder, rep
        self.begun: list[tuple] = []  # (doc, fp, chunk ids to keep) not yet marked pending
        self.chunks: list[tuple] = []  # (doc, chunk)
        self.left: dict[str, list] = {}  # doc id -> [doc, fp, chunks still to write, n_chunks]

    def start(self, doc, fp: str, n_chunks: int, keep: set[str]) -> None:
        self.begun.append((doc, fp, keep))
        self.left[doc.id] = [doc, fp, n_chunks - len(keep), n_chunks]

    def cut(self, n: int | None = None) -> "_Cut":
        """The step's first ``n`` chunks (all by default) as a cut of their own, with the writes
        that go with them, to run in this order once they are embedded: pending marks and old
        chunks' removal for the documents begun so far, then the chunks, then done marks for
        the documents whose last chunk is among them."""
        begun, chunks = self.begun, self.chunks[:n]
        self.begun, self.chunks = [], self.chunks[len(chunks):]
        for doc, _ in chunks:
            self.left[doc.id][2] -= 1
        finished = [v for v in self.left.values() if v[2] == 0]
        for doc, *_ in finished:
            del self.left[doc.id]
        return _Cut(self.store, self.embedder, self.rep, begun, chunks, finished)


class _Cut:
    """Chunks to embed (``texts``) and, given their vectors, the writes that go with them."""

    def __init__(self, store, embedder, rep, begun, chunks, finished):
        self.store, self.embedder, self.rep = store, embedder, rep
        self.begun, self.chunks, self.finished = begun, chunks, finished
        self.texts = [c.text for _, c in chunks]

    def write(self, vectors) -> int:
        """The writes, run on the writer's thread (the embedding thread feeds the embedder);
        returns the number of chunks written."""
        store, rep, begun, chunks, texts = self.store, self.rep, self.begun, self.chunks, self.texts
        metas, by_doc = [], {}
        for doc, c in chunks:
            if doc.id not in by_doc:  # a chunk carries its document's fields, not its path
                by_doc[doc.id] = {k: v for k, v in doc_metadata(doc).items()
                                  if k not in ("source_path", CONTENT_HASH)}
            metas.append({**by_doc[doc.id], "start": c.start, "end": c.end, "index": c.index,
                          "terms": terms_field(c.text),
                          **chunk_pages(doc.extra.get("pages"), c.start, c.end)})  # PDF, DOCX
        if begun:
            store.mark_pending_many([(d.id, {**doc_metadata(d), PENDING_FINGERPRINT: fp})
                                     for d, fp, _ in begun])
            keep = set().union(*(k for _, _, k in begun))
            rep.chunks_deleted += len(store.delete_chunks_of_many([d.id for d, _, _ in begun], keep=keep))
        if texts:
            vectors = self.embedder.center(vectors, [doc.language for doc, _ in chunks])
            store.add_chunks([c.id for _, c in chunks], vectors, texts, metas)
        rep.chunks_embedded += len(texts)
        if self.finished:
            store.mark_done_many([(doc.id, fp, doc_metadata(doc, n), doc.text)
                                  for doc, fp, _, n in self.finished])
        return len(texts)
