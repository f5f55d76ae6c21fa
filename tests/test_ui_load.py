"""Load test of the chat UI (app.py -> rag_ui.app) through its own API, on real parts.

The real app runs as a subprocess on 127.0.0.1 with a temporary store, home and copy of the
bundled corpus, the real embedder and the real default model. ``gradio_client`` drives it: one
``Client`` is one session (its own session hash, so its own ``gr.State``). SESSIONS sessions
each ask two questions about the bundled articles from their own threads at the same time,
while another session uploads a new article through the upload endpoint, so ingestion runs
while the questions are being answered; that session then asks about the new article
(QUESTIONS questions in all, each call bounded by CALL_TIMEOUT_S).

Afterwards, with the app stopped:
1. no session saw another's questions or citations, in any streamed update: its chat holds
   exactly its own questions, in order, each with a final message, and its sources panel only
   sections for its own turns, each listing the citations of that turn's answer;
2. every answer cites only existing chunks: each cited document is in the store with the text
   the sources panel showed, each quote lies in a stored chunk of that document, and each
   retrieved passage in the details panel is a stored chunk (document and span);
3. the keyword index on disk is stamped with the store's settled generation and holds exactly
   the store's chunks; every document's chunk count matches its chunks; the upload is stored.
"""
from __future__ import annotations

import re
import threading
import time
from html import escape
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from conftest import _log_tail, running_app

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
CALL_TIMEOUT_S = 150  # one question or the upload; the model answers one question at a time

# Two questions per session, all answerable from the bundled articles; none is part of another.
SESSION_QUESTIONS = [
    ["When did Tongyi Qianwen open to the public?",
     "Which news agency reported that Alibaba had regulatory approval to mass-market its AI model?"],
    ["Who replaced Daniel Zhang as head of Alibaba's cloud division?",
     "Which two companies is Alibaba aiming to compete with in AI technology?"],
    ["What is the name of the AI image-generation service Alibaba launched?",
     "Which Qwen model does Alibaba plan to open-source?"],
    ["Who could use Tongyi Qianwen during its beta test phase?",
     "How long do organizations have to deal with objectionable content under China's AI rules?"],
]
SESSIONS = len(SESSION_QUESTIONS)

UPLOAD_NAME = "quillmoor_aerostat.txt"
UPLOAD_ID = "quillmoor_aerostat"
UPLOAD_FACT = "Brindle Heron"
UPLOAD_QUESTION = "What was the name of the first airship built by Quillmoor Aerostat Works?"
UPLOAD_TEXT = """Quillmoor Aerostat Works flies its first cargo airship
Quillmoor Aerostat Works, a small manufacturer of helium airships, was founded in 2016 in the
lakeside town of Onnerby by the engineer Ilse Varnhagen and the pilot Tomas Rekkeland.

The company's first airship, the Brindle Heron, made its maiden flight on 4 March 2024 over
Lake Onnerby. The Brindle Heron is 61 metres long, carries up to nine tonnes of cargo and
cruises at 95 kilometres per hour. Its envelope is made of a laminated polyester fabric that
the company weaves in its own mill on the northern shore of the lake.

Varnhagen said the Brindle Heron was designed for remote mining camps and island villages
that have no runway and no road. "A ship that needs only a mast and a flat field can reach
places a truck never will," she told reporters at the hangar after the flight.

The maiden flight lasted three hours and forty minutes. The crew of four flew a triangle over
the lake and the villages of Sarnholt and Veddby before landing at the company's mast field.
Local schools were given the day off so that children could watch the launch from the shore.

Quillmoor employs 212 people. Most of them work in the assembly hangar, a steel building 180
metres long that was once a shipyard. The company was financed by a regional development fund
and by Rekkeland's family, who had run a ferry line on the lake for three generations.

A second airship, the Grey Plover, is being assembled and is due to fly in the autumn of 2025.
The Grey Plover will be longer than the Brindle Heron and will carry up to fourteen tonnes.
The company has orders for six more ships from mining firms in the far north and from a
shipping company that serves the outer islands.

Aviation regulators certified the Brindle Heron for cargo flights in daylight only. Quillmoor
has applied for a night-flight certificate, which it expects to receive next year after a
series of test flights with instruments made by a supplier in Tampere.

The Brindle Heron is steered by four electric propellers mounted on short wings near the
gondola. Batteries charged on the ground supply the propellers during take-off and landing,
and a small diesel generator charges them in flight. Quillmoor says the ship burns about a
tenth of the fuel that a cargo helicopter needs for the same load over the same distance.

Residents of Onnerby have mixed feelings about the company. Many welcome the jobs it brought
back to the old shipyard, while others complain about the noise of the night shifts in the
hangar and about the traffic of lorries that deliver the steel for the frames.
"""
QUESTIONS = SESSIONS * 2 + 1
assert QUESTIONS <= 10


