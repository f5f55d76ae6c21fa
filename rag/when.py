"""Time in a question: the as-of day, the window of publication days that may hold evidence,
and the recency prior. The one home of the date rules that read questions (en, it, zh).

News has a date. A question is answered as of a day (``as_of``, default today): an article
published after it is not evidence. The question's own words may name a period:

  * explicit, with a year: "in August 2022", "on 12 August 2022", "2022-08-12", "nel 2023",
    "ad agosto 2022", "2023年9月", "2023年9月13日";
  * relative, resolved against ``as_of``: "yesterday", "this week", "last month", "in the past
    3 days", "ieri", "questa settimana", "il mese scorso", "negli ultimi 3 giorni", "昨天",
    "本周", "上个月", "过去3天".

A month or a day without a year ("the September 13 forum", "ad agosto", "9月13日") names no
period: asked as of today about a 2023 archive, "August" would be August of this year and
exclude every article. "Today" ("still visible today", "即使在今天") usually means "now", so
it asks for recency like "recently" does.

A named period makes the frame a FILTER: only articles published from the period's first day
to ``as_of`` are evidence. The window is open to the end (``as_of``), not closed at the
period's last day, because news names events by their date: "the insurrection on January 6,
2021" was the subject of articles in June 2022 (RealTime QA asks about it), and an article
can report an event only once it has happened. A period that starts after ``as_of`` is a
forecast ("the 2030 target"), not a window: it is ignored. An undated article is admitted by
every window (it cannot be shown to lie outside; a corpus of undated Wikipedia paragraphs must
still answer "Who listed the market as grade 1 in 1954?").

No named period ("recently", "the latest", "最近", "di recente", or no time words at all: a
news question asks about the present) makes the frame a PRIOR: every article up to ``as_of``
is evidence, a newer one weighs more (``weight``), and the articles of the last RECENT_DAYS
get a ranked list of their own in the fusion (``recent_where``).

Example: resolve("What happened last month?", "2022-08-18") ->
TimeFrame(as_of=19222 (2022-08-18), start=19174 (2022-07-01), end=19222, mode="filter",
said="last month")

The Retriever reads a frame through ``dense_where`` (Chroma's ``where``), ``recent_where``,
``admits`` (a chunk's metadata in the window?), ``keyword_pool``, ``keep_hits`` and
``reweigh``; ``newer_answer`` and ``dated`` put the newest source's quote first, ``empty_window``
says which window left a refusal without evidence. This module neither retrieves nor answers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

from . import dates
from .errors import RagError
from .text import MONTHS_BY_LANG
from .types import Passage, Quote, Sentence

FILTER, PRIOR = "filter", "prior"

# -- the recency prior (set a priori, then measured against no prior on rtqa-dev) -----------
# half-life of an article's weight: a news story's coverage runs about a week (the weekly news
# cycle), so a week-old article counts half as "current" as today's, above the floor
HALF_LIFE_DAYS = 7.0
# an old (or undated) article keeps three quarters of its score (Onyx's recency floor): a much
# better match still wins over a fresh, weaker one; the prior only reorders close calls
RECENCY_FLOOR = 0.75
# "this week" reaches back 7 days (and ZONE_MARGIN_DAYS): RealTime QA's "this week" is the week
# before the quiz's day, not the calendar week
WEEK_DAYS = 7
# the prior also brings candidates of its own: a dense query over the articles of the last two
# half-lives joins the fusion as one more ranked list, so a fresh article that the whole-archive
# lists rank low still competes (added after measuring the multiplier alone on rtqa-dev: it left
# 22.7% of retrieved passages more than 14 days older than the question; with this list 12.6%,
# and 13.4% with 7 days instead of 14)
RECENT_DAYS = int(2 * HALF_LIFE_DAYS)
# BM25 hits asked for per question when a window filters them, as a multiple of the pool: the
# hits outside the window are dropped after the index answers (it knows no dates)
KEYWORD_OVERFETCH = 3
# a day counted back ("yesterday", "this week") reaches one day further: a publication date and
# the asker's day may differ across time zones
ZONE_MARGIN_DAYS = 1


def day_number(d: date) -> int:
    """Days since 1970-01-01 (``dates.day_number``, the chunks' ``day``). 2022-08-18 -> 19222"""
    return dates.day_number(d.isoformat())


def day_date(day: int) -> date:
    return date.fromisoformat(dates.day_date(day))


def today() -> date:
    return datetime.now(timezone.utc).date()


_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")


def parse_day(text) -> date | None:
    """A date written YYYY-MM-DD (or YYYY/MM/DD, as RealTime QA's question_date), possibly with a
    time after it; None when it is not one. "2022/06/16" -> date(2022, 6, 16)"""
    m = _ISO.match(str(text or "").strip())
    if not m:
        return None
    try:
        return date(*map(int, m.groups()))
    except ValueError:
        return None


def as_of_date(value) -> date:
    """``as_of`` as given to ``Bot.ask`` (None = today, a ``date``, or "YYYY-MM-DD")."""
    if value is None or value == "":
        return today()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    d = parse_day(value)
    if d is None or not _ISO.fullmatch(str(value).strip()):
        raise RagError(f"as-of date {value!r} is not a date: write it as YYYY-MM-DD, e.g. 2023-04-11")
    return d


def day_of(meta: dict) -> int | None:
    """A chunk's publication day from its metadata: the ``day`` field written at ingestion, or
    its ``date`` for a store written before that field; None when undated."""
    day = meta.get(dates.DAY)
    if isinstance(day, int) and not isinstance(day, bool):
        return None if day == dates.UNDATED_DAY else day
    d = parse_day(meta.get("date"))
    return day_number(d) if d else None


@dataclass(frozen=True)
class TimeFrame:
    """When the evidence for a question may have been published, and how recency counts.

    ``as_of``: the day the question is asked as of (days since 1970-01-01); nothing published
    after it is evidence. ``start``/``end``: the window of publication days admitted (``start``
    None = no lower bound; ``end`` is ``as_of``). ``mode``: "filter" when the question names a
    period (the window is all), "prior" otherwise (newer articles weigh more). ``said``: the
    words that named the period or asked for recency ("" when none)."""
    as_of: int
    start: int | None
    end: int
    mode: str
    said: str = ""

    @property
    def as_of_date(self) -> date:
        return day_date(self.as_of)

    def describe(self) -> str:
        """ "as of 2022-08-18, published 2022-07-01 or later (last month)" """
        out = f"as of {self.as_of_date.isoformat()}"
        if self.start is not None:
            out += f", published {day_date(self.start).isoformat()} or later"
        elif self.mode == PRIOR:
            out += ", newer articles first"
        return out + (f" ({self.said})" if self.said else "")


# -- the rules: question text -> named period -------------------------------------------------
_EN_MONTHS = MONTHS_BY_LANG["en"].split()
_IT_MONTHS = MONTHS_BY_LANG["it"].split()
_MONTH = {m: i + 1 for months in (_EN_MONTHS, _IT_MONTHS) for i, m in enumerate(months)}
_MONTH.update({m[:3]: i + 1 for i, m in enumerate(_EN_MONTHS) if m != "may"})
_MONTH["sept"] = 9
_FULL_MONTHS = set(_EN_MONTHS) | set(_IT_MONTHS)
_MONTH_RE = "|".join(sorted(_MONTH, key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th|°|º)?"
# "12 August 2022", "August 12, 2022", "August 2022", "August 12", "agosto", "1° agosto 2022"
_DAY_MONTH_YEAR = re.compile(
    rf"\b(?:(\d{{1,2}}){_ORD}\s+(?:of\s+|di\s+)?)?({_MONTH_RE})\b\.?(?:\s+(\d{{1,2}}){_ORD}\b(?!\s*[:.]\d))?"
    rf"(?:,?\s+(?:of\s+|del\s+)?(\d{{4}})\b)?", re.I)
_ZH_DATE = re.compile(r"(?:(\d{4})\s*年\s*)?(?:(\d{1,2})\s*月\s*(?:(\d{1,2})\s*[日号])?)?")
_YEAR = re.compile(r"(?<![\d$€£¥.,/-])((?:19|20)\d{2})(?![\d%])(?!\s*(?:年|[-/.]\d))(?:\s*年)?")
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                 "seven": 7, "ten": 10, "un": 1, "una": 1, "uno": 1, "due": 2, "tre": 3,
                 "quattro": 4, "cinque": 5, "sei": 6, "sette": 7, "dieci": 10, "一": 1, "两": 2,
                 "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_N = r"(\d+|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + ")"
_UNIT_DAYS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "month": 30, "months": 30, "year": 365,
              "years": 365, "giorno": 1, "giorni": 1, "settimana": 7, "settimane": 7, "mese": 30,
              "mesi": 30, "anno": 365, "anni": 365, "天": 1, "日": 1, "周": 7, "星期": 7,
              "个星期": 7, "个月": 30, "月": 30, "年": 365}

# relative periods: (pattern, what it starts at) -- "days:N" = as_of - N - ZONE_MARGIN_DAYS,
# "month:K" = the first day of the month K months before as_of's, "year:K" likewise for years;
# the first match wins ("the last week" is the past 7 days, tried before "last week")
_RELATIVE = [
    (re.compile(r"\bthe day before yesterday\b|\bl'altro ieri\b|\bieri l'altro\b|前天", re.I), "days:2"),
    (re.compile(r"\byesterday\b|\bieri\b|昨天|昨日", re.I), "days:1"),
    (re.compile(r"\bthis week\b|\bthe (?:past|last) week\b|\bquesta settimana\b|\bin settimana\b"
                r"|\bl'ultima settimana\b|本周|这周|这一周|这个星期|本星期|这星期|这个礼拜|本礼拜", re.I),
     f"days:{WEEK_DAYS}"),
    (re.compile(r"\blast week\b|\bthe previous week\b|\bla settimana scorsa\b|\bsettimana (?:scorsa|passata)\b"
                r"|上周|上星期|上个星期|上礼拜|上个礼拜", re.I), f"days:{2 * WEEK_DAYS}"),
    (re.compile(r"\bthe (?:past|last) month\b|\bl'ultimo mese\b", re.I), "days:30"),
    (re.compile(r"\blast month\b|\bthe previous month\b|\bil mese scorso\b|\bmese (?:scorso|passato)\b"
                r"|上个月|上月", re.I), "month:1"),
    (re.compile(r"\bthis month\b|\bquest[o']\s*mese\b|本月|这个月|这月", re.I), "month:0"),
    (re.compile(r"\bthe (?:past|last) year\b|\bl'ultimo anno\b", re.I), "days:365"),
    (re.compile(r"\blast year\b|\bthe previous year\b|\bl'anno scorso\b|\banno (?:scorso|passato)\b|去年",
                re.I), "year:1"),
    (re.compile(r"\bthis year\b|\bquest'anno\b|\bquesto anno\b|今年", re.I), "year:0"),
]
# "in the past 3 days", "over the last two weeks", "negli ultimi 3 giorni", "过去3天", "最近两周"
_LAST_N = [
    re.compile(rf"\b(?:past|last|previous)\s+{_N}\s+(days?|weeks?|months?|years?)\b", re.I),
    re.compile(rf"\b{_N}\s+(days?|weeks?|months?|years?)\s+ago\b", re.I),
    re.compile(rf"\b(?:negli|nelle|degli|delle)\s+ultim[ie]\s+{_N}\s+(giorni|settimane|mesi|anni)\b", re.I),
    re.compile(rf"\b{_N}\s+(giorn[oi]|settiman[ae]|mes[ei]|ann[oi])\s+fa\b", re.I),
    re.compile(rf"(?:过去|最近|近)\s*{_N}\s*(天|日|周|个星期|星期|个月|月|年)"),
    re.compile(rf"{_N}\s*(天|日|周|个星期|个月|年)前"),
]
# no period, but asking for the newest state of things (a prior, like no time words at all)
_RECENT = re.compile(r"\b(?:recent(?:ly)?|latest|newest|most recent|currently|right now|as of now|today|"
                     r"tonight|nowadays|recentemente|di recente|ultim[oaie]|più recent[ei]|attualmente|"
                     r"al momento|oggi|stasera|oggigiorno)\b|最近|最新|近期|近来|目前|现在|当前|今天|今日|今晚", re.I)


def _months_back(d: date, k: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 - k, 12)
    return date(y, m + 1, 1)


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _explicit(text: str, as_of: date) -> list[tuple[date, str]]:
    """(first day, words) of every period the question names by its date."""
    out: list[tuple[date, str]] = []
    taken: list[tuple[int, int]] = []

    def add(d: date | None, m: re.Match) -> None:
        if d:
            out.append((d, m.group().strip()))
            taken.append(m.span())

    for m in _ISO.finditer(text):
        add(parse_day(m.group()), m)
    for m in _DAY_MONTH_YEAR.finditer(text):
        if any(s <= m.start() < e for s, e in taken):
            continue
        word, bare = m.group(2), not (m.group(1) or m.group(3) or m.group(4))
        if "-" in (text[m.start(2) - 1:m.start(2)], text[m.end(2):m.end(2) + 1]):
            continue  # part of a name: "Mar-a-Lago"
        if bare and word.lower() not in _FULL_MONTHS:
            continue  # an abbreviation alone ("Mar", "Sept") needs a day or a year to be a month
        if word.lower() == "may" and not (word[0] == "M" and (not bare or re.search(
                r"\b(in|of|since|early|late|mid)\s+$", text[:m.start()], re.I))):
            continue  # the verb "may"
        if not m.group(4):
            taken.append(m.span())  # no year: no period (see the module docstring)
            continue
        day = int(m.group(1) or m.group(3) or 0) or None
        add(_safe_date(int(m.group(4)), _MONTH[word.lower()], day or 1), m)
    for m in _ZH_DATE.finditer(text):
        if not m.group() or not (m.group(2) or "年" in m.group()) or any(s <= m.start() < e for s, e in taken):
            continue
        y, mo, d = m.group(1), m.group(2), m.group(3)
        if not y:
            taken.append(m.span())  # "9月13日": no year, no period
        elif not mo:
            add(date(int(y), 1, 1), m)
        else:
            add(_safe_date(int(y), int(mo), int(d or 1)), m)
    for m in _YEAR.finditer(text):
        if not any(s <= m.start() < e for s, e in taken):
            add(date(int(m.group(1)), 1, 1), m)
    return out


def _relative(text: str, as_of: date) -> list[tuple[date, str]]:
    """(first day, words) of every period the question names relative to ``as_of``."""
    out = []
    for pattern, rule in _RELATIVE:
        m = pattern.search(text)
        if m:
            kind, n = rule.split(":")
            k = int(n)
            start = (as_of - timedelta(days=k + ZONE_MARGIN_DAYS) if kind == "days" else _months_back(as_of, k)
                     if kind == "month" else date(as_of.year - k, 1, 1))
            out.append((start, m.group()))
            break
    for pattern in _LAST_N:
        m = pattern.search(text)
        if m:
            n = m.group(1)
            k = int(n) if n.isdigit() else _NUMBER_WORDS[n.lower()]
            back = k * _UNIT_DAYS[m.group(2).lower()] + ZONE_MARGIN_DAYS
            out.append((as_of - timedelta(days=back), m.group()))
            break
    return out


def resolve(text: str, as_of=None, also: str | None = None) -> TimeFrame:
    """The ``TimeFrame`` of a question asked as of ``as_of`` (None = today). ``also``: another
    version of the question (its English translation), read when the question itself names no
    period. Several periods: the window starts at the earliest (it must admit each)."""
    day = as_of_date(as_of)
    for t in [text] + ([also] if also and also != text else []):
        found = [(d, w) for d, w in _relative(t, day) + _explicit(t, day) if d <= day]
        if found:
            start, said = min(found)
            return TimeFrame(day_number(day), day_number(start), day_number(day), FILTER, said)
    m = _RECENT.search(text) or (_RECENT.search(also) if also else None)
    return TimeFrame(day_number(day), None, day_number(day), PRIOR, m.group() if m else "")


# -- what the Retriever asks ----------------------------------------------------------------
def dense_where(frame: TimeFrame | None) -> dict | None:
    """Chroma's ``where`` for the dense query (``dates.published_where`` over the chunks' ``day``;
    undated chunks pass), or None when the frame
    excludes nothing a check of the results would not: as of today with no named period, only a
    mis-dated (future) article is out, and Chroma's filtered search first lists every matching
    id (slow at a million chunks)."""
    if frame is None or (frame.start is None and frame.end >= day_number(today())):
        return None
    within = None if frame.start is None else (frame.start, None)
    return dates.published_where(as_of=frame.end, within=within, include_undated=True)


def recent_where(frame: TimeFrame | None, latest_day: int | None = None) -> dict | None:
    """Chroma's ``where`` for the prior's own dense list (the articles of the last RECENT_DAYS up
    to as-of, dated ones only), or None when the frame is no prior or the store's newest article
    (``latest_day``, None: none dated) is older than that window, so nothing could match."""
    if frame is None or frame.mode != PRIOR:
        return None
    if latest_day is None or latest_day < frame.end - RECENT_DAYS:
        return None
    return dates.published_where(as_of=frame.end, within=(frame.end - RECENT_DAYS, None))


def admits(frame: TimeFrame | None, meta: dict) -> bool:
    """Is a chunk (its metadata) evidence within the frame? An undated one always is."""
    if frame is None:
        return True
    day = day_of(meta)
    if day is None:
        return True
    return (frame.start is None or day >= frame.start) and day <= frame.end


def keyword_pool(frame: TimeFrame | None, n: int) -> int:
    """BM25 hits to ask for, so that ``n`` are left after the frame drops those outside it (as
    of today with no named period, only mis-dated articles are dropped: no more are needed)."""
    return n if dense_where(frame) is None else n * KEYWORD_OVERFETCH


def keep_hits(frame: TimeFrame | None, hits: list[tuple[str, float]], payload: dict,
              n: int) -> list[tuple[str, float]]:
    """The first ``n`` keyword hits (chunk id, score) whose chunk (``payload[id]`` = (text,
    metadata)) the frame admits; a hit without a record (deleted meanwhile) is dropped."""
    return [(c, s) for c, s in hits if c in payload and admits(frame, payload[c][1])][:n]


def weight(frame: TimeFrame | None, meta: dict) -> float:
    """The recency prior, a multiplier of a chunk's fused score: 1 for today's article, 1/2 of
    the way down to RECENCY_FLOOR at HALF_LIFE_DAYS old; RECENCY_FLOOR when undated; 1 when the
    frame is a filter (the named window is the whole time signal).
    Example: 7 days old -> 0.75 + 0.25 * 0.5 = 0.875"""
    if frame is None or frame.mode != PRIOR:
        return 1.0
    day = day_of(meta)
    if day is None:
        return RECENCY_FLOOR
    age = max(0, frame.as_of - day)
    return RECENCY_FLOOR + (1.0 - RECENCY_FLOOR) * 0.5 ** (age / HALF_LIFE_DAYS)


def reweigh(frame: TimeFrame | None, fused: dict[str, float], payload: dict) -> dict[str, float]:
    """Fused scores times the recency prior (chunks without a payload keep their score)."""
    if frame is None or frame.mode != PRIOR:
        return fused
    return {c: s * weight(frame, payload[c][1]) if c in payload else s for c, s in fused.items()}


# -- answers that say when --------------------------------------------------------------------
def empty_window(frame: TimeFrame | None, passages: list[Passage]) -> str:
    """What a refusal adds when a named period left no dated passage, so the asker sees why:
    " (as of 2026-12-04, published 2026-11-26 or later (this week))"; "" otherwise."""
    if frame is None or frame.start is None or any(parse_day(p.date) for p in passages):
        return ""
    return f" ({frame.describe()})"


def dated(sentences: list[Sentence], passages: list[Passage]) -> list[Sentence]:
    """An answer's quotes, newest source first when the quoted sources have different dates, each
    quote of an older source prefixed with its date, so the answer gives the latest as current
    and says what an older one said and when. Drafted sentences keep their place, first.

    Example: quotes “Rates stay at 4%” (2023-04-11) and “Rates rise to 5%” (2023-06-02) ->
    “Rates rise to 5%”, (2023-04-11) “Rates stay at 4%”"""
    quotes = [s for s in sentences if s.kind == "quote" and s.citations]
    days = {id(s): _sentence_day(s, passages) for s in quotes}
    known = [d for d in days.values() if d is not None]
    if len(set(known)) < 2:
        return sentences
    newest = max(known)
    order = sorted(range(len(quotes)), key=lambda i: (-(days[id(quotes[i])] or -1), i))
    out = [s for s in sentences if not (s.kind == "quote" and s.citations)]
    for i in order:
        s, d = quotes[i], days[id(quotes[i])]
        out.append(replace(s, text=f"({day_date(d).isoformat()}) {s.text}") if d is not None and d < newest else s)
    return out


def newer_answer(quotes: list[Quote], passages: list[Passage], select) -> list[Quote]:
    """When the answer's first quote comes from an article and a later-dated passage answers the
    question too, that passage's best quote (``select(passages)`` picks quotes from a list of
    passages, e.g. ``quotes.select_quotes``), numbered as in ``passages``; else []. Quote
    selection wants quotes that add something, so two sources giving the same fact at different
    dates would otherwise show only one of them (``dated`` then puts the newer first)."""
    first = _passage_day(quotes[0].passage, passages) if quotes else None
    if first is None:
        return []
    later = [n for n in range(1, len(passages) + 1) if (_passage_day(n, passages) or first) > first]
    got = select([passages[n - 1] for n in later]) if later else []
    return [replace(got[0], passage=later[got[0].passage - 1])] if got else []


def _passage_day(n: int, passages: list[Passage]) -> int | None:
    if not 1 <= n <= len(passages):
        return None
    d = parse_day(passages[n - 1].date)
    return day_number(d) if d else None


def _sentence_day(s: Sentence, passages: list[Passage]) -> int | None:
    return _passage_day(s.citations[0], passages)
