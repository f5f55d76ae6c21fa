"""The chat UI: ``python app.py [--port N] [--host H]``, ``rag chat`` or ``main([...])``.

A thin Gradio front end over one shared ``Bot``: it parses input, calls ``bot.stream``,
``bot.add_uploads``, ``bot.delete_document``, ``bot.document_text`` and ``bot.stats``, and
renders the results with ``rag_ui.render`` (which HTML-escapes every article and model string).
It writes and deletes no files: every change to the corpus folder goes through the ``Bot``.
Per-session data (the conversation, its answers and citations) lives only in ``gr.State``; the
module holds no session data, so two browsers asking at once never see each other's answers.

Listens on 127.0.0.1 unless --host says otherwise. RAG_PORT sets the default port (7860) and
RAG_UI_PASSWORD, when set, requires logging in as user "rag" with that password.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the machine is offline

from rag.bot import Bot  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.corpus import SUPPORTED_EXTENSIONS  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.types import Escalation, Evidence  # noqa: E402

from . import render as ui  # noqa: E402

log = logging.getLogger("rag_ui.app")
UI_USER = "rag"


def ui_settings(env=None) -> dict:
    """The UI's own settings: port and optional password (RAG_PORT, RAG_UI_PASSWORD)."""
    try:
        cfg = Config.from_env(env)
    except ValueError as e:
        raise RagError(str(e)) from None
    return {"port": cfg.port, "password": cfg.ui_password}


class BotPool:
    """The shared ``Bot`` plus, lazily, one per other model preset (same store and embedder).

    Bots are shared by all sessions: each keeps no per-user state, and its LLM lock queues
    concurrent generations.
    """

    def __init__(self, bot: Bot):
        self.base = bot
        self._bots = {bot.config.model: bot}
        self._lock = threading.Lock()

    @property
    def config(self) -> Config:
        return self.base.config

    def get(self, model: str | None) -> Bot:
        model = model or self.base.config.model
        with self._lock:
            if model not in self._bots:
                self._bots[model] = Bot(self.base.config.replace(model=model), self.base.store,
                                        self.base.embedder)
            return self._bots[model]

    def model_choices(self) -> list[str]:
        from rag.models import PRESETS

        names = list(PRESETS)
        return names if self.base.config.model in names else [self.base.config.model] + names

    def preload(self) -> None:
        """Load the embedder and the model now, so the first question does not wait for them."""
        try:
            self.base.warm_up()
            log.info("model %s loaded", self.base.config.model)
        except RagError as e:
            log.warning("the model could not be loaded yet: %s", e)


# -- handlers (plain functions of their inputs; gradio wiring is in build_ui) ---------------
def _history(turns: list[dict]) -> list[tuple[str, str]]:
    return [(t["question"], t["answer"].text) for t in turns if t.get("answer") is not None]


def _doc_text_reader(bot: Bot):
    cache: dict[str, str | None] = {}

    def read(doc_id: str) -> str | None:
        if doc_id not in cache:
            try:
                cache[doc_id] = bot.document_text(doc_id)
            except RagError:
                cache[doc_id] = None
        return cache[doc_id]

    return read


def ask(pool: BotPool, question: str, turns: list[dict] | None, model: str | None, k, as_of: str = ""):
    """Generator of (chat, sources, details, turns, question box) for one question, answered as
    of ``as_of`` ("YYYY-MM-DD"; empty = today)."""
    turns = list(turns or [])
    question = (question or "").strip()
    if not question:
        yield ui.chat_html(turns), ui.sources_html(turns), _last_details(turns), turns, ""
        return
    history = _history(turns)
    turn = {"question": question, "draft": "", "answer": None, "error": "",
            "status": "Searching the articles…" + (" (after the question before it)" if history else "")}
    turns.append(turn)
    sources = ui.sources_html(turns)
    yield ui.chat_html(turns), sources, ui.details_html(None), turns, ""
    try:
        bot = pool.get(model)
        answer = None
        for item in bot.stream(question, k=int(k) if k else None, history=history or None,
                               as_of=(as_of or "").strip() or None):
            if isinstance(item, str):
                turn["draft"] += item
                yield ui.chat_html(turns), sources, ui.details_html(None), turns, ""
            elif isinstance(item, Evidence):  # the sources' words, shown while the model drafts
                turn["evidence"] = item
                yield ui.chat_html(turns), sources, ui.details_html(None), turns, ""
            elif isinstance(item, Escalation):  # that draft fails its checks: the larger reader
                turn["draft"] = ""
                turn["status"] = f"Checking with the larger model ({item.model})…"
                yield ui.chat_html(turns), sources, ui.details_html(None), turns, ""
            else:
                answer = item
        if answer is None:
            raise RagError("the model returned nothing; try again")
        turn["answer"] = answer
        turn["sources_html"] = ui.sources_section_html(len(turns) - 1, question, answer.citations,
                                                       _doc_text_reader(bot))
    except RagError as e:
        turn["error"] = str(e)
    except Exception as e:  # keep the session usable; the log has the traceback
        log.exception("answering failed")
        turn["error"] = f"unexpected error ({e.__class__.__name__}: {e}); see the server log"
    yield ui.chat_html(turns), ui.sources_html(turns), _last_details(turns), turns, ""


