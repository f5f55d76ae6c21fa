"""Dates in questions and answers (issue 23): time words resolved against an as-of day in
English, Italian and Chinese; retrieval as of a day (real Chroma, the real embedder, a corpus
written here with metadata.json dates); the recency prior; answers that put the newest source
first; `rag eval` asking each question as of its question_date (scripted LLM)."""
import json
import re
from argparse import Namespace
from datetime import date, timedelta

import pytest

from rag import when
from rag.cli import format_answer, main as cli_main
from rag.errors import RagError
from rag.scripted import ScriptedLLM
from rag.types import Passage, Sentence
from test_server_mode import chroma_server  # noqa: F401  (a `chroma run` server on 127.0.0.1)

AS_OF = "2022-08-18"  # a Thursday


def start(question: str, as_of: str = AS_OF) -> str | None:
    f = when.resolve(question, as_of)
    return None if f.start is None else when.day_date(f.start).isoformat()


# -- the rules, per language ------------------------------------------------------------------
@pytest.mark.parametrize("question, first_day", [
    ("What did the senators announce yesterday?", "2022-08-16"),
    ("Which country was shaken by an earthquake this week?", "2022-08-10"),
    ("Who resigned last week?", "2022-08-03"),
    ("What did the Fed decide last month?", "2022-07-01"),
    ("How far have prices risen this year?", "2022-01-01"),
    ("What happened in the past 3 days?", "2022-08-14"),
    ("Who won the election in August 2022?", "2022-08-01"),
    ("What did the court rule on August 12, 2022?", "2022-08-12"),
    ("What happened on 2022-08-12?", "2022-08-12"),
    ("Which show received the most nominations for the 2021 Emmy Awards?", "2021-01-01"),
])
def test_english_periods(question, first_day):
    f = when.resolve(question, AS_OF)
    assert f.mode == "filter" and when.day_date(f.start).isoformat() == first_day
    assert f.end == f.as_of == when.day_number(date(2022, 8, 18))


@pytest.mark.parametrize("question, first_day", [
    ("Cosa hanno annunciato ieri i senatori?", "2022-08-16"),
    ("Quale paese è stato colpito da un terremoto questa settimana?", "2022-08-10"),
    ("Chi si è dimesso la settimana scorsa?", "2022-08-03"),
    ("Cosa ha deciso la banca il mese scorso?", "2022-07-01"),
    ("Chi ha vinto nel 2021?", "2021-01-01"),
    ("Chi ha vinto le elezioni ad agosto 2022?", "2022-08-01"),
    ("Cosa è successo il 12 agosto 2022?", "2022-08-12"),
    ("Cosa è successo negli ultimi 3 giorni?", "2022-08-14"),
])
def test_italian_periods(question, first_day):
    f = when.resolve(question, AS_OF)
    assert f.mode == "filter" and when.day_date(f.start).isoformat() == first_day


@pytest.mark.parametrize("question, first_day", [
    ("参议员们昨天宣布了什么？", "2022-08-16"),
    ("本周哪个国家发生了地震？", "2022-08-10"),
    ("上周谁辞职了？", "2022-08-03"),
    ("上个月央行做了什么决定？", "2022-07-01"),
    ("2021年谁赢了选举？", "2021-01-01"),
    ("2022年8月发生了什么？", "2022-08-01"),
    ("2022年8月12日法院裁定了什么？", "2022-08-12"),
    ("过去三天发生了什么？", "2022-08-14"),
])
def test_chinese_periods(question, first_day):
    f = when.resolve(question, AS_OF)
    assert f.mode == "filter" and when.day_date(f.start).isoformat() == first_day


