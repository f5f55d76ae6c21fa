"""Chroma (embedded or server) plus a persisted BM25 keyword index: upsert, delete, query.

Three Chroma collections hold everything a store needs, so a server-mode store is complete on
the server:
- ``<name>``: one record per chunk (vector, document metadata, character span and text);
- ``<name>__docs``: one record per document (fingerprint, state, metadata) and a ``__meta__``
  record (generation counter, embedder);
- ``<name>__texts``: each document's cleaned text, apart, so listing the registry does not read it.
Records are ``pack``ed: their fields as one JSON metadata field, plus the field Chroma filters on
(a chunk's ``doc_id``). Records of older stores (a metadata field per field; a chunk's text in
``chunk_text`` or as the Chroma document; a document's text as its record's document) are read
as well.

The keyword index (bm25s) lives in a local folder with the generation it reflects; when the
generations differ (a run was killed, another client wrote to the server) it is rebuilt from
Chroma once, at open, never per query. Vectors are always passed in: Chroma's own default
embedder would download a model.
"""
from __future__ import annotations

import json
import re
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .dates import UNDATED_DAY
from .errors import RagError
from .text import distinctive_terms, keyword_tokens

META_ID = "__meta__"
STORE_ID = "store_id"  # in the meta record: random, written at a store's first change
DELETED = "deleted"  # a document record's state after the user deleted it (a tombstone)
GENERATION_TTL = 2.0  # seconds
MAX_BATCH = 5000  # Chroma accepts at most 5,461 records per call
# records per Chroma write: the local client holds the GIL for a whole call (an add of 2,048
# chunks stopped every other thread for 0.84 s, and with them the feeding of the embedder while
# ingesting); adds of 512 cost 2% more than adds of 2,048 and stop them for about 0.2 s
WRITE_BATCH = 512


@dataclass
class DocRecord:
    id: str
    fingerprint: str
    state: str  # "pending" while its chunks are being written, "done" after
    metadata: dict


def _sanitize(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)[:120]


CHUNK_TEXT = "chunk_text"  # a chunk record's text, in its metadata
# Records are written with one metadata field holding all their fields as JSON (``PACKED``), plus
# the fields Chroma filters on (a chunk's doc_id). Chroma writes a row and an index entry per
# field, and its local client holds the GIL meanwhile: 4,096 rtqa-dev chunks of 12 fields took
# 1.7-1.9 s to write, packed 1.2-1.3 s. Older stores (a field per field, the text as the Chroma
# document) are read as well.
PACKED = "packed"
# a chunk's doc_id, and its publication ``day`` (rag.dates: days since 1970-01-01, an int, so
# Chroma's $gte/$lte compare it; dates.published_where builds the clause)
FILTERED = ("doc_id", "day")


def pack(meta: dict) -> dict:
    """A record's metadata as written to Chroma."""
    return {**{k: meta[k] for k in FILTERED if k in meta},
            PACKED: json.dumps({k: v for k, v in meta.items() if k not in FILTERED}, ensure_ascii=False)}


def unpack(meta: dict | None) -> dict:
    """A record's metadata as written by ``pack`` or in the older layout."""
    meta = dict(meta or {})
    packed = meta.pop(PACKED, None)
    return {**meta, **json.loads(packed)} if packed is not None else meta


def chunk_record(document: str | None, meta: dict) -> tuple[str, dict]:
    """(text, metadata) of a chunk record as Chroma returns it, in any layout."""
    meta = unpack(meta)
    text = meta.pop(CHUNK_TEXT, None)
    return (text if text is not None else document or ""), meta


def terms_field(text: str) -> str:
    """``text.distinctive_terms`` as stored in a chunk's metadata at ingestion (none has a space)."""
    return " ".join(sorted(distinctive_terms(text)))


def chunk_terms(text: str, meta: dict) -> set[str]:
    """A chunk's distinctive terms: from its metadata, or computed for an older store."""
    stored = meta.get("terms")
    return set(stored.split()) if isinstance(stored, str) else distinctive_terms(text)


def corrupt_message(where, e: BaseException) -> str:
    return (f"the store at {where} cannot be read ({e.__class__.__name__}: {str(e)[:200]}). It may be "
            "corrupt: see the README's \"Recovery\" section (move it aside and run `rag ingest` to "
            "rebuild it from the articles).")


