"""File bytes -> text and properties, per format: PDF (pypdf), DOCX (python-docx), and the
dates that text formats carry inside them (Markdown front matter; HTML <meta>, JSON-LD and
<time>). Also the page bookkeeping that lets a citation name its page.

A paged format's text comes out with a PAGE_MARK line at the start of every page; ``corpus``
cleans the text with the marks in place (a mark is never boilerplate nor a repeated line) and
``unmark_pages`` then removes them and returns where each page starts in the cleaned text:

    unmark_pages("\\ue000page\\ue000\\nOne.\\n\\ue000page\\ue000\\nTwo.") -> ("One.\\n\\nTwo.", [0, 6])
    page_of({"pages": [0, 6]}, 7) -> 2

Dates are returned as found (``dates.FoundDate``); which one a document gets is ``dates.choose``.
This module does not clean text, detect languages or decide document ids (``corpus`` does).
"""
from __future__ import annotations

import io
import json
import logging
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from .dates import FoundDate, parse_date
from .errors import RagError
from .text import CJK

PAGED_EXTENSIONS = (".pdf", ".docx")  # binary formats read here, not decoded as text
# a line that marks a page start in a paged document's raw text: private-use characters, so no
# real text holds it; shorter than corpus.MIN_REPEATED_LINE, so the cleaner keeps every copy
PAGE_MARK = "\ue000page\ue000"
# where a format's signature may sit: PDF allows junk before "%PDF-" within the first 1,024 bytes
SIGNATURE_WINDOW = 1024
# Word writes an encrypted DOCX (and wrote .doc) as an OLE compound file, not a zip archive
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OCR_HINT = ("run OCR first (e.g. `ocrmypdf in.pdf out.pdf`, which adds a text layer) and ingest "
            "the result")


@dataclass
class Read:
    """What a reader gives ``corpus.load_file``: raw text (PAGE_MARK lines in a paged format),
    the title the file's properties give ("" for none) and the dates it holds."""
    text: str
    title: str = ""
    dates: list[FoundDate] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # other properties worth keeping (e.g. "author")


def check(ext: str, raw: bytes) -> None:
    """A cheap look at a binary file while scanning (before any store write): the format's
    signature. Whether its text can be read (encrypted, scanned, damaged) is found when it is
    loaded, and reported for that file alone."""
    if not raw.strip():
        raise RagError("empty file")
    if ext == ".pdf" and b"%PDF-" not in raw[:SIGNATURE_WINDOW]:
        raise RagError("not a PDF file (no %PDF- header); re-download or re-export it")
    if ext == ".docx" and raw.startswith(OLE_SIGNATURE):
        raise RagError("a password-protected DOCX (or an old .doc renamed): open it in Word, remove "
                       "the password and save it as .docx")
    if ext == ".docx" and not raw.startswith(b"PK\x03\x04"):
        raise RagError("not a DOCX file (not a zip archive); save it from Word as .docx "
                       "(an old binary .doc must be converted first)")


def read(ext: str, raw: bytes) -> Read:
    if ext == ".pdf":
        return read_pdf(raw)
    if ext == ".docx":
        return read_docx(raw)
    raise ValueError(f"no reader for {ext}")


# -- PDF ---------------------------------------------------------------------------------------
def _title_property(value) -> str:
    """A title from a file's properties, unless it is a tool's placeholder or a file name
    ("Microsoft Word - draft.docx", "untitled", "report.pdf")."""
    t = " ".join(str(value or "").split())
    if not t or re.fullmatch(r"(?i)untitled|.*\.(docx?|pdf|txt|html?)|microsoft \w+ - .*", t):
        return ""
    return t[:300]