@pytest.mark.parametrize("question, said", [
    ("Which show was recently green lit for a new season?", "recently"),
    ("What is the latest news about the port?", "latest"),
    ("Qual è l'accordo più recente?", "più recente"),
    ("Cosa è successo di recente al porto?", "di recente"),
    ("最近港口发生了什么？", "最近"),
    ("最新的消息是什么？", "最新"),
    ("Who is the harbour master of Tallinn?", ""),
    ("What may happen to the harbour?", ""),  # the verb, not the month
    ("Who hosted the September 13 forum?", ""),  # no year: an event's day, not a period
    ("Chi ha vinto ad agosto?", ""),
    ("9月13日的论坛是谁主持的？", ""),
    ("Is the wall still visible today?", "today"),  # "today" is "now"
    ("即使在今天，城墙的碎片仍然可见吗？", "今天"),
    ("How many of the 1,000 workers went on strike?", ""),
    ("Will the port meet its 2030 target?", ""),  # a period after as-of is a forecast
    ("What did the FBI find at Mar-a-Lago?", ""),  # a name, not March
])
def test_no_named_period_is_a_recency_prior(question, said):
    f = when.resolve(question, AS_OF)
    assert f.mode == "prior" and f.start is None and f.said == said
    assert f.end == f.as_of


def test_the_translation_is_read_when_the_question_names_no_period():
    f = when.resolve("Che cosa hanno votato?", AS_OF, also="What did they vote on yesterday?")
    assert f.mode == "filter" and when.day_date(f.start).isoformat() == "2022-08-16"


def test_as_of_defaults_to_today_and_a_bad_one_says_the_format():
    assert when.resolve("Who is it?").as_of == when.day_number(when.today())
    assert when.as_of_date("2022/06/16") == date(2022, 6, 16)  # RealTime QA's question_date
    for bad in ("2022-13-01", "yesterday", "16/06/2022", "2022-06-16 junk"):
        with pytest.raises(RagError, match="YYYY-MM-DD"):
            when.as_of_date(bad)


def test_recency_weight_halves_towards_the_floor_every_half_life():
    f = when.resolve("Who is it?", AS_OF)
    on = lambda days: {"date": (date(2022, 8, 18) - timedelta(days=days)).isoformat()}
    assert when.weight(f, on(0)) == 1.0
    assert when.weight(f, on(7)) == pytest.approx(0.875)
    assert when.weight(f, on(14)) == pytest.approx(0.8125)
    assert when.weight(f, on(400)) == pytest.approx(when.RECENCY_FLOOR, abs=1e-6)
    assert when.weight(f, {"date": ""}) == when.RECENCY_FLOOR  # undated cannot claim to be current
    assert when.weight(f, {"day": when.day_number(date(2022, 8, 11))}) == pytest.approx(0.875)
    assert when.weight(when.resolve("Who was it last month?", AS_OF), on(40)) == 1.0  # a filter
    assert not when.admits(f, on(-1)) and when.admits(f, on(0)) and when.admits(f, {"date": ""})
    week = when.resolve("this week", AS_OF)
    assert when.admits(week, on(8)) and not when.admits(week, on(9))
    assert when.admits(week, {"date": ""})  # undated: cannot be shown to lie outside


def _p(n, text, day):
    return Passage(n, f"d{n}:0", f"d{n}", text, 0, len(text), 0.1, 0.5, None, date=day, language="en")


def test_the_newest_sources_quote_comes_first_and_older_quotes_say_when():
    old, new = _p(1, "Rates stay at 4%.", "2023-04-11"), _p(2, "Rates rise to 5%.", "2023-06-02")
    drafted = Sentence("Rates rise to 5%", [2])
    sents = [drafted, Sentence("“Rates stay at 4%”", [1], kind="quote"),
             Sentence("“Rates rise to 5%”", [2], kind="quote")]
    out = when.dated(sents, [old, new])
    assert [s.text for s in out] == ["Rates rise to 5%", "“Rates rise to 5%”", "(2023-04-11) “Rates stay at 4%”"]
    same = [Sentence("“a”", [1], kind="quote"), Sentence("“b”", [2], kind="quote")]
    assert when.dated(same, [old, _p(2, "b", "2023-04-11")]) == same  # one date: nothing to say


