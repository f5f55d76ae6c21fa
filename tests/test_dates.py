"""Publication dates (issue 23): parsing rules, the date each kind of source gives a document,
and the Chroma filter on the chunks' ``day`` over a real store."""
import json
from datetime import date

import pytest
from hypothesis import given, strategies as st

from rag.corpus import load_file, load_folder_or_files
from rag.dates import (UNDATED_DAY, FoundDate, choose, day_date, day_number, find_dateline,
                       parse_date, published_where)
from rag.text import MONTHS_BY_LANG

BODY = ("Alibaba opened its Tongyi Qianwen model to the public this week, the company said in a "
        "statement, after regulators approved a first group of chatbots.")


@pytest.mark.parametrize("text,iso", [
    ("2023-09-13", "2023-09-13"),
    ("2023-09-13T23:30:00-05:00", "2023-09-13"),  # the date the source shows, not UTC
    ("2023/9/13", "2023-09-13"),
    ("20230913", "2023-09-13"),
    ("D:20230913101500+02'00'", "2023-09-13"),
    ("September 15, 2023", "2023-09-15"),
    ("Sept. 13, 2023", "2023-09-13"),
    ("Sep 13 2023", "2023-09-13"),
    ("September 13th, 2023", "2023-09-13"),
    ("15th September 2023", "2023-09-15"),
    ("Wed, 13 Sep 2023 10:00:00 GMT", "2023-09-13"),
    ("13 settembre 2023", "2023-09-13"),
    ("1 mar 2024", "2024-03-01"),
    ("2023年9月13日", "2023-09-13"),
    ("２０２３年９月１３日", "2023-09-13"),  # full-width digits
    ("13/09/2023", "2023-09-13"),  # day first: 13 is no month
    ("09/13/2023", "2023-09-13"),  # month first
    ("03/04/2023", ""),  # day and month cannot be told apart: undated rather than wrong
    ("2023-02-30", ""),  # no such day
    ("September 2023", ""),  # no day
    ("", ""),
])
def test_parse_date(text, iso):
    assert parse_date(text) == iso


@given(st.dates(min_value=date(1800, 1, 1), max_value=date(2200, 12, 31)), st.sampled_from([
    "{d:%Y-%m-%d}", "{d:%Y-%m-%d}T12:30:00+08:00", "{d:%Y/%m/%d}", "D:{d:%Y%m%d}093000Z",
    "{d:%B} {d.day}, {d.year}", "{d.day} {d:%B} {d.year}", "{d:%b}. {d.day}, {d.year}",
    "{d.day} {it} {d.year}", "{d.year}年{d.month}月{d.day}日",
    "posted by the desk on {d:%A}, {d:%B} {d.day}, {d.year} at noon"]))
def test_parse_date_round_trip(d, form):
    it = MONTHS_BY_LANG["it"].split()[d.month - 1]
    text = form.format(d=d, it=it)
    assert parse_date(text) == d.isoformat(), text
    assert day_date(day_number(parse_date(text))) == d.isoformat()


def test_ambiguous_numeric_date_follows_a_given_order():
    assert parse_date("03/04/2023", order="dmy") == "2023-04-03"
    assert parse_date("03/04/2023", order="mdy") == "2023-03-04"


def test_dateline_near_the_start_but_not_a_story_date():
    assert find_dateline("Alibaba’s Tongyi Qianwen AI Open to the Public\nAI and Data Science "
                         "Newsposted by ODSC Team September 15, 2023 ODSC Team\n\n" + BODY) == "2023-09-15"
    assert find_dateline("Sept. 13, 2023 — " + BODY + " " + BODY) == "2023-09-13"
    assert find_dateline("Pubblicato il 13 settembre 2023 alle 10:00 da Redazione\n" + BODY) == "2023-09-13"
    assert find_dateline("新华社北京2023年9月13日电 阿里巴巴宣布通义千问向公众开放。" * 3) == "2023-09-13"
    # a date inside a story sentence is an event's date, not the article's
    assert find_dateline("On September 13, 2023, " + BODY + " " + BODY) == ""
    # a dateline far into the text is not one
    assert find_dateline(BODY * 6 + "\nSeptember 15, 2023\n") == ""


