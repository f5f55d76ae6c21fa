"""PDF ingestion cost: a 200-page PDF vs the same text as a .txt file, each ingested by the real
``Bot`` (configured embedder) into a fresh store; prints the time per page of each and their
ratio (target: the PDF at most 1.5x the text file), and the reading step alone (``load_file``).

    .venv/bin/python -m bench.pdf [--pages 200] [--repeats 3]

The PDF is written here by hand (Helvetica text, one content stream per page, no PDF-writing
dependency) from the bundled corpus's English sentences, about 3,000 characters a page, as a
text-only news archive page holds. Not part of ``make bench``.
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

from .harness import ROOT, log
from .synthetic import corpus_sentences

PAGES = 200
LINES_PER_PAGE = 40  # of at most LINE_CHARS: about 3,000 characters a page
LINE_CHARS = 80
TARGET_RATIO = 1.5  # the PDF's ingest time over the text file's


def pdf_bytes(pages: list[list[str]]) -> bytes:
    """A valid PDF with one page per list of text lines (Helvetica, WinAnsi encoding)."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"]
    kids = []
    for lines in pages:
        esc = [l.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("cp1252")
               for l in lines]
        content = b"BT /F1 10 Tf 13 TL 60 760 Td " + b" ".join(b"(%s) Tj T*" % l for l in esc) + b" ET"
        objs.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                    b"/Resources << /Font << /F1 3 0 R >> >> >>" % len(objs))
        kids.append(len(objs))
    objs[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def archive_pages(n: int, seed: int = 1234) -> list[list[str]]:
    """``n`` pages of paragraphs drawn from the corpus's English sentences (WinAnsi-safe), each
    page about LINES_PER_PAGE lines once wrapped."""
    sentences = [s.encode("cp1252", "replace").decode("cp1252") for s in corpus_sentences(ROOT / "corpus")]
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        paragraphs, lines = [f"Archive page {i + 1}"], 1
        while lines < LINES_PER_PAGE:
            # numbered: the corpus has few sentences, and the cleaner drops a repeated line
            paragraphs.append(f"({i + 1}.{len(paragraphs)}) " + " ".join(rng.sample(sentences, 4)))
            lines += len(textwrap.wrap(paragraphs[-1], LINE_CHARS))
        pages.append(paragraphs)
    return pages


def wrapped(paragraphs: list[str]) -> list[str]:
    """A page's lines as a PDF lays them out: paragraphs wrapped at LINE_CHARS."""
    return [line for p in paragraphs for line in textwrap.wrap(p, LINE_CHARS)]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=PAGES)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    from rag.bot import Bot
    from rag.config import Config
    from rag.corpus import load_file
    from rag.embedding import Embedder
    from rag.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-pdf-"))
    try:
        pages = archive_pages(args.pages)
        for kind, data in (("pdf", pdf_bytes([wrapped(p) for p in pages])),
                           ("txt", "\n\n".join("\n".join(p) for p in pages).encode())):
            (tmp / kind).mkdir()
            (tmp / kind / f"archive.{kind}").write_bytes(data)
        cfg = Config.from_env()
        embedder = Embedder(cfg.embedder, backend=cfg.embedder_backend,
                            cache_root=cfg.model_cache / "embedders")
        embedder.encode(["warm up"])  # loaded once, outside the timings
        (tmp / "warm").mkdir()  # imports (pypdf), the chunker's tokenizer: once, outside the timings
        (tmp / "warm" / "w.pdf").write_bytes(pdf_bytes([wrapped(p) for p in pages[:2]]))
        Bot(Config(corpus_dir=tmp / "warm", home=tmp / "home", store_dir=tmp / "store-warm"),
            Store(path=tmp / "store-warm"), embedder).ingest()

        read = {k: [] for k in ("pdf", "txt")}
        ingest = {k: [] for k in ("pdf", "txt")}
        chunks = {}
        for r in range(args.repeats):
            for kind in (("pdf", "txt") if r % 2 == 0 else ("txt", "pdf")):  # interleaved
                t0 = time.perf_counter()
                doc = load_file(tmp / kind / f"archive.{kind}")
                read[kind].append(time.perf_counter() - t0)
                store_dir = tmp / f"store-{kind}-{r}"
                bot = Bot(Config(corpus_dir=tmp / kind, home=tmp / "home", store_dir=store_dir),
                          Store(path=store_dir), embedder)
                t0 = time.perf_counter()
                rep = bot.ingest()
                ingest[kind].append(time.perf_counter() - t0)
                chunks[kind] = rep.chunks_embedded
                assert rep.added == ["archive"] and not rep.errors, rep.errors
                log(f"  {kind} run {r + 1}: read {read[kind][-1]:.2f}s, ingest {ingest[kind][-1]:.2f}s, "
                    f"{rep.chunks_embedded} chunks, {len(doc.text):,} chars")
        med = {k: statistics.median(v) for k, v in ingest.items()}
        out = {"pages": args.pages, "chunks": chunks, "ingest_s": med,
               "read_s": {k: statistics.median(v) for k, v in read.items()},
               "ms_per_page": {k: 1000 * v / args.pages for k, v in med.items()},
               "ratio": med["pdf"] / med["txt"], "cpu": _cpu(), "embedder": embedder.name}
        print(f"{args.pages}-page PDF vs the same text as .txt, {args.repeats} runs each, median "
              f"(embedder {embedder.name}; {out['cpu']}):")
        for k in ("pdf", "txt"):
            print(f"  {k}: ingest {med[k]:.2f} s ({out['ms_per_page'][k]:.1f} ms/page, {chunks[k]} "
                  f"chunks), of which reading {out['read_s'][k]:.2f} s")
        verdict = "PASS" if out["ratio"] <= TARGET_RATIO else "FAIL"
        print(f"  ratio pdf/txt: {out['ratio']:.2f}x ({verdict} against {TARGET_RATIO}x)")
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