def _reraise_interrupts(e: BaseException) -> None:
    if isinstance(e, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise e


def _guarded(method):
    """A Chroma call whose failure (a damaged file, a Rust panic) is the recovery message."""
    import functools

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except RagError:
            raise
        except BaseException as e:
            _reraise_interrupts(e)
            raise RagError(corrupt_message(self.location, e)) from None

    return call


def open_client(path: Path | None, url: str | None):
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if url:
        from urllib.parse import urlparse

        u = urlparse(url if "://" in url else "http://" + url)
        try:
            client = chromadb.HttpClient(host=u.hostname or "127.0.0.1", port=u.port or 8000,
                                         ssl=u.scheme == "https", settings=settings)
            client.heartbeat()
        except Exception as e:  # chromadb raises several types for a refused connection
            raise RagError(f"cannot reach the Chroma server at {url} ({e.__class__.__name__}: {e}). "
                           "Start it with `chroma run --path DIR --host 127.0.0.1 --port N`.") from None
        return client
    _check_store_folder(Path(path))
    try:
        with _quiet_rust_panics():
            return chromadb.PersistentClient(path=str(path), settings=settings)
    except BaseException as e:  # a damaged file can make Chroma's Rust core panic (BaseException)
        _reraise_interrupts(e)
        raise RagError(corrupt_message(path, e)) from None


# Chroma's vector index (hnswlib) on disk: header.bin gives the element count and the bytes per
# element, and data_level0.bin / length.bin hold at least that many elements' records / lengths
_HNSW_HEADER = "<IQQQQQQiIQQQdQ"  # version, offsetLevel0, max_elements, count, size_per_element, ...
HNSW_CHECKS, HNSW_RECHECK_S = 5, 0.2  # a file being rewritten by a writer now is looked at again


def check_vector_files(path: Path, collection: str) -> None:
    """Raise the recovery message when a collection's vector index files are cut short.

    Chroma loads a truncated ``data_level0.bin`` without a word and answers dense queries from
    what is left (different results, and `rag ingest` still says "unchanged"). The check is
    cheap and needs no record of its own: the index's header states how many elements it holds
    and the bytes per element, and the files are written in whole element records, at least as
    many as it holds (for the elements present once the index has some: a fresh rtqa-dev store's
    index of capacity 16,384 holds 14,720 elements in exactly 14,720 x 1,676 bytes; at the
    capacity while it has none: 100 x 1,676). A file shorter than its elements, or not a whole
    number of records, is damaged. (Comparing Chroma's count with a dense query's reachable results would cost a query
    as large as the store.) A size that is short because a writer is rewriting the files at this
    moment is looked at again a few times before it counts."""
    import sqlite3
    import struct

    try:
        con = sqlite3.connect(f"file:{path / 'chroma.sqlite3'}?mode=ro", uri=True)
        try:
            segments = [r[0] for r in con.execute(
                "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
                "WHERE c.name = ? AND s.scope = 'VECTOR'", (collection,))]
        finally:
            con.close()
    except sqlite3.Error:
        return  # Chroma's own open reports a damaged database

    def problem(folder: Path) -> str:
        header = (folder / "header.bin").read_bytes()
        if len(header) < struct.calcsize(_HNSW_HEADER):
            return f"{folder / 'header.bin'} is {len(header)} bytes long"
        version, _, _, count, per_element, *_ = struct.unpack_from(_HNSW_HEADER, header)
        if version != 1:
            return ""  # a layout this check does not know
        for name, record in (("data_level0.bin", per_element), ("length.bin", 4)):
            got = (folder / name).stat().st_size if (folder / name).exists() else 0
            if got < count * record or (record and got % record):
                return (f"{folder / name} is {got:,} bytes long, its index needs {count * record:,} in "
                        f"records of {record:,}")
        return ""

    for seg in segments:
        folder = Path(path) / seg
        if not (folder / "header.bin").exists():
            continue  # not written to disk yet
        for _ in range(HNSW_CHECKS):
            try:
                found = problem(folder)
            except OSError as e:
                found = str(e)
            if not found:
                break
            time.sleep(HNSW_RECHECK_S)
        else:
            raise RagError(corrupt_message(path, ValueError(f"the vector index is cut short: {found}")))


_SEGMENT = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")  # a Chroma index folder's name


def _check_store_folder(path: Path) -> None:
    """The embedded store's folder exists (created here) and, when it holds a store, its database.

    A file where a folder should be (``RAG_HOME`` set to a file) is named as such, not as a
    corrupt store; a folder with Chroma's index folders or the keyword index but no
    ``chroma.sqlite3`` lost its database, which Chroma would silently recreate empty."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise RagError(f"the store folder {path} cannot be created: {blocker} is a file, not a "
                           "folder; set RAG_HOME (or RAG_STORE_DIR) to a folder") from None
        raise RagError(f"the store folder {path} cannot be created ({e.strerror or e}); set "
                       "RAG_HOME (or RAG_STORE_DIR) to a folder you can write to") from None
    if not (path / "chroma.sqlite3").exists() and any(
            (p.is_dir() and (_SEGMENT.fullmatch(p.name) or p.name == "keyword")) for p in path.iterdir()):
        raise RagError(corrupt_message(path, FileNotFoundError(
            "chroma.sqlite3 is missing, but the folder holds a store's other files")))


@contextmanager
def _quiet_rust_panics():
    """Chroma's Rust core prints a panic (message and backtrace) on stderr before Python sees it
    as an exception; opening a damaged store panics so, and the caller then raises the recovery
    message, which quotes the panic's own message. Anything else written meanwhile is passed on."""
    import os
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            if text and "panicked at" not in text:
                sys.stderr.write(text)


class Store:
    def __init__(self, path: Path | None = None, url: str | None = None,
                 collection: str = "articles", keyword_dir: Path | None = None):
        if not 3 <= len(collection) <= 60 or not re.fullmatch(r"[A-Za-z0-9._-]+", collection):
            raise RagError(f"collection name {collection!r}: use 3-60 of [A-Za-z0-9._-]")
        self.path, self.url, self.name = path, url, collection
        self._open()
        if keyword_dir is None:
            keyword_dir = (path / "keyword" / collection) if not url else None
        if keyword_dir is None:
            raise RagError("server mode needs a local keyword_dir")
        self.keyword = KeywordIndex(keyword_dir)
        self._lock = threading.RLock()
        self._doc_cache: tuple[int, dict[str, DocRecord]] | None = None
        self._latest: tuple[int, int | None] | None = None  # (generation, newest publication day)
        self._gen: tuple[int, float] | None = None
        self._embedder: str | None = None  # which embedder made the vectors (from the meta record)
        self._store_id = ""  # the meta record's random id: a new store behind the same URL differs
        self._writing = False

    def _open(self) -> None:
        """The Chroma client and the three collections."""
        path, url, collection = self.path, self.url, self.name
        self.client = open_client(path, url)
        try:
            self.chunks = self.client.get_or_create_collection(
                collection, metadata={"hnsw:space": "cosine"}, embedding_function=None)
            self.docs = self.client.get_or_create_collection(
                collection + "__docs", embedding_function=None)
            # documents' full texts, apart from their records: listing the registry (every
            # query, every ingest) does not read them
            self.texts = self.client.get_or_create_collection(
                collection + "__texts", embedding_function=None)
        except RagError:
            raise
        except BaseException as e:
            _reraise_interrupts(e)
            raise RagError(corrupt_message(url or path, e)) from None
        if path is not None and not url:
            try:
                check_vector_files(path, collection)
            except RagError:
                m = self.meta()  # a change being written now may be rewriting the files
                if int(m.get("generation", 0)) == int(m.get("settled", m.get("generation", 0))):
                    raise

    def _reopen(self) -> None:
        """Open the embedded store afresh: another process changed it. Chroma's local client
        loads a collection's vector index (HNSW) into memory once and never reads the other
        process's additions or deletions from disk, so an open client kept answering dense
        queries from the old index: new chunks were missed, and deleted ones came back without
        their records. The client is cached per path for the whole process; it is dropped from
        that cache (not stopped: another ``Store`` of this process may still hold it) and a new
        one reads the index as it is now. The registry and texts (SQLite) are always current."""
        from chromadb.api.shared_system_client import SharedSystemClient

        ident = getattr(self.client, "_identifier", None)
        if ident is None:  # another chromadb layout: forget every cached client instead
            SharedSystemClient.clear_system_cache()
        else:
            SharedSystemClient._identifier_to_system.pop(ident, None)
            SharedSystemClient._identifier_to_refcount.pop(ident, None)
        self._open()

    @property
    def location(self) -> str:
        return self.url or str(self.path)

    # -- document registry -------------------------------------------------------------
    @_guarded
    def meta(self) -> dict:
        got = self.docs.get(ids=[META_ID], include=["metadatas"])
        return dict(got["metadatas"][0]) if got["ids"] else {"generation": 0}

    @_guarded
    def _set_meta(self, **values) -> None:
        m = {**self.meta(), **values}
        self.docs.upsert(ids=[META_ID], embeddings=[[0.0]], metadatas=[m], documents=[""])

    def _state(self, fresh: bool = False) -> tuple[int, int]:
        """(generation, settled generation), re-read at most every GENERATION_TTL seconds (now,
        when ``fresh``), so a query does not pay a Chroma round trip; another client's writes
        are seen within that time. A store from before ``settled`` was recorded counts as
        settled."""
        with self._lock:  # a reader's stale read must not land after a writer's update
            now = time.monotonic()
            if fresh or self._gen is None or now - self._gen[1] > GENERATION_TTL:
                m = self.meta()
                g = int(m.get("generation", 0))
                if self._gen is not None and g != self._gen[0][0] and not self.url:
                    self._reopen()  # another process wrote: this client's vector index is old
                self._gen = ((g, int(m.get("settled", g))), now)
                self._embedder = m.get("embedder") or None
                self._store_id = str(m.get(STORE_ID) or "")
            return self._gen[0]

    def check_embedder(self, name: str) -> None:
        """Raise when this store's vectors were made by another embedder (model or backend) than
        ``name``: their similarities to its question vectors would be silently wrong."""
        self._state()
        made_by = self._embedder
        if made_by and made_by != name:
            raise RagError(f"this store's vectors were made by embedder {made_by!r}, but questions are "
                           f"embedded by {name!r}; set RAG_EMBEDDER / RAG_EMBEDDER_BACKEND back to what "
                           f"made the store, or run `rag ingest` to embed it again with {name!r}")

    def record_embedder(self, name: str) -> None:
        """Note which embedder makes the vectors written from now on (ingestion, before writing)."""
        with self._lock:
            self._set_meta(embedder=name)
            self._embedder = name

    def generation(self) -> int:
        """The store's change counter: raised before a change's first write and after its last."""
        return self._state()[0]

    def bump_generation(self) -> int:
        return self._advance(settle=False)

    def _advance(self, settle: bool) -> int:
        """Raise the generation (and mark it settled, when ``settle``); returns the new one."""
        with self._lock:
            g, settled = self._state(fresh=True)
            g += 1
            settled = g if settle else settled
            self._store_id = self._store_id or uuid.uuid4().hex  # stamped at a store's first change
            self._set_meta(generation=g, settled=settled, **{STORE_ID: self._store_id})
            self._gen = ((g, settled), time.monotonic())
            return g

    def unsettled(self) -> bool:
        """True while a change is being written, or when one was killed before it finished."""
        g, settled = self._state(fresh=True)
        return g != settled

    @contextmanager
    def writing(self):
        """The one way the store changes. The generation is raised before the first write (every
        reader's keyword index is out of date from then on) and again after the last, and the
        keyword index is rebuilt from exactly the chunks then in Chroma, under a lock shared by
        every process, and stamped with that settled generation. An index built by a reader
        while the change was being written is never stamped (its generation is unsettled), so
        no process keeps a half-written state as current."""
        self.bump_generation()
        self._writing = True  # chunks written from now on have their keyword tokens prepared
        try:
            yield
        finally:
            self._writing = False
            with self._lock:
                self._advance(settle=True)
                self.keyword_index()

    @_guarded
    def documents(self, fresh: bool = True, include_deleted: bool = False) -> dict[str, DocRecord]:
        """The document records, cached per generation; ``fresh`` re-reads the generation now
        (the query path passes False and accepts GENERATION_TTL of staleness). Tombstones of
        documents the user deleted (state "deleted") only with ``include_deleted``."""
        gen = self._state(fresh)[0]
        if not (self._doc_cache and self._doc_cache[0] == gen):
            self._doc_cache = (gen, self._read_documents())
        docs = self._doc_cache[1]
        return docs if include_deleted else {i: r for i, r in docs.items() if r.state != DELETED}

    def latest_day(self) -> int | None:
        """The newest publication day (``rag.dates`` day number) among the documents, None when
        none is dated; computed once per generation. The recency prior's filtered dense query is
        skipped when no article is recent: at 1,000,000 chunks a Chroma ``where`` on ``day`` costs
        about 55 ms even when nothing matches (raw query 4 ms; ``make bench`` section 2)."""
        gen = self._state()[0]
        if self._latest is None or self._latest[0] != gen:
            days = [d for r in self.documents(fresh=False).values()
                    if isinstance(d := r.metadata.get("day"), int) and d > UNDATED_DAY]
            self._latest = (gen, max(days) if days else None)
        return self._latest[1]

    def _read_documents(self) -> dict[str, DocRecord]:
        """Every document record, read a page at a time (one unpaged read of a registry of
        100,000+ documents exceeds SQLite's limit on query variables)."""
        out, offset = {}, 0
        while True:
            got = self.docs.get(include=["metadatas"], limit=MAX_BATCH, offset=offset)
            if not got["ids"]:
                return out
            for i, m in zip(got["ids"], got["metadatas"]):
                if i == META_ID:
                    continue
                m = unpack(m)
                out[i] = DocRecord(i, m.pop("fingerprint", ""), m.pop("state", "done"), m)
            offset += len(got["ids"])

    @_guarded
    def document_text(self, doc_id: str) -> str:
        got = self.texts.get(ids=[doc_id], include=["metadatas"])
        if got["ids"]:
            return got["metadatas"][0]["text"]
        got = self.docs.get(ids=[doc_id], include=["documents"])  # an older store's layout
        if not got["ids"]:
            raise RagError(f"no document {doc_id!r} in the store")
        return got["documents"][0] or ""

    def mark_pending_many(self, docs: list[tuple[str, dict]]) -> None:
        """(id, metadata) recorded before any chunk is written: a killed run is resumable. The
        text is written with the done mark (writing it twice cost a tenth of ingestion)."""
        self._put_docs([(i, "", "pending", m, "") for i, m in docs])

    def mark_done_many(self, docs: list[tuple[str, str, dict, str]]) -> None:
        """(id, fingerprint, metadata, text) recorded after all its chunks are written."""
        self._put_docs([(i, fp, "done", m, t) for i, fp, m, t in docs])

    def mark_deleted(self, rec: DocRecord) -> None:
        """A tombstone: the user deleted this document; ingestion skips its file while the
        file's content (its fingerprint) stays the same."""
        self._put_docs([(rec.id, rec.fingerprint, DELETED, rec.metadata, "")])

    @_guarded
    def _put_docs(self, rows) -> None:
        """Records (id, fingerprint, state, metadata, text); an empty text removes the text."""
        self._doc_cache = None
        for i in range(0, len(rows), WRITE_BATCH):
            part = rows[i:i + WRITE_BATCH]
            metas = []
            for _, fp, state, metadata, _ in part:
                m = {k: v for k, v in metadata.items() if isinstance(v, (str, int, float, bool))}
                m.update(fingerprint=fp, state=state)
                metas.append(pack(m))
            self.docs.upsert(ids=[r[0] for r in part], embeddings=[[0.0]] * len(part),
                             metadatas=metas, documents=[""] * len(part))
            texts = [(r[0], r[4]) for r in part if r[4]]
            if texts:
                self.texts.upsert(ids=[i for i, _ in texts], embeddings=[[0.0]] * len(texts),
                                  metadatas=[{"text": t} for _, t in texts])
            gone = [r[0] for r in part if not r[4] and r[2] != "pending"]
            if gone:
                self.texts.delete(ids=gone)

    @_guarded
    def forget_document(self, doc_id: str) -> None:
        self._doc_cache = None
        self.docs.delete(ids=[doc_id])
        self.texts.delete(ids=[doc_id])

    # -- chunks ------------------------------------------------------------------------
    def delete_chunks_of(self, doc_id: str) -> list[str]:
        return self.delete_chunks_of_many([doc_id])

    @_guarded
    def delete_chunks_of_many(self, doc_ids: list[str], keep: set[str] = frozenset()) -> list[str]:
        """Delete the chunks of these documents (but the ids in ``keep``); returns the ids deleted."""
        if not doc_ids:
            return []
        got = self.chunks.get(where={"doc_id": {"$in": list(doc_ids)}}, include=[])
        ids = [i for i in got["ids"] if i not in keep]
        for i in range(0, len(ids), MAX_BATCH):
            self.chunks.delete(ids=ids[i:i + MAX_BATCH])
        return ids

    @_guarded
    def chunk_ids_of(self, doc_id: str) -> set[str]:
        return set(self.chunks.get(where={"doc_id": doc_id}, include=[])["ids"])

    @_guarded
    def add_chunks(self, ids, embeddings, texts, metadatas) -> None:
        for i in range(0, len(ids), WRITE_BATCH):
            sl = slice(i, i + WRITE_BATCH)
            self.chunks.upsert(ids=ids[sl], embeddings=embeddings[sl],
                               metadatas=[pack({**m, CHUNK_TEXT: t}) for m, t in zip(metadatas[sl], texts[sl])])
        if self._writing:  # on the writer's thread, while the next step is embedded
            self.keyword.prepare(ids, texts)

    @_guarded
    def count(self) -> int:
        return self.chunks.count()

    def chunk_counts(self) -> dict[str, int]:
        return {d: int(r.metadata.get("n_chunks", 0)) for d, r in self.documents().items()}

    @_guarded
    def dense_query(self, vector, n: int, where: dict | None = None) -> list[tuple[str, float, str, dict]]:
        """(chunk id, cosine similarity, text, metadata), best first; ``where``: a Chroma filter on
        the FILTERED fields (``dates.published_where``)."""
        res = self.chunks.query(query_embeddings=[list(map(float, vector))], n_results=n, where=where,
                                include=["metadatas", "documents", "distances"])
        if not res["ids"] or not res["ids"][0]:
            return []
        return [(i, 1.0 - float(d), *chunk_record(t, m)) for i, d, t, m in
                zip(res["ids"][0], res["distances"][0], res["documents"][0], res["metadatas"][0])]

    @_guarded
    def get_chunks(self, ids: list[str]) -> dict[str, tuple[str, dict]]:
        if not ids:
            return {}
        got = self.chunks.get(ids=ids, include=["metadatas", "documents"])
        return {i: chunk_record(t, m) for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])}

    def all_chunk_texts(self) -> dict[str, str]:
        return dict(self.iter_chunk_texts())

    def iter_chunk_texts(self, known=frozenset()):
        """Every chunk as (id, text), read from Chroma a page at a time; a chunk whose id is in
        ``known`` as (id, None), without reading its text."""
        offset = 0
        while True:
            got = self._chunk_page(offset, with_text=not known)
            if not got["ids"]:
                return
            if known:
                unknown = [i for i in got["ids"] if i not in known]
                texts = {i: t for i, (t, _) in self.get_chunks(unknown).items()}
                for i in got["ids"]:
                    if i in texts or i in known:  # neither: deleted since the page was read
                        yield i, texts.get(i)
            else:
                for i, t, m in zip(got["ids"], got["documents"], got["metadatas"]):
                    yield i, chunk_record(t, m)[0]
            offset += len(got["ids"])

    @_guarded
    def _chunk_page(self, offset: int, with_text: bool = True) -> dict:
        """One page of chunk records (ids only, without ``with_text``); guarded per call, since a
        generator would escape the guard."""
        return self.chunks.get(include=["documents", "metadatas"] if with_text else [],
                               limit=MAX_BATCH, offset=offset)

    # -- keyword index -----------------------------------------------------------------
    def keyword_index(self) -> "KeywordIndex":
        """The BM25 index of the store's chunks at its current generation: loaded from disk when
        its stamp matches, else rebuilt from Chroma (once per generation and process). Only an
        index of a settled generation is written to disk, under the cross-process lock."""
        with self._lock:
            gen, settled = self._state()
            stamp = (self._store_id, gen)  # a new store behind the same URL starts at 0 too
            if self.keyword.load(expect_generation=stamp):
                return self.keyword
            with self.keyword.locked():
                if not self.keyword.load(expect_generation=stamp):  # another process may have built it
                    self.keyword.rebuild(self.iter_chunk_texts(self.keyword.prepared), stamp,
                                         persist=gen == settled)
            return self.keyword