def test_the_most_trusted_source_wins():
    found = [FoundDate("2023-01-01", "pdf-properties", "/CreationDate"),
             FoundDate("2023-09-13", "dateline"),
             FoundDate("", "metadata.json", "date")]  # empty: no date given
    assert choose(found).source == "dateline"  # the file's creation date says when it was made
    assert choose(found + [FoundDate("2023-09-12", "html-meta")]).iso == "2023-09-12"
    assert choose(found + [FoundDate("2023-09-10", "metadata.json")]).iso == "2023-09-10"
    explicit = FoundDate("2023-09-11", "pdf-properties", "prism:publicationDate", explicit=True)
    assert choose(found + [explicit]) == explicit
    assert choose([FoundDate("", "dateline")]) is None


def test_day_numbers():
    assert day_number("1970-01-01") == 0 and day_number("1970-01-02") == 1
    assert day_number("2023-09-13") == (date(2023, 9, 13) - date(1970, 1, 1)).days == 19613
    assert day_number("1969-12-31") == -1 > UNDATED_DAY  # archives older than 1970 stay dated
    assert day_number("") == UNDATED_DAY and day_date(UNDATED_DAY) == ""
    assert day_date(19613) == "2023-09-13"


def test_where_clauses():
    assert published_where() is None
    assert published_where(as_of="2023-09-13") == {"day": {"$lte": 19613}}
    assert published_where(as_of=date(2023, 9, 13), include_undated=False) == {
        "$and": [{"day": {"$gt": UNDATED_DAY}}, {"day": {"$lte": 19613}}]}
    assert published_where(within=("2023-09-01", 19613)) == {
        "$and": [{"day": {"$gte": 19601}}, {"day": {"$lte": 19613}}]}
    assert published_where(within=(19601, None), include_undated=True) == {
        "$or": [{"day": {"$gte": 19601}}, {"day": UNDATED_DAY}]}
    # a period and an as-of day: the period ends at the as-of day at the latest
    assert published_where(as_of=19610, within=(19601, 19613)) == {
        "$and": [{"day": {"$gte": 19601}}, {"day": {"$lte": 19610}}]}
    with pytest.raises(ValueError, match="not a date"):
        published_where(as_of="soon")


# -- the date each kind of source gives a document ---------------------------------------------
def _doc(tmp_path, name: str, content: str, meta: dict | None = None):
    (tmp_path / name).write_text(content, "utf-8")
    if meta is not None:
        (tmp_path / "metadata.json").write_text(json.dumps(meta))
    res = load_folder_or_files([tmp_path])
    assert not res.errors
    return res.documents[0]


