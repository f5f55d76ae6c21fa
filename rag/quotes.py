"""Quote selection: the passage sentences that answer a question, chosen without the model.

A small model's draft often fails verification although the retrieved passages hold the
answer. The answer therefore also carries verbatim quotes (quote-then-answer): the sentences
of the given passages that cover most of the question's terms, a second and third quote only
when they cover parts of the question the first one leaves out (multi-part questions), and the
sentence that follows a quote when it qualifies the claim ("However, these rumors have yet to
be substantiated") or goes on about it ("He was replaced by ..."). Links and headings are not
quoted; a table row is quoted with its cells separated by semicolons.

A quote is offered only when it could answer the question:
  * coverage: it (with its passage's title) holds enough of the question's weighted terms;
  * answer type: it holds something of the kind the question asks for that the question
    itself lacks -- a number for "how many", a date for "when", a name for "who" or "where",
    a cause for "why" (``expected_type`` / ``has_expected``).

Example: for "From what date was Tongyi Qianwen open to the public?" the quote is
"... available for public and enterprise access throughout China starting on September 13th".
"""
from __future__ import annotations

import math
import re

from . import text as tx
from .grounding import best_sentence
from .types import Passage, Quote, Sentence


_MARKUP = re.compile(r"\]\(|https?://|^\s*#|\|\s*:?-{3,}")  # links, headings, table rules


def _candidates(passages: list[Passage]) -> list[tuple[int, int, int, str]]:
    """Prose sentences of the passages: (passage number, start, end, text)."""
    out = []
    for n, p in enumerate(passages, 1):
        for s, e in tx.sentence_spans(p.text):
            text = p.text[s:e].strip()
            if len(text) >= MIN_QUOTE_CHARS and not _MARKUP.search(text) and not tx.INSTRUCTION.search(text):
                out.append((n, s, e, text))
    return out


MIN_QUOTE_CHARS = 20  # shorter "sentences" are captions, bylines and list stubs
MIN_FIRST = 0.2  # weighted share of the question's terms the best quote must hold
MIN_FURTHER = 0.15  # ... that a further quote must add
MIN_COVERAGE = 0.35  # ... that all the quotes together must hold


def select_quotes(versions: dict[str, str], passages: list[Passage], max_quotes: int = 3) -> list[Quote]:
    """Up to ``max_quotes`` passage sentences that together answer the question.

    ``versions`` maps a language code to the question in that language (the asked question
    and, when it was not English, its English translation). A passage is compared with the
    version in its own language; failing one, with the first version's names and numbers only.
    """
    cands = _candidates(passages)
    versions = {lang: q for lang, q in versions.items() if q}
    if not cands or not versions:
        return []
    first = next(iter(versions))
    q_terms = {lang: tx.terms(q) for lang, q in versions.items()}
    q_keys = {lang: tx.names(q) | tx.numbers(q) for lang, q in versions.items()}
    cand_lang, cand_terms = [], []
    for i, (n, s, e, text) in enumerate(cands):
        p = passages[n - 1]
        lang = p.language if p.language in versions else first
        # a sentence says "it" or "he" for what the one before it (or the title) names
        before = cands[i - 1][3] if i and cands[i - 1][0] == n else ""
        near = tx.normalize(f"{p.title} {p.publisher} {before} {text}")
        t = tx.terms(text) | {k for k in q_keys[lang] if k in near}
        if p.language and p.language not in versions:  # another language: names and numbers only
            t = {x for x in t if x in q_keys[lang] or x.isdigit()}
        cand_lang.append(lang)
        cand_terms.append(t)
    for lang in q_terms:  # Chinese words left in a translation cannot match Latin-script text
        pool_text = "".join(c[3] for c, cl in zip(cands, cand_lang) if cl == lang)
        if not tx.CJK.search(pool_text):
            q_terms[lang] = {t for t in q_terms[lang] if not tx.CJK.search(t)}
    weight, total = {}, {}
    for lang, qt in q_terms.items():
        # rarer terms weigh more: a word every candidate shares says little about which answers
        pool = [ct for ct, cl in zip(cand_terms, cand_lang) if cl == lang] or cand_terms
        df = {t: sum(t in ct for ct in pool) for t in qt}
        weight[lang] = {t: math.log(1 + len(pool) / (1 + df[t])) + (0.5 if t in q_keys[lang] else 0.0)
                        for t in qt}
        total[lang] = sum(weight[lang].values()) or 1.0
    kinds = {lang: tx.expected_type(q) for lang, q in versions.items()}
    kind_lang = next((lang for lang, k in kinds.items() if k), first)

    def gain(i: int, covered: dict[str, set[str]]) -> float:
        lang = cand_lang[i]
        new = (q_terms[lang] & cand_terms[i]) - covered.get(lang, set())
        return sum(weight[lang][t] for t in new) / total[lang]

    chosen: list[int] = []
    covered: dict[str, set[str]] = {}
    while len(chosen) < max_quotes:
        best, best_gain = None, 0.0
        for i in range(len(cands)):
            if i in chosen:
                continue
            if not chosen and not tx.has_expected(kinds[kind_lang], cands[i][3], versions[kind_lang]):
                continue  # the first quote must hold what the question asks for
            g = gain(i, covered) - 0.01 * cands[i][0]  # prefer better-ranked passages on ties
            if g > best_gain:
                best, best_gain = i, g
        need = MIN_FIRST if not chosen else MIN_FURTHER
        if best is None or best_gain < need:
            break
        chosen.append(best)
        covered.setdefault(cand_lang[best], set()).update(q_terms[cand_lang[best]] & cand_terms[best])
    if sum(sum(weight[lang][t] for t in ts) / total[lang] for lang, ts in covered.items()) < MIN_COVERAGE:
        return []  # together the quotes leave most of the question unanswered
    quotes: list[Quote] = []

    def add(q: Quote) -> None:
        if all((q.passage, q.start) != (o.passage, o.start) for o in quotes):
            quotes.append(q)

    for i in chosen:
        n, s, e, text = cands[i]
        add(Quote(n, s, e, text))
        nxt = [c for c in cands if c[0] == n and c[1] >= e]
        if nxt and (tx.HEDGE.search(nxt[0][3][:80]) or tx.CONTINUES.match(nxt[0][3])):
            add(Quote(n, *nxt[0][1:]))
    return quotes