def _last_details(turns: list[dict]) -> str:
    for t in reversed(turns):
        if t.get("answer") is not None:
            return ui.details_html(t["answer"])
    return ui.details_html(None)


def corpus_view(pool: BotPool, selected: str | None = None):
    """(table html, dropdown update) for the current store."""
    import gradio as gr

    docs = pool.base.stats()["per_document"]
    choices = [(f"{info.get('title') or d} ({d})", d) for d, info in docs.items()]
    value = selected if selected in docs else None
    return ui.corpus_table_html(docs), gr.update(choices=choices, value=value)


def _upload_files(files) -> list[tuple[str, str]]:
    """(original file name, temporary path) of each file gradio received."""
    paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
    return [(os.path.basename(p), p) for p in paths]


_ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[^/\s'\"()]+/)+([^/\s'\"()]+)")


def no_paths(message: str) -> str:
    """A message as the UI shows it: a file's absolute path reduced to its name (a browser user
    needs the name, and the server's folders are not theirs to see).

    Example: "already taken by /home/u/news/a.txt; rename" -> "already taken by a.txt; rename"
    """
    return _ABS_PATH.sub(r"\1", message)


def upload(pool: BotPool, files, progress=None):
    """Hand the uploaded files to ``Bot.add_uploads``, which checks their names, sizes and
    content, writes the accepted ones into the corpus folder and ingests them."""
    received = _upload_files(files)
    if not received:
        return ui.message_html(f"Choose a file to upload ({', '.join(SUPPORTED_EXTENSIONS)}).")
    uploads, messages = [], []
    for name, path in received:
        try:
            with open(path, "rb") as f:  # gradio's temporary copy, bounded by max_file_size
                uploads.append((name, f.read()))
        except OSError as e:
            messages.append(f"{name} was not added: could not read the upload ({e.strerror or e})")
    ok = not messages
    if uploads:
        def on_progress(done, total):
            if progress is not None:
                progress((done, total), desc="Embedding chunks", unit="chunks")

        if progress is not None:
            progress(0, desc="Reading and chunking")
        try:
            rep = pool.base.add_uploads(uploads, on_progress=on_progress)
        except RagError as e:
            rep, ok = None, False
            messages.append(no_paths(str(e)))
        if rep is not None:
            for name, msg in rep.errors:  # an upload's name, or the path ingestion read
                ok = False
                messages.append(f"{os.path.basename(str(name)) or name} was not added: {no_paths(msg)}")
            for label, ids in (("added", rep.added), ("updated", rep.updated),
                               ("unchanged", rep.unchanged)):
                for d in ids:
                    messages.append(f"{label}: {d}")
            messages.append(rep.summary())
    return ui.message_html("\n".join(messages), "ok" if ok else "error")


def delete(pool: BotPool, doc_id: str | None):
    """Remove a document through ``Bot.delete_document`` (chunks, record and, when it lies in
    the corpus folder, its file)."""
    if not doc_id:
        return ui.message_html("Choose a document to delete.", "error")
    docs = pool.base.stats()["per_document"]
    if doc_id not in docs:
        return ui.message_html(f"no document {doc_id!r} in the store", "error")
    source = docs[doc_id].get("source_path") or ""
    had_file = bool(source) and os.path.isfile(source)
    try:
        n = pool.base.delete_document(doc_id)
    except RagError as e:
        return ui.message_html(no_paths(str(e)), "error")
    where = ""
    if had_file and not os.path.exists(source):  # only reported; the Bot removed it
        where = f"; deleted {Path(source).name} from the corpus folder"
    return ui.message_html(f"deleted {doc_id} ({n} chunks){where}", "ok")


def view_article(pool: BotPool, doc_id: str | None) -> str:
    if not doc_id:
        return ""
    docs = pool.base.stats()["per_document"]
    if doc_id not in docs:
        return ui.message_html(f"no document {doc_id!r} in the store", "error")
    try:
        return ui.article_html(doc_id, docs[doc_id], pool.base.document_text(doc_id))
    except RagError as e:
        return ui.message_html(str(e), "error")