@pytest.fixture
def app(tmp_path):
    with running_app(tmp_path) as app:
        yield app


# -- reading the UI's HTML -------------------------------------------------------------------
def _parse_chat(html: str) -> list[dict]:
    turns = []
    for i, t in enumerate(BeautifulSoup(html, "html.parser").select("div.rag-chat > div.turn")):
        assert t["data-turn"] == str(i), html
        bot = t.select_one(".msg.bot")
        turns.append({"question": t.select_one(".msg.user .body").get_text(),
                      "kind": next((k for k in ("draft", "error", "refusal", "answer")
                                    if k in bot["class"]), "?"),
                      "text": bot.get_text(" ", strip=True),
                      "chips": [(c["data-turn"], int(c["data-n"])) for c in bot.select(".cite-chip")]})
    return turns


def _parse_sources(html: str) -> list[dict]:
    sections = []
    for s in BeautifulSoup(html, "html.parser").select("div.rag-sources > section.turn-sources"):
        cards = []
        for c in s.select("article.source-card"):
            quotes = {}
            for q in c.select("blockquote.quote"):
                n = int(q["data-n"])
                assert q.select_one(".qn").extract().get_text() == f"[{n}]"
                text = q.get_text()
                assert text.startswith(" "), text
                quotes[n] = text[1:]
            art = c.select_one(".article-text")
            cards.append({"turn": c["data-turn"], "doc": c["data-doc"],
                          "ns": [int(n) for n in c["data-ns"].split()], "quotes": quotes,
                          "missing": "missing" in art["class"], "article": art.get_text()})
        sections.append({"turn": int(s["data-turn"]), "heading": s.select_one("h4.src-for").get_text(),
                         "cards": cards})
    return sections


def _parse_passages(html: str) -> list[tuple[str, int, int]]:
    out = []
    for row in BeautifulSoup(html, "html.parser").select("table.passages tbody tr"):
        m = re.fullmatch(r"(.+) \[(\d+):(\d+)\]", row.select_one(".src-id").get_text())
        assert m, row
        out.append((m.group(1), int(m.group(2)), int(m.group(3))))
    return out


# -- the sessions ----------------------------------------------------------------------------
def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def _ask(client, question: str, rec: dict) -> None:
    t0 = time.monotonic()
    job = client.submit(question, api_name="/ask")
    try:
        out = job.result(timeout=CALL_TIMEOUT_S)
    except BaseException:
        job.cancel()
        raise
    rec["asked"].append(question)
    rec["spans"].append((t0, time.monotonic()))
    rec["updates"].extend(job.outputs())  # every streamed update, the final one last
    rec["final"] = out


def _session(url: str, questions: list[str], barrier: threading.Barrier, rec: dict) -> None:
    try:
        client = _client(url)
        barrier.wait(timeout=60)
        for q in questions:
            _ask(client, q, rec)
    except BaseException as e:  # reported by the test
        rec["error"] = e


