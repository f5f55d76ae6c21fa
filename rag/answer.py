"""Prompt, generation, citation parsing and verification, refusal.

Pipeline for one question, given ranked passages:
  1. evidence gate: no passage shares a name or enough words with the question -> refuse
     without calling the model;
  2. context budget: passages are numbered [1..n]; the lowest-ranked are dropped until the
     prompt, counted with the model's own tokenizer, leaves room for the answer;
  3. the model drafts an answer with [n] markers (fixed instructions first, so llama.cpp's
     prefix cache is reused across questions);
  4. verification, sentence by sentence: markers naming no given passage are removed; a
     sentence is kept only if a passage backs it (``grounding.support``), its citation moved to
     that passage if the model cited another; unsupported sentences are dropped and reported;
  5. refusal: the model's own refusal, or no verified sentence left, or the verified answer
     never touches the question's own names (a confident answer about something else).
This module does not retrieve; ``Bot`` hands it passages and an LLM.
"""
from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field

from . import grounding, quotes as quoting
from .chunking import sentence_spans
from .retrieve import Passage

REFUSAL_TEXT = "The sources do not contain the answer to this question."
REFUSAL_TOKEN = "NOT IN SOURCES"

SYSTEM_PROMPT = (
    "You answer questions about news articles. Use only the passages the user gives.\n"
    "Answer in one or two sentences that reuse the exact words of the passage, and put the "
    "passage number in square brackets after each sentence, like this: ... [2].\n"
    "If a passage calls a claim a rumour or unconfirmed, say so."
)


@dataclass
class Citation:
    number: int
    doc_id: str
    title: str
    url: str
    publisher: str
    date: str
    chunk_id: str
    start: int  # passage span in the document's cleaned text
    end: int
    quote: str  # the passage sentence that supports the claim
    quote_start: int  # span of the quote in the document's cleaned text
    quote_end: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Sentence:
    text: str
    citations: list[int]
    supported: bool
    score: float = 0.0
    kind: str = "answer"  # "answer": the model's verified sentence; "quote": a passage sentence


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation]
    passages: list[Passage]
    refused: bool
    refusal_reason: str = ""
    sentences: list[Sentence] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)  # draft sentences dropped as unsupported
    draft: str = ""  # the model's raw output
    dropped_passages: int = 0
    timings: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    model: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passages"] = [p.to_dict() for p in self.passages]
        return d


def build_messages(question: str, passages: list[Passage], texts: list[str] | None = None) -> list[dict]:
    """The chat messages; ``texts`` replaces the passages' text in the prompt (compacted)."""
    texts = texts or [p.text for p in passages]
    body = "\n\n".join(f"Passage [{i + 1}]: {' '.join(t.split())}" for i, t in enumerate(texts))
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"{body}\n\nQuestion: {question}\nAnswer:"}]


CONDENSE_PROMPT = (
    "Rewrite the user's last question so that it can be understood without the conversation: "
    "replace pronouns and references with the names they refer to. Keep the question's language. "
    "Reply with the rewritten question only."
)


def condense_question(llm, history: list[tuple[str, str]], question: str) -> str:
    turns = "\n".join(f"User: {q}\nAssistant: {grounding.strip_markers(a)}" for q, a in history[-3:])
    messages = [{"role": "system", "content": CONDENSE_PROMPT},
                {"role": "user", "content": f"Conversation:\n{turns}\n\nLast question: {question}\n"
                                            "Rewritten question:"}]
    out = llm.complete(messages, max_tokens=64).text.strip().split("\n")[0].strip().strip('"')
    return out if 3 <= len(out) <= 500 else question


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


def translate_question(llm, question: str) -> str:
    """English version of a question in another language, for retrieval and checks."""
    messages = [{"role": "system", "content": TRANSLATE_PROMPT}, *TRANSLATE_EXAMPLES,
                {"role": "user", "content": question}]
    out = llm.complete(messages, max_tokens=80).text.strip().split("\n")[0].strip().strip('"')
    if not 3 <= len(out) <= 500 or len(grounding.CJK.findall(out)) > len(out) / 4:
        return question  # not a translation (still Chinese, or empty)
    return faithful(question, out)


