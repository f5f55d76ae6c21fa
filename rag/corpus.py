"""Files -> documents: read, decode, clean boilerplate, detect language, hash.

A document's id is its file name without extension. Metadata (title, publisher, url, date,
language) comes from a ``metadata.json`` beside the files when it has an entry for the id;
otherwise from the file (Markdown front matter; an HTML page's title; a PDF's or DOCX's
properties, read by ``readers``) or derived from the text. The publication date is the most
trusted of those the file gives (``dates.choose``), a dateline in the text included. PDF and
DOCX text comes from ``readers`` with its pages, kept as ``extra["pages"]``. This module does
not chunk or embed.

Example: "Join our community\\nBody.\\nBody." -> "Body." (known boilerplate lines, and the
repeats of a line, are dropped).
"""
from __future__ import annotations

import hashlib
import json
from glob import escape as glob_escape
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from . import readers
from .dates import FoundDate, choose, day_number, find_dateline, parse_date
from .errors import RagError
from .readers import PAGED_EXTENSIONS
from .text import detect_language
from .types import Document

SUPPORTED_EXTENSIONS = (".txt", ".md", ".html", ".htm") + PAGED_EXTENSIONS
METADATA_FILE = "metadata.json"
CLEANER_VERSION = "4"  # bump when cleaning changes, so every document is re-ingested
MIN_REPEATED_LINE = 20  # characters: shorter lines ("Photo:", "1.") may repeat legitimately

# Lines that are boilerplate in news pages whatever the publisher. Kept short and generic: a
# line is dropped only when the whole line is the blurb (or starts with one of these calls).
_BOILERPLATE = [
    r"join (our|the) .{0,40}community\b.*",
    r"(support|subscribe to|sign up for|donate to) (our|the|us)\b.{0,120}",
    r"support now:?",
    r"(any|every) contribution helps.*",
    r"bank transfer",
    r"(share|follow us) on .{0,60}",
    r"(all rights reserved|cookie policy|privacy policy).*",
    r"(read more|related articles?|advertisement|newsletter)\s*:?",
    r"(online )?(journalist|editor|author|writer) \w+(\s\w+)? is (the |a )?(co-?founder|editor|reporter|writer|journalist)\b.*",
]
_BOILERPLATE_RE = re.compile(r"^\W*(?:" + "|".join(_BOILERPLATE) + r")\W*$", re.IGNORECASE)


@dataclass
class LoadResult:
    documents: list[Document]
    errors: list[tuple[str, str]]  # (path, message) for files that were skipped
    unchanged: list[str] = field(default_factory=list)  # ids the ``unchanged`` check skipped


@dataclass
class PendingFile:
    """A supported, readable file found by ``scan_folder_or_files``: hashed, not yet cleaned;
    ``load()`` reads it into a Document (ingestion loads a bounded window at a time)."""
    path: Path
    meta: dict
    content_hash: str
    size: int  # bytes

    @property
    def id(self) -> str:
        return self.path.stem

    @property
    def source_path(self) -> str:
        return os.path.abspath(self.path)

    def load(self) -> Document:
        return load_file(self.path, self.meta)


@dataclass
class ScanResult:
    files: list[PendingFile]
    errors: list[tuple[str, str]]
    unchanged: list[str] = field(default_factory=list)


def scan_folder_or_files(paths: list[Path], unchanged=None) -> ScanResult:
    """Every supported file under the given folders/files, checked and hashed but not cleaned.

    ``unchanged(doc_id, content_hash) -> bool`` lets a caller skip files it already holds (the
    hash is of the raw bytes and metadata). A missing path raises ``RagError`` before anything
    is read, so no store is touched. A bad file (empty, binary, undecodable, unsupported, a
    second file with the same id) is reported in ``errors`` and skipped.
    """
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise RagError(f"{p}: no such file or folder. Give an existing folder of articles "
                           f"({', '.join(SUPPORTED_EXTENSIONS)}).")
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if (f.is_file() or f.is_symlink())
                                and not f.name.startswith(".") and f.name != METADATA_FILE))
        else:
            files.append(p)
    found, errors, seen, skipped = [], [], {}, []
    meta_cache: dict[Path, dict] = {}
    for f in files:
        try:
            check_readable(f)
            meta = _folder_metadata(f.parent, meta_cache)
            m = meta.get(f.stem, {})
            check_fields(f.parent / METADATA_FILE, f.stem, m)
            ext = check_extension(f)
            raw = read_raw(f)
            h = content_hash(raw, m)
            if f.stem not in seen and unchanged is not None and unchanged(f.stem, h):
                seen[f.stem] = str(f)
                skipped.append(f.stem)
                continue
            # empty, binary or undecodable: an error now, before any store write (a PDF or DOCX
            # is binary: its signature is checked now, its text when it is loaded)
            readers.check(ext, raw) if ext in PAGED_EXTENSIONS else decode(raw)
        except RagError as e:
            errors.append((shown(f), str(e)))
            continue
        if f.stem in seen:
            errors.append((str(f), f"duplicate document id {f.stem!r} (also {seen[f.stem]}); skipped"))
            continue
        seen[f.stem] = str(f)
        found.append(PendingFile(f, m, h, len(raw)))
    return ScanResult(found, errors, skipped)


