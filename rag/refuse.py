"""Refusal: when the verified sentences do not answer the question, say the sources lack it.

Reasons, in order: the model refused and nothing was verified; nothing was verified; then,
for a calibrated reader, the chance that the answer is right (``rag.confidence``) is below the
threshold; for any other, the verified sentences never touch the question's subject
(``answers_question``) or none of them gives the kind of answer asked for (a date for "when",
a number for "how many"). The refusal is
a structured flag on the ``Answer`` (``refused``, ``refusal_reason``), never only prose.
This module does not generate or verify.
"""
from __future__ import annotations

from . import text as tx
from .grounding import best_sentence
from .confidence import Confidence
from .types import Answer, Passage, Query, Sentence

REFUSAL_TEXT = "The sources do not contain the answer to this question."
# the refusal in the question's language (rag.text.LANGUAGE_NAMES); others get the English one
REFUSAL_TEXTS = {"en": REFUSAL_TEXT, "zh": "来源中没有这个问题的答案。",
                 "it": "Le fonti non contengono la risposta a questa domanda."}
MIN_QUESTION_WORDS = 0.34  # share of the question's content words the evidence must hold (row L)
EVIDENCE_WINDOW = 300  # characters around the cited sentence that count as its context
NAMES_PER_MISSING = 3  # one name in three may be missing (1-3 names: none), docs/ablation.md row E


def answers_question(query: Query, sentences: list[Sentence], passages: list[Passage]) -> bool:
    """The question's numbers, (all but one in three of) its names and a third of its content
    words must appear near the evidence (the cited sentence, 300 characters around it, the
    passage's title and publisher).

    Catches a confident answer about something else: "Who is the CEO of OpenAI?" answered
    with a passage naming Alibaba's CEO shares "CEO" but not "OpenAI" with its evidence.
    Not the words for a machine-translated question, whose wording is the model's, nor for a
    yes/no question, whose words state the claim the evidence may contradict ("Is he still in
    charge?" -- "he stepped down"); a translated question's passages all count as comparable.
    A passage in another language is held to the names and numbers when it is written in the
    same script (an Italian article naming "CEO Daniel Zhang" does not answer who runs OpenAI),
    and to nothing in another script, where names are written differently.
    """
    translated = bool(query.english)
    q_nums, q_names = set(query.numbers), set(query.names)
    q_words = query.terms - q_names - q_nums if not translated and not query.yes_no else set()
    if not q_nums and not q_names and not q_words:
        return True
    allowed_missing = max(0, (len(q_names) - 1) // NAMES_PER_MISSING)
    for s in sentences:
        for n in s.citations:
            p = passages[n - 1]
            comparable = translated or query.same_language(p)  # its words can be compared
            if not comparable and bool(tx.CJK.search(p.text)) != bool(tx.CJK.search(query.asked)):
                return True  # another script: names are written differently (阿里巴巴, Alibaba)
            qs, qe = best_sentence(s.text, p.text)
            # the question may name the source ("according to THE DECODER")
            window = f"{p.title} {p.publisher} {p.text[max(0, qs - EVIDENCE_WINDOW):qe + EVIDENCE_WINDOW]}"
            w = tx.normalize(window) + " " + tx.normalize(s.text)
            w_nums = tx.numbers(window) | tx.numbers(s.text)
            # Chinese words cannot match a Latin-script window
            want = q_words if tx.CJK.search(window) else {x for x in q_words if not tx.CJK.search(x)}
            # the passage, not the answer sentence: a draft that echoes the question's words
            # ("Alibaba is headquartered in China") must not vouch for itself
            # (words only within a language; across Latin-script languages names and numbers
            # still compare: "OpenAI" is "OpenAI" in an Italian article)
            words_ok = not comparable or len(want & tx.terms(window)) >= MIN_QUESTION_WORDS * len(want)
            if q_nums <= w_nums and sum(x not in w for x in q_names) <= allowed_missing and words_ok:
                return True
    return False


def signals(query: Query, sentences: list[Sentence], passages: list[Passage]) -> dict:
    """The word rules' verdicts on verified ``sentences``: does their evidence address the
    question's subject (``answers_question``), does one give the kind of answer asked for (a
    date for "when", a number for "how many"), does one say more than the question."""
    return {"addresses_subject": answers_question(query, sentences, passages),
            "gives_kind_asked": any(tx.has_expected(query.expected, s.text, query.asked) for s in sentences),
            "adds_to_question": adds_to_question(query, sentences)}


def adds_to_question(query: Query, sentences: list[Sentence]) -> bool:
    """Does a sentence say anything the question did not? A draft that restates the question
    ("A massive reptile was recently caught in Florida [1]" for "A massive reptile was caught
    in Florida. What kind?") is supported by its passage and answers nothing (issue 24)."""
    return any(not query.restated_by(s.text) for s in sentences)


def refusal_reason(query: Query, model_refused: bool, sentences: list[Sentence], rules: dict,
                   confidence: Confidence | None = None, min_confidence: float = 0.5) -> str:
    """Why the answer must be a refusal, or "" when the sentences answer the question.

    With nothing verified there is nothing to show. Otherwise, when the reader is calibrated
    (``confidence.p_correct``), that probability decides, the word ``rules`` (``signals``)
    being among its inputs; without one, the rules decide alone."""
    if model_refused and not sentences:
        return "the model found no answer in the passages"
    if not sentences:
        return "no sentence of the draft answer is supported by the passages"
    if min_confidence <= 0:  # RAG_MIN_CONFIDENCE=0: answer whenever a sentence is verified
        return ""
    failed = [RULE_REASONS[k].format(kind=query.expected) for k, ok in rules.items() if not ok]
    if confidence is not None and confidence.p_correct is not None:
        if confidence.p_correct >= min_confidence:
            return ""
        return (f"the answer is likely wrong: P(correct) {confidence.p_correct:.2f} is below "
                f"{min_confidence:.2f} (the model's own check gave P(yes) {confidence.p_yes:.2f}"
                + "".join(f"; {f}" for f in failed) + ")")
    return failed[0] if failed else ""


RULE_REASONS = {"addresses_subject": "the supported sentences do not address the question's subject",
                "gives_kind_asked": "the supported sentences do not give the {kind} asked for",
                "adds_to_question": "the supported sentences only repeat the question"}


def refusal(question: str, passages: list[Passage], reason: str, language: str = "en", **fields) -> Answer:
    return Answer(question, REFUSAL_TEXTS.get(language, REFUSAL_TEXT), [], passages, True, reason, **fields)