def faithful(original: str, translation: str) -> str:
    """The translation without the numbers, dates and (for Latin-script questions) names that
    the original does not contain: a small model's translation invents them ("From January 1,
    2023, ..." for a question that names no date), and the checks would then demand them."""
    o_nums, o_norm = grounding.numbers(original), grounding.normalize(original)
    latin = not grounding.CJK.search(original)

    def keep(m: re.Match) -> str:
        w = m.group()
        if w.casefold() in grounding.MONTH_NUMBERS:
            return w if grounding.MONTH_NUMBERS[w.casefold()] in o_nums else ""
        if w[0].isdigit():
            return w if w.replace(",", "") in o_nums else ""
        if latin and m.start() > 0 and w[0].isupper() and w.casefold() not in o_norm:
            return ""
        return w

    out = re.sub(r"\d+(?:[.,]\d+)*|[^\W\d_][\w'’-]*", keep, translation)
    out = re.sub(r"(?:\s*,)+", ",", re.sub(r"\s+([,.?])", r"\1", out))  # "1, 2023," -> ","
    return " ".join(out.split())


def compact(versions: dict[str, str], passage: Passage, budget: int, count_tokens) -> str:
    """The passage's sentences that share most terms with the question, in their own order,
    within ``budget`` tokens (at least the best one). Fewer prompt tokens: faster prefill."""
    sents = [passage.text[s:e] for s, e in sentence_spans(passage.text)]
    q_terms = set().union(*(quoting.terms(q) for q in versions.values()))
    scored = sorted(range(len(sents)), key=lambda i: (-len(q_terms & quoting.terms(sents[i])), i))
    keep, used = [], 0
    for i in scored:
        n = count_tokens(sents[i])
        if keep and used + n > budget:
            continue
        keep.append(i)
        used += n
    return " ... ".join(sents[i].strip() for i in sorted(keep))


def fit_context(llm, question: str, passages: list[Passage], max_answer_tokens: int,
                texts: list[str] | None = None):
    """Drop the lowest-ranked passages until the prompt leaves room for the answer."""
    kept = list(passages)
    texts = list(texts or [p.text for p in passages])
    while True:
        messages = build_messages(question, kept, texts[:len(kept)])
        prompt, _ = llm.render(messages) if hasattr(llm, "render") else ("".join(m["content"] for m in messages), [])
        n = llm.count_tokens(prompt)
        if n + max_answer_tokens <= llm.n_ctx:
            return messages, kept, len(passages) - len(kept), n
        if not kept:
            from .errors import RagError

            raise RagError(f"the question alone ({n} tokens) leaves no room for an answer in the "
                           f"model's context window ({llm.n_ctx} tokens); shorten it")
        kept.pop()


def evidence_gate(question: str, passages: list[Passage]) -> str:
    """A reason to refuse before generation, or "" when the passages may hold an answer."""
    if not passages:
        return "no passage was retrieved"
    q_names = grounding.names(question) | grounding.numbers(question)
    q_words = grounding.content_words(question)
    for p in passages:
        text = grounding.normalize(p.text)
        if any(n in text for n in q_names):
            return ""
        if q_words and len(q_words & grounding.content_words(p.text)) / len(q_words) >= 0.34:
            return ""
        if p.dense_score is not None and p.dense_score >= 0.5:
            return ""
    return "no retrieved passage mentions the question's names or enough of its words"


def is_model_refusal(draft: str) -> bool:
    d = grounding.normalize(draft)
    if REFUSAL_TOKEN.casefold() in d:
        return True
    return bool(re.search(r"(passages|sources|text|articles?) (do|does) not (contain|mention|say|provide|answer)"
                          r"|not (mentioned|provided|stated|specified) in the (passages|sources|text)"
                          r"|(cannot|can't|unable to) (answer|find|determine)", d))