def read_pdf(raw: bytes) -> Read:
    """A PDF's text, page by page (each after a PAGE_MARK line), its title and its dates.

    Dates: a PDF's document information has no published date, only /CreationDate (when the
    file was made: exported, printed to PDF) and /ModDate; an XMP ``prism:publicationDate``,
    where a publisher wrote one, is an explicit publication date and preferred. Pages are read
    one at a time and only their text kept. Encrypted (with a password), image-only (scanned)
    and damaged PDFs are a RagError that says what to do."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    # a damaged file is this reader's RagError; pypdf's own warnings about what it repaired would
    # otherwise be printed on every ingest (Python's last-resort handler shows them)
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            try:  # many PDFs are encrypted only to restrict printing: an empty password opens them
                opened = reader.decrypt("")
            except DependencyError:  # AES: pypdf needs a crypto package to even try
                raise RagError("the PDF is encrypted with AES, which needs the `cryptography` "
                               "package to read (`pip install cryptography`); or save an "
                               "unprotected copy and ingest that") from None
            if not opened:
                raise RagError("the PDF is encrypted (password-protected); save an unprotected "
                               "copy (e.g. `qpdf --decrypt --password=... in.pdf out.pdf`) and "
                               "ingest that")
        parts = []
        has_text = False
        for page in reader.pages:
            text = unwrap_lines(page.extract_text() or "")
            has_text = has_text or bool(text.strip())
            parts.append(PAGE_MARK + "\n" + text)
        info = reader.metadata or {}
        dates = _pdf_dates(reader, info)
        title = _title_property(_info(info, "/Title"))
        author = " ".join(_info(info, "/Author").split())
    except RagError:
        raise
    except FileNotDecryptedError:
        raise RagError("the PDF is encrypted (password-protected); save an unprotected copy and "
                       "ingest that") from None
    except (PdfReadError, Exception) as e:  # pypdf raises many types besides PdfReadError
        raise RagError(f"the PDF cannot be read ({e.__class__.__name__}: {str(e)[:200]}); it may "
                       "be damaged: download or export it again") from None
    if not parts:
        raise RagError("the PDF has no pages; download or export it again")
    if not has_text:
        raise RagError(f"the PDF has no text layer (a scanned PDF?): {OCR_HINT}")
    return Read("\n".join(parts), title, dates, {"author": author} if author else {})


# a PDF line at least this share of its page's longest line was wrapped by the layout: the text
# goes on in the next line (a paragraph's last line, a heading or a byline is shorter)
WRAP_FRACTION = 0.75
MIN_WRAP_LINES = 3  # a page of fewer lines gives no line width to compare with


def unwrap_lines(page: str) -> str:
    """A PDF page's text with the lines the layout wrapped joined again, so that a sentence is
    one line (sentences end at line breaks, ``text.sentence_spans``); a word hyphenated at a line
    end is joined without its hyphen. Chinese lines join without a space.

    Example (a page 40 wide): "The harbour of Genoa reopened to container\nships after the
    works.\nShort line." -> "The harbour of Genoa reopened to container ships after the
    works.\nShort line." """
    lines = [l.rstrip() for l in page.split("\n")]
    if sum(1 for l in lines if l) < MIN_WRAP_LINES:
        return page
    full = WRAP_FRACTION * max(len(l) for l in lines)
    out = [lines[0]]
    for before, line in zip(lines, lines[1:]):  # ``before``: the physical line above ``line``
        prev = out[-1]
        if before and line.strip() and len(before) >= full:
            if re.search(r"[^\W\d_]-$", prev) and line.lstrip()[:1].islower():
                out[-1] = prev[:-1] + line.lstrip()
            elif CJK.match(prev[-1:]) and CJK.match(line.lstrip()[:1]):
                out[-1] = prev + line.lstrip()
            else:
                out[-1] = prev + " " + line.lstrip()
        else:
            out.append(line)
    return "\n".join(out)


_XMP_PUBLISHED = re.compile(rb"prism:publicationDate(?:>|=\")\s*([^<\"]+)")


def _pdf_dates(reader, info) -> list[FoundDate]:
    found = []
    try:
        xmp = reader.xmp_metadata
        packet = xmp.stream.get_data() if xmp is not None else b""
    except Exception:  # a damaged XMP packet does not make the text unreadable
        packet = b""
    m = _XMP_PUBLISHED.search(packet)
    if m:
        found.append(FoundDate(parse_date(m.group(1).decode("utf-8", "replace")), "pdf-properties",
                               "prism:publicationDate", explicit=True))
    for key in ("/CreationDate", "/ModDate"):
        found.append(FoundDate(parse_date(_info(info, key)), "pdf-properties", key))
    return found


def _info(info, key: str) -> str:
    """A document information value as text (it may be stored as a reference to an object)."""
    value = info.get(key)
    return "" if value is None else str(value.get_object() if hasattr(value, "get_object") else value)


