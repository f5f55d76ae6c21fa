"""Question -> ``Query``: the one analysis of a question that every later stage reads.

Steps: a follow-up is condensed with the conversation into a standalone question (model);
its language is detected; a question not in English gets an English translation (model) for
retrieval and the checks, minus any number, date or name the translation invented; the names,
numbers, terms, expected answer type and yes/no form are read off once. This module neither
retrieves nor answers.

Example: analyse("When did Tongyi Qianwen open to the public?", llm) ->
Query(language="en", english=None, expected="date", names={"tongyi", "qianwen"}, ...)
"""
from __future__ import annotations

import re

from . import text as tx, when
from .types import LLM, Query, complete

CONDENSE_PROMPT = (
    "Rewrite the user's last question so that it can be understood without the conversation: "
    "replace pronouns and references with the names they refer to. Keep the question's language. "
    "Reply with the rewritten question only."
)
TRANSLATE_PROMPT = ("Translate the user's question into English. Do not answer it. Keep names and "
                    "numbers. Reply with the English question only.")
# two worked examples (no facts of any corpus in them): without them the 0.5B model often
# answers the question instead of translating it
TRANSLATE_EXAMPLES = [
    {"role": "user", "content": "Chi ha fondato la società e perché ha lasciato l'incarico?"},
    {"role": "assistant", "content": "Who founded the company and why did they leave the post?"},
    {"role": "user", "content": "这家公司的总部在哪里？它的首席执行官是谁？"},
    {"role": "assistant", "content": "Where is this company's headquarters? Who is its chief executive?"},
]
HISTORY_TURNS = 3  # conversation turns the condenser reads: a follow-up refers to recent ones
MIN_REWRITE_CHARS, MAX_REWRITE_CHARS = 3, 500  # a model reply outside these is no question
MAX_CJK_SHARE = 0.25  # a "translation" more than a quarter Chinese characters is not English


def analyse(question: str, llm_of, history: list[tuple[str, str]] | None = None,
            translated: bool = True, as_of=None) -> Query:
    """The ``Query`` for ``question`` (already checked for length). ``llm_of()`` returns the
    model, and is called only when one is needed (a follow-up, or a question not in English and
    ``translated``). ``as_of`` (a date, "YYYY-MM-DD" or None = today) and the question's own
    time words make its ``when`` (``rag.when.resolve``)."""
    text = condense(llm_of(), history, question) if history else question
    language = tx.language_of(text)
    english = translate(llm_of(), text) if translated and language not in ("en", "und") else None
    asked = english or text
    return Query(text=text, language=language, english=english,
                 names=frozenset(tx.names(asked)), numbers=frozenset(tx.numbers(asked)),
                 terms=frozenset(tx.terms(asked)), expected=tx.expected_type(asked),
                 yes_no=bool(tx.YES_NO.match(asked)), original=question,
                 when=when.resolve(text, as_of, also=english))


def _first_line(reply: str) -> str:
    return reply.strip().split("\n")[0].strip().strip('"')


def condense(llm: LLM, history: list[tuple[str, str]], question: str) -> str:
    """A follow-up ("and who replaced him?") rewritten as a standalone question."""
    turns = "\n".join(f"User: {q}\nAssistant: {tx.strip_markers(a)}" for q, a in history[-HISTORY_TURNS:])
    messages = [{"role": "system", "content": CONDENSE_PROMPT},
                {"role": "user", "content": f"Conversation:\n{turns}\n\nLast question: {question}\n"
                                            "Rewritten question:"}]
    out = _first_line(complete(llm, messages, max_tokens=64).text)
    return out if MIN_REWRITE_CHARS <= len(out) <= MAX_REWRITE_CHARS else question


def translate(llm: LLM, question: str) -> str:
    """English version of a question in another language, for retrieval and checks."""
    messages = [{"role": "system", "content": TRANSLATE_PROMPT}, *TRANSLATE_EXAMPLES,
                {"role": "user", "content": question}]
    out = _first_line(complete(llm, messages, max_tokens=80).text)
    if (not MIN_REWRITE_CHARS <= len(out) <= MAX_REWRITE_CHARS
            or len(tx.CJK.findall(out)) > len(out) * MAX_CJK_SHARE):
        return question  # not a translation (still Chinese, or empty)
    return faithful(question, out)


def faithful(original: str, translation: str) -> str:
    """The translation without the numbers, dates and (for Latin-script questions) names that
    the original does not contain: a small model's translation invents them ("From January 1,
    2023, ..." for a question that names no date), and the checks would then demand them."""
    o_nums, o_norm = tx.numbers(original), tx.normalize(original)
    latin = not tx.CJK.search(original)

    def keep(m: re.Match) -> str:
        w = m.group()
        if w.casefold() in tx.MONTH_NUMBERS:
            return w if tx.MONTH_NUMBERS[w.casefold()] in o_nums else ""
        if w[0].isdigit():
            return w if w.replace(",", "") in o_nums else ""
        if latin and m.start() > 0 and w[0].isupper() and w.casefold() not in o_norm:
            return ""
        return w

    out = tx.TOKEN.sub(keep, translation)
    out = re.sub(r"(?:\s*,)+", ",", re.sub(r"\s+([,.?])", r"\1", out))  # "1, 2023," -> ","
    return " ".join(out.split())
