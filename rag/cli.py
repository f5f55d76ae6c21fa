"""`rag ...` commands: each parses its flags, calls one ``Bot`` method and prints the result."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import Config, describe
from .errors import RagError


def _config(args) -> Config:
    cfg = Config.from_env()
    return cfg.replace(store_dir=Path(args.store) if getattr(args, "store", None) else None,
                       chroma_url=getattr(args, "chroma_url", None),
                       collection=getattr(args, "collection", None),
                       model=getattr(args, "model", None),
                       top_k=getattr(args, "k", None))


def _bot(args):
    from .bot import Bot

    return Bot.from_config(_config(args))


def cmd_ingest(args) -> int:
    bot = _bot(args)
    rep = bot.ingest(args.paths or None, progress=sys.stderr.isatty() or args.progress)
    for path, msg in rep.errors:
        print(f"skipped {path}: {msg}", file=sys.stderr)
    for label, ids in (("added", rep.added), ("updated", rep.updated), ("removed", rep.removed)):
        for i in ids:
            print(f"{label:8} {i}")
    print(rep.summary())
    print(f"embedding model loaded: {'yes' if rep.embedder_loaded else 'no'}")
    return 0


def _as_of(value: str):
    """``--as-of YYYY-MM-DD``: checked when the flags are parsed (argparse names the flag)."""
    from .when import as_of_date

    try:
        return as_of_date(value)
    except RagError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def cmd_search(args) -> int:
    passages = _bot(args).search(args.question, args.k, as_of=args.as_of)
    if args.json:
        print(json.dumps([p.to_dict() for p in passages], ensure_ascii=False, indent=2))
        return 0
    for p in passages:
        dup = f"  (also in {', '.join(d['doc_id'] for d in p.duplicates)})" if p.duplicates else ""
        page = f" p. {p.page}" if p.page else ""  # PDF, DOCX: the page the passage starts on
        print(f"{p.rank}. {p.score:.4f}  {p.doc_id}{page}  [{p.start}:{p.end}]  {p.date or '-'}  {p.title}{dup}")
        print("   " + " ".join(p.text.split())[:300])
    return 0


def cmd_stats(args) -> int:
    s = _bot(args).stats()
    if args.json:
        print(json.dumps(s, ensure_ascii=False, indent=2))
        return 0
    print(f"documents: {s['documents']}\nchunks:    {s['chunks']}\nstore:     {s['store']} "
          f"({s['mode']}, collection {s['collection']})\nembedder:  {s['embedder']} ({s['embedder_path']})"
          f"\nruntime:   {s['embedder_runtime']}")
    for d, info in s["per_document"].items():
        print(f"  {d}  {info['chunks']:4d} chunks  {info['language']:3}  {info['date'] or '-':10}  {info['title']}")
    return 0


def _since_process_start() -> float | None:
    """Seconds since this process started (Linux /proc), or None elsewhere."""
    import os

    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def _ask_with_timings(args) -> int:
    """``rag ask --timings``: the same cold work as ``rag ask``, each stage timed on its own (the
    embedder and the model are loaded before the question instead of during it), then one line
    ``timings {json}`` on stderr. Process start to ``main`` (interpreter, ``import rag.cli``) is
    read from /proc; the 10 ms clock tick bounds its resolution."""
    import time

    t = {"start_to_main_s": _since_process_start()}
    a = time.perf_counter()
    bot = _bot(args)
    bot.store.count()
    t["open_store_s"] = time.perf_counter() - a
    a = time.perf_counter()
    bot.embedder.encode(["warm-up"])
    t["load_embedder_s"] = time.perf_counter() - a
    a = time.perf_counter()
    bot.llm
    t["load_model_s"] = time.perf_counter() - a
    a = time.perf_counter()
    from .types import Answer, Evidence

    first, evidence, final = None, None, None
    for item in bot.stream(args.question, args.k, as_of=args.as_of):
        if isinstance(item, str):
            first = first if first is not None else time.perf_counter() - a
        elif isinstance(item, Evidence):
            evidence = time.perf_counter() - a
        elif isinstance(item, Answer):
            final = item
    t["question_to_evidence_s"] = evidence
    t["question_to_first_token_s"] = first
    t["question_to_answer_s"] = time.perf_counter() - a
    for key in ("analyse_s", "retrieval_s", "embed_question_s", "prompt_s", "generation_s", "verify_s"):
        if key in final.timings:
            t[f"answer.{key}"] = final.timings[key]
    before = sum(t[k] for k in ("start_to_main_s", "open_store_s", "load_embedder_s", "load_model_s")
                 if t[k] is not None)
    t["process_start_to_first_token_s"] = before + first if first is not None else None
    t["refused"] = final.refused
    print(format_answer(final))
    print("timings " + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in t.items()}),
          file=sys.stderr)
    return 0


def cmd_ask(args) -> int:
    if args.timings:
        return _ask_with_timings(args)
    bot = _bot(args)
    if args.json:
        a = bot.ask(args.question, args.k, as_of=args.as_of)
        print(json.dumps(a.to_dict(), ensure_ascii=False, indent=2))
        return 0
    from .types import Answer, Escalation, Evidence

    final = None
    for item in bot.stream(args.question, args.k, as_of=args.as_of):
        if isinstance(item, str):
            if not args.quiet:
                print(item, end="", flush=True, file=sys.stderr)
        elif isinstance(item, Evidence):  # the sources' words, before the model's draft
            if not args.quiet:
                print(f"From the sources: {item.text}\n", file=sys.stderr, flush=True)
        elif isinstance(item, Escalation):  # the first draft would be refused: the larger reader
            if not args.quiet:
                print(f"\n(that draft fails its checks: {item.reason}; asking {item.model})\n",
                      file=sys.stderr, flush=True)
        elif isinstance(item, Answer):
            final = item
    if not args.quiet:
        print(file=sys.stderr)
    print(format_answer(final))
    return 0


def format_answer(a) -> str:
    lines = [("[refused] " if a.refused else "") + a.text]
    if a.refused and a.refusal_reason:
        lines.append(f"  (why: {a.refusal_reason})")
    if a.citations:
        lines.append("\nSources:")
        for c in a.citations:
            meta = ", ".join(x for x in (c.publisher, c.date) if x)
            lines.append(f"[{c.number}] {c.title}" + (f" ({meta})" if meta else "") + f"  <{c.doc_id}>"
                         + (f" p. {c.page}" if c.page else ""))
            if c.url:
                lines.append(f"    {c.url}")
            lines.append(f'    "{c.quote}"')
    if a.flagged:
        lines.append("\nDropped as unsupported: " + " | ".join(a.flagged))
    return "\n".join(lines)


def cmd_config(args) -> int:
    for name, env, value in describe(_config(args)):
        print(f"{name:20} {env:26} {value}")
    return 0


def cmd_eval(args) -> int:
    from .evaluate import run_eval

    return run_eval(args, _config(args))


def cmd_chat(args) -> int:
    from rag_ui.app import main as ui_main  # the UI package (and gradio) load only here

    return ui_main(["--port", str(args.port)] if args.port else [])


AS_OF_HELP = ("answer as of this day: articles published after it are not evidence, and "
              "'this week', 'yesterday' count back from it (default: today)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Grounded question answering over a folder of news articles.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", help="store folder (RAG_STORE_DIR)")
    common.add_argument("--chroma-url", help="Chroma server URL, e.g. http://127.0.0.1:8000 (RAG_CHROMA_URL)")
    common.add_argument("--collection", help="collection name (RAG_COLLECTION)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", parents=[common], help="add new/changed articles, drop removed ones")
    s.add_argument("paths", nargs="*", help="folders or files (default: the corpus folder)")
    s.add_argument("--progress", action="store_true", help="show the progress bar even when not a terminal")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("search", parents=[common], help="ranked passages for a question")
    s.add_argument("question")
    s.add_argument("--k", type=int, default=None)
    s.add_argument("--json", action="store_true")
    s.add_argument("--as-of", type=_as_of, metavar="YYYY-MM-DD", help=AS_OF_HELP)
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("stats", parents=[common], help="documents, chunks, store and embedder")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_stats)

    s = sub.add_parser("ask", parents=[common], help="a cited answer from the local model")
    s.add_argument("question")
    s.add_argument("--k", type=int, default=None)
    s.add_argument("--model", help="preset name, .gguf path, hf:REPO/FILE.gguf or server URL (RAG_MODEL)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quiet", action="store_true", help="do not stream the draft to stderr")
    s.add_argument("--as-of", type=_as_of, metavar="YYYY-MM-DD", help=AS_OF_HELP)
    s.add_argument("--timings", action="store_true",
                   help="time start-up and each stage (store, embedder, model, retrieval, first token); "
                        "print them as one 'timings {json}' line on stderr")
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("eval", parents=[common], help="score the bot on a question file")
    s.add_argument("--questions", required=True, type=Path)
    s.add_argument("--corpus", type=Path,
                   help="score on this folder of articles: it gets a store of its own, built once "
                        "and reused while the folder's files stay the same")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--model")
    s.add_argument("--k", type=int, default=None)
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--compare", type=Path, help="another summary.json to compare against")
    s.add_argument("--baseline", type=Path, help="fail when a metric falls below this baseline's margin")
    s.add_argument("--judge", choices=["rules", "llm"], default="rules")
    s.add_argument("--judge-labels", type=Path,
                   help="hand-labelled (sentence, passage) pairs to report judge accuracy on "
                        "(default: judge_labels.jsonl beside the questions file, if present)")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("chat", help="start the chat UI (same as python app.py)")
    s.add_argument("--port", type=int)
    s.set_defaults(func=cmd_chat)

    s = sub.add_parser("config", parents=[common], help="print the settings in force")
    s.set_defaults(func=cmd_config)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
