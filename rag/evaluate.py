"""Question file -> metrics and report, exactly as ``shared/docs/eval-format.md`` defines them.

Reads any JSON Lines file in that format (a bad line is reported with its number and skipped),
asks every question with one loaded ``Bot``, scores each answer, and writes ``summary.json``,
``results.jsonl``, ``report.md`` and a self-contained ``report.html``. The grounding judge for
``supported_sentence_rate`` is ``grounding.support`` (deterministic: names, numbers and content
words of a sentence must occur in the passages it cites). This module never changes answers.
"""
from __future__ import annotations

import html
import json
import random
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

from . import text as tx
from .errors import RagError
from .grounding import support

METRICS = ["answer_correctness", "answer_correctness_strict", "refusal_recall", "refusal_precision", "false_refusal_rate",
           "citation_precision", "citation_support_precision", "citation_recall", "supported_sentence_rate",
           "retrieval_recall_at_k", "mrr", "truthfulness", "answer_in_question_language"]
REQUIRED = {"id": str, "category": str, "language": str, "answerable": bool, "question": str,
            "key_facts": list, "gold_sources": list}
GROUPED = ("key_facts", "gold_sources")  # lists of lists of strings: groups of alternatives


def corpus_key(folder: Path, config) -> str:
    """A store name for a corpus folder: a hash of its files' names and bytes, the embedder (model
    and backend) and the chunk size, so the same corpus reuses its store and a changed one gets a new one."""
    import hashlib

    h = hashlib.sha256(f"{config.embedder}|{config.embedder_backend}|{config.chunk_tokens}".encode())
    for f in sorted(folder.iterdir()):
        if f.is_file():
            h.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return f"{folder.resolve().name}-{h.hexdigest()[:16]}"


