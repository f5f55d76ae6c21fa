"""The evaluation command: metric definitions on hand-made answers, then a real run of the fast subset."""
import json
import subprocess
import sys
from pathlib import Path

from rag.types import Answer, Citation
from rag.evaluate import aggregate, read_questions, score
from rag.types import Passage

ROOT = Path(__file__).resolve().parent.parent


def _passage(doc, text):
    return Passage(1, f"{doc}:c", doc, text, 0, len(text), 0.1, 0.6, None, language="en")


def _cite(n, doc):
    return Citation(n, doc, "t", "", "", "", f"{doc}:c", 0, 10, "q", 0, 1)


Q = {"id": "q", "category": "multi", "language": "en", "answerable": True, "question": "?",
     "key_facts": [["Hangzhou"], ["Beijing", "Peking"]], "gold_sources": [["a"], ["b", "b2"]]}


def test_metrics_follow_eval_format():
    pa, pc = _passage("a", "The firm is in Hangzhou."), _passage("c", "Beijing is large.")
    a = Answer("?", "It is in Hangzhou [1]. Also Peking [2].", [_cite(1, "a"), _cite(2, "c")], [pa, pc], False)
    s = score(Q, a)
    assert s["answer_correctness"] == 1.0
    assert s["citation_precision"] == 0.5  # c is in no gold group
    assert s["citation_recall"] == 0.5  # group [b, b2] not cited
    assert s["retrieval_recall_at_k"] == 0.5 and s["mrr"] == 1.0
    assert s["supported_sentence_rate"] == 0.5  # "Peking" is not in passage c
    refused = Answer("?", "no", [], [pa], True)
    s2 = score(Q, refused)
    assert s2["answer_correctness"] == 0 and s2["citation_recall"] == 0 and s2["truthfulness"] == 0
    un = {**Q, "answerable": False, "key_facts": [], "gold_sources": []}
    s3 = score(un, refused)
    agg = aggregate([{"scores": s2, "latency_s": 1.0}, {"scores": s3, "latency_s": 3.0}])
    assert agg["refusal_recall"] == 1.0 and agg["refusal_precision"] == 0.5
    assert agg["false_refusal_rate"] == 1.0 and agg["latency_p50_s"] == 2.0


def test_bad_lines_are_reported_not_fatal(tmp_path):
    f = tmp_path / "q.jsonl"
    good = json.dumps({**Q, "id": "ok"})
    f.write_text(good + "\n{not json\n" + json.dumps({"id": "x"}) + "\n" + good + "\n")
    qs, problems = read_questions(f)
    assert [q["id"] for q in qs] == ["ok"]
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4"]


def test_fast_subset_against_baseline(tmp_path):
    """The real bot on eval/questions-fast.jsonl; fails when a metric drops below the baseline."""
    env_store = tmp_path / "store"
    out = tmp_path / "eval-out"
    import os

    env = {**os.environ, "RAG_STORE_DIR": str(env_store)}
    r = subprocess.run([sys.executable, "-m", "rag.cli", "eval", "--questions",
                        str(ROOT / "eval/questions-fast.jsonl"), "--out", str(out),
                        "--baseline", str(ROOT / "eval/baseline.json")],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    keys = ["n_questions", "answer_correctness", "refusal_recall", "refusal_precision",
            "false_refusal_rate", "citation_precision", "citation_recall", "supported_sentence_rate",
            "retrieval_recall_at_k", "mrr", "truthfulness", "latency_p50_s", "latency_p90_s",
            "model", "embedder", "top_k", "by_category"]
    assert all(k in summary for k in keys)
    assert summary["n_questions"] == 10 and set(summary["by_category"]) >= {"single", "unanswerable"}
    for name in ("results.jsonl", "report.md", "report.html"):
        assert (out / name).stat().st_size > 0
