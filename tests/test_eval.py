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


def test_strict_multiple_choice_reading_and_cells(tmp_path):
    from rag.evaluate import names_wrong_choice

    mc = {**Q, "key_facts": [["Europe"]], "gold_sources": [["a"]], "choices": ["Europe", "Asia", "Africa"],
          "answer_choice": "Europe"}
    p = _passage("a", "Europe will require a common charger.")
    right = Answer("?", "Europe [1].", [_cite(1, "a")], [p], False)
    hedged = Answer("?", "Europe or Asia [1].", [_cite(1, "a")], [p], False)
    assert score(mc, right)["answer_correctness_strict"] == 1.0
    s = score(mc, hedged)
    assert s["answer_correctness"] == 1.0 and s["answer_correctness_strict"] == 0.0
    assert "answer_correctness_strict" not in score(Q, right)  # no choices: no strict reading
    assert not names_wrong_choice({"choices": ["Paris", "Paris, Texas"], "answer_choice": "Paris, Texas"},
                                  "paris, texas")


def test_overlap_judge_is_independent_and_reads_characters():
    from rag.evaluate import OverlapJudge

    j = OverlapJudge()
    passage = "Daniel Zhang stepped down. He was replaced by Eddie Wu, who leads the cloud unit since 2023."
    assert j.supports("Eddie Wu leads the cloud unit", passage, "en")
    assert not j.supports("Eddie Wu leads the cloud unit since 2021", passage, "en")  # a digit run
    assert not j.supports("Sam Altman runs OpenAI's research lab", passage, "en")
    zh = "败血症是一种血液中毒，由细菌引起。"
    assert j.supports("败血症是一种血液中毒。", zh, "zh")  # Chinese: character pairs
    assert j.supports("Eddie Wu 于2023年接任。", passage, "en")  # across scripts: names and numbers
    assert not j.supports("王先生于2023年接任。", passage, "en")  # nothing comparable across scripts


def test_eval_corpus_gets_a_store_of_its_own_keyed_by_content(tmp_path):
    from rag.config import Config
    from rag.evaluate import corpus_key

    c = tmp_path / "c"
    c.mkdir()
    (c / "a.txt").write_text("One article.")
    cfg = Config()
    k1 = corpus_key(c, cfg)
    assert corpus_key(c, cfg) == k1 and k1.startswith("c-")
    (c / "a.txt").write_text("One article, edited.")
    assert corpus_key(c, cfg) != k1
    assert corpus_key(c, cfg.replace(chunk_tokens=200)) != corpus_key(c, cfg)


def test_combined_report_has_cells(tmp_path):
    from rag.evaluate import aggregate, bootstrap, combine

    rows = [{"scores": {**score(Q, Answer("?", "Hangzhou Beijing [1].", [_cite(1, "a")], [_passage("a", "Hangzhou Beijing")], False)),
                        }, "latency_s": 1.0, "category": "multi", "language": "zh", "source_language": "en"}]
    sm = {**aggregate(rows), "model": "m", "wall_seconds": 1, "questions_file": "q.jsonl",
          "by_category": {"multi": aggregate(rows)}, "by_cell": {"zh->en": aggregate(rows)}, "ci95": bootstrap(rows, n=20)}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text(json.dumps(sm))
    text = combine(tmp_path / "r.md", [tmp_path / "run"])
    assert "## run" in text and "zh->en" in text and (tmp_path / "r.md").read_text() == text


def test_make_eval_external_says_when_the_dev_sets_are_absent(tmp_path):
    out = subprocess.run(["make", "-s", "eval-external", f"SHARED_BENCH={tmp_path}/none", "VENV=.venv"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "is not here" in out.stdout and "nothing was run" in out.stdout
