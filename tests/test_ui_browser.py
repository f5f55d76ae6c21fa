"""The chat UI (app.py -> rag_ui.app) in Debian's Chromium, driven by Playwright, on real parts.

One app process serves the whole module: a temporary store and a copy of the bundled corpus,
the real embedder and the real default model (its assembled file is shared with normal use).
Cases: streaming then a cited answer with the passage highlighted; an uploaded article that is
searchable at once (then deleted); a hostile article that renders as text; two browsers asking
at the same time; a binary upload under an existing article's name that is refused and leaves
the article's file as it was; a bundled article deleted with its file. Screenshots go to
test-artifacts/. A missing Chromium fails, never skips.

The first tests here are quick checks of the HTML rendering (rag_ui.render) and of the
upload-name rules (rag.corpus), which the UI reaches only through ``Bot.add_uploads``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import running_app
from rag import Citation
from rag.corpus import corpus_target, safe_upload_name
from rag.errors import RagError
from rag_ui import render as ui

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ANSWER_TIMEOUT_MS = 240_000  # a 2-core box answers in ~5-10 s, much slower under load

HOSTILE = ('Hostile <img src=x onerror="window.__pwned=2"> festival notes\n'
           "The Quuxberg festival page contains <script>window.__pwned=1</script> markup.\n"
           'It also has <img src=x onerror="window.__pwned=2"> and '
           '<a href="javascript:window.__pwned=3">a link</a>.\n')


# -- rendering and name rules (no browser) --------------------------------------------------
@pytest.mark.parametrize("name", ["notes.txt", "Report 2024 (final).md", "page.HTML", "zorblax_robotics.txt"])
def test_upload_names_accepted(name):
    assert safe_upload_name(name) == name


@pytest.mark.parametrize("name", ["../x.txt", "a/b.txt", "a\\b.txt", ".env.txt", ".hidden", "x..txt",
                                  "x.exe", "metadata.json", "noext", "", "..", "a\x00.txt", "<b>.txt"])
def test_upload_names_rejected(name):
    with pytest.raises(RagError):
        safe_upload_name(name)


def test_corpus_target_stays_inside(tmp_path):
    assert corpus_target(tmp_path, "a.txt") == (tmp_path / "a.txt").resolve()
    with pytest.raises(RagError):
        corpus_target(tmp_path, "../a.txt")


def test_marked_text_escapes_and_merges():
    text = "x <b>bold</b> & y"
    out = ui.marked_text(text, [(2, 5, 2), (4, 13, 1), (50, 60, 3)])  # last span is out of range
    assert out == 'x <mark class="cited" data-ns="1 2">&lt;b&gt;bold&lt;/b&gt;</mark> &amp; y'


def test_answer_chips_only_for_known_citations():
    out = ui.answer_html("It <i>opened</i> [1] and [7].", [1], turn=3)
    assert '<button type="button" class="cite-chip" data-turn="3" data-n="1"' in out
    assert "&lt;i&gt;opened&lt;/i&gt;" in out and "[7]" in out


def test_grouped_marker_gives_one_chip_per_number():
    out = ui.answer_html("Opened in 2023 [1, 3]. Not [7].", [1, 3], turn=0)
    assert re.findall(r'data-n="(\d+)"', out) == ["1", "3"]
    assert out.startswith("Opened in 2023 <button") and "[1, 3]" not in out and "Not [7]." in out


def test_sources_escape_hostile_article():
    quote = "<script>window.__pwned=1</script>"
    start = HOSTILE.index(quote)
    c = Citation(number=1, doc_id="h<x>", title='<img src=x onerror="alert(1)">', url="javascript:alert(1)",
                 publisher="<b>p</b>", date="2024", chunk_id="h:1", start=0, end=len(HOSTILE), quote=quote,
                 quote_start=start, quote_end=start + len(quote))
    html = ui.sources_section_html(0, "q <i>", [c], lambda d: HOSTILE)
    assert "<script" not in html and "<img" not in html and "<a " not in html  # no javascript: link
    assert '<mark class="cited" data-ns="1">&lt;script&gt;window.__pwned=1&lt;/script&gt;</mark>' in html


# -- the app in a browser --------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("ui")) as app:
        yield app


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `apt-get install -y chromium` "
                    "(or `make system-deps`)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, app):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(60_000)
    page.errors, page.dialogs = [], []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(app.url)
    page.wait_for_selector("#rag-question textarea")
    page.wait_for_selector("#rag-chat .rag-chat")
    return page


_WATCH_DRAFTS = """() => {
  window.__drafts = [];
  window.__evidence = false;  // the sources' words shown while the answer was still a draft
  const root = document.getElementById('rag-chat');
  new MutationObserver(() => {
    if (root.querySelector('.turn:last-child .msg.bot.draft .evidence')) window.__evidence = true;
    const d = root.querySelector('.turn:last-child .msg.bot.draft .body');
    if (d && window.__drafts[window.__drafts.length - 1] !== d.textContent) window.__drafts.push(d.textContent);
  }).observe(root, {subtree: true, childList: true, characterData: true});
}"""


def _submit(page, question: str) -> int:
    """Type and send a question; returns the number of turns the answer will make."""
    n = page.locator("#rag-chat .turn").count() + 1
    page.evaluate(_WATCH_DRAFTS)
    page.fill("#rag-question textarea", question)
    page.click("#rag-ask")
    return n


def _wait_answer(page, n_turns: int):
    """The last bot message once it is final (answer, refusal or error)."""
    page.wait_for_function(
        """(n) => { const t = document.querySelectorAll('#rag-chat .turn');
                    return t.length === n && t[n - 1].querySelector('.msg.bot:not(.draft)'); }""",
        arg=n_turns, timeout=ANSWER_TIMEOUT_MS)
    msg = page.locator("#rag-chat .turn").nth(n_turns - 1).locator(".msg.bot")
    return SimpleNamespace(msg=msg, text=msg.inner_text(), classes=msg.get_attribute("class"),
                           drafts=page.evaluate("window.__drafts"), evidence=page.evaluate("window.__evidence"))


def _ask(page, question: str):
    return _wait_answer(page, _submit(page, question))


def _upload(page, path: Path):
    page.get_by_role("tab", name="Articles").click()
    page.wait_for_selector("#rag-corpus table.corpus")
    page.set_input_files("#rag-upload input[type=file]", str(path))
    page.wait_for_selector("#rag-corpus-status .rag-status", timeout=120_000)
    return page.inner_text("#rag-corpus-status")


def _choose_document(page, doc_id: str):
    page.locator("#rag-doc input").click()
    page.locator("[role=option]", has_text=f"({doc_id})").click()


def _open_details(page):
    page.locator("#rag-details-acc").get_by_text("Details: retrieved passages and timings").click()
    page.wait_for_selector("#rag-details .rag-details")


def test_streams_then_cites_with_highlighted_passage(app, browser):
    from playwright.sync_api import expect

    page = _open(browser, app)
    res = _ask(page, "From what date was Tongyi Qianwen available to the public and to enterprises "
                     "throughout China?")
    page.screenshot(path=str(ARTIFACTS / "ui_a_answer.png"), full_page=True)
    drafts = [d for d in res.drafts if d.strip()]
    assert len(set(drafts)) >= 2, f"the draft did not stream (seen: {drafts!r})"
    assert "answer" in res.classes.split(), f"no verified answer: {res.text!r} (draft {drafts[-1:]!r})"
    assert "September 13" in res.text, f"answer: {res.text!r}"
    assert res.evidence, "the sources' own words were not shown before the model's answer (evidence first)"

    chips = res.msg.locator(".cite-chip")
    assert chips.count() >= 1, f"no citation chip in {res.text!r}"
    quotes = []
    for i in range(chips.count()):
        chips.nth(i).click()
        card = page.locator("#rag-sources .source-card.selected")
        expect(card).to_have_count(1)
        mark = card.locator("mark.cited.active")
        expect(mark).to_be_visible()
        expect(mark).to_be_in_viewport()
        quotes.append(mark.inner_text())
        if "September 13" in quotes[-1]:
            break
    page.screenshot(path=str(ARTIFACTS / "ui_a_chip_clicked.png"), full_page=True)
    assert any("September 13" in q for q in quotes), f"highlighted passages: {quotes!r}"

    _open_details(page)
    expect(page.locator("#rag-details table.passages tbody tr").first).to_be_visible()
    expect(page.locator("#rag-details table.timings")).to_contain_text("retrieval_s")
    expect(page.locator("#rag-details .dropped")).to_have_text(re.compile(r"^\d+$"))
    assert not page.errors, page.errors


def test_citations_show_their_dates_and_the_as_of_box_excludes_later_articles(app, browser):
    """Issue 23 in the UI: a cited article's card shows its publication date, and a question asked
    as of a day before an article was published is not answered from it."""
    page = _open(browser, app)
    later = {"000_8be7b5971cd718b3", "002_16b296b6a56de0e8"}  # the ODSC article and its translation, 2023-09-15
    question = "Who replaced Daniel Zhang as the chief of Alibaba's cloud division?"
    res = _ask(page, question)
    cards = page.locator("#rag-sources .turn-sources").last.locator(".source-card")
    cited = {cards.nth(i).get_attribute("data-doc") for i in range(cards.count())}
    assert cited & later, f"today's answer did not cite the ODSC article: {res.text!r} {cited}"
    dated = [cards.nth(i).locator(".src-meta").inner_text() for i in range(cards.count())
             if cards.nth(i).get_attribute("data-doc") in later]
    assert all("2023-09-15" in m for m in dated), dated
    page.fill("#rag-as-of input, #rag-as-of textarea", "2023-09-01")
    n = page.locator("#rag-chat .turn").count() + 1
    page.evaluate(_WATCH_DRAFTS)
    page.fill("#rag-question textarea", question)
    page.click("#rag-ask")
    res = _wait_answer(page, n)
    page.screenshot(path=str(ARTIFACTS / "ui_as_of.png"), full_page=True)
    sections = page.locator("#rag-sources .turn-sources")
    last = sections.last
    cited = ({last.locator(".source-card").nth(i).get_attribute("data-doc")
              for i in range(last.locator(".source-card").count())}
             if sections.count() and last.get_attribute("data-turn") == str(n - 1) else set())
    assert not cited & later, f"as of 2023-09-01 it cited an article of 2023-09-15: {res.text!r}"
    assert not page.errors, page.errors


def test_uploaded_article_is_searchable_then_deleted(app, browser, tmp_path):
    from playwright.sync_api import expect

    article = tmp_path / "zorblax_robotics.txt"
    article.write_text(
        "Zorblax Robotics opens a second factory\n"
        "Zorblax Robotics, a maker of small warehouse robots, was founded in Tallinn, Estonia, in 2019 "
        "by the engineer Maret Kivisild.\n"
        "In 2024 Zorblax Robotics opened a second factory in Tartu, where 140 people build its "
        "Zorbot warehouse robots.\n", encoding="utf-8")
    page = _open(browser, app)
    status = _upload(page, article)
    assert "added: zorblax_robotics" in status, status
    expect(page.locator('#rag-corpus tr[data-doc="zorblax_robotics"]')).to_be_visible()
    assert (app.corpus / "zorblax_robotics.txt").is_file()

    page.get_by_role("tab", name="Chat").click()
    res = _ask(page, "In which city was Zorblax Robotics founded?")
    page.screenshot(path=str(ARTIFACTS / "ui_b_new_article.png"), full_page=True)
    assert "answer" in res.classes.split(), f"no verified answer: {res.text!r}"
    assert "Tallinn" in res.text, res.text
    cards = page.locator('#rag-sources .turn-sources:not([hidden]) .source-card[data-doc="zorblax_robotics"]')
    expect(cards.first).to_be_visible()

    page.get_by_role("tab", name="Articles").click()
    _choose_document(page, "zorblax_robotics")
    expect(page.locator("#rag-article .article-text")).to_contain_text("founded in Tallinn")
    page.click("#rag-delete")
    expect(page.locator("#rag-corpus-status")).to_contain_text("deleted zorblax_robotics", timeout=60_000)
    expect(page.locator('#rag-corpus tr[data-doc="zorblax_robotics"]')).to_have_count(0)
    assert not (app.corpus / "zorblax_robotics.txt").exists()
    assert not page.errors, page.errors


def test_hostile_article_renders_as_text(app, browser, tmp_path):
    from playwright.sync_api import expect

    article = tmp_path / "hostile.txt"
    article.write_text(HOSTILE, encoding="utf-8")
    page = _open(browser, app)
    status = _upload(page, article)
    assert "added: hostile" in status, status
    row = page.locator('#rag-corpus tr[data-doc="hostile"]')
    expect(row).to_contain_text('<img src=x onerror="window.__pwned=2">')
    _choose_document(page, "hostile")
    view = page.locator("#rag-article .article-text")
    expect(view).to_contain_text("<script>window.__pwned=1</script>")
    expect(view).to_contain_text('<a href="javascript:window.__pwned=3">a link</a>')
    page.wait_for_timeout(500)  # give an injected onerror handler the time to fire
    page.screenshot(path=str(ARTIFACTS / "ui_c_hostile_article.png"), full_page=True)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    for sel in ("#rag-article img", "#rag-article script", "#rag-corpus img", "#rag-article a"):
        assert page.locator(sel).count() == 0, sel
    assert not page.dialogs and not page.errors, (page.dialogs, page.errors)


def test_two_sessions_at_once_see_only_their_own_answers(app, browser):
    questions = ["Who is the CEO of Alibaba Group?",
                 "When will Tongyi Qianwen be available for public and enterprise access throughout China?"]
    pages = [_open(browser, app) for _ in questions]
    turns = [_submit(p, q) for p, q in zip(pages, questions)]  # both pending at once
    results = [_wait_answer(p, n) for p, n in zip(pages, turns)]
    for i, (page, res) in enumerate(zip(pages, results)):
        page.screenshot(path=str(ARTIFACTS / f"ui_d_session{i + 1}.png"), full_page=True)
        mine, other = questions[i], questions[1 - i]
        assert "error" not in res.classes.split(), res.text
        assert page.locator("#rag-chat .turn").count() == 1
        chat, sources = page.inner_text("#rag-chat"), page.inner_text("#rag-sources")
        assert mine in chat and other not in chat
        assert other not in sources
        if page.locator("#rag-sources .source-card").count():
            assert mine in sources
        _open_details(page)
        details = page.locator("#rag-details").inner_html()
        assert ui.esc(mine) in details and ui.esc(other) not in details
        chips = {c.get_attribute("data-n") for c in res.msg.locator(".cite-chip").all()}
        cards = {n for c in page.locator("#rag-sources .source-card").all()
                 for n in c.get_attribute("data-ns").split()}
        assert chips == cards, (chips, cards)  # the sources panel lists exactly this answer's citations
        assert not page.errors, page.errors


def test_binary_upload_under_existing_name_is_refused(app, browser, tmp_path):
    from playwright.sync_api import expect

    article = tmp_path / "keep.txt"
    article.write_text("Keepsake Lighthouse reopens\nThe Keepsake lighthouse on the island of "
                       "Vorn reopened to visitors in May 2024 after a two-year restoration.\n",
                       encoding="utf-8")
    page = _open(browser, app)
    status = _upload(page, article)
    assert "added: keep" in status, status
    kept = app.corpus / "keep.txt"
    original = kept.read_bytes()
    row = page.locator('#rag-corpus tr[data-doc="keep"]')
    expect(row).to_be_visible()
    chunks = row.locator("td.num").inner_text()

    binary = tmp_path / "bin" / "keep.txt"  # same name, NUL bytes
    binary.parent.mkdir()
    binary.write_bytes(b"\x00\x01\x02binary\x00" * 64)
    page = _open(browser, app)
    status = _upload(page, binary)
    page.screenshot(path=str(ARTIFACTS / "ui_e_binary_refused.png"), full_page=True)
    assert "keep.txt was not added" in status and "binary" in status, status
    assert "error" in page.locator("#rag-corpus-status .rag-status").get_attribute("class").split()
    assert kept.read_bytes() == original
    assert not [f.name for f in app.corpus.iterdir() if f.name.startswith(".upload-")]
    row = page.locator('#rag-corpus tr[data-doc="keep"]')
    expect(row).to_be_visible()
    expect(row.locator("td.num")).to_have_text(chunks)
    _choose_document(page, "keep")
    expect(page.locator("#rag-article .article-text")).to_contain_text("reopened to visitors in May 2024")
    assert not page.errors, page.errors


def test_deleting_a_bundled_article_removes_its_file(app, browser):
    """Last in the module: the other tests ask about the bundled articles."""
    from playwright.sync_api import expect

    doc_id = "002_16b296b6a56de0e8"
    f = app.corpus / f"{doc_id}.txt"
    others = sorted(p.name for p in app.corpus.iterdir() if p != f)
    assert f.is_file()
    page = _open(browser, app)
    page.get_by_role("tab", name="Articles").click()
    expect(page.locator(f'#rag-corpus tr[data-doc="{doc_id}"]')).to_be_visible()
    _choose_document(page, doc_id)
    page.click("#rag-delete")
    expect(page.locator("#rag-corpus-status")).to_contain_text(f"deleted {doc_id}", timeout=60_000)
    expect(page.locator("#rag-corpus-status")).to_contain_text(f"deleted {doc_id}.txt from")
    expect(page.locator(f'#rag-corpus tr[data-doc="{doc_id}"]')).to_have_count(0)
    assert not f.exists()
    assert sorted(p.name for p in app.corpus.iterdir()) == others  # nothing else removed
    assert not page.errors, page.errors