# -- retrieval as of a day, on a corpus with dates ----------------------------------------------
ARTICLES = {
    "port_2022_03": ("2022-03-10", "Tallinn names a harbour master",
                     "Anna Kask was named harbour master of the port of Tallinn, the port authority "
                     "said on Wednesday. She takes over from a retiring official."),
    "port_2022_08": ("2022-08-15", "New harbour master for Tallinn",
                     "Peeter Tamm is the new harbour master of the port of Tallinn, the port "
                     "authority announced on Monday. Anna Kask left the post in August."),
    "port_2023_05": ("2023-05-02", "Tallinn port changes leadership again",
                     "Mart Saar became harbour master of the port of Tallinn this spring, the port "
                     "authority said. Peeter Tamm moved to the ministry."),
    "weather": ("", "Weekend weather", "Rain is expected in Tartu over the weekend, forecasters said."),
}
QUESTION = "Who is the harbour master of the port of Tallinn?"


def write_corpus(folder):
    folder.mkdir(parents=True, exist_ok=True)
    meta = {}
    for doc, (day, title, text) in ARTICLES.items():
        (folder / f"{doc}.txt").write_text(text)
        meta[doc] = {"title": title, "date": day, "language": "en", "publisher": "Port News"}
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def dated_bot(tmp_path, make_bot):
    bot = make_bot(write_corpus(tmp_path / "corpus"), llm=ScriptedLLM([]))  # fails if asked unscripted
    bot.ingest()
    return bot


def _docs(passages):
    return [p.doc_id for p in passages]


def test_as_of_excludes_later_articles_and_the_prior_puts_the_newest_first(dated_bot):
    got = dated_bot.search(QUESTION, k=4, as_of="2022-08-16")
    assert "port_2023_05" not in _docs(got) and got[0].doc_id == "port_2022_08"
    assert all(p.date <= "2022-08-16" for p in got)
    early = dated_bot.search(QUESTION, k=4, as_of=date(2022, 4, 1))
    assert "port_2022_03" in _docs(early)
    assert not {"port_2022_08", "port_2023_05"} & set(_docs(early))
    assert "weather" in _docs(early)  # an undated article is kept by an as-of alone
    assert dated_bot.search(QUESTION, k=4, as_of="2023-05-03")[0].doc_id == "port_2023_05"


def test_the_prior_reorders_close_matches(dated_bot):
    """The same question with the prior and without it (a named period turns it off)."""
    q = dated_bot.analyse(QUESTION, as_of="2023-05-03")
    with_prior = dated_bot.retrieve(q, 4).passages
    flat = dated_bot.retrieve(q.__class__(**{**q.__dict__, "when": when.TimeFrame(
        q.when.as_of, None, q.when.end, "filter")}), 4).passages
    assert with_prior[0].doc_id == "port_2023_05"
    w = {p.doc_id: when.weight(q.when, {"date": p.date}) for p in with_prior}
    assert w["port_2023_05"] > w["port_2022_08"] > when.RECENCY_FLOOR - 1e-9
    assert sorted(_docs(with_prior)) == sorted(_docs(flat))  # same passages, reweighed
    assert [p.score for p in with_prior] != [p.score for p in flat]


def test_a_named_period_filters_dense_and_keyword_hits(dated_bot):
    dated = lambda ps: [d for d in _docs(ps) if d != "weather"]  # the undated article may come too
    got = dated_bot.search("Who became harbour master of the port of Tallinn this week?", k=4,
                           as_of="2022-08-18")
    assert dated(got) == ["port_2022_08"]  # the week: not March, not 2023
    dated_bot.llm.enqueue("Who became harbour master of the port of Tallinn last month?",  # translations
                          "Who became the harbour master of the port of Tallinn in March 2022?")
    got = dated_bot.search("Chi è diventato capitano del porto di Tallinn il mese scorso?", k=4,
                           as_of="2022-09-05")
    assert dated(got) == ["port_2022_08"]
    got = dated_bot.search("2022年3月谁成为了塔林港的港务长？", k=4, as_of="2022-08-18")
    assert set(dated(got)) == {"port_2022_03", "port_2022_08"}
    kw = dated_bot.store.keyword_index().query("Mart Saar", 5)
    assert kw and kw[0][0].startswith("port_2023_05")  # BM25 finds it, the as-of drops it:
    assert "port_2023_05" not in _docs(dated_bot.search("Mart Saar harbour master", k=4, as_of="2022-08-18"))