def read_questions(path: Path) -> tuple[list[dict], list[str]]:
    """The valid questions of a question file, and a problem per bad line ("line 3: ...; skipped").
    A file that cannot be read at all (missing, not UTF-8) is a ``RagError``."""
    questions, problems, seen = [], [], set()
    for n, line in enumerate(_read_text(path, "--questions").splitlines(), 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
            if not isinstance(q, dict):
                raise ValueError("not a JSON object; each line is one question {\"id\": ..., ...}")
            for k, t in REQUIRED.items():
                if not isinstance(q.get(k), t):
                    raise ValueError(f"field {k!r} missing or not a {t.__name__}")
            for k in GROUPED:
                if not all(isinstance(g, list) and all(isinstance(x, str) for x in g) for g in q[k]):
                    raise ValueError(f"field {k!r} must be a list of lists of strings (each inner "
                                     f'list one required item, as alternatives), e.g. [["a"], ["b", "c"]]')
            if q["id"] in seen:
                raise ValueError(f"duplicate id {q['id']!r}")
        except (json.JSONDecodeError, ValueError) as e:
            problems.append(f"line {n}: {e}; skipped")
            continue
        seen.add(q["id"])
        questions.append(q)
    return questions, problems


def _read_text(path: Path, what: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except UnicodeDecodeError as e:
        raise RagError(f"{what} {path}: not UTF-8 text (bad byte at offset {e.start}); re-save it "
                       "as UTF-8") from None
    except OSError as e:
        raise RagError(f"{what} {path}: cannot be read ({e.strerror or e.__class__.__name__}); give "
                       "an existing JSON Lines file (shared/docs/eval-format.md)") from None


def fact_match(group: list[str], answer_norm: str) -> bool:
    return any(tx.normalize(alt) in answer_norm for alt in group)


def holds_key_facts(q: dict, answer_norm: str) -> bool:
    """Does the (normalised) answer state every key fact of question ``q``?"""
    return all(fact_match(g, answer_norm) for g in q["key_facts"])


def names_wrong_choice(q: dict, answer_norm: str) -> bool:
    """Does the answer also name an option other than the correct one? (A wrong option that is
    part of the correct one's words, "Paris" in "Paris, Texas", does not count.)"""
    right = tx.normalize(q.get("answer_choice") or "")
    return any(w and w not in right and w in answer_norm
               for w in (tx.normalize(c) for c in q["choices"]) if w != right)


def retrieval_scores(groups: list[list[str]], passages) -> tuple[float, float]:
    """(recall at k, reciprocal rank) of the gold documents among ``passages``: a group counts
    when any of its documents was retrieved; a passage's folded near-duplicates count too (the
    passage stands for both documents)."""
    retrieved_sets = [{p.doc_id, *(d["doc_id"] for d in p.duplicates)} for p in passages]
    recall = (sum(any(any(d in rs for rs in retrieved_sets) for d in g) for g in groups)
              / len(groups)) if groups else 0.0
    gold = {d for g in groups for d in g}
    return recall, next((1.0 / (i + 1) for i, rs in enumerate(retrieved_sets) if rs & gold), 0.0)


def score(q: dict, a) -> dict:
    """Per-question scores; a metric that does not apply to the question is absent."""
    s: dict = {}
    refused = bool(a.refused)
    norm = tx.normalize(a.text)
    cited_docs = []
    for c in a.citations:
        if c.doc_id not in cited_docs:
            cited_docs.append(c.doc_id)
    retrieved = [p.doc_id for p in a.passages]
    if q["answerable"]:
        correct = (not refused) and holds_key_facts(q, norm)
        s["answer_correctness"] = float(correct)
        if q.get("choices"):  # multiple choice: the strict reading also needs no wrong option named
            s["answer_correctness_strict"] = float(correct and not names_wrong_choice(q, norm))
        s["false_refusal_rate"] = float(refused)
        groups = q["gold_sources"]
        if not refused and cited_docs:
            gold = {d for g in groups for d in g}
            s["citation_precision"] = sum(d in gold for d in cited_docs) / len(cited_docs)
            support = citation_support(q, a)
            if support is not None:
                s["citation_support_precision"] = support
        s["citation_recall"] = (sum(any(d in cited_docs for d in g) for g in groups) / len(groups)
                                if groups and not refused and cited_docs else 0.0)
        if not refused:
            s["supported_sentence_rate"] = supported_rate(a)
        s["retrieval_recall_at_k"], s["mrr"] = retrieval_scores(groups, a.passages)
        s["truthfulness"] = 1.0 if correct else (0.0 if refused else -1.0)
    else:
        s["refusal_recall"] = float(refused)
        s["truthfulness"] = 1.0 if refused else -1.0
    p_correct = a.confidence.get("p_correct")
    if p_correct is not None:  # the refusal score against what happened (a refused one: its draft)
        s["_p_correct"] = p_correct
        s["_right"] = float(q["answerable"] and holds_key_facts(q, tx.normalize(a.draft) if refused else norm))
    if q["language"] in tx.LANGUAGE_NAMES:  # is the answer's first sentence (or refusal) in the asker's language?
        s["answer_in_question_language"] = float(tx.first_sentence_language(a.text) in (q["language"], "und"))
    s["_refused"] = refused
    s["_answerable"] = q["answerable"]
    s["_cited_docs"] = cited_docs
    s["_retrieved"] = retrieved
    return s


def citation_support(q: dict, a, judge=None) -> float | None:
    """Cited passages that support the sentence citing them / citations (ALCE's citation
    precision): a citation counts when its passage holds an alternative of a key fact that the
    citing sentence states, or when the independent judge (``OverlapJudge``) finds the passage
    supports the sentence. Unlike ``citation_precision`` it does not require the gold article: a
    news archive holds other articles of the same week that state the same fact. None when the
    answer cites nothing."""
    judge = judge or OverlapJudge()
    ok = total = 0
    for s in a.sentences:
        text = tx.strip_markers(s.text)
        stated = [alt for g in q.get("key_facts") or [] for alt in g if tx.normalize(alt) in tx.normalize(text)]
        for n in s.citations:
            if not 1 <= n <= len(a.passages):
                continue
            p = a.passages[n - 1]
            total += 1
            p_norm = tx.normalize(p.text)
            ok += any(tx.normalize(alt) in p_norm for alt in stated) or judge.supports(text, p.text, p.language)
    return ok / total if total else None


def supported_rate(a, judge=None) -> float:
    """Answer sentences that a passage they cite supports, by ``judge`` (the independent
    ``OverlapJudge`` by default, not the check the pipeline filters with) / answer sentences."""
    judge = judge or OverlapJudge()
    sents = tx.split_sentences(a.text)
    if not sents:
        return 0.0
    by_num = {i + 1: p for i, p in enumerate(a.passages)}
    ok = 0
    for s in sents:
        nums = [n for n in tx.markers(s) if n in by_num]
        plain = tx.strip_markers(s)
        if nums and any(judge.supports(plain, by_num[n].text, by_num[n].language) for n in nums):
            ok += 1
    return ok / len(sents)


class RulesJudge:
    """The pipeline's own check (``grounding.support``): names and numbers must occur in the
    passage, plus content-word overlap. Reported for comparison; it cannot judge itself."""
    name = "rules"

    def supports(self, sentence: str, passage_text: str, passage_language: str) -> bool:
        lang = tx.language_of(sentence, min_chars=0)
        same = lang in ("und", passage_language) or not passage_language
        return support(sentence, passage_text, same_language=same).supported


class OverlapJudge:
    """An independent judge of support: it shares no rule with the pipeline's check. It reads
    characters, not words: the sentence's character trigrams (pairs for Chinese) must mostly
    occur in the passage, and every digit run of the sentence too. Across scripts (a Chinese
    sentence, an English passage), where trigrams cannot match, the sentence's digit runs and
    Latin-script capitalised tokens must all occur in the passage, and there must be a name
    among them (a bare number says too little).

    Example: "Eddie Wu leads the cloud unit" / "... was replaced by Eddie Wu, who leads the
    cloud unit ..." -> supported (every trigram occurs)."""
    name = "overlap"
    MIN_CONTAINMENT = 0.6  # share of the sentence's n-grams in the passage (set a priori)

    @staticmethod
    def _grams(text: str) -> set[str]:
        t = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
        han = "".join(tx.CJK.findall(t))
        latin = tx.CJK.sub(" ", t)
        latin = " ".join(re.findall(r"[^\W_]+", latin))
        return ({latin[i:i + 3] for i in range(len(latin) - 2)}
                | {han[i:i + 2] for i in range(len(han) - 1)})

    def supports(self, sentence: str, passage_text: str, passage_language: str) -> bool:
        digits = set(re.findall(r"\d+", sentence))
        if not digits <= set(re.findall(r"\d+", passage_text)):
            return False
        g_s, g_p = self._grams(sentence), self._grams(passage_text)
        if g_s and len(g_s & g_p) / len(g_s) >= self.MIN_CONTAINMENT:
            return True
        han_s, han_p = bool(tx.CJK.search(sentence)), bool(tx.CJK.search(passage_text))
        if han_s != han_p:  # different scripts: names and numbers are what can be compared
            caps = set(re.findall(r"\b[A-Z][A-Za-z]+\b", sentence))
            p_norm = passage_text.casefold()
            return bool(caps) and all(c.casefold() in p_norm for c in caps)
        return False


class LLMJudge:
    """The local LLM asked a constrained yes/no support question (greedy, 2 tokens)."""
    name = "llm"
    PROMPT = ("You check facts. Reply with one word, yes or no: does the passage state everything "
              "the sentence claims?")

    def __init__(self, llm):
        self.llm = llm

    def supports(self, sentence: str, passage_text: str, passage_language: str) -> bool:
        msgs = [{"role": "system", "content": self.PROMPT},
                {"role": "user", "content": f"Passage: {passage_text}\n\nSentence: {sentence}\n\n"
                                            "Does the passage state everything the sentence claims? yes or no?"}]
        out = self.llm.complete(msgs, max_tokens=3).text.strip().casefold()
        return out.startswith("yes") or out.startswith("sì") or out.startswith("是")


def read_judge_labels(path: Path) -> tuple[list[dict], str]:
    """Hand-labelled (sentence, passage, label) pairs, and "" or what is wrong with the file (a
    judge's accuracy is a side report: a bad labels file must not cost a run its results)."""
    if not Path(path).exists():
        return [], ""
    pairs = []
    try:
        for n, line in enumerate(_read_text(path, "judge labels").splitlines(), 1):
            if not line.strip():
                continue
            try:
                p = json.loads(line)
                if not (isinstance(p, dict) and isinstance(p.get("sentence"), str)
                        and isinstance(p.get("passage"), str) and "label" in p):
                    raise ValueError('not an object with "sentence", "passage" and "label"')
            except ValueError as e:
                return [], f"judge labels {path}: line {n}: {e}; judge accuracy is not reported"
            pairs.append(p)
    except RagError as e:
        return [], f"{e}; judge accuracy is not reported"
    return pairs, ""


def judge_accuracy(judge, pairs: list[dict]) -> dict | None:
    """Accuracy of a judge on hand-labelled (sentence, passage) pairs (``read_judge_labels``)."""
    if not pairs:
        return None
    tp = fp = tn = fn = 0
    for p in pairs:
        got = judge.supports(p["sentence"], p["passage"], p.get("passage_language", ""))
        if got and p["label"]:
            tp += 1
        elif got:
            fp += 1
        elif p["label"]:
            fn += 1
        else:
            tn += 1
    n = len(pairs)
    return {"judge": judge.name, "pairs": n, "accuracy": round((tp + tn) / n, 4) if n else None,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn}}


def aggregate(rows: list[dict]) -> dict:
    out = {}
    for m in METRICS:
        vals = [r["scores"][m] for r in rows if m in r["scores"]]
        out[m] = round(statistics.fmean(vals), 4) if vals else None
    refused = [r for r in rows if r["scores"]["_refused"]]
    unans_refused = [r for r in refused if not r["scores"]["_answerable"]]
    out["refusal_precision"] = round(len(unans_refused) / len(refused), 4) if refused else None
    lat = sorted(r["latency_s"] for r in rows)
    out["latency_p50_s"] = round(_pct(lat, 50), 3) if lat else None
    out["latency_p90_s"] = round(_pct(lat, 90), 3) if lat else None
    out["n_questions"] = len(rows)
    return out


def auroc(score: list[float], label: list[float]) -> float | None:
    """P(a positive scores above a negative), ties counting a half (Mann-Whitney); None
    without both kinds."""
    pos = [s for s, t in zip(score, label) if t == 1]
    neg = [s for s, t in zip(score, label) if t == 0]
    if not pos or not neg:
        return None
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def reliability(predicted: list[float], label: list[float], bins: int = 5) -> list[dict]:
    """Equal-count bins of a predicted probability: mean prediction against the share right."""
    order = sorted(range(len(predicted)), key=lambda i: predicted[i])
    out = []
    for k in range(bins):
        idx = order[k * len(order) // bins:(k + 1) * len(order) // bins]
        if idx:
            out.append({"predicted": round(statistics.fmean(predicted[i] for i in idx), 3),
                        "observed": round(statistics.fmean(label[i] for i in idx), 3), "n": len(idx)})
    return out


def calibration(rows: list[dict]) -> dict | None:
    """How well the calibrated P(correct) (rag.confidence) told right answers from wrong ones on
    this run: ROC AUC and the reliability bins; None when no answer carried one. A refused
    answer counts by its draft (was what the bot withheld right?)."""
    pairs = [(r["scores"]["_p_correct"], r["scores"]["_right"]) for r in rows if "_p_correct" in r["scores"]]
    if not pairs:
        return None
    p, y = [a for a, _ in pairs], [b for _, b in pairs]
    a = auroc(p, y)
    return {"n": len(pairs), "auroc": None if a is None else round(a, 3), "bins": reliability(p, y)}


def _pct(sorted_vals: list[float], p: float) -> float:
    if len(sorted_vals) == 1:
        return sorted_vals[0]
    k = (len(sorted_vals) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def bootstrap(rows: list[dict], n: int = 1000, seed: int = 0) -> dict:
    """95% intervals of each metric over question resamples."""
    rng = random.Random(seed)
    samples = {m: [] for m in METRICS}
    for _ in range(n):
        res = aggregate([rows[rng.randrange(len(rows))] for _ in rows])
        for m in METRICS:
            if res[m] is not None:
                samples[m].append(res[m])
    return {m: [round(_pct(sorted(v), 2.5), 4), round(_pct(sorted(v), 97.5), 4)] if v else None
            for m, v in samples.items()}


def run_eval(args, config, llm=None) -> int:
    """``rag eval``; ``llm``: a model to answer with instead of the configured one (tests)."""
    from tqdm import tqdm

    from .bot import Bot

    if args.limit is not None and args.limit < 1:
        raise RagError(f"--limit {args.limit}: give the number of questions to ask, 1 or more")
    questions, problems = read_questions(args.questions)
    for p in problems:
        print(f"{args.questions}: {p}", file=sys.stderr)
    if args.limit:
        questions = questions[: args.limit]
    out = Path(args.out)
    try:  # before any question is asked: a run is never lost at the end for want of a folder
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise RagError(f"--out {out}: cannot be created or written ({e.strerror or e}); give a "
                       "folder you can write to") from None
    labels = Path(args.judge_labels) if getattr(args, "judge_labels", None) else \
        Path(args.questions).with_name("judge_labels.jsonl")  # beside the questions, if any
    label_pairs, label_problem = read_judge_labels(labels)
    if label_problem:
        print(label_problem, file=sys.stderr)
    if not questions:
        print("no valid questions", file=sys.stderr)
        return 2
    corpus = getattr(args, "corpus", None)
    if corpus is not None:  # a store of its own for that corpus, reused while its files are the same
        if not Path(corpus).is_dir():
            print(f"error: --corpus {corpus}: no such folder", file=sys.stderr)
            return 2
        config = config.replace(corpus_dir=Path(corpus).resolve(),
                                store_dir=config.home / "eval-stores" / corpus_key(Path(corpus), config))
    bot = Bot.from_config(config, llm=llm)
    if corpus is not None or bot.store.count() == 0:
        rep = bot.ingest([config.corpus_dir], progress=sys.stderr.isatty())
        print(f"corpus {config.corpus_dir}: {rep.summary()} (store {config.store_path})", file=sys.stderr)
    bot.llm  # loaded once, before the clock starts
    k = args.k or config.top_k
    rows = []
    t_start = time.perf_counter()
    for q in tqdm(questions, desc="eval", unit="q", file=sys.stderr):
        t0 = time.perf_counter()
        # the day the question was asked (RealTime QA's question_date): later articles are not evidence
        a = bot.ask(q["question"], k, as_of=q.get("question_date") or None)
        latency = time.perf_counter() - t0
        s = score(q, a)
        rows.append({"id": q["id"], "category": q["category"], "language": q["language"],
                     "source_language": q.get("source_language", ""),
                     "answerable": q["answerable"], "question": q["question"],
                     "reference_answer": q.get("reference_answer", ""), "answer": a.text,
                     "refused": a.refused, "refusal_reason": a.refusal_reason, "draft": a.draft, "confidence": a.confidence,
                     "flagged": a.flagged, "citations": [c.to_dict() for c in a.citations],
                     "retrieved": [{"chunk_id": p.chunk_id, "doc_id": p.doc_id, "score": p.score,
                                    "dense_score": p.dense_score, "text": p.text} for p in a.passages],
                     "scores": s, "latency_s": round(latency, 3), "timings": a.timings,
                     "tokens": a.tokens})
    wall = time.perf_counter() - t_start
    summary = aggregate(rows)
    summary.update(model=bot.llm.model_id, embedder=bot.embedder.name, top_k=k,
                   questions_file=str(args.questions), skipped_lines=problems,
                   wall_seconds=round(wall, 1), judge=OverlapJudge.name)
    cells = sorted({(r["language"], r["source_language"]) for r in rows if r["source_language"]})
    if cells:  # (question language, source language) pairs, where the file gives them
        summary["by_cell"] = {f"{ql}->{sl}": aggregate([r for r in rows if (r["language"], r["source_language"]) == (ql, sl)])
                              for ql, sl in cells}
    summary["by_category"] = {c: aggregate([r for r in rows if r["category"] == c])
                              for c in sorted({r["category"] for r in rows})}
    summary["ci95"] = bootstrap(rows)
    summary["refusal_calibration"] = calibration(rows)
    judges = [OverlapJudge(), RulesJudge()] + ([LLMJudge(bot.llm)] if getattr(args, "judge", "rules") == "llm" else [])
    summary["judge_accuracy"] = [a for a in (judge_accuracy(j, label_pairs) for j in judges) if a]
    if label_problem:
        summary["judge_labels_problem"] = label_problem
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    with open(out / "results.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(report_md(summary, rows))
    (out / "report.html").write_text(report_html(summary, rows))
    print(table(summary))
    if summary.get("by_cell"):
        print(table(summary, "by_cell"))
    for ja in summary["judge_accuracy"]:
        print(f"judge {ja['judge']}: accuracy {ja['accuracy']} on {ja['pairs']} hand-labelled pairs "
              f"(precision {ja['precision']}, recall {ja['recall']})")
    print(f"wrote {out}/summary.json, results.jsonl, report.md, report.html ({wall:.0f}s)")
    status = 0
    if args.compare:
        print(compare(summary, json.loads(Path(args.compare).read_text())))
    if args.baseline:
        failures = check_baseline(summary, json.loads(Path(args.baseline).read_text()))
        for f in failures:
            print("REGRESSION: " + f, file=sys.stderr)
        status = 1 if failures else 0
    return status


def table(summary: dict, by: str = "by_category") -> str:
    """The metrics, overall and per group (``by_category``, or ``by_cell``: question language ->
    source language)."""
    groups = summary.get(by) or {}
    cats = list(groups)
    head = "| metric | all | " + " | ".join(cats) + " |"
    lines = [head, "|" + "---|" * (len(cats) + 2)]
    for m in METRICS + ["latency_p50_s", "latency_p90_s", "n_questions"]:
        vals = [summary.get(m)] + [groups[c].get(m) for c in cats]
        lines.append(f"| {m} | " + " | ".join("-" if v is None else f"{v:g}" for v in vals) + " |")
    return "\n".join(lines)


def compare(new: dict, old: dict) -> str:
    lines = ["| metric | new | old | diff | new 95% CI |", "|---|---|---|---|---|"]
    for m in METRICS:
        a, b = new.get(m), old.get(m)
        d = f"{a - b:+.3f}" if a is not None and b is not None else "-"
        ci = new.get("ci95", {}).get(m)
        lines.append(f"| {m} | {a} | {b} | {d} | {ci} |")
    return "\n".join(lines)


def check_baseline(summary: dict, baseline: dict) -> list[str]:
    """Metrics that fell below baseline minus its committed noise margin."""
    out = []
    for m, spec in baseline["metrics"].items():
        v = summary.get(m)
        if v is None:
            continue
        lower_is_better = m == "false_refusal_rate"
        if lower_is_better and v > spec["value"] + spec["margin"]:
            out.append(f"{m} = {v} > {spec['value']} + {spec['margin']}")
        if not lower_is_better and v < spec["value"] - spec["margin"]:
            out.append(f"{m} = {v} < {spec['value']} - {spec['margin']}")
    return out


def _worst(rows: list[dict], n: int = 10) -> list[dict]:
    return sorted(rows, key=lambda r: (r["scores"]["truthfulness"], r["scores"].get("answer_correctness", 1)))[:n]


def report_md(summary: dict, rows: list[dict]) -> str:
    parts = [f"# Evaluation report\n\nmodel `{summary['model']}`, embedder `{summary['embedder']}`, "
             f"top_k {summary['top_k']}, {summary['n_questions']} questions, {summary['wall_seconds']} s\n",
             table(summary)] + (["\n## By question language -> source language\n", table(summary, "by_cell")]
                                if summary.get("by_cell") else []) + ["\n## 95% bootstrap intervals\n"]
    parts += [f"- {m}: {summary[m]} {summary['ci95'].get(m)}" for m in METRICS]
    parts.append("\n## Ten worst answers\n")
    for r in _worst(rows):
        parts.append(f"### {r['id']} ({r['category']}, {r['language']})\n\n**Q:** {r['question']}\n\n"
                     f"**A:** {r['answer']}\n\n**Reference:** {r['reference_answer']}\n\n"
                     f"refused={r['refused']} ({r['refusal_reason']}); scores: "
                     + ", ".join(f"{k}={v}" for k, v in r["scores"].items() if not k.startswith("_")) + "\n")
        for c in r["citations"]:
            parts.append(f"- cited [{c['number']}] {c['doc_id']}: \"{c['quote']}\"")
        parts.append("- retrieved: " + ", ".join(f"{x['doc_id']} ({x['score']})" for x in r["retrieved"]) + "\n")
    return "\n".join(parts) + "\n"


def report_html(summary: dict, rows: list[dict]) -> str:
    from .charts import calibration_curve, cell_grid, metric_bars

    e = html.escape
    cats = list(summary["by_category"])
    svg = [metric_bars(summary, METRICS)]
    if summary.get("by_cell"):  # the (question language, source language) cells at a glance
        svg += [cell_grid(summary["by_cell"], "answer_correctness", "answer_correctness by question -> source language"),
                cell_grid(summary["by_cell"], "retrieval_recall_at_k", "retrieval_recall_at_k by question -> source language")]
    if summary.get("refusal_calibration"):
        svg.append(calibration_curve(summary["refusal_calibration"]))
    rows_html = []
    for m in METRICS + ["latency_p50_s", "latency_p90_s", "n_questions"]:
        vals = [summary.get(m)] + [summary["by_category"][c].get(m) for c in cats]
        ci = summary["ci95"].get(m)
        rows_html.append(f"<tr><th>{m}</th>" + "".join(f"<td>{'-' if v is None else v}</td>" for v in vals)
                         + f"<td>{e(str(ci or ''))}</td></tr>")
    worst = []
    for r in _worst(rows):
        cites = "".join(f"<li>[{c['number']}] {e(c['doc_id'])}: <q>{e(c['quote'])}</q></li>" for c in r["citations"])
        retr = "".join(f"<li>{e(x['doc_id'])} ({x['score']}): {e(x['text'][:300])}</li>" for x in r["retrieved"])
        worst.append(f"<section><h3>{e(r['id'])} ({e(r['category'])})</h3><p><b>Q:</b> {e(r['question'])}</p>"
                     f"<p><b>A:</b> {e(r['answer'])}</p><p><b>Reference:</b> {e(r['reference_answer'])}</p>"
                     f"<p>refused={r['refused']} {e(r['refusal_reason'])}</p><p>Citations:</p><ul>{cites}</ul>"
                     f"<details><summary>Retrieved passages</summary><ul>{retr}</ul></details></section>")
    return ("<!doctype html><meta charset='utf-8'><title>rag eval report</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{border:1px solid #ccc;"
            "padding:3px 6px}table{border-collapse:collapse}.cell-grid{margin:1em 0}.cell-grid td"
            "{text-align:center;min-width:5em}.chart{display:block;margin:1em 0}</style>"
            f"<h1>Evaluation report</h1><p>model {e(summary['model'])}, embedder {e(summary['embedder'])}, "
            f"top_k {summary['top_k']}, {summary['n_questions']} questions, {summary['wall_seconds']} s</p>"
            "<table><tr><th>metric</th><th>all</th>" + "".join(f"<th>{e(c)}</th>" for c in cats)
            + "<th>95% CI (all)</th></tr>" + "".join(rows_html) + "</table><h2>At a glance</h2>"
            + "".join(svg) + "<h2>Ten worst answers</h2>" + "".join(worst))


def combine(out: Path, runs: list[Path]) -> str:
    """One report of several runs' ``summary.json`` (``make eval-external``)."""
    parts = ["# Evaluation on external question sets\n"]
    for d in runs:
        sm = json.loads((Path(d) / "summary.json").read_text())
        parts += [f"## {Path(d).name}\n", f"{sm['n_questions']} questions from `{sm.get('questions_file')}`, "
                  f"model `{sm['model']}`, {sm['wall_seconds']} s\n", table(sm)]
        if sm.get("by_cell"):
            parts += ["\nBy question language -> source language:\n", table(sm, "by_cell")]
        parts += ["\n95% intervals: " + ", ".join(f"{m} {sm['ci95'].get(m)}" for m in METRICS
                                                  if sm["ci95"].get(m)) + "\n"]
    text = "\n".join(parts) + "\n"
    Path(out).write_text(text)
    return text


if __name__ == "__main__":  # python -m rag.evaluate combine OUT.md RUN_DIR [RUN_DIR ...]
    if len(sys.argv) < 4 or sys.argv[1] != "combine":
        sys.exit("usage: python -m rag.evaluate combine OUT.md RUN_DIR [RUN_DIR ...]")
    print(combine(Path(sys.argv[2]), [Path(a) for a in sys.argv[3:]]))
