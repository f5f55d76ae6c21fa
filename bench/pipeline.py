"""The benchmark's only calls into the bot's answering internals.

Every other module of ``bench`` uses the bot through its public pieces (``Bot.ingest``,
``Bot.stream``, ``Bot.ask``, ``Store``, ``Retriever``, ...). The steps *inside* answering
(what a question becomes before retrieval, retrieval for an answer, the evidence gate, prompt
building) are reached only from here, so a change to that API is absorbed by this one file.

Written against today's API:
    bot.retrieve(question, k) -> (lang, english, passages, timings)
    bot.build_prompt(question, passages, lang, english) -> (messages, kept, dropped, n_tokens)
    rag.answer.evidence_gate(question, passages) -> reason ("" = may answer)
    Retriever.search(question, k) -> SearchResult (.passages, .timings)
Each function does what ``Bot.stream`` does for the same step, so the benchmark sees what the
bot sees.
"""
from __future__ import annotations


def search_query(question: str):
    """What ``Retriever.search`` takes for ``question`` (today the question string itself). The
    retrieval section builds these before timing, so only the search itself is timed."""
    return question


def gate_passes(bot, question: str) -> bool:
    """True when the bot would call the LLM for ``question`` (the evidence gate lets it through;
    as in ``Bot.stream``, a translated question is not gated)."""
    from rag.answer import evidence_gate

    _lang, english, passages, _timings = bot.retrieve(question)
    return bool(english) or not evidence_gate(question, passages)


def prompt_for(bot, question: str) -> tuple[str, list[str]]:
    """The prompt text the bot's LLM gets for ``question`` and its stop strings, rendered by the
    bot's own ``LocalLLM.render`` (the raw llama.cpp side is given exactly this text)."""
    lang, english, passages, _timings = bot.retrieve(question)
    messages, _kept, _dropped, _n_tokens = bot.build_prompt(question, passages, lang, english)
    return bot.llm.render(messages)