def load_folder_or_files(paths: list[Path], unchanged=None) -> LoadResult:
    """``scan_folder_or_files``, then every found file loaded (read, cleaned, language detected)."""
    scan = scan_folder_or_files(paths, unchanged)
    docs, errors = [], list(scan.errors)
    for pf in scan.files:
        try:
            docs.append(pf.load())
        except RagError as e:
            errors.append((str(pf.path), str(e)))
    return LoadResult(docs, errors, scan.unchanged)


RESERVED_PREFIX = "__"  # ids the store keeps for its own records ("__meta__")


def shown(path) -> str:
    """A path as text that can always be printed: a byte of a file name that is not UTF-8
    appears as an escape ("caf\\udce9.txt") instead of failing the print."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def check_readable(f: Path) -> None:
    """A file ingestion may read: a name in UTF-8 (it becomes the document id, stored as text),
    a regular file (a folder, a device or a pipe is never opened: reading a pipe would wait
    forever), a link resolving to a file in the link's own folder (a link to /etc/passwd is
    never read), and a document id that is not reserved."""
    try:
        f.name.encode("utf-8")
    except UnicodeEncodeError:
        raise RagError("the file name is not valid UTF-8 (document ids are file names); rename "
                       "the file") from None
    if f.is_symlink():
        target = f.resolve()
        if not target.exists():
            raise RagError(f"broken link (points to {target}); remove it or fix its target")
        if target.parent != f.parent.resolve():
            raise RagError(f"a link to {target}, outside the folder; copy the article into the "
                           "folder instead (links are only followed within it)")
    if not f.is_file():  # follows a link
        raise RagError("not a regular file (a folder, a pipe or a device); remove it, or put the "
                       "article itself there")
    if f.stem.startswith(RESERVED_PREFIX):
        raise RagError(f"the name {f.stem!r} is reserved (names starting with "
                       f"{RESERVED_PREFIX!r} are the store's own); rename the file")


def _folder_metadata(folder: Path, cache: dict) -> dict:
    if folder not in cache:
        mf = folder / METADATA_FILE
        try:
            meta = json.loads(mf.read_text("utf-8")) if mf.exists() else {}
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RagError(f"{mf}: not valid JSON ({e}); fix or delete it") from None
        if not isinstance(meta, dict) or not all(isinstance(v, dict) for v in meta.values()):
            raise RagError(f'{mf}: must be an object mapping document ids to their fields, e.g. '
                           '{"001_x": {"title": "...", "date": "2023-09-13"}}; fix or delete it')
        cache[folder] = meta
    return cache[folder]


# metadata.json fields every later step reads as text (prompt, quotes, citations, the CLI)
TEXT_FIELDS = ("title", "publisher", "url", "date", "language")


def check_fields(meta_file: Path, doc_id: str, fields: dict) -> None:
    """A document's metadata.json entry: its text fields must be strings (or absent)."""
    for k in TEXT_FIELDS:
        v = fields.get(k)
        if v is not None and not isinstance(v, str):
            raise RagError(f"{meta_file}: field {k!r} of {doc_id!r} is {json.dumps(v)[:60]}, not a "
                           f'string; write it as text (e.g. "{k}": "...") or remove it')


def read_raw(path: Path) -> bytes:
    """A file's bytes; an operating-system error (a folder, no permission, a file deleted since
    the folder was scanned) is a ``RagError`` about that file alone."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise RagError(f"cannot be read ({e.strerror or e.__class__.__name__}); check that it is a "
                       "readable file") from None


def check_extension(path: Path) -> str:
    """The file's lower-case extension, or a clear error when it is not a supported article type."""
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise RagError(f"unsupported file type {ext or '(none)'}; use {', '.join(SUPPORTED_EXTENSIONS)}")
    return ext