def verify(draft: str, question: str, passages: list[Passage], same_language) -> tuple[list[Sentence], list[str]]:
    """Keep the draft's sentences that a given passage supports, re-pointing citations."""
    kept, flagged = [], []
    for raw in grounding.split_sentences(draft):
        plain = grounding.strip_markers(raw)
        if not re.search(r"[^\W_]", plain) or is_model_refusal(plain):
            continue  # nothing but markers or punctuation ("[2] [2] [2] ...")
        if plain.rstrip().endswith(("?", "？")):  # an echoed question is not an answer
            flagged.append(plain)
            continue
        cited = [n for n in grounding.markers(raw) if 1 <= n <= len(passages)]
        checks = {}
        for n in range(1, len(passages) + 1):
            p = passages[n - 1]  # the title is part of what a passage says ("THE DECODER says ...")
            checks[n] = grounding.support(plain, f"{p.title}\n{p.text}", same_language(p))
        good_cited = [n for n in cited if checks[n].supported]
        if good_cited:
            kept.append(Sentence(plain, good_cited, True, max(checks[n].score for n in good_cited)))
            continue
        best = max(checks, key=lambda n: (checks[n].supported, checks[n].score, -n)) if checks else None
        if best is not None and checks[best].supported:
            kept.append(Sentence(plain, [best], True, checks[best].score))
        else:
            flagged.append(plain)
    return kept, flagged


MIN_QUESTION_WORDS = 0.34  # share of the question's content words the evidence must hold