# -- DOCX --------------------------------------------------------------------------------------
def read_docx(raw: bytes) -> Read:
    """A DOCX's text (paragraphs, then table rows as "cell; cell" lines), its title and dates.

    Pages: a DOCX holds no fixed pages (Word lays them out when it opens the file). Where Word
    recorded its last layout (``w:lastRenderedPageBreak``) those pages are used; otherwise the
    explicit page breaks; with neither, the document has no pages (citations name none). Dates: core properties have no published date, only ``created`` and
    ``modified`` (when the file was made and last saved)."""
    import docx

    try:
        document = docx.Document(io.BytesIO(raw))
        body = document.element.body
        rendered = bool(body.xpath(".//w:lastRenderedPageBreak"))
        lines: list[str] = [PAGE_MARK]
        for block in document.iter_inner_content():
            if hasattr(block, "rows"):  # a table: a line per row (a break in a cell is not counted)
                for row in block.rows:
                    cells = [" ".join(" ".join(_paragraph_pages(p, rendered)) for p in c.paragraphs)
                             for c in row.cells]
                    # merged cells repeat their text in every cell they span
                    lines.append("; ".join(dict.fromkeys(c.strip() for c in cells if c.strip())))
            else:
                first, *rest = _paragraph_pages(block, rendered)
                lines.append(first)
                for text in rest:
                    lines.extend([PAGE_MARK, text])
        if lines.count(PAGE_MARK) == 1:  # no break recorded: its pages are unknown, not one page
            lines.pop(0)
        props = document.core_properties
        dates = [FoundDate(parse_date(props.created), "docx-properties", "dcterms:created"),
                 FoundDate(parse_date(props.modified), "docx-properties", "dcterms:modified")]
        title = _title_property(props.title)
        author = " ".join((props.author or "").split())
    except Exception as e:  # python-docx, zipfile and lxml raise many types for a damaged file
        raise RagError(f"the DOCX cannot be read ({e.__class__.__name__}: {str(e)[:200]}); it may "
                       "be damaged or password-protected: open and save it again in Word") from None
    return Read("\n".join(lines), title, dates, {"author": author} if author else {})


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _paragraph_pages(paragraph, rendered: bool) -> list[str]:
    """A paragraph's text, split where a page break falls inside it (Word's rendered breaks when
    ``rendered``, else explicit ones). Example: "One<w:br w:type=page/>Two" -> ["One", "Two"]"""
    pages, out = [], []
    for r in paragraph._p.xpath(".//w:r"):
        for el in r:
            tag = el.tag
            if tag == _W + "t":
                out.append(el.text or "")
            elif tag == _W + "tab":
                out.append("\t")
            elif tag == _W + "noBreakHyphen":
                out.append("-")
            elif ((tag == _W + "lastRenderedPageBreak") if rendered else
                  (tag == _W + "br" and el.get(_W + "type") == "page")):
                pages.append("".join(out))
                out = []
            elif tag == _W + "cr" or (tag == _W + "br" and el.get(_W + "type") in (None, "textWrapping")):
                out.append("\n")
    pages.append("".join(out))
    return pages


# -- pages -------------------------------------------------------------------------------------
def unmark_pages(text: str) -> tuple[str, list[int] | None]:
    """Cleaned text without its PAGE_MARK lines, and the offset where each page starts in it
    (None when the text has no marks: not a paged format). An empty page starts where the next
    one does. Example: see the module docstring."""
    if PAGE_MARK not in text:
        return text, None
    parts = text.split(PAGE_MARK)
    parts[1] = parts[0] + parts[1]  # anything before the first mark belongs to the first page
    out, starts = [], []
    size = 0
    for part in parts[1:]:
        part = part.strip()
        if part and out:
            out.append("\n\n")
            size += 2
        starts.append(size)
        if part:
            out.append(part)
            size += len(part)
    return "".join(out), starts


def page_of(meta: dict, offset: int) -> int | None:
    """The 1-based page holding character ``offset`` of a document's text, or None when the
    document has no pages. ``meta`` is a document's (``pages``: every page's start offset, as in
    ``Document.extra``) or a chunk's or passage's (``page``: the page its span starts on;
    ``page_breaks``: the offsets inside its span where a next page starts).
    Examples: page_of({"pages": [0, 6]}, 7) -> 2; page_of({"page": 4, "page_breaks": [90]}, 95) -> 5"""
    if meta.get("pages"):
        return max(1, bisect_right(meta["pages"], offset))
    if meta.get("page"):
        return int(meta["page"]) + bisect_right(meta.get("page_breaks") or [], offset)
    return None


