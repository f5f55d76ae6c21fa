"""Publication dates, in one home: parsing date expressions, choosing a document's date among
the ones its file gives, the ``day`` number stored with every chunk, and the Chroma filter on it.

Dates are read as written (English and Italian month names from ``text.MONTHS_BY_LANG``, their
abbreviations, Chinese 年月日, ISO, PDF's ``D:YYYYMMDD``, day/month/year and month/day/year)
and normalised to ISO ``YYYY-MM-DD``. The calendar date is the one the source shows its readers:
"2023-09-13T23:30:00-05:00" is 2023-09-13, not converted to UTC. This module does not read files
(``readers`` and ``corpus`` do) and does not query the store.

Examples:
    parse_date("Sept. 13, 2023") -> "2023-09-13"
    parse_date("13 settembre 2023") -> "2023-09-13"
    parse_date("2023年9月13日") -> "2023-09-13"
    parse_date("D:20230913101500+02'00'") -> "2023-09-13"
    parse_date("03/04/2023") -> ""  (day and month cannot be told apart)
    find_dateline("Title\\nposted by ODSC Team September 15, 2023 ODSC Team\\nThis week ...")
        -> "2023-09-15"
    day_number("1970-01-02") -> 1
    published_where(as_of="2023-09-13") -> {"day": {"$lte": 19613}}
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

from .text import MONTHS_BY_LANG

# -- month names ------------------------------------------------------------------------------
MONTH_ABBREVIATION = 3  # letters: "Sep", "set", "dic" (and "Sept", spelled out below)
_MONTHS: dict[str, int] = {}
for _names in MONTHS_BY_LANG.values():
    for _i, _name in enumerate(_names.split()):
        _MONTHS[_name] = _i + 1
        _MONTHS.setdefault(_name[:MONTH_ABBREVIATION], _i + 1)
_MONTHS["sept"] = 9  # AP style: "Sept. 13, 2023"
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))  # longest first: "sept" before "sep"

FIRST_YEAR, LAST_YEAR = 1800, 2200  # a 4-digit number outside these is not a news year
_ORD = r"(?:st|nd|rd|th|º|°)?"
_PATTERNS = [  # (regex, order of its groups); every regex has groups y, m, d by name
    # "September 15, 2023", "Sept. 13, 2023", "Sep 13 2023"
    re.compile(rf"\b(?P<m>{_MONTH})\.?\s+(?P<d>\d{{1,2}}){_ORD},?\s+(?P<y>\d{{4}})\b", re.I),
    # "13 settembre 2023", "15th September 2023", "13 Sep 2023" (RFC 2822), "13 of May, 2023"
    re.compile(rf"\b(?P<d>\d{{1,2}}){_ORD}\s+(?:of\s+|di\s+)?(?P<m>{_MONTH})\.?,?\s+(?P<y>\d{{4}})\b", re.I),
    # "2023年9月13日", "2023 年 9 月 13 号"
    re.compile(r"(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]"),
    # ISO and its kin: "2023-09-13", "2023-09-13T10:00:00Z", "2023/9/13", "2023.09.13"
    re.compile(r"(?<![\d.])(?P<y>\d{4})([-/.])(?P<m>\d{1,2})\2(?P<d>\d{1,2})(?![\d])"),
    # PDF dates: "D:20230913101500+02'00'"; a compact date as a whole value: "20230913"
    re.compile(r"D:(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"),
    re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$"),
]
# "13/09/2023" (day first) or "09/13/2023" (month first): told apart only when one is over 12
_NUMERIC = re.compile(r"(?<![\d/.-])(?P<a>\d{1,2})([/.-])(?P<b>\d{1,2})\2(?P<y>\d{4})(?![\d])")


def _valid(y: str, m: str | int, d: str) -> str:
    month = int(m) if str(m).isdigit() else _MONTHS.get(str(m).lower().rstrip("."), 0)
    try:
        value = date(int(y), month, int(d))
    except ValueError:
        return ""
    return value.isoformat() if FIRST_YEAR <= value.year <= LAST_YEAR else ""


def iter_dates(text: str, order: str | None = None):
    """(start, end, ISO date) of each date expression in ``text``, in text order.

    ``order`` ("dmy" or "mdy") reads numeric dates whose day and month are both 12 or less;
    without it such a date is skipped (an undated document is better than a wrongly dated one).
    Positions are in the NFKC form of ``text`` (full-width digits become ASCII digits).
    """
    text = unicodedata.normalize("NFKC", text)
    found = []
    for pattern in _PATTERNS:
        for m in pattern.finditer(text):
            iso = _valid(m["y"], m["m"], m["d"])
            if iso:
                found.append((m.start(), m.end(), iso))
    for m in _NUMERIC.finditer(text):
        a, b = int(m["a"]), int(m["b"])
        if a > 12 or (order == "dmy" and b <= 12):
            iso = _valid(m["y"], b, m["a"])
        elif b > 12 or order == "mdy":
            iso = _valid(m["y"], a, m["b"])
        else:
            iso = ""
        if iso:
            found.append((m.start(), m.end(), iso))
    found.sort()
    out, end = [], -1
    for s, e, iso in found:  # overlapping readings of one expression: the first one
        if s >= end:
            out.append((s, e, iso))
            end = e
    return out


def parse_date(value, order: str | None = None) -> str:
    """The first date in ``value`` (a string, a ``date`` or a ``datetime``) as ISO, or ""."""
    if isinstance(value, (date, datetime)):
        value = value.isoformat()
    if not isinstance(value, str) or not value.strip():
        return ""
    found = iter_dates(value, order)
    return found[0][2] if found else ""


# -- a dateline in the article text ----------------------------------------------------------
DATELINE_CHARS = 600  # a dateline sits in the article's head: title, byline, first lines
DATELINE_LINE = 160  # characters: a line this short is a byline or a heading, not a story sentence
# a word that says the date next to it is the publication's ("posted by X September 15, 2023")
_PUBLISHED_WORD = re.compile(r"\b(posted|published|updated|pubblicato|aggiornato|data)\b|发布|发表|更新",
                             re.I)
_AFTER_DATELINE = re.compile(r"\s*(?:[—–-]|\(|电)")  # "Sept. 13, 2023 —", "2023年9月13日电"


# how an article in a language writes a numeric date: "03/09/2023" in Italian is 3 September
# (English is written both ways, US and British: its ambiguous numeric dates stay unread)
NUMERIC_ORDER_BY_LANG = {"it": "dmy"}


def find_dateline(text: str, language: str = "") -> str:
    """The publication date a dateline near the start of an article gives, or "".

    A date in the first DATELINE_CHARS characters counts when it is on a short line (a byline),
    opens its line, is followed by a dash ("Sept. 13, 2023 — Alibaba ...") or follows a word such
    as "posted" or "pubblicato" on its line. A date inside a story sentence ("On September 13,
    2023, Alibaba opened ...") does not: it is an event's date, not the article's. ``language``
    (the article's) reads numeric dates in its order (NUMERIC_ORDER_BY_LANG).
    """
    head = unicodedata.normalize("NFKC", text[:DATELINE_CHARS])
    for start, end, iso in iter_dates(head, NUMERIC_ORDER_BY_LANG.get(language)):
        line_start = head.rfind("\n", 0, start) + 1
        line_end = head.find("\n", end)
        if line_end < 0:  # the line goes on past the head, or the text ends
            line_end = len(head) if len(text) <= DATELINE_CHARS else DATELINE_CHARS + DATELINE_LINE
        before = head[line_start:start]
        if (line_end - line_start <= DATELINE_LINE or not before.strip()
                or _AFTER_DATELINE.match(head, end) or _PUBLISHED_WORD.search(before)):
            return iso
    return ""


# -- a document's date among those its file gives ----------------------------------------------
# The sources a date may come from (``Document.extra["date_source"]``), and how much each is
# trusted: the user's own metadata.json first; then a field that says "published" (HTML <meta>,
# JSON-LD, <time>, front matter, a PDF's XMP publication date); then a dateline in the text;
# last a file's creation or modification date (PDF, DOCX), which says when the file was made
# (saved from a browser, exported, edited) rather than when the news was published.
GIVEN, PUBLISHED, DATELINE, FILE_MADE = range(4)
SOURCES = {"metadata.json": GIVEN, "front-matter": PUBLISHED, "html-meta": PUBLISHED,
           "json-ld": PUBLISHED, "html-time": PUBLISHED, "pdf-properties": FILE_MADE,
           "docx-properties": FILE_MADE, "dateline": DATELINE}


@dataclass(frozen=True)
class FoundDate:
    iso: str  # YYYY-MM-DD
    source: str  # a key of SOURCES
    field: str = ""  # which field of the source, e.g. "article:published_time", "/CreationDate"
    explicit: bool = False  # a file property that says "published" (XMP prism:publicationDate)

    @property
    def rank(self) -> int:
        return PUBLISHED if self.explicit else SOURCES[self.source]


def choose(found) -> FoundDate | None:
    """The most trusted of the dates found (see SOURCES); among equals, the first given."""
    found = [f for f in found if f and f.iso]
    return min(found, key=lambda f: f.rank) if found else None


# -- the day number and the Chroma filter on it -------------------------------------------------
DAY = "day"  # chunk metadata field (rag.store.FILTERED): days since 1970-01-01 of Document.date
_EPOCH = date(1970, 1, 1)
# The ``day`` of an undated document. Undated documents stay first-class: they are stored with
# this sentinel rather than without the field, because Chroma's where clauses only match records
# that have the field, so a missing ``day`` would silently drop undated documents from every
# date filter. Being lower than any real day (about 2,700 years before 1970), the sentinel passes
# "published on or before X" by itself (a question asked "as of" a date keeps what it cannot
# date) and fails "published within [a, b]" (an explicit period keeps only documents known to
# fall in it), unless ``published_where(..., include_undated=True)`` asks for them.
UNDATED_DAY = -1_000_000


def day_number(iso: str) -> int:
    """Days since 1970-01-01 of an ISO date; UNDATED_DAY for "" (an undated document)."""
    return (date.fromisoformat(iso) - _EPOCH).days if iso else UNDATED_DAY


def day_date(day: int) -> str:
    """The ISO date of a day number; "" for UNDATED_DAY."""
    return "" if day == UNDATED_DAY else date.fromordinal(_EPOCH.toordinal() + day).isoformat()


def _day(value) -> int:
    """A day number from an int, a ``date`` or an ISO string."""
    if isinstance(value, bool):
        raise TypeError("a day is an int, a date or an ISO date string")
    if isinstance(value, int):
        return value
    iso = parse_date(value)
    if not iso:
        raise ValueError(f"not a date: {value!r}; give YYYY-MM-DD, a datetime.date or a day number")
    return day_number(iso)


def published_where(as_of=None, within: tuple | None = None,
                    include_undated: bool | None = None) -> dict | None:
    """A Chroma ``where`` clause over chunks' ``day``, or None when it would not filter.

    ``as_of``: published on or before that day (an int day number, a ``date`` or "YYYY-MM-DD").
    ``within``: (first, last) days, inclusive; either may be None for an open end.
    ``include_undated``: whether undated documents pass; by default they pass an ``as_of`` alone
    and do not pass a ``within`` period (see UNDATED_DAY). Combine with other conditions with
    ``{"$and": [published_where(...), {...}]}``.

    Examples:
        published_where(as_of=19613) -> {"day": {"$lte": 19613}}
        published_where(within=(19600, 19613)) -> {"$and": [{"day": {"$gte": 19600}},
                                                          {"day": {"$lte": 19613}}]}
        published_where(within=(19600, None), include_undated=True)
            -> {"$or": [{"day": {"$gte": 19600}}, {"day": UNDATED_DAY}]}
    """
    low = high = None
    if within is not None:
        first, last = within
        low = None if first is None else _day(first)
        high = None if last is None else _day(last)
    if as_of is not None:
        high = _day(as_of) if high is None else min(high, _day(as_of))
    if include_undated is None:
        include_undated = within is None
    conditions = []
    if low is not None:
        conditions.append({DAY: {"$gte": low}})
    elif not include_undated:
        conditions.append({DAY: {"$gt": UNDATED_DAY}})
    if high is not None:
        conditions.append({DAY: {"$lte": high}})
    if not conditions:
        return None
    dated = conditions[0] if len(conditions) == 1 else {"$and": conditions}
    if include_undated and low is not None:
        return {"$or": [dated, {DAY: UNDATED_DAY}]}
    return dated
