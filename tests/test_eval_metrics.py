"""rag eval's citation_support_precision (issue 24 item 5): a citation counts when what it points at
supports the sentence citing it, gold article or not (ALCE's citation precision)."""
from __future__ import annotations

from rag.cite import make_citations, render_text
from rag.evaluate import citation_support, score
from rag.types import Answer, Passage, Sentence


def passage(n: int, doc: str, text: str) -> Passage:
    return Passage(rank=n, chunk_id=f"{doc}:{n}", doc_id=doc, text=text, start=0, end=len(text),
                   score=1.0, dense_score=None, keyword_score=None, language="en")


QUESTION = {"id": "q", "category": "single", "language": "en", "answerable": True,
            "question": "Which state's capital city is facing a water crisis?",
            "reference_answer": "Mississippi", "key_facts": [["Mississippi"]], "gold_sources": [["gold"]]}


def answer(sentences: list[Sentence], passages: list[Passage]) -> Answer:
    return Answer("q", render_text(sentences), make_citations(sentences, passages), passages, False,
                  sentences=sentences)


def test_a_citation_of_another_article_that_states_the_fact_counts():
    ps = [passage(1, "gold", "Jackson, the capital of Mississippi, has no safe water."),
          passage(2, "same_week", "Mississippi's capital Jackson is facing a water crisis after a plant failed."),
          passage(3, "unrelated", "The orchestra toured three countries last summer.")]
    a = answer([Sentence("Mississippi's capital is facing a water crisis", [2])], ps)
    s = score(QUESTION, a)
    assert s["citation_precision"] == 0.0  # not the gold article
    assert s["citation_support_precision"] == 1.0  # but it states what the sentence says
    a = answer([Sentence("Mississippi's capital is facing a water crisis", [2, 3])], ps)
    assert citation_support(QUESTION, a) == 0.5  # the orchestra passage supports nothing


def test_no_citation_no_score():
    a = Answer("q", "Mississippi.", [], [passage(1, "gold", "Mississippi.")], False, sentences=[])
    assert citation_support(QUESTION, a) is None


def test_the_refusal_score_is_judged_against_what_the_answer_or_the_withheld_draft_got_right():
    from rag.evaluate import aggregate, calibration

    ps = [passage(1, "gold", "Jackson, the capital of Mississippi, has no safe water.")]
    right = answer([Sentence("Mississippi's capital has no safe water", [1])], ps)
    right.confidence = {"p_correct": 0.9}
    withheld = Answer("q", "The sources do not contain the answer.", [], ps, True, "likely wrong",
                      draft="Mississippi's capital [1].", confidence={"p_correct": 0.2})
    wrong = Answer("q", "Jackson [1].", [], ps, False, draft="Jackson [1].", confidence={"p_correct": 0.6})
    rows = []
    for a in (right, withheld, wrong):
        s = score(QUESTION, a)
        rows.append({"scores": s, "latency_s": 1.0})
    assert [r["scores"]["_right"] for r in rows] == [1.0, 1.0, 0.0]  # the refused draft was right
    assert [r["scores"]["answer_correctness"] for r in rows] == [1.0, 0.0, 0.0]  # the metric is unchanged
    assert rows[1]["scores"]["false_refusal_rate"] == 1.0 and "truthfulness" in rows[2]["scores"]
    cal = calibration(rows)
    assert cal["n"] == 3 and cal["auroc"] == 0.5  # 0.9 > 0.6 but 0.2 < 0.6: one of two pairs
    assert aggregate(rows)["false_refusal_rate"] == round(1 / 3, 4)
    no_scores = [{"scores": score(QUESTION, answer([], ps)), "latency_s": 1.0}]
    assert calibration(no_scores) is None