def chunk_pages(pages: list[int] | None, start: int, end: int) -> dict:
    """A chunk's ``page`` and ``page_breaks`` (see ``page_of``) for its metadata; {} without pages.
    Example: chunk_pages([0, 100, 200], 90, 210) -> {"page": 1, "page_breaks": [100, 200]}"""
    if not pages:
        return {}
    first = max(1, bisect_right(pages, start))
    return {"page": first, "page_breaks": pages[first:bisect_left(pages, end, first)]}


# -- properties inside text formats ------------------------------------------------------------
# front matter dates: the first of these fields present (``corpus.front_matter`` reads the fields)
FRONT_MATTER_DATES = ("date", "published", "publishdate", "pubdate", "published_at",
                      "date_published", "datepublished")


def front_matter_dates(fields: dict) -> list[FoundDate]:
    """The publication date a Markdown file's front matter gives (fields as read by
    ``corpus.front_matter``). Example: {"date": "2023-09-13"} -> [FoundDate("2023-09-13",
    "front-matter", "date")]"""
    for key in FRONT_MATTER_DATES:
        iso = parse_date(fields.get(key) or "")
        if iso:
            return [FoundDate(iso, "front-matter", key)]
    return []


# <meta> names and properties that give a page's publication date, most specific first
META_DATES = ("article:published_time", "og:published_time", "datepublished", "pubdate",
              "publishdate", "publish-date", "publication_date", "citation_publication_date",
              "dc.date.issued", "dcterms.issued", "dc.date", "dcterms.date", "date",
              "sailthru.date", "parsely-pub-date")
_TAG_ATTR = re.compile(r"""([\w:.-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+)""")
_META_TAG = re.compile(r"<meta\b([^>]*)>", re.I)
_TIME_TAG = re.compile(r"<time\b([^>]*)>", re.I)
_JSON_LD = re.compile(r"<script\b[^>]*application/ld\+json[^>]*>(.*?)</script\s*>", re.I | re.S)


def _attrs(tag: str) -> dict:
    return {k.lower(): v.strip("\"'").strip() for k, v in _TAG_ATTR.findall(tag)}


def html_dates(html: str) -> list[FoundDate]:
    """The publication dates an HTML page states: in <meta> (first of META_DATES present), in
    JSON-LD (``datePublished``), and in a <time datetime> (one marked as the publication time,
    else the first inside <article>, else the first on the page). Found with patterns over the
    page rather than a second parse of it."""
    found = []
    metas = {}
    for m in _META_TAG.finditer(html):
        a = _attrs(m.group(1))
        key = (a.get("property") or a.get("name") or a.get("itemprop") or "").lower()
        if key and a.get("content"):
            metas.setdefault(key, a["content"])
    for key in META_DATES:
        iso = parse_date(metas.get(key, ""))
        if iso:
            found.append(FoundDate(iso, "html-meta", key))
            break
    for m in _JSON_LD.finditer(html):
        try:
            data = json.loads(m.group(1), strict=False)
        except ValueError:
            continue
        iso = parse_date(_json_ld_published(data) or "")
        if iso:
            found.append(FoundDate(iso, "json-ld", "datePublished"))
            break
    times = [(m.start(), _attrs(m.group(1))) for m in _TIME_TAG.finditer(html)]
    times = [(pos, a) for pos, a in times if a.get("datetime")]
    article = html.lower().find("<article")
    marked = [a for _, a in times if "pubdate" in a or a.get("itemprop", "").lower() == "datepublished"
              or "publish" in a.get("class", "").lower()]
    inside = [a for pos, a in times if 0 <= article < pos]
    for a in (marked or inside or [a for _, a in times])[:1]:
        found.append(FoundDate(parse_date(a["datetime"]), "html-time", "time[datetime]"))
    return found


def _json_ld_published(data, depth: int = 0):
    """The first ``datePublished`` in a JSON-LD value (objects, lists, ``@graph``)."""
    if depth > 6:  # JSON-LD nests a few levels; deeper is not a page's own article
        return None
    if isinstance(data, dict):
        if isinstance(data.get("datePublished"), str):
            return data["datePublished"]
        data = list(data.values())
    if isinstance(data, list):
        for v in data:
            got = _json_ld_published(v, depth + 1)
            if got:
                return got
    return None
