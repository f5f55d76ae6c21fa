"""Record, then replay, every model call of a question set: a check that a change to the code
changes no answer (the model's replies are replayed, so only the pipeline around it runs).

    python -m bench.replay record eval/questions.jsonl /tmp/before          # real model
    ... change the code ...
    python -m bench.replay replay eval/questions.jsonl /tmp/after /tmp/before/calls.json
    cmp /tmp/before/answers.jsonl /tmp/after/answers.jsonl

A prompt the recording never saw stops the replay with that prompt (the change altered what the
model is asked). ``answers.jsonl`` holds per question the answer text, refusal and reason,
flagged sentences, citations (document, chunk, quote span and text) and retrieved passages.
Run both with a fresh RAG_HOME (or RAG_STORE_DIR) so each ingests the same corpus.
"""
import hashlib
import json
import sys
from pathlib import Path


def key(messages, max_tokens):
    return hashlib.sha256(json.dumps([messages, max_tokens], ensure_ascii=False, sort_keys=True).encode()).hexdigest()


class Wrap:
    def __init__(self, real, calls, mode):
        self.real, self.calls, self.mode = real, calls, mode
        self.model_id, self.n_ctx = real.model_id, real.n_ctx

    def __getattr__(self, name):
        return getattr(self.real, name)

    def stream(self, messages, max_tokens, stats):
        k = key(messages, max_tokens)
        if self.mode == "replay":
            if k not in self.calls:
                raise SystemExit(f"prompt not recorded: {json.dumps(messages, ensure_ascii=False)[:2000]}")
            text = self.calls[k]
            stats.update(prompt_tokens=0, completion_tokens=0, prompt_s=0.0, generate_s=0.0)
            yield text
            return
        pieces = []
        for p in self.real.stream(messages, max_tokens, stats):
            pieces.append(p)
            yield p
        self.calls[k] = "".join(pieces)

    def complete(self, messages, max_tokens):
        try:
            from rag.types import Generation
        except ImportError:  # code from before rag/types.py
            from rag.models import Generation
        stats = {}
        text = "".join(self.stream(messages, max_tokens, stats))
        return Generation(text=text, **{k: stats.get(k, 0) for k in
                                        ("prompt_tokens", "completion_tokens", "prompt_s", "generate_s")})


def main():
    mode, qfile, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    calls = json.loads(Path(sys.argv[4]).read_text()) if mode == "replay" else {}
    from rag.bot import Bot
    from rag.config import Config
    cfg = Config.from_env()
    bot = Bot.from_config(cfg)
    if bot.store.count() == 0:
        bot.ingest()
    real = bot.llm
    bot._llm = Wrap(real, calls, mode)
    with open(out / "answers.jsonl", "w") as f:
        for line in qfile.read_text().splitlines():
            if not line.strip():
                continue
            q = json.loads(line)
            a = bot.ask(q["question"])
            f.write(json.dumps({"id": q["id"], "text": a.text, "refused": a.refused,
                                "reason": a.refusal_reason, "flagged": a.flagged,
                                "citations": [(c.number, c.doc_id, c.chunk_id, c.quote_start, c.quote_end, c.quote)
                                              for c in a.citations],
                                "passages": [(p.chunk_id, p.score, [d["doc_id"] for d in p.duplicates]) for p in a.passages]},
                               ensure_ascii=False) + "\n")
            print(q["id"], a.refused, a.text[:100], flush=True)
    if mode == "record":
        (out / "calls.json").write_text(json.dumps(calls, ensure_ascii=False))


if __name__ == "__main__":
    main()
