"""A scripted stand-in LLM: a real implementation of ``rag.types.LLM`` that replays given replies.

For fast tests of the pipeline's logic (gate, verification, refusal, citations, streaming)
and for replaying a recorded run: each call takes the next scripted reply (or asks a function
for it), streams it in word-sized pieces and reports token counts as the real backends do.
It does not imitate a model's judgement; the end-to-end tests use the real model.

    llm = ScriptedLLM(["Eddie Wu replaced him [1]."], yes=0.9)  # yes: the self-check's P(yes)
    bot = Bot(config, store, embedder, llm=llm)
"""
from __future__ import annotations

import re
from typing import Callable, Iterator

from .types import Generation, complete


class ScriptedLLM:  # implements rag.types.LLM
    def __init__(self, replies: list[str] | Callable[[list[dict]], str] = (), n_ctx: int = 4096,
                 model_id: str = "scripted",
                 yes: float | None | Callable[[list[dict]], float | None] = None):
        self._reply = replies if callable(replies) else None
        self._queue = [] if callable(replies) else list(replies)
        self.n_ctx = n_ctx
        self.model_id = model_id
        self.calls: list[list[dict]] = []  # every message list it was given, in order
        self._yes = yes  # what yes_probability answers (a number, None, or a function of the messages)
        self.checks: list[list[dict]] = []  # every message list yes_probability was given

    def enqueue(self, *replies: str) -> "ScriptedLLM":
        self._queue.extend(replies)
        return self

    def render(self, messages: list[dict]) -> str:
        return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages) + "<|assistant|>\n"

    def count_tokens(self, text: str) -> int:
        """Words and punctuation marks: close enough to a real tokenizer for budgeting logic."""
        return len(re.findall(r"\w+|[^\w\s]", text))

    def stream(self, messages: list[dict], max_tokens: int, stats: dict) -> Iterator[str]:
        self.calls.append(messages)
        if self._reply is not None:
            text = self._reply(messages)
        elif self._queue:
            text = self._queue.pop(0)
        else:
            raise AssertionError("ScriptedLLM: no scripted reply left for this call")
        pieces = re.findall(r"\S+\s*|\s+", text)
        for piece in pieces:
            yield piece
        stats.update(prompt_tokens=self.count_tokens(self.render(messages)),
                     completion_tokens=len(pieces), prompt_s=0.0, generate_s=0.0)

    def complete(self, messages: list[dict], max_tokens: int) -> Generation:
        return complete(self, messages, max_tokens)

    def yes_probability(self, messages: list[dict]) -> float | None:
        self.checks.append(messages)
        return self._yes(messages) if callable(self._yes) else self._yes
