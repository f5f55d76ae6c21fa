"""HTML for the chat UI (``rag_ui.app``): conversation, sources, details and corpus views.

Every string that comes from an article, an upload, the model or the user goes through
``html.escape`` here, so ``<script>`` in an article shows as text and runs nothing. The only
markup in the output is this module's own (chips, marks, tables); the click behaviour of the
chips lives in ``CHAT_JS``. This module neither retrieves nor prompts, touches no files and
imports no gradio. Citation markers are ``rag.text.MARKER``'s ("[1]", grouped "[1, 3]").

Example: ``answer_html("Opened on 13 September [1].", {1})`` ->
``'Opened on 13 September <button class="cite-chip" ...>1</button>.'``
"""
from __future__ import annotations

import re
from html import escape
from typing import Callable, Iterable

from rag.text import MARKER, markers

NOT_IN_SOURCES = "Not in the sources"
MAX_SOURCE_TURNS = 20  # older turns' source sections are dropped from the panel


def esc(value) -> str:
    return escape("" if value is None else str(value), quote=True)


# -- conversation -------------------------------------------------------------------------
def _chip(n: int, turn: int) -> str:
    return (f'<button type="button" class="cite-chip" data-turn="{turn}" data-n="{n}" '
            f'title="Show source {n}">{n}</button>')


def answer_html(text: str, numbers: Iterable[int], turn: int = 0) -> str:
    """Escaped answer text with each known citation number of a marker turned into a chip.

    A grouped marker "[1, 3]" gives one chip per known number; numbers without a citation
    stay as text ("[7]"), and a marker with no known number is left as it is.
    """
    known = set(numbers)
    out, pos = [], 0
    for m in MARKER.finditer(text):
        ns = markers(m.group(0))
        if not any(n in known for n in ns):
            continue
        bracket = m.start() + m.group(0).index("[")  # MARKER also takes the spaces before "["
        out.append(esc(text[pos:bracket]))
        out.append("".join(_chip(n, turn) if n in known else esc(f"[{n}]") for n in ns))
        pos = m.end()
    out.append(esc(text[pos:]))
    return "".join(out)


def _flagged_html(flagged: list[str]) -> str:
    if not flagged:
        return ""
    items = "".join(f'<li class="flagged">{esc(s)}</li>' for s in flagged)
    return ('<div class="flagged-list"><span class="label">Removed: not supported by the '
            f'sources</span><ul>{items}</ul></div>')


def _asked_html(turn: dict) -> str:
    a = turn.get("answer")
    if a is None or " ".join(a.question.split()) == " ".join(turn["question"].split()):
        return ""
    return f'<div class="asked">Searched for: {esc(a.question)}</div>'


def bot_message_html(i: int, turn: dict) -> str:
    a = turn.get("answer")
    if turn.get("error"):
        return (f'<div class="msg bot error" role="alert"><span class="label">Error</span>'
                f'<div class="body">{esc(turn["error"])}</div></div>')
    if a is None:
        draft = turn.get("draft", "")
        ev = turn.get("evidence")
        evidence = (f'<div class="evidence"><span class="label">From the sources</span><div class="evidence-body">'
                    f'{answer_html(ev.text, [c.number for c in ev.citations], i)}</div></div>' if ev else "")
        body = (f'<div class="body">{esc(draft)}</div>' if draft
                else f'<div class="status">{esc(turn.get("status") or "Working…")}</div>')
        return (f'<div class="msg bot draft" aria-busy="true">{evidence}<span class="label">Draft, '
                f'being checked against the sources…</span>{body}</div>')
    if a.refused:
        why = f'<div class="why">Why: {esc(a.refusal_reason)}</div>' if a.refusal_reason else ""
        return (f'<div class="msg bot refusal"><span class="label">{NOT_IN_SOURCES}</span>'
                f'<div class="body">{esc(a.text)}</div>{why}{_asked_html(turn)}'
                f'{_flagged_html(a.flagged)}</div>')
    body = answer_html(a.text, [c.number for c in a.citations], i)
    return (f'<div class="msg bot answer"><div class="body">{body}</div>{_asked_html(turn)}'
            f'{_flagged_html(a.flagged)}</div>')


