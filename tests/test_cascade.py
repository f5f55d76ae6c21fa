"""The cascade (rag.cascade, issue 24): the small reader first, the larger one only when the
small one's answer would be refused after it drafted; with two scripted stand-in LLMs. The real
pair is exercised in test_answer.py."""
from rag.bot import Bot
from rag.config import Config
from rag.scripted import ScriptedLLM
from rag.types import Answer, Escalation, Evidence, Passage


def _p(n, text, dense=0.6):
    return Passage(rank=n, chunk_id=f"d{n}:x", doc_id=f"d{n}", text=text, start=0, end=len(text),
                   score=0.1, dense_score=dense, keyword_score=None, title=f"T{n}")


CLOUD = _p(2, "Daniel Zhang stepped down as head of the cloud unit. He was replaced by Eddie Wu, "
              "the group's chief executive, in September.")
WEATHER = _p(3, "Rain is expected across the region on the weekend, forecasters said.", dense=0.1)
ASKED = "Who replaced Daniel Zhang as head of the cloud unit?"


def run(small_draft, large_draft, passages=(CLOUD,), question=ASKED, large_id="large", **cfg):
    small = ScriptedLLM([small_draft], model_id="small")
    large = ScriptedLLM([large_draft] if large_draft else [], model_id=large_id)
    bot = Bot(Config(quotes=False, **cfg), None, None, llm=small, second_llm=large)
    return list(bot.answer(bot.analyse(question), list(passages))), small, large


def test_a_refused_small_answer_is_drafted_again_by_the_larger_reader():
    items, small, large = run("The weather will be fine [1].", "He was replaced by Eddie Wu [1].")
    kinds = [type(i).__name__ for i in items]
    esc = kinds.index("Escalation")
    assert all(k == "str" for k in kinds[:esc]) and all(k == "str" for k in kinds[esc + 1:-1])
    e, a = items[esc], items[-1]
    assert e.model == "large" and e.reason.startswith("no sentence of the draft")
    assert len(small.calls) == 1 and len(large.calls) == 1
    assert large.calls[0][1]["content"] == small.calls[0][1]["content"]  # the same passages
    assert isinstance(a, Answer) and not a.refused and "Eddie Wu" in a.text and a.model == "large"
    assert a.escalated == e.reason and a.timings["escalation_s"] >= 0


def test_the_larger_readers_refusal_is_final():
    items, _, large = run("The weather will be fine [1].", "It will rain [1].")
    assert isinstance(items[-1], Answer) and items[-1].refused and items[-1].model == "large"
    assert sum(isinstance(i, Escalation) for i in items) == 1 and len(large.calls) == 1


def test_an_answer_that_stands_never_waits_for_the_larger_reader():
    items, _, large = run("He was replaced by Eddie Wu [1].", None)
    assert not any(isinstance(i, Escalation) for i in items) and large.calls == []
    assert items[-1].model == "small" and items[-1].escalated == ""


def test_the_evidence_gate_refuses_before_either_reader_is_asked():
    items, small, large = run("x", None, passages=(WEATHER,), question="Who is the chief executive of OpenAI?")
    assert len(items) == 1 and items[0].refused and small.calls == [] and large.calls == []


def test_a_second_reader_that_is_the_first_is_not_asked_again():
    small = ScriptedLLM(["The weather will be fine [1]."], model_id="same")
    bot = Bot(Config(quotes=False), None, None, llm=small, second_llm=ScriptedLLM([], model_id="same"))
    items = list(bot.answer(bot.analyse(ASKED), [CLOUD]))
    assert items[-1].refused and not any(isinstance(i, Escalation) for i in items)


def test_a_bot_given_one_reader_has_no_second_and_none_turns_it_off(tmp_path):
    bot = Bot(Config(), None, None, llm=ScriptedLLM([]))
    assert bot.second_llm is None  # its own llm, no second given: nothing loaded from config
    assert Bot(Config(second_model="none", model="m"), None, None).second_llm is None
    assert Bot(Config(second_model="m", model="m"), None, None).second_llm is None
    assert [Config(second_model=n, model="m").second_reader for n in ("Off", " ", "m", " big ")] == \
        [None, None, None, "big"]


def test_quotes_that_answer_keep_the_small_readers_answer_standing():
    """An unsupported draft is dropped, but the sources' own sentences (shown first as the
    evidence) still answer: nothing is refused, so the larger reader is not asked."""
    small = ScriptedLLM(["The weather will be fine [1]."], model_id="small")
    large = ScriptedLLM(["He was replaced by Eddie Wu [1]."], model_id="large")
    bot = Bot(Config(), None, None, llm=small, second_llm=large)
    items = list(bot.answer(bot.analyse(ASKED), [CLOUD]))
    assert isinstance(items[0], Evidence) and sum(isinstance(i, Evidence) for i in items) == 1
    assert not items[-1].refused and "He was replaced by Eddie Wu" in items[-1].text and large.calls == []