# -- layout ---------------------------------------------------------------------------------
def build_ui(pool: BotPool):
    import gradio as gr

    cfg = pool.config
    with gr.Blocks(title="Ask the articles", analytics_enabled=False) as demo:
        turns = gr.State([])
        gr.Markdown("## Ask the articles\nAnswers come only from the ingested news articles; "
                    "every sentence is checked against the passage it cites.")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        chat = gr.HTML(ui.chat_html([]), elem_id="rag-chat", js_on_load=ui.CHAT_JS,
                                       min_height=320)
                        with gr.Row():
                            question = gr.Textbox(show_label=False, scale=6, elem_id="rag-question",
                                                  placeholder="Ask about the articles…", container=False,
                                                  max_length=cfg.max_question_chars, autofocus=True)
                            # value "": API clients that send only the question ask as of today
                            as_of = gr.Textbox("", show_label=False, scale=1, elem_id="rag-as-of", max_length=10,
                                               placeholder="as of: today (YYYY-MM-DD)", container=False)
                            send = gr.Button("Ask", variant="primary", scale=1, elem_id="rag-ask")
                            clear = gr.Button("New chat", scale=1, elem_id="rag-clear")
                        with gr.Accordion("Settings", open=False, elem_id="rag-settings"):
                            model = gr.Dropdown(pool.model_choices(), value=cfg.model, label="Model",
                                                info="a larger model is slower but more accurate; "
                                                     "it loads on its first question",
                                                elem_id="rag-model")
                            k = gr.Slider(1, 10, value=cfg.top_k, step=1, label="Passages retrieved (top k)",
                                          elem_id="rag-k")
                        with gr.Accordion("Details: retrieved passages and timings", open=False,
                                          elem_id="rag-details-acc"):
                            details = gr.HTML(ui.details_html(None), elem_id="rag-details")
                    with gr.Column(scale=2):
                        sources = gr.HTML(ui.sources_html([]), elem_id="rag-sources",
                                          js_on_load=ui.SOURCES_JS)
            with gr.Tab("Articles", id="articles"):
                status = gr.HTML("", elem_id="rag-corpus-status")
                with gr.Row():
                    with gr.Column(scale=3):
                        table = gr.HTML(elem_id="rag-corpus")
                        refresh = gr.Button("Refresh", size="sm", elem_id="rag-refresh")
                    with gr.Column(scale=2):
                        files = gr.File(label=f"Upload articles ({', '.join(SUPPORTED_EXTENSIONS)}; "
                                              f"at most {cfg.max_upload_bytes // 1000:,} kB each)",
                                        file_count="multiple", file_types=list(SUPPORTED_EXTENSIONS),
                                        elem_id="rag-upload")
                        doc = gr.Dropdown([], label="Document", elem_id="rag-doc",
                                          info="choose one to read it or delete it")
                        remove = gr.Button("Delete document", variant="stop", elem_id="rag-delete")
                article = gr.HTML("", elem_id="rag-article")

        def on_ask(q, state, m, kk, day=""):
            yield from ask(pool, q, state, m, kk, day)

        gr.on([question.submit, send.click], on_ask, [question, turns, model, k, as_of],
              [chat, sources, details, turns, question], show_progress="hidden",
              concurrency_limit=8, concurrency_id="ask", api_name="ask")

        def on_clear():
            return ui.chat_html([]), ui.sources_html([]), ui.details_html(None), [], ""

        clear.click(on_clear, None, [chat, sources, details, turns, question], queue=False)

        def on_load(selected=None):
            return corpus_view(pool, selected)

        demo.load(on_load, None, [table, doc])
        refresh.click(on_load, doc, [table, doc])

        def on_upload(fs, progress=gr.Progress()):
            msg = upload(pool, fs, progress)
            return (msg, *corpus_view(pool), None)

        files.upload(on_upload, files, [status, table, doc, files], concurrency_limit=1,
                     concurrency_id="corpus", api_name="upload")

        def on_delete(d):
            msg = delete(pool, d)
            return (msg, *corpus_view(pool), "")

        remove.click(on_delete, doc, [status, table, doc, article], concurrency_limit=1,
                     concurrency_id="corpus")
        doc.change(lambda d: view_article(pool, d), doc, article)
    return demo


def theme():
    import gradio as gr

    # System fonts: the default theme would fetch Google Fonts, and the machine is offline.
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "monospace"])


def parse_args(argv=None, settings=None):
    settings = settings or ui_settings()
    p = argparse.ArgumentParser(description="Chat UI for the grounded question-answering bot.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; other hosts expose the UI on the network)")
    p.add_argument("--port", type=int, default=settings["port"], help="port (default RAG_PORT or 7860)")
    p.add_argument("--no-preload", action="store_true", help="load the model on the first question")
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = ui_settings()
        args = parse_args(argv, settings)
        cfg = Config.from_env()
        bot = Bot.from_config(cfg)
    except (RagError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:  # incremental: only new or changed articles are embedded
        print(f"ingesting {cfg.corpus_dir}: {bot.ingest().summary()}", flush=True)
    except RagError as e:
        print(f"warning: the corpus folder was not ingested: {e}", file=sys.stderr, flush=True)
    pool = BotPool(bot)
    if not args.no_preload:
        threading.Thread(target=pool.preload, name="preload-model", daemon=True).start()
    if args.host not in ("127.0.0.1", "localhost", "::1") and not settings["password"]:
        print(f"warning: listening on {args.host} without a password; set RAG_UI_PASSWORD",
              file=sys.stderr, flush=True)
    demo = build_ui(pool)
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=args.host, server_port=args.port,
                auth=(UI_USER, settings["password"]) if settings["password"] else None,
                auth_message="Log in as user 'rag' with the password in RAG_UI_PASSWORD.",
                max_file_size=cfg.max_upload_bytes, ssr_mode=False, theme=theme(), css=ui.CSS,
                footer_links=[], show_error=False)
    return 0