def load_file(path: Path, meta: dict | None = None) -> Document:
    meta = meta or {}
    ext = check_extension(path)
    raw = read_raw(path)
    # the one content hash of a file: its bytes and its metadata.json entry, as the scan's
    # "unchanged" check computes it (a title read from the file itself is part of the bytes)
    h = content_hash(raw, meta)
    found = [FoundDate(parse_date(meta.get("date")), "metadata.json", "date")]  # dates.choose
    if ext in PAGED_EXTENSIONS:  # PAGE_MARK lines before each page, removed after cleaning
        got = readers.read(ext, raw)
        text, found = got.text, found + got.dates
        meta = {**got.extra, **({"title": got.title} if got.title else {}), **meta}
    else:
        text = decode(raw)
    if ext in (".html", ".htm"):
        found += readers.html_dates(text)
        text, html_title = html_to_text(text)
        meta = {"title": html_title, **meta} if html_title else meta
    elif ext == ".md":
        text, front = front_matter(text)
        meta = {**front, **meta}
        found += readers.front_matter_dates(front)
        text = markdown_to_text(text)
    text, pages = readers.unmark_pages(clean_text(text))
    if not text.strip():
        raise RagError("no article text after cleaning (empty file?)")
    language = meta.get("language") or detect_language(text)
    dated = choose(found + [FoundDate(find_dateline(text, language), "dateline")])
    iso = dated.iso if dated else ""
    title = meta.get("title") or _first_line_title(text) or path.stem
    return Document(
        id=path.stem, text=text, title=title,
        language=language,
        content_hash=h, source_path=os.path.abspath(path),
        publisher=meta.get("publisher") or "", url=meta.get("url") or "",
        date=iso,
        extra={**{k: v for k, v in meta.items() if k not in {"title", "publisher", "url", "date", "language"}},
               # where the date came from (dates.SOURCES; "" undated) and the chunks' filter day
               "date_source": dated.source if dated else "", "date_field": dated.field if dated else "",
               "day": day_number(iso), **({"pages": pages} if pages else {})},
    )


def content_hash(raw: bytes, meta: dict) -> str:
    """Identity of a file's content: its raw bytes and its metadata.json entry. Not the cleaner's
    version: a tombstone (the user deleted the document) matches by this hash, and must keep
    matching when cleaning changes; the ingestion fingerprint adds CLEANER_VERSION instead."""
    return hashlib.sha256(raw + json.dumps(meta, sort_keys=True).encode()).hexdigest()


def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; anything else is a clear error."""
    if not raw.strip():
        raise RagError("empty file")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise RagError("undecodable UTF-16 text") from None
    if b"\x00" in raw[:4096]:
        raise RagError("binary file (NUL bytes); only text articles can be ingested")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RagError(f"not UTF-8 text (bad byte at offset {e.start}); re-save the file as UTF-8") from None
    controls = sum(1 for c in text[:4096] if unicodedata.category(c) == "Cc" and c not in "\n\r\t\f")
    if controls > 8:
        raise RagError("binary file (control bytes); only text articles can be ingested")
    return text


def html_to_text(html: str) -> tuple[str, str]:
    """Article text of an HTML page: navigation, scripts, headers and footers are dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "aside", "form",
                     "iframe", "svg", "button", "template"]):
        tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    h1 = root.find("h1")
    if h1 and h1.get_text(strip=True):
        title = h1.get_text(" ", strip=True)
    blocks = []
    for el in root.find_all(["h1", "h2", "h3", "h4", "p", "li", "blockquote", "pre", "td"]):
        if el.find(["p", "li", "blockquote"]):  # a container: its children are visited
            continue
        t = " ".join(el.get_text(" ", strip=True).split())
        if t:
            blocks.append(t)
    if not blocks:
        blocks = [" ".join(root.get_text(" ", strip=True).split())]
    return "\n".join(blocks), title


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_FIELD = re.compile(r"([A-Za-z_][\w-]*)[ \t]*:[ \t]*(.*)")


def front_matter(md: str) -> tuple[str, dict]:
    """A Markdown file's YAML front matter as fields (one-line ``key: value`` pairs; quotes
    around a value dropped), and the text without it.

    Example: "---\ntitle: Port news\n---\nBody." -> ("Body.", {"title": "Port news"})
    """
    m = _FRONT_MATTER.match(md.lstrip("\ufeff"))
    if not m:
        return md, {}
    fields = {}
    for line in m.group(1).splitlines():
        f = _FRONT_FIELD.fullmatch(line.strip())
        if f and f.group(2).strip():
            v = f.group(2).strip()
            fields[f.group(1).lower()] = v[1:-1] if len(v) > 1 and v[0] == v[-1] and v[0] in "\"'" else v
    return md.lstrip("\ufeff")[m.end():], fields


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)]*)\)")