def answers_question(question: str, sentences: list[Sentence], passages: list[Passage],
                     same_language, words: bool = True) -> bool:
    """The question's numbers, (all but one in three of) its names and a third of its content
    words must appear near the evidence (the cited sentence, 300 characters around it, the
    passage's title and publisher).

    Catches a confident answer about something else: "Who is the CEO of OpenAI?" answered
    with a passage naming Alibaba's CEO shares "CEO" but not "OpenAI" with its evidence.
    """
    q_nums, q_names = grounding.numbers(question), grounding.names(question)
    # stemmed content words; not for a machine-translated question, whose wording is the model's,
    # nor for a yes/no question, whose words state the claim the evidence may contradict
    # ("Is he still in charge?" -- "he stepped down")
    yes_no = re.match(r"\s*(is|are|was|were|do|does|did|has|have|had|can|could|will|would|should)\b",
                      question, re.I)
    q_words = quoting.terms(question) - q_names - q_nums if words and not yes_no else set()
    if not q_nums and not q_names and not q_words:
        return True
    allowed_missing = max(0, (len(q_names) - 1) // 3)  # 1-3 names: none may be missing
    for s in sentences:
        for n in s.citations:
            p = passages[n - 1]
            if not same_language(p):
                return True  # names may be spelled differently across languages
            qs, qe = grounding.best_sentence(s.text, p.text)
            # the question may name the source ("according to THE DECODER")
            window = f"{p.title} {p.publisher} {p.text[max(0, qs - 300):qe + 300]}"
            w = grounding.normalize(window) + " " + grounding.normalize(s.text)
            w_nums = grounding.numbers(window) | grounding.numbers(s.text)
            # Chinese words cannot match a Latin-script window
            want = q_words if grounding.CJK.search(window) else {w for w in q_words if not grounding.CJK.search(w)}
            # the passage, not the answer sentence: a draft that echoes the question's words
            # ("Alibaba is headquartered in China") must not vouch for itself
            words_ok = len(want & quoting.terms(window)) >= MIN_QUESTION_WORDS * len(want)
            if q_nums <= w_nums and sum(n not in w for n in q_names) <= allowed_missing and words_ok:
                return True
    return False


def make_citations(sentences: list[Sentence], passages: list[Passage]) -> list[Citation]:
    out: dict[int, Citation] = {}
    for s in sentences:
        for n in s.citations:
            if n in out:
                continue
            p = passages[n - 1]
            qs, qe = grounding.best_sentence(s.text, p.text)
            out[n] = Citation(number=n, doc_id=p.doc_id, title=p.title, url=p.url,
                              publisher=p.publisher, date=p.date, chunk_id=p.chunk_id,
                              start=p.start, end=p.end, quote=p.text[qs:qe],
                              quote_start=p.start + qs, quote_end=p.start + qe)
    return [out[n] for n in sorted(out)]


def render_text(sentences: list[Sentence]) -> str:
    parts = []
    for s in sentences:
        body = s.text.rstrip()
        end = body[-1] if body and body[-1] in ".!?。！？" else "."
        body = body.rstrip(".!?。！？")
        parts.append(f"{body} " + "".join(f"[{n}]" for n in s.citations) + end)
    return " ".join(parts)


def question_versions(question: str, question_lang: str, english_question: str | None,
                      passages: list[Passage]) -> dict[str, str]:
    """The question by language, English first when there is a translation."""
    versions = {"en": english_question} if english_question else {}
    if question_lang in ("", "und"):  # too short to tell: compare it with every passage as is
        for p in passages:
            versions.setdefault(p.language or "en", question)
        versions.setdefault("en", question)
    else:
        versions.setdefault(question_lang, question)
    return versions


def quote_sentences(quotes: list[quoting.Quote], drafted: list[Sentence]) -> list[Sentence]:
    """Quotes as answer sentences, minus repeats (of another quote, or by a drafted sentence)."""
    out, seen = [], set()
    for q in quotes:
        if (q.passage, q.start) in seen:
            continue
        seen.add((q.passage, q.start))
        q_words = grounding.content_words(q.text)
        if any(q_words and len(q_words & grounding.content_words(s.text)) >= 0.8 * len(q_words)
               for s in drafted):
            continue
        body = q.text.strip()
        if body.startswith("|"):  # a table row: its cells
            body = "; ".join(c.strip() for c in body.strip("|").split("|") if c.strip())
        body = body.lstrip("•*- ").rstrip(".!?。！？;:")
        out.append(Sentence(f"“{body}”", [q.passage], True, 1.0, kind="quote"))
    return out


def finish(question: str, draft: str, passages: list[Passage], question_lang: str,
           gen_stats: dict, timings: dict, dropped: int, model_id: str,
           english_question: str | None = None, with_quotes: bool = True) -> Answer:
    def same_language(p: Passage) -> bool:
        return not question_lang or not p.language or p.language == question_lang or question_lang == "und"

    t0 = time.perf_counter()
    drafted, flagged = verify(draft, question, passages, same_language)
    asked = english_question or question
    quotes = quoting.select_quotes(question_versions(question, question_lang, english_question, passages),
                                   passages) if with_quotes else []
    if with_quotes:  # a drafted claim the source calls a rumour keeps the source's words
        quotes += [q for d in drafted for n in d.citations for q in quoting.qualifiers(d.text, n, passages[n - 1])]
    sentences = drafted + quote_sentences(quotes, drafted)
    reason = ""
    if is_model_refusal(draft) and not sentences:
        reason = "the model found no answer in the passages"
    elif not sentences:
        reason = "no sentence of the draft answer is supported by the passages"
    elif not answers_question(asked, sentences, passages,
                              same_language if not english_question else (lambda p: True),
                              words=not english_question):
        reason = "the supported sentences do not address the question's subject"
    elif not any(quoting.has_expected(quoting.expected_type(asked), s.text, asked) for s in sentences):
        reason = f"the supported sentences do not give the {quoting.expected_type(asked)} asked for"
    timings = {**timings, "verify_s": time.perf_counter() - t0}
    tokens = {"prompt": gen_stats.get("prompt_tokens", 0), "completion": gen_stats.get("completion_tokens", 0)}
    if reason:
        return Answer(question, REFUSAL_TEXT, [], passages, True, reason, [], flagged, draft,
                      dropped, timings, tokens, model_id)
    return Answer(question, render_text(sentences), make_citations(sentences, passages), passages,
                  False, "", sentences, flagged, draft, dropped, timings, tokens, model_id)


def refusal(question: str, passages: list[Passage], reason: str, timings: dict, model_id: str) -> Answer:
    return Answer(question, REFUSAL_TEXT, [], passages, True, reason, timings=timings, model=model_id)
