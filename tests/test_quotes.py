"""Quote selection and the answer-type check, on hand-worked passages (no model needed)."""
from rag.prompt import compact
from rag.query import faithful
from rag.quotes import select_quotes
from rag.text import expected_type, has_expected, terms
from rag.types import Passage


def _p(n, text, lang="en", title=""):
    return Passage(rank=n, chunk_id=f"d{n}:x", doc_id=f"d{n}", text=text, start=0, end=len(text),
                   score=0.1, dense_score=0.5, keyword_score=None, title=title or f"T{n}", language=lang)


LAUNCH = _p(1, "Alibaba is a Chinese conglomerate based in Hangzhou. Its model Tongyi Qianwen opens "
               "to the public starting on September 13th. Many firms tested the model in April.")
RUMOUR = _p(2, "Tongyi Qianwen is similar to ChatGPT. Rumors suggest it may have been trained with "
               "10 trillion parameters. However, these rumors have yet to be substantiated.")
PARTNERS = _p(3, "OPPO, Zhejiang University and DingTalk agreed to build on Tongyi Qianwen, "
                 "Alibaba said in a WeChat post.")


def test_expected_type_in_three_languages():
    assert expected_type("How many parameters does it have?") == "number"
    assert expected_type("Quando è stato lanciato?") == "date"
    assert expected_type("公司总部在哪里？") == "name"
    assert expected_type("Who replaced him?") is None  # often a group ("business customers")
    assert expected_type("Why did he step down?") == "cause"
    assert expected_type("What does Alibaba hope for?") is None


def test_has_expected_needs_something_new_of_the_right_kind():
    q = "When did Tongyi Qianwen open on September 13?"
    assert not has_expected("date", "Tongyi Qianwen opened on September 13.", q)  # only the question's own date
    assert has_expected("date", "It opened on Tuesday.", "When did it open?")
    assert has_expected("number", "It has ten trillion parameters.", "How many parameters?")
    assert not has_expected("name", "Alibaba said so.", "Who runs Alibaba?")
    assert has_expected("name", "Eddie Wu runs it, Alibaba said.", "Who runs Alibaba?")


def test_the_date_sentence_is_quoted_not_the_neighbours():
    quotes = select_quotes({"en": "From what date is Tongyi Qianwen open to the public?"}, [LAUNCH, RUMOUR])
    assert [q.text for q in quotes] == ["Its model Tongyi Qianwen opens to the public starting on September 13th."]


def test_a_qualifying_next_sentence_goes_with_the_quote():
    quotes = select_quotes({"en": "How many parameters was Tongyi Qianwen trained with?"}, [LAUNCH, RUMOUR])
    assert [q.text for q in quotes][:2] == ["Rumors suggest it may have been trained with 10 trillion parameters.",
                                            "However, these rumors have yet to be substantiated."]


def test_a_two_part_question_gets_a_quote_per_part():
    quotes = select_quotes({"en": "Which organizations agreed to build on Tongyi Qianwen, and from what "
                                  "date is it open to the public?"}, [LAUNCH, RUMOUR, PARTNERS])
    assert {q.passage for q in quotes} == {1, 3}


def test_no_quote_when_the_passages_lack_the_asked_subject():
    assert select_quotes({"en": "How many employees does Alibaba Group have?"}, [LAUNCH, RUMOUR, PARTNERS]) == []
    assert select_quotes({"en": "Why did Daniel Zhang step down?"}, [LAUNCH, RUMOUR]) == []


def test_other_language_passages_are_matched_by_names_and_numbers_only():
    it = _p(1, "Tongyi Qianwen sarà disponibile al pubblico dal 13 settembre.", lang="it")
    quotes = select_quotes({"en": "From what date is Tongyi Qianwen open to the public?"}, [it])
    assert [q.passage for q in quotes] == [1]


def finish(question, draft, passages):
    """The answer stages after retrieval, with a scripted model that drafts ``draft``."""
    from rag.bot import Bot
    from rag.config import Config
    from rag.scripted import ScriptedLLM

    bot = Bot(Config(), None, None, llm=ScriptedLLM([draft]))
    return list(bot.answer(bot.analyse(question), passages))[-1]


def test_finish_answers_with_a_quote_when_the_draft_fails_verification():
    a = finish("From what date is Tongyi Qianwen open to the public?",
               "Tongyi Qianwen opened in May 2021 [1].", [LAUNCH, RUMOUR])
    assert not a.refused
    assert a.flagged == ["Tongyi Qianwen opened in May 2021."]
    assert a.text == "“Its model Tongyi Qianwen opens to the public starting on September 13th” [1]."
    assert a.citations[0].quote == "Its model Tongyi Qianwen opens to the public starting on September 13th."


def test_finish_refuses_when_neither_draft_nor_quotes_answer():
    a = finish("How many employees does Alibaba Group have?", "Alibaba has 10 trillion employees [2].",
               [LAUNCH, RUMOUR])
    assert a.refused and a.text.startswith("The sources do not contain")


def test_compact_keeps_relevant_sentences_in_order_within_budget():
    text = compact(terms("What date does Tongyi Qianwen open to the public?"), LAUNCH, 15,
                   lambda s: len(s.split()))
    assert text == "Its model Tongyi Qianwen opens to the public starting on September 13th."


def test_a_translation_loses_the_numbers_and_names_the_model_invented():
    assert faithful("通义千问从哪一天起向公众开放？", "From January 1, 2023, 通义千问 opens to the public?") \
        == "From, 通义千问 opens to the public?"
    assert faithful("Chi ha sostituito Daniel Zhang alla guida del Cloud?",
                    "Who replaced Daniel Zhang as head of Cloud, said Zhang Shuhang?") \
        == "Who replaced Daniel Zhang as head of Cloud, said Zhang?"


def test_a_drafted_rumour_keeps_the_sources_caveat():
    from rag.quotes import qualifiers

    got = qualifiers("It was trained with 10 trillion parameters.", 2, RUMOUR)
    assert [q.text for q in got] == ["Rumors suggest it may have been trained with 10 trillion parameters.",
                                     "However, these rumors have yet to be substantiated."]
    assert qualifiers("It opens on September 13th.", 1, LAUNCH) == []


def test_a_draft_of_bare_markers_is_no_sentence():
    a = finish("From what date is Tongyi Qianwen open to the public?", "[2] [2] [2] [2]", [LAUNCH, RUMOUR])
    assert a.text == "“Its model Tongyi Qianwen opens to the public starting on September 13th” [1]."