def chat_html(turns: list[dict]) -> str:
    if not turns:
        return ('<div class="rag-chat empty"><p class="hint">Ask a question about the articles. '
                'Answers cite their sources as numbered chips; click one to see the passage '
                'in its article.</p></div>')
    parts = []
    for i, t in enumerate(turns):
        parts.append(f'<div class="turn" data-turn="{i}"><div class="msg user"><div class="body">'
                     f'{esc(t["question"])}</div></div>{bot_message_html(i, t)}</div>')
    return '<div class="rag-chat">' + "".join(parts) + "</div>"


# -- sources --------------------------------------------------------------------------------
def _valid_span(s, e, n: int) -> bool:
    return isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= n


def marked_text(text: str, spans: list[tuple[int, int, int]]) -> str:
    """Escaped ``text`` with each (start, end, citation number) span in a ``<mark>``.

    Overlapping spans merge into one mark listing every number.
    Example: ``marked_text("ab cd", [(3, 5, 1)])`` -> ``'ab <mark class="cited" data-ns="1">cd</mark>'``
    """
    merged: list[list] = []
    for s, e, n in sorted(sp for sp in spans if _valid_span(sp[0], sp[1], len(text))):
        if merged and s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
            merged[-1][2].append(n)
        else:
            merged.append([s, e, [n]])
    out, pos = [], 0
    for s, e, ns in merged:
        out.append(esc(text[pos:s]))
        out.append(f'<mark class="cited" data-ns="{" ".join(map(str, sorted(set(ns))))}">'
                   f"{esc(text[s:e])}</mark>")
        pos = e
    out.append(esc(text[pos:]))
    return "".join(out)


def safe_url(url: str) -> str:
    """The URL if it is plain http(s), else "" (no javascript: links from metadata)."""
    u = (url or "").strip()
    return u if re.match(r"https?://[^\s\"'<>]+$", u, re.IGNORECASE) else ""


def sources_section_html(turn_index: int, question: str, citations: list,
                         document_text: Callable[[str], str | None]) -> str:
    """One turn's sources: a card per cited article, its full text with the quotes marked."""
    if not citations:
        return ""
    by_doc: dict[str, list] = {}
    for c in citations:
        by_doc.setdefault(c.doc_id, []).append(c)
    cards = []
    for doc_id, cs in by_doc.items():
        first = cs[0]
        ns = " ".join(str(c.number) for c in cs)
        meta = " · ".join(esc(x) for x in (first.publisher, first.date) if x)
        url = safe_url(first.url)
        link = (f' <a class="src-link" href="{esc(url)}" target="_blank" rel="noopener noreferrer">'
                f"open original</a>" if url else "")
        quotes = "".join(f'<blockquote class="quote" data-n="{c.number}"><span class="qn">[{c.number}]'
                         f"</span> {esc(c.quote)}" + (f' <span class="qpage">(p. {c.page})</span>'
                                                      if c.page else "") + "</blockquote>" for c in cs)
        text = document_text(doc_id)
        if text is None:
            full = '<div class="article-text missing">The article is no longer in the store.</div>'
        else:
            spans = []
            for c in cs:
                s, e = c.quote_start, c.quote_end
                if not _valid_span(s, e, len(text)):
                    s, e = c.start, c.end
                spans.append((s, e, c.number))
            full = f'<div class="article-text">{marked_text(text, spans)}</div>'
        chips = "".join(f'<span class="src-num">{c.number}</span>' for c in cs)
        cards.append(f'<article class="source-card" data-turn="{turn_index}" data-ns="{ns}" '
                     f'data-doc="{esc(doc_id)}"><header>{chips} <strong class="src-title">'
                     f'{esc(first.title or doc_id)}</strong><div class="src-meta">{meta}{link}'
                     f'<span class="src-id">{esc(doc_id)}</span></div></header>{quotes}{full}</article>')
    return (f'<section class="turn-sources" data-turn="{turn_index}"><h4 class="src-for">Sources '
            f'for: {esc(question)}</h4>{"".join(cards)}</section>')