@pytest.mark.parametrize("name,content,iso,source,field", [
    ("a.html", '<html><head><meta property="article:published_time" content="2023-09-13T08:00:00+08:00">'
               f"</head><body><article><p>{BODY}</p></article></body></html>",
     "2023-09-13", "html-meta", "article:published_time"),
    ("a.html", '<html><head><meta name="DC.date" content="2023-09-12"></head>'
               f"<body><p>{BODY}</p></body></html>", "2023-09-12", "html-meta", "dc.date"),
    ("a.html", '<html><head><script type="application/ld+json">{"@context": "https://schema.org", '
               '"@graph": [{"@type": "NewsArticle", "headline": "Qwen", "datePublished": '
               f'"2023-09-11T10:00:00Z"}}]}}</script></head><body><p>{BODY}</p></body></html>',
     "2023-09-11", "json-ld", "datePublished"),
    ("a.html", '<html><body><nav><time datetime="2026-01-01">today</time></nav><article><h1>Qwen</h1>'
               f'<time datetime="2023-09-10">10 Sep</time><p>{BODY}</p></article></body></html>',
     "2023-09-10", "html-time", "time[datetime]"),
    ("a.md", f"---\ntitle: Qwen opens\ndate: 2023-09-09\n---\n# Qwen opens\n\n{BODY}\n",
     "2023-09-09", "front-matter", "date"),
    ("a.txt", f"Qwen opens\nposted by ODSC Team September 15, 2023\n\n{BODY}", "2023-09-15",
     "dateline", ""),
    ("a.txt", f"Qwen aperto al pubblico\n13 settembre 2023\n\n{BODY}", "2023-09-13", "dateline", ""),
    ("a.txt", "Alibaba apre Tongyi Qianwen al pubblico\n03/09/2023\n\nQuesta settimana Alibaba ha "
              "rilasciato il suo modello al pubblico, dopo l'approvazione delle autorità.",
     "2023-09-03", "dateline", ""),  # Italian: day first
    ("a.txt", f"Qwen opens\n03/09/2023\n\n{BODY}", "", "", ""),  # English: US or British?
    ("a.txt", f"阿里巴巴通义千问向公众开放\n2023年9月13日\n\n{BODY}", "2023-09-13", "dateline", ""),
    ("a.txt", BODY, "", "", ""),
])
def test_date_from_each_source(tmp_path, name, content, iso, source, field):
    doc = _doc(tmp_path, name, content)
    assert (doc.date, doc.extra["date_source"], doc.extra["date_field"]) == (iso, source, field)
    assert doc.extra["day"] == day_number(iso)


def test_metadata_json_wins_and_is_normalised(tmp_path):
    doc = _doc(tmp_path, "a.md", f"---\ndate: 2023-09-09\n---\nposted September 15, 2023\n\n{BODY}",
               {"a": {"date": "20230819"}})
    assert (doc.date, doc.extra["date_source"], doc.extra["day"]) == ("2023-08-19", "metadata.json", 19588)


def test_front_matter_is_not_text(tmp_path):
    doc = _doc(tmp_path, "a.md", f"---\ntitle: \"Qwen opens\"\npublished: Sept. 13, 2023\n---\n{BODY}")
    assert doc.title == "Qwen opens" and doc.date == "2023-09-13"
    assert "---" not in doc.text and "published:" not in doc.text and doc.text.startswith("Alibaba")


# -- the chunks' day in a real Chroma store ----------------------------------------------------
def test_chroma_filters_chunks_by_day(tmp_path, make_bot):
    from rag.store import unpack

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    articles = {"early": "2023-08-19", "mid": "2023-09-13", "late": "2023-10-02", "undated": ""}
    for name, iso in articles.items():
        (corpus / f"{name}.txt").write_text(f"{BODY} This copy is the {name} one.")
    (corpus / "metadata.json").write_text(json.dumps({n: {"date": d} for n, d in articles.items()}))
    bot = make_bot(corpus)
    assert sorted(bot.ingest().added) == sorted(articles)

    def docs(where):
        got = bot.store.chunks.get(where=where, include=["metadatas"])
        return sorted({unpack(m)["doc_id"] for m in got["metadatas"]})

    assert docs({"day": day_number("2023-09-13")}) == ["mid"]
    assert docs(published_where(as_of="2023-09-13")) == ["early", "mid", "undated"]
    assert docs(published_where(as_of="2023-09-13", include_undated=False)) == ["early", "mid"]
    assert docs(published_where(within=("2023-09-01", "2023-12-31"))) == ["late", "mid"]
    assert docs(published_where(within=("2023-09-01", None), include_undated=True)) == [
        "late", "mid", "undated"]
    assert docs(published_where(as_of="2023-08-01", include_undated=False)) == []
    rec = bot.store.documents()["mid"].metadata
    assert (rec["date"], rec["date_source"], rec["day"]) == ("2023-09-13", "metadata.json", 19613)
