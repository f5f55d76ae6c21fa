"""The benchmark's only calls into the bot's answering internals.

Every other module of ``bench`` uses the bot through its public pieces (``Bot.ingest``,
``Bot.stream``, ``Bot.ask``, ``Store``, ``Retriever``, ...). The steps *inside* answering
(the analysed question, retrieval for an answer, the evidence gate, prompt building) are
reached only from here, so a change to that API is absorbed by this one file:
    bot.analyse(question) -> Query
    bot.retrieve(query, k) -> SearchResult (.passages, .timings)
    rag.gate.evidence_gate(query, passages) -> reason ("" = may answer)
    bot.prompt(query, passages) -> Prompt (.messages, .passages, .dropped, .n_tokens)
Each function does what ``Bot.stream`` does for the same step, so the benchmark sees what the
bot sees.
"""
from __future__ import annotations


def search_query(question: str):
    """The ``Query`` that ``Retriever.search`` takes for ``question``, analysed without the model
    (no translation: the retrieval section times the search of the question as asked). Built
    before timing, so only the search itself is timed."""
    from rag.query import analyse

    return analyse(question, llm_of=None, translated=False)


def gate_passes(bot, question: str) -> bool:
    """True when the bot would call the LLM for ``question`` (the evidence gate lets it through)."""
    from rag.gate import evidence_gate

    query = bot.analyse(question)
    return not evidence_gate(query, bot.retrieve(query).passages)


def prompt_for(bot, question: str) -> tuple[str, list[str]]:
    """The prompt text the bot's LLM gets for ``question``, rendered by the bot's own model
    (the raw llama.cpp side is given exactly this text), and extra stop strings (none: the
    ChatML end markers in ``harness.STOPS`` are the template's own)."""
    query = bot.analyse(question)
    return bot.llm.render(bot.prompt(query, bot.retrieve(query).passages).messages), []