def markdown_to_text(md: str) -> str:
    """Markdown markup removed, link texts kept; table rows become plain lines."""
    out = []
    for line in md.splitlines():
        s = _MD_LINK.sub(r"\1", line)
        s = re.sub(r"^\s{0,3}#{1,6}\s*", "", s)
        s = re.sub(r"^\s*[*+-]\s+", "", s)
        s = s.replace("__", "").replace("**", "")
        if re.fullmatch(r"\s*\|?[\s:|-]*\|[\s:|-]*", s):  # table separator row
            continue
        if s.strip().startswith("|"):
            s = "; ".join(c.strip() for c in s.strip().strip("|").split("|") if c.strip())
        out.append(s)
    return "\n".join(out)


def clean_text(text: str) -> str:
    """Normalise whitespace and drop boilerplate lines.

    Dropped: lines matching generic news boilerplate, and the second and later copies of a
    line of 20+ characters (newsletter calls repeated around the article); the first copy
    stays, since an article may repeat a real sentence (a pull quote).
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [" ".join(l.split()) for l in text.split("\n")]
    seen: set[str] = set()
    kept, blank = [], False
    for l in lines:
        if _BOILERPLATE_RE.match(l) or l in seen:
            continue
        if len(l) >= MIN_REPEATED_LINE:
            seen.add(l)
        if not l:
            if kept and not blank:
                kept.append("")
            blank = True
            continue
        kept.append(l)
        blank = False
    return "\n".join(kept).strip()


def _first_line_title(text: str) -> str:
    first = text.split("\n", 1)[0].strip()
    return first if 0 < len(first) <= 150 and not first.endswith(".") else ""



# -- the corpus folder as the UI changes it (through ``Bot``) ---------------------------------
_SAFE_NAME = re.compile(r"[\w][\w .()+-]{0,150}")


def safe_upload_name(name: str) -> str:
    """The file name an upload may be saved under in the corpus folder, or ``RagError``.

    Examples: "notes.txt" -> "notes.txt"; "../x.txt", "a/b.txt", ".env.txt", "x.exe" -> error.
    """
    if not name or any(c in name for c in "/\\\x00") or name in (".", ".."):
        raise RagError(f"upload name {name!r} contains a path; upload a plain file name")
    if name.startswith(".") or ".." in name:
        raise RagError(f"upload name {name!r} is hidden or contains '..'; rename the file")
    ext = Path(name).suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise RagError(f"{name}: unsupported file type {ext or '(none)'}; upload "
                       f"{', '.join(SUPPORTED_EXTENSIONS)} files")
    if not _SAFE_NAME.fullmatch(name):
        raise RagError(f"upload name {name!r}: use letters, digits, spaces and . _ - ( ) + only "
                       "(at most 150 characters)")
    return name


def corpus_target(corpus_dir: Path, name: str) -> Path:
    """``corpus_dir / name``, refusing anything that would resolve outside ``corpus_dir``."""
    base = Path(corpus_dir).resolve()
    target = (base / safe_upload_name(name)).resolve()
    if target.parent != base:
        raise RagError(f"upload name {name!r} would be saved outside the corpus folder")
    return target


def save_upload(corpus_dir: Path, name: str, data: bytes) -> Path:
    """Write an uploaded article into the corpus folder, only once it reads as an article.

    The bytes go to a hidden temporary file beside the target (hidden files are never
    ingested), are checked with the same reader ingestion uses, and only then replace the
    target in one step: a rejected upload leaves an existing article's file untouched."""
    target = corpus_target(corpus_dir, name)
    twins = [f.name for f in target.parent.glob(glob_escape(target.stem) + ".*")
             if f.suffix.lower() in SUPPORTED_EXTENSIONS and f.name != target.name]
    if twins:  # two files, one document id: ingestion would skip one of them
        raise RagError(f"the article {target.stem!r} already exists as {twins[0]}; upload the new "
                       f"version as {twins[0]} to replace it, or rename it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=target.suffix, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        load_file(Path(tmp))  # raises RagError for empty, binary or undecodable content
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def remove_from_folder(corpus_dir: Path, source_path: str) -> bool:
    """Delete a document's file when it lies directly in ``corpus_dir``; other files are the
    user's own and stay. Returns whether a file was deleted."""
    if not source_path:
        return False
    f = Path(source_path)
    if f.parent.resolve() != Path(corpus_dir).resolve() or not f.is_file():
        return False
    f.unlink()
    return True