def sources_html(turns: list[dict]) -> str:
    """Stored per-turn sections; only the latest turn with sources is shown until a chip of
    another turn is clicked."""
    sections = [(i, t["sources_html"]) for i, t in enumerate(turns) if t.get("sources_html")]
    sections = sections[-MAX_SOURCE_TURNS:]
    if not sections:
        return ('<div class="rag-sources empty"><p class="hint">Sources of the latest answer '
                'appear here.</p></div>')
    last = sections[-1][0]
    out = []
    for i, html in sections:
        out.append(html if i == last else html.replace('<section class="turn-sources"',
                                                       '<section hidden class="turn-sources"', 1))
    return '<div class="rag-sources">' + "".join(out) + "</div>"


# -- details --------------------------------------------------------------------------------
def _fmt(x, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return esc(x)


def details_html(answer) -> str:
    if answer is None:
        return '<div class="rag-details empty"><p class="hint">No answer yet.</p></div>'
    rows = []
    for p in answer.passages:
        snippet = " ".join(p.text.split())
        snippet = snippet[:400] + ("…" if len(snippet) > 400 else "")
        dup = ""
        if p.duplicates:
            dup = '<div class="dups">also in: ' + ", ".join(esc(d.get("doc_id", "")) for d in p.duplicates) + "</div>"
        rows.append(f"<tr><td>{p.rank}</td><td>{esc(p.title or p.doc_id)}<div class=\"src-id\">"
                    f"{esc(p.doc_id)} [{p.start}:{p.end}]</div></td><td>{_fmt(p.score, 4)}</td>"
                    f"<td>{_fmt(p.dense_score, 3)}</td><td>{_fmt(p.keyword_score, 2)}</td>"
                    f'<td class="snippet">{esc(snippet)}{dup}</td></tr>')
    timings = "".join(f"<tr><td>{esc(k)}</td><td>{v:.3f} s</td></tr>" if isinstance(v, (int, float))
                      else f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>"
                      for k, v in answer.timings.items())
    tokens = ", ".join(f"{esc(k)} {esc(v)}" for k, v in answer.tokens.items()) or "–"
    return (
        '<div class="rag-details">'
        f'<p><b>Question searched:</b> {esc(answer.question)}<br><b>Model:</b> {esc(answer.model)}'
        f"<br><b>Tokens:</b> {tokens}<br><b>Passages dropped to fit the context:</b> "
        f'<span class="dropped">{answer.dropped_passages}</span>'
        + (f"<br><b>Refusal reason:</b> {esc(answer.refusal_reason)}" if answer.refused else "")
        + (f"<br><b>Asked the larger model because the first draft failed:</b> {esc(answer.escalated)}"
           if answer.escalated else "")
        + "</p><h4>Retrieved passages</h4><table class=\"passages\"><thead><tr><th>#</th><th>Article</th>"
        "<th>fused</th><th>dense</th><th>BM25</th><th>Text</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table><h4>Timings</h4><table class=\"timings\"><tbody>"
        + timings + "</tbody></table></div>")


# -- corpus ---------------------------------------------------------------------------------
def corpus_table_html(per_document: dict) -> str:
    if not per_document:
        return '<div class="rag-corpus empty"><p class="hint">No articles yet: upload some.</p></div>'
    rows = "".join(
        f'<tr data-doc="{esc(d)}"><td class="doc-id">{esc(d)}</td><td>{esc(info.get("title"))}</td>'
        f'<td class="num">{esc(info.get("chunks"))}</td><td>{esc(info.get("date") or "–")}</td>'
        f'<td>{esc(info.get("language"))}</td><td>{esc(info.get("state"))}</td></tr>'
        for d, info in per_document.items())
    n_chunks = sum(int(i.get("chunks") or 0) for i in per_document.values())
    return (f'<div class="rag-corpus"><p>{len(per_document)} articles, {n_chunks} chunks</p>'
            '<table class="corpus"><thead><tr><th>Document</th><th>Title</th><th>Chunks</th>'
            f"<th>Date</th><th>Language</th><th>State</th></tr></thead><tbody>{rows}</tbody></table></div>")


def article_html(doc_id: str, info: dict, text: str) -> str:
    meta = " · ".join(esc(x) for x in (info.get("date"), info.get("language")) if x)
    return (f'<div class="article-view" data-doc="{esc(doc_id)}"><h4>{esc(info.get("title") or doc_id)}'
            f'</h4><div class="src-meta">{meta} <span class="src-id">{esc(doc_id)}</span></div>'
            f'<div class="article-text full">{esc(text)}</div></div>')


def message_html(text: str, kind: str = "info") -> str:
    return f'<div class="rag-status {esc(kind)}">{esc(text)}</div>'


# -- styling and behaviour ------------------------------------------------------------------
CSS = """
.rag-chat { display: flex; flex-direction: column; gap: .6rem; max-height: 62vh; overflow-y: auto; padding: .25rem; }
.rag-chat .hint, .rag-sources .hint, .rag-details .hint, .rag-corpus .hint { color: var(--body-text-color-subdued); }
.rag-chat .msg { border-radius: 10px; padding: .55rem .8rem; line-height: 1.5; white-space: pre-wrap; word-wrap: break-word; }
.rag-chat .msg.user { align-self: flex-end; background: var(--color-accent-soft); max-width: 85%; margin-left: auto; }
.rag-chat .msg.bot { background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary); max-width: 95%; }
.rag-chat .msg .label { display: block; font-size: .75rem; font-weight: 600; text-transform: uppercase; letter-spacing: .03em; margin-bottom: .2rem; }
.rag-chat .msg.draft { font-style: italic; opacity: .8; }
.rag-chat .msg.draft .label { color: var(--body-text-color-subdued); }
.rag-chat .msg.draft .evidence { font-style: normal; opacity: 1; margin-bottom: .5em;
  border-left: 3px solid #59a14f; padding-left: .5em; }
.rag-chat .msg.refusal { background: #fff7e6; border: 1px dashed #d48806; color: #5c3c00; }
.rag-chat .msg.refusal .label { color: #ad6800; }
.rag-chat .msg.error { background: #fff1f0; border: 1px solid #ff4d4f; color: #820014; }
.rag-chat .why, .rag-chat .asked { font-size: .8rem; opacity: .8; margin-top: .3rem; white-space: normal; }
.rag-chat .flagged-list { margin-top: .4rem; font-size: .85rem; white-space: normal; }
.rag-chat .flagged-list .label { color: #a8071a; }
.rag-chat .flagged-list ul { margin: 0; padding-left: 1.2rem; }
.rag-chat li.flagged { text-decoration: line-through; text-decoration-color: #cf1322; color: #8c8c8c; }
.cite-chip { display: inline-block; min-width: 1.5em; padding: 0 .35em; margin: 0 .1em; border-radius: 999px;
  border: 1px solid var(--color-accent); background: var(--color-accent-soft); color: var(--color-accent);
  font-size: .78em; font-weight: 700; line-height: 1.5; cursor: pointer; vertical-align: super; }
.cite-chip:hover, .cite-chip.active { background: var(--color-accent); color: white; }
.rag-sources { max-height: 78vh; overflow-y: auto; }
.rag-sources .src-for { margin: .2rem 0 .5rem; font-size: .85rem; color: var(--body-text-color-subdued); }
.source-card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: .6rem .7rem; margin-bottom: .7rem; }
.source-card.selected { border-color: var(--color-accent); box-shadow: 0 0 0 2px var(--color-accent-soft); }
.source-card .src-num { display: inline-block; min-width: 1.4em; text-align: center; border-radius: 999px; background: var(--color-accent); color: white; font-size: .75rem; font-weight: 700; margin-right: .2rem; }
.src-meta { font-size: .8rem; color: var(--body-text-color-subdued); }
.src-id { font-family: var(--font-mono); font-size: .72rem; margin-left: .4rem; opacity: .75; }
.source-card blockquote.quote { margin: .4rem 0; padding: .2rem .5rem; border-left: 3px solid var(--color-accent); font-size: .88rem; }
.article-text { position: relative; white-space: pre-wrap; max-height: 15em; overflow-y: auto; font-size: .85rem; line-height: 1.45;
  border-top: 1px solid var(--border-color-primary); margin-top: .4rem; padding-top: .4rem; }
.article-text.full { max-height: 50vh; }
.article-text mark.cited { background: #ffe58f; color: #222; padding: 0 .1em; border-radius: 3px; }
.article-text mark.cited.active { background: #ffc53d; outline: 2px solid #fa8c16; }
.rag-details table, .rag-corpus table { width: 100%; border-collapse: collapse; font-size: .82rem; }
.rag-details th, .rag-details td, .rag-corpus th, .rag-corpus td { border-bottom: 1px solid var(--border-color-primary); padding: .25rem .4rem; text-align: left; vertical-align: top; }
.rag-details td.snippet { max-width: 40em; }
.rag-corpus td.num { text-align: right; }
.rag-status { padding: .4rem .6rem; border-radius: 8px; white-space: pre-wrap; }
.rag-status.ok { background: #f6ffed; border: 1px solid #b7eb8f; }
.rag-status.error { background: #fff1f0; border: 1px solid #ffa39e; }
"""

# Runs once when the chat component mounts; the listener is delegated, so chips rendered later work.
CHAT_JS = """
const scrollDown = () => { const c = element.querySelector('.rag-chat'); if (c) c.scrollTop = c.scrollHeight; };
watch('value', scrollDown);
element.addEventListener('click', (ev) => {
  const chip = ev.target.closest('.cite-chip');
  if (!chip) return;
  ev.preventDefault();
  const turn = chip.dataset.turn, n = chip.dataset.n;
  const root = document.getElementById('rag-sources');
  if (!root || !/^[0-9]+$/.test(turn) || !/^[0-9]+$/.test(n)) return;
  document.querySelectorAll('.cite-chip.active').forEach(c => c.classList.remove('active'));
  chip.classList.add('active');
  root.querySelectorAll('.turn-sources').forEach(s => { s.hidden = s.dataset.turn !== turn; });
  root.querySelectorAll('.source-card.selected').forEach(c => c.classList.remove('selected'));
  root.querySelectorAll('mark.cited.active').forEach(m => m.classList.remove('active'));
  const card = root.querySelector('.turn-sources[data-turn="' + turn + '"] .source-card[data-ns~="' + n + '"]');
  if (!card) return;
  card.classList.add('selected');
  card.scrollIntoView({block: 'nearest'});
  const mark = card.querySelector('mark.cited[data-ns~="' + n + '"]');
  if (mark) {
    mark.classList.add('active');
    const box = mark.closest('.article-text');
    if (box) box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 3);
  }
});
"""

# After each render, scroll every article box to its first highlighted passage.
SOURCES_JS = """
watch('value', () => {
  element.querySelectorAll('.article-text').forEach(box => {
    const m = box.querySelector('mark.cited');
    if (m) box.scrollTop = Math.max(0, m.offsetTop - box.clientHeight / 3);
  });
});
"""