def _uploader(url: str, path: Path, barrier: threading.Barrier, rec: dict) -> None:
    try:
        from gradio_client import handle_file

        client = _client(url)
        barrier.wait(timeout=60)
        t0 = time.monotonic()
        job = client.submit([handle_file(str(path))], api_name="/upload")
        try:
            rec["upload"] = job.result(timeout=CALL_TIMEOUT_S)
        except BaseException:
            job.cancel()
            raise
        rec["upload_span"] = (t0, time.monotonic())
        _ask(client, UPLOAD_QUESTION, rec)
    except BaseException as e:
        rec["error"] = e


def _new_rec() -> dict:
    return {"asked": [], "spans": [], "updates": [], "final": None, "error": None}


@pytest.mark.slow
def test_sessions_ask_while_an_upload_is_ingested(app, tmp_path):
    from rag.store import KeywordIndex, Store

    article = tmp_path / "upload" / UPLOAD_NAME
    article.parent.mkdir()
    article.write_text(UPLOAD_TEXT, encoding="utf-8")
    assert 2_000 < article.stat().st_size < 5_000

    recs = [_new_rec() for _ in range(SESSIONS)]
    up = _new_rec()
    barrier = threading.Barrier(SESSIONS + 1)
    threads = [threading.Thread(target=_session, args=(app.url, qs, barrier, rec), daemon=True)
               for qs, rec in zip(SESSION_QUESTIONS, recs)]
    threads.append(threading.Thread(target=_uploader, args=(app.url, article, barrier, up), daemon=True))
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:  # each call is bounded; this bounds the whole run
        t.join(timeout=60 + CALL_TIMEOUT_S * QUESTIONS - (time.monotonic() - started))
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), f"sessions still running after {elapsed:.0f}s"
    errors = [(i, r["error"]) for i, r in enumerate(recs + [up]) if r["error"] is not None]
    assert not errors, f"{errors!r}\n{_log_tail(app.log)}"
    assert app.proc.poll() is None, _log_tail(app.log)
    app.stop()  # the store is read below by this process alone

    # The upload was ingested while questions were being answered.
    upload_status = BeautifulSoup(up["upload"][0], "html.parser").select_one(".rag-status")
    assert upload_status is not None and "ok" in upload_status["class"], up["upload"][0]
    assert f"added: {UPLOAD_ID}" in upload_status.get_text(), upload_status.get_text()
    u0, u1 = up["upload_span"]
    spans = [s for r in recs for s in r["spans"]]
    assert len(spans) == SESSIONS * 2
    assert any(q0 < u1 and u0 < q1 for q0, q1 in spans), (u0, u1, spans)

    # 1. Each session saw only its own questions and citations, in every streamed update.
    all_questions = [q for qs in SESSION_QUESTIONS for q in qs] + [UPLOAD_QUESTION]
    assert len(set(all_questions)) == len(all_questions)
    assert not any(a != b and a in b for a in all_questions for b in all_questions)
    sessions = [(qs, r) for qs, r in zip(SESSION_QUESTIONS, recs)] + [([UPLOAD_QUESTION], up)]
    cited: list[tuple[str, dict]] = []  # (session, card) of every sources card seen
    passages: list[tuple[str, int, int]] = []
    answers = 0
    for s, (mine, rec) in enumerate(sessions):
        assert rec["asked"] == mine
        others = [q for q in all_questions if q not in mine]
        assert len(rec["updates"]) >= len(mine), rec["updates"]
        for chat, sources, details, box in rec["updates"]:
            for html in (chat, sources, details):
                leaked = [q for q in others if escape(q) in html or q in html]
                assert not leaked, f"session {s} saw {leaked!r}:\n{html}"
            turns = _parse_chat(chat)
            assert [t["question"] for t in turns] == mine[:len(turns)], (s, turns)
            assert box == ""
        chat, sources, details, _ = rec["final"]
        assert (chat, sources, details, "") == tuple(rec["updates"][-1])
        turns = _parse_chat(chat)
        assert [t["question"] for t in turns] == mine, f"session {s}: {turns!r}"
        assert all(t["kind"] in ("answer", "refusal") for t in turns), f"session {s}: {turns!r}"
        sections = _parse_sources(sources)
        assert [sec["turn"] for sec in sections] == sorted({sec["turn"] for sec in sections})
        for sec in sections:
            i = sec["turn"]
            assert 0 <= i < len(mine) and sec["heading"] == f"Sources for: {mine[i]}", (s, sec)
            assert sec["cards"], (s, sec)
            ns = sorted(n for c in sec["cards"] for n in c["ns"])
            assert len(ns) == len(set(ns)), (s, sec)
            for c in sec["cards"]:
                assert c["turn"] == str(i) and sorted(c["quotes"]) == c["ns"], (s, c)
                cited.append((f"session {s} turn {i}", c))
        by_turn = {sec["turn"]: sec for sec in sections}
        for i, t in enumerate(turns):
            assert all(ct == str(i) for ct, _ in t["chips"]), (s, t)
            if t["kind"] == "answer":
                answers += 1
                assert t["chips"], f"session {s}: an answer without a citation: {t!r}"
                assert i in by_turn, f"session {s}: no sources for turn {i}"
                assert {n for _, n in t["chips"]} == {n for c in by_turn[i]["cards"] for n in c["ns"]}
        passages += _parse_passages(details)
        assert "Retrieved passages" in details
    assert answers >= QUESTIONS // 2, f"only {answers} of {QUESTIONS} questions were answered"
    assert len(cited) >= answers

    # 2. Every citation and every retrieved passage is a chunk of the store after the run.
    store = Store(path=app.store_dir)
    docs = store.documents()
    texts = store.all_chunk_texts()
    metas = {cid: m for cid, (_, m) in store.get_chunks(sorted(texts)).items()}
    assert sorted(metas) == sorted(texts)
    chunks_of: dict[str, list[str]] = {}
    spans_of: set[tuple[str, int, int]] = set()
    for cid, m in metas.items():
        chunks_of.setdefault(m["doc_id"], []).append(texts[cid])
        spans_of.add((m["doc_id"], int(m["start"]), int(m["end"])))
    for where, c in cited:
        assert c["doc"] in docs, f"{where}: cites {c['doc']!r}, which is not in the store"
        assert not c["missing"] and c["article"] == store.document_text(c["doc"]), where
        for n, quote in c["quotes"].items():
            assert quote.strip(), (where, n)
            assert any(quote in t for t in chunks_of.get(c["doc"], [])), \
                f"{where}: quote [{n}] is in no stored chunk of {c['doc']}: {quote!r}"
    assert passages
    for p in passages:
        assert p in spans_of, f"retrieved passage {p} is not a stored chunk"
    assert any(d == UPLOAD_ID for d, _, _ in _parse_passages(up["final"][2])), \
        f"the uploaded article was not retrieved for {UPLOAD_QUESTION!r}"

    # 3. The keyword index equals the store, which is settled and holds the upload.
    assert not store.unsettled()
    gen = store.generation()
    on_disk = KeywordIndex(store.keyword.folder)
    assert on_disk.load(expect_generation=gen), f"no keyword index on disk for generation {gen}"
    assert on_disk.ids == sorted(texts)
    assert store.keyword_index().ids == sorted(store.all_chunk_texts()) == sorted(texts)
    assert all(r.state == "done" for r in docs.values()), {d: r.state for d, r in docs.items()}
    assert set(chunks_of) == set(docs), (sorted(chunks_of), sorted(docs))
    assert {d: len(cs) for d, cs in chunks_of.items()} == store.chunk_counts()
    assert UPLOAD_ID in docs and len(chunks_of[UPLOAD_ID]) >= 2
    assert UPLOAD_FACT in store.document_text(UPLOAD_ID)
    assert (app.corpus / UPLOAD_NAME).read_text(encoding="utf-8") == UPLOAD_TEXT
    assert len(docs) == len([f for f in CORPUS.iterdir() if f.suffix == ".txt"]) + 1
