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
