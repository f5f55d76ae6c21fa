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
from dataclasses import dataclass, field
from pathlib import Path

from .chunking import CHUNKER_VERSION, chunk_document
from .corpus import Document, load_folder_or_files
from .store import DELETED, terms_field

# chunks embedded and written per step: bigger batches pad less (encode sorts by length within a
# call); a killed run redoes at most one batch
BATCH_CHUNKS = 512


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
    sig = f"{content_hash}|{embedder_name}|{chunk_tokens}|{CHUNKER_VERSION}"
    return hashlib.sha256(sig.encode()).hexdigest()


def doc_metadata(doc: Document, n_chunks: int | None = None) -> dict:
    m = {**{k: v for k, v in doc.extra.items() if isinstance(v, (str, int, float, bool))},
         **doc.metadata()}
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
        return bool(rec and rec.state in ("done", DELETED)
                    and rec.fingerprint == fingerprint(content_hash, embedder.name, chunk_tokens))

    loaded = load_folder_or_files(paths, unchanged=unchanged)  # unchanged files are not re-read
    rep = IngestReport(errors=loaded.errors)
    for doc_id in loaded.unchanged:
        (rep.kept_deleted if records[doc_id].state == DELETED else rep.unchanged).append(doc_id)
    todo: list[tuple[Document, str]] = []
    for doc in loaded.documents:
        fp = fingerprint(doc.content_hash, embedder.name, chunk_tokens)
        rec = records.get(doc.id)
        other = _held_by_another_file(rec, doc)
        if other:
            rep.errors.append((doc.source_path, f"document id {doc.id!r} is already taken by {other}; "
                                                "rename one of the two files (ids are file names)"))
            loaded.unchanged.append(doc.id)  # the other file's document stays as it is
            continue
        if unchanged(doc.id, doc.content_hash):
            rep.unchanged.append(doc.id)
        else:
            (rep.updated if rec else rep.added).append(doc.id)
            todo.append((doc, fp))
    folders = [Path(p).resolve() for p in paths if Path(p).is_dir()]
    loaded_ids = {d.id for d in loaded.documents} | set(loaded.unchanged)
    gone = [r.id for r in records.values() if r.id not in loaded_ids and _source_gone(r, folders)]
    if todo or gone or store.unsettled():  # unsettled: an earlier run was killed mid-write
        with store.writing():  # the keyword index is rebuilt once, after the last write
            for doc_id in gone:
                rep.chunks_deleted += len(store.delete_chunks_of(doc_id))
                store.forget_document(doc_id)
                rep.removed.append(doc_id)
            if todo:
                _embed_and_write(todo, store, embedder, chunk_tokens, rep, progress, on_progress,
                                 batch_chunks)
    rep.embedder_loaded = embedder.loaded
    rep.seconds = time.perf_counter() - t0
    return rep


def _held_by_another_file(rec, doc: Document) -> str:
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
    return any(p.parent == f for f in folders) and not p.exists()


def _embed_and_write(todo, store, embedder, chunk_tokens, rep, progress, on_progress, batch_chunks):
    chunked = [(doc, fp, chunk_document(doc.id, doc.text, chunk_tokens, fits=embedder.fits))
               for doc, fp in todo]
    total = sum(len(c) for _, _, c in chunked)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="chunk", desc="embedding", leave=False)
    done = 0
    batch: list = []
    for item in chunked + [None]:
        if item is not None:
            batch.append(item)
        size = sum(len(c) for _, _, c in batch)
        if batch and (item is None or size >= batch_chunks):
            _write_batch(batch, store, embedder, rep)
            done += size
            if bar:
                bar.update(size)
            if on_progress:
                on_progress(done, total)
            batch = []
    if bar:
        bar.close()


def _write_batch(batch, store, embedder, rep):
    docs = [doc for doc, _, _ in batch]
    store.mark_pending_many([(d.id, doc_metadata(d), d.text) for d in docs])
    rep.chunks_deleted += len(store.delete_chunks_of_many([d.id for d in docs]))
    texts = [c.text for _, _, cs in batch for c in cs]
    vectors = embedder.encode(texts).tolist() if texts else []
    ids, metas = [], []
    for doc, _, chunks in batch:
        dm = doc_metadata(doc)
        dm.pop("source_path", None)
        for c in chunks:
            ids.append(c.id)
            metas.append({**dm, "start": c.start, "end": c.end, "index": c.index,
                          "terms": terms_field(c.text)})
    if ids:
        store.add_chunks(ids, vectors, texts, metas)
    rep.chunks_embedded += len(ids)
    store.mark_done_many([(doc.id, fp, doc_metadata(doc, len(chunks)), doc.text)
                          for doc, fp, chunks in batch])