class KeywordIndex:
    """bm25s over chunk texts, persisted in a folder; updated on ingest, read on query."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        # (ids, bm25, generation), replaced as one value: a query that is running while another
        # thread rebuilds keeps scoring the ids and index it started with
        self._snap: tuple[list[str], object, tuple] = ([], None, ("", -1))  # stamp: (store id, gen)
        # token numbers of chunks written by the change in progress, and their vocabulary: the
        # rebuild that ends the change reads only the other chunks' texts
        self._vocab: dict[str, int] = {}
        self.prepared: dict[str, list[int]] = {}
        self._prepare_lock = threading.Lock()  # numbers and vocabulary change together

    def prepare(self, ids: list[str], texts: list[str]) -> None:
        """Tokenise chunks as they are written (an id names one text: ids derive from it)."""
        with self._prepare_lock:
            vocab, prepared = self._vocab, self.prepared
            for cid, text in zip(ids, texts):
                prepared[cid] = [vocab.setdefault(t, len(vocab)) for t in keyword_tokens(text) or ["\0"]]

    @property
    def ids(self) -> list[str]:
        return self._snap[0]

    @property
    def generation(self) -> tuple[str, int]:
        """The (store id, store generation) this index reflects."""
        return self._snap[2]

    def load(self, expect_generation: tuple[str, int] | int) -> bool:
        """Read the index from disk when its stamp is ``expect_generation`` (store id,
        generation) and its files agree with each other: an ids list that is not one id per
        indexed chunk (edited, cut short, ``[]`` beside an index) reads as no index, so it is
        rebuilt from Chroma instead of failing or going quiet at every query."""
        if self.generation == expect_generation:
            return True
        stamp = self.folder / "generation.json"
        try:
            info = json.loads(stamp.read_text())
            got = (info.get("store_id", ""), info["generation"])
            if isinstance(expect_generation, int):  # a bare generation: any store id
                expect_generation = (got[0], expect_generation)
            if got != tuple(expect_generation):
                return False
            ids = json.loads((self.folder / "ids.json").read_text())
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                return False
            bm25 = None
            if ids:
                import bm25s

                bm25 = bm25s.BM25.load(str(self.folder / "bm25"))
                if int(bm25.scores["num_docs"]) != len(ids):
                    return False
            elif (self.folder / "bm25").exists():
                return False
        except (OSError, ValueError, KeyError, TypeError):
            return False
        except Exception:  # a damaged index file: it is rebuilt from Chroma
            return False
        self._snap = (ids, bm25, expect_generation)
        return True

    @contextmanager
    def locked(self):
        """An exclusive lock on this index's folder, shared by every process on the machine."""
        import fcntl

        self.folder.parent.mkdir(parents=True, exist_ok=True)
        with open(self.folder.with_name(self.folder.name + ".lock"), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def rebuild(self, texts, generation: tuple[str, int], persist: bool = True) -> None:
        """Index ``texts`` (a dict or an iterable of (id, text) pairs, consumed once: each text is
        reduced to token numbers as it arrives, so memory holds no token strings; a text of None
        is a prepared chunk's); write it to disk (call under ``locked()``) only when ``persist``."""
        pairs = texts.items() if isinstance(texts, dict) else texts
        with self._prepare_lock:
            vocab, prepared = self._vocab, self.prepared
            self._vocab, self.prepared = {}, {}
        numbered = []
        for cid, text in pairs:
            nums = prepared[cid] if text is None else \
                [vocab.setdefault(t, len(vocab)) for t in keyword_tokens(text) or ["\0"]]
            numbered.append((cid, nums))
        del prepared
        numbered.sort(key=lambda x: x[0])
        ids = [cid for cid, _ in numbered]
        bm25 = None
        if ids:
            import bm25s
            from bm25s.tokenization import Tokenized

            bm25 = bm25s.BM25()
            token_ids = [t for _, t in numbered]
            del numbered
            bm25.index(Tokenized(ids=token_ids, vocab=vocab), show_progress=False)
        if not persist:
            self._snap = (ids, bm25, generation)
            return
        tmp = self.folder.with_name(self.folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if bm25 is not None:
            bm25.save(str(tmp / "bm25"))
        (tmp / "ids.json").write_text(json.dumps(ids))
        store_id, gen = generation if isinstance(generation, tuple) else ("", generation)
        (tmp / "generation.json").write_text(json.dumps({"generation": gen, "store_id": store_id}))
        old = self.folder.with_name(self.folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.folder.exists():
            self.folder.rename(old)
        tmp.rename(self.folder)
        shutil.rmtree(old, ignore_errors=True)
        self._snap = (ids, bm25, generation)

    def query(self, text: str, n: int) -> list[tuple[str, float]]:
        ids, bm25, _ = self._snap
        if bm25 is None or not ids:
            return []
        toks = [t for t in keyword_tokens(text) if t in bm25.vocab_dict]
        if not toks:
            return []
        docs, scores = bm25.retrieve([toks], k=min(n, len(ids)), show_progress=False,
                                           n_threads=1)
        return [(ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]