def qualifiers(claim: str, n: int, passage: Passage) -> list[Quote]:
    """The passage sentence behind ``claim`` and the one after it, when either calls the claim
    a rumour or unconfirmed: a drafted "it was trained on 10 trillion parameters" must not
    lose the source's "rumors suggest ... these rumors have yet to be substantiated"."""
    qs, qe = best_sentence(claim, passage.text)
    spans = [(s, e) for s, e in tx.sentence_spans(passage.text) if e > qs]
    out = []
    for s, e in spans[:2]:
        text = passage.text[s:e].strip()
        if tx.HEDGE.search(text) and not _MARKUP.search(text):
            out.append(Quote(n, s, e, text))
    if out and out[0].start != spans[0][0]:  # the hedge is in the next sentence: quote the claim too
        s, e = spans[0]
        out.insert(0, Quote(n, s, e, passage.text[s:e].strip()))
    return out


def introduce(sentences: list[Sentence], language: str, passages: list[Passage]) -> list[Sentence]:
    """An answer that opens with a verbatim quote in another language than the question's gets a
    lead in the asker's language ("来源原文（英文）：“...”"): the quote stays verbatim and cited,
    and the answer still addresses the asker in their language. Other answers are unchanged."""
    if not sentences or sentences[0].kind != "quote":
        return sentences
    first = sentences[0]
    source = passages[first.citations[0] - 1].language if first.citations else ""
    lead = tx.QUOTE_LEADS.get(language, {}).get(source)
    if not lead:
        return sentences
    return [Sentence(lead + first.text, first.citations, first.score, first.kind)] + sentences[1:]


REPEATED_BY_DRAFT = 0.8  # a quote whose content words a drafted sentence holds at this share says nothing new


def quote_sentences(quotes: list[Quote], drafted: list[Sentence]) -> list[Sentence]:
    """Quotes as answer sentences, minus repeats (of another quote, or by a drafted sentence)."""
    out, seen = [], set()
    for q in quotes:
        if (q.passage, q.start) in seen:
            continue
        seen.add((q.passage, q.start))
        q_words = tx.content_words(q.text)
        if any(q_words and len(q_words & tx.content_words(s.text)) >= REPEATED_BY_DRAFT * len(q_words)
               for s in drafted):
            continue
        body = q.text.strip()
        if body.startswith("|"):  # a table row: its cells
            body = "; ".join(c.strip() for c in body.strip("|").split("|") if c.strip())
        body = body.lstrip("•*- ").rstrip(".!?。！？;:")
        out.append(Sentence(f"“{body}”", [q.passage], 1.0, kind="quote"))
    return out