def first_sentence_of_passage_1(messages) -> str:
    """A scripted model's reply: passage 1's first sentence, cited."""
    body = messages[-1]["content"]
    first = re.search(r'Passage \[1\]: """(.*?)"""', body, re.S).group(1)
    return first.split(". ")[0] + " [1]."


def test_an_answer_as_of_a_day_cites_no_later_article_and_shows_dates(dated_bot):
    dated_bot._llm = ScriptedLLM(first_sentence_of_passage_1)
    a = dated_bot.ask(QUESTION, k=3, as_of="2022-08-16")
    assert not a.refused and a.citations
    assert all(c.date and c.date <= "2022-08-16" for c in a.citations)
    assert "Peeter Tamm" in a.text and "Mart Saar" not in a.text
    out = format_answer(a)
    assert "(Port News, 2022-08-15)" in out
    from rag_ui.render import sources_section_html

    html = sources_section_html(0, QUESTION, a.citations, dated_bot.document_text)
    assert "Port News · 2022-08-15" in html


def test_a_bad_as_of_flag_names_the_flag_and_the_format(capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["search", "Who?", "--as-of", "18/08/2022"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--as-of" in err and "YYYY-MM-DD" in err


def test_rag_eval_asks_each_question_as_of_its_question_date(tmp_path):
    from rag.config import Config
    from rag.evaluate import run_eval

    corpus = write_corpus(tmp_path / "corpus")
    questions = tmp_path / "q.jsonl"
    rows = [{"id": f"q{i}", "category": "single", "language": "en", "answerable": True,
             "question": QUESTION, "key_facts": [[name]], "gold_sources": [[doc]], "question_date": day}
            for i, (day, name, doc) in enumerate([("2022/08/16", "Peeter Tamm", "port_2022_08"),
                                                  ("2022/04/01", "Anna Kask", "port_2022_03")])]
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    llm = ScriptedLLM(lambda messages: "The passages do not contain this information.")
    args = Namespace(questions=questions, corpus=corpus, out=tmp_path / "out", k=3, limit=None,
                     compare=None, baseline=None, judge="rules", judge_labels=None)
    assert run_eval(args, Config(home=tmp_path / "home"), llm=llm) == 0
    got = [json.loads(l) for l in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    by_id = {r["id"]: [x["doc_id"] for x in r["retrieved"]] for r in got}
    assert by_id["q0"][0] == "port_2022_08" and "port_2023_05" not in by_id["q0"]
    assert "port_2022_03" in by_id["q1"] and not {"port_2022_08", "port_2023_05"} & set(by_id["q1"])
    assert all(r["scores"]["retrieval_recall_at_k"] == 1.0 for r in got)


def test_as_of_against_a_chroma_server(chroma_server, tmp_path, embedder):
    """The same where clause on a `chroma run` server (server mode)."""
    from rag.bot import Bot
    from rag.config import Config

    bot = Bot.from_config(Config(corpus_dir=write_corpus(tmp_path / "corpus"), home=tmp_path / "home",
                                 chroma_url=chroma_server))
    bot.embedder = bot.retriever.embedder = embedder
    bot.ingest()
    got = bot.search(QUESTION, k=4, as_of="2022-08-16")
    assert got[0].doc_id == "port_2022_08" and "port_2023_05" not in _docs(got)
    assert [d for d in _docs(bot.search("Who became harbour master of the port of Tallinn this week?",
                                        k=4, as_of="2022-08-18")) if d != "weather"] == ["port_2022_08"]


def test_the_prior_brings_fresh_articles_the_archive_lists_rank_low(tmp_path, make_bot):
    """Old articles that match the question's words closely, and one fresh article in other words
    (no BM25 hit, a low dense rank): the last RECENT_DAYS' own dense list puts it in the answer."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    meta = {}
    for i in range(8):
        (folder / f"old_{i}.txt").write_text(
            f"Report {i}: Anna Kask is the harbour master of the port of Tallinn, the port authority "
            f"of Tallinn said in its bulletin number {i}.")
        meta[f"old_{i}"] = {"title": f"Port of Tallinn bulletin {i}", "date": f"2021-0{i + 1}-15"}
    (folder / "fresh.txt").write_text("Estonia's biggest seaport has a new chief: Peeter Tamm "
                                      "replaced his predecessor on Monday, officials announced.")
    meta["fresh"] = {"title": "New chief", "date": "2022-08-15"}
    (folder / "metadata.json").write_text(json.dumps(meta))
    bot = make_bot(folder, llm=ScriptedLLM([]))
    bot.ingest()
    q = bot.analyse(QUESTION, as_of="2022-08-16")
    assert q.when.mode == "prior" and when.recent_where(q.when, bot.store.latest_day()) is not None
    assert when.recent_where(q.when, None) is None  # nothing dated: no filtered query
    assert not any(c.startswith("fresh") for c, _ in bot.store.keyword_index().query(QUESTION, 20))
    assert "fresh" in _docs(bot.retrieve(q, 3).passages)


def test_a_period_with_no_article_is_a_refusal_that_says_which_period(dated_bot):
    a = dated_bot.ask("Who became harbour master of the port of Tallinn this week?", as_of="2023-01-10")
    assert [p.doc_id for p in a.passages] == ["weather"]  # only the undated article is left
    assert a.refused and a.refusal_reason.endswith(" (as of 2023-01-10, published 2023-01-02 or later "
                                                   "(this week))")
    assert dated_bot.llm.calls == []  # refused before the model


def test_the_ui_answers_as_of_the_date_in_its_box(dated_bot):
    from rag_ui.app import BotPool, ask

    pool = BotPool(dated_bot)
    *_, (chat, sources, details, turns, box) = ask(pool, QUESTION, [], None, 3, "2022-13-01")
    assert "YYYY-MM-DD" in turns[-1]["error"] and turns[-1]["answer"] is None
    dated_bot._llm = ScriptedLLM(first_sentence_of_passage_1)
    *_, (chat, sources, details, turns, box) = ask(pool, QUESTION, [], None, 3, " 2022-08-16 ")
    a = turns[-1]["answer"]
    assert a is not None and not a.refused and all(c.date <= "2022-08-16" for c in a.citations)
    assert "Peeter Tamm" in chat and "2022-08-15" in sources
    *_, (chat, sources, details, turns, box) = ask(pool, QUESTION, [], None, 3, "")  # empty: today
    assert turns[-1]["answer"] is not None


def test_when_two_sources_of_different_dates_answer_the_newest_comes_first_and_the_older_says_when():
    """Through Bot.answer (a scripted draft of bare markers, so the answer is the quotes)."""
    from rag.bot import Bot
    from rag.config import Config

    def passage(n, text, day):
        return Passage(n, f"d{n}:0", f"d{n}", text, 0, len(text), 0.1, 0.6, None, title=f"T{n}",
                       date=day, language="en")

    old = passage(1, "The harbour master of the port of Tallinn is Anna Kask, the port authority said "
                     "in March.", "2022-03-10")
    new = passage(2, "The harbour master of the port of Tallinn is now Peeter Tamm, the port authority "
                     "said in August.", "2022-08-15")
    bot = Bot(Config(), None, None, llm=ScriptedLLM(["[1] [2]"]))
    items = list(bot.answer(bot.analyse(QUESTION, as_of="2022-08-16"), [old, new]))
    a = items[-1]
    assert not a.refused
    assert a.text == ("“The harbour master of the port of Tallinn is now Peeter Tamm, the port authority said "
                      "in August” [2]. (2022-03-10) “The harbour master of the port of Tallinn is Anna Kask, "
                      "the port authority said in March” [1].")
    assert items[0].text == a.text  # the evidence shown first says the same
    assert {c.number: c.date for c in a.citations} == {1: "2022-03-10", 2: "2022-08-15"}
