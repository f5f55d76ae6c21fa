"""``python -m bench.calibrate``: fit a reader's confidence model (rag.confidence) and judge it.

Input: ``rag eval`` runs made with ``RAG_SELF_CHECK=1 RAG_MIN_CONFIDENCE=0`` (each answer carries
the reader's P(yes), and nothing is refused once a sentence is verified, so every answer's
correctness is known), one results.jsonl per development set.
Each row with a self-check is one example: its features (rag.confidence.features) and its
label, 1 when the question is answerable and the answer is right (the eval's
answer_correctness), else 0.

Method, stated before looking at any result: logistic regression fitted by Newton's method with
an L2 penalty of 1.0 on the weights (not the bias), the threshold fixed at 0.5 by the
truthfulness scoring (rag.confidence). It is judged by leave-one-set-out: each set is scored
with the model fitted on the others, so every figure printed (ROC AUC, reliability bins, the
refusal and truthfulness figures the threshold would give) is on data the fit did not see. The
model written to ``rag/data/calibration.json`` (``--write``) is then fitted on all given sets.

    python -m bench.calibrate --reader qwen2.5-coder-0.5b rtqa-dev=DIR/results.jsonl \\
        xlqa-dev=DIR2/results.jsonl [--check bundled=DIR3/results.jsonl] [--write]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np

from rag import confidence
from rag.evaluate import auroc, reliability

L2 = 1.0
THRESHOLD = 0.5


def examples(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        c = r.get("confidence") or {}
        if "p_yes" not in c:
            out.append({"row": r, "x": None, "y": None})
            continue
        y = float(r["answerable"] and r["scores"].get("answer_correctness") == 1.0 and not r["refused"])
        out.append({"row": r, "x": confidence.features(c["p_yes"], c), "y": y})
    return out


def fit(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    A = np.hstack([X, np.ones((len(X), 1))])
    w = np.zeros(A.shape[1])
    pen = np.full(A.shape[1], L2)
    pen[-1] = 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-A @ w))
        grad = A.T @ (p - y) + pen * w
        H = (A * (p * (1 - p))[:, None]).T @ A + np.diag(pen) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(H, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w[:-1], float(w[-1])


def predict(w: np.ndarray, b: float, X: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(X @ w + b)))


def decide(exs: list[dict], p: list[float | None]) -> dict:
    """The eval's answer metrics had each checked answer been refused below THRESHOLD."""
    truth, correct, ans_refused, unans_refused, n_ans, n_unans = [], [], 0, 0, 0, 0
    for e, pc in zip(exs, p):
        r = e["row"]
        refused = r["refused"] or (pc is not None and pc < THRESHOLD)
        right = (not refused) and r["answerable"] and r["scores"].get("answer_correctness") == 1.0
        if r["answerable"]:
            n_ans += 1
            ans_refused += refused
            correct.append(float(right))
            truth.append(1.0 if right else (0.0 if refused else -1.0))
        else:
            n_unans += 1
            unans_refused += refused
            truth.append(1.0 if refused else -1.0)
    return {"answer_correctness": round(float(np.mean(correct)), 3) if correct else None,
            "truthfulness": round(float(np.mean(truth)), 3),
            "refusal_recall": round(unans_refused / n_unans, 3) if n_unans else None,
            "false_refusal_rate": round(ans_refused / n_ans, 3) if n_ans else None}


def matrix(exs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    ok = [e for e in exs if e["x"] is not None]
    return np.array([e["x"] for e in ok], float), np.array([e["y"] for e in ok], float)


def scored(exs: list[dict], w, b) -> list[float | None]:
    return [None if e["x"] is None else float(predict(w, b, np.array([e["x"]]))[0]) for e in exs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.calibrate", description=__doc__.split("\n")[0])
    ap.add_argument("--reader", required=True, help="the model id the runs used (rag.models preset)")
    ap.add_argument("sets", nargs="+", help="NAME=results.jsonl of a RAG_SELF_CHECK=1 RAG_MIN_CONFIDENCE=0 eval run")
    ap.add_argument("--check", action="append", default=[], help="NAME=results.jsonl scored, never fitted")
    ap.add_argument("--write", action="store_true", help="store the fit in rag/data/calibration.json")
    ap.add_argument("--json", help="also write every figure here")
    a = ap.parse_args(argv)
    sets = {n: examples(Path(p)) for n, p in (s.split("=", 1) for s in a.sets)}
    checks = {n: examples(Path(p)) for n, p in (s.split("=", 1) for s in a.check)}
    report: dict = {"reader": a.reader, "method": __doc__.split("\n\n")[2].replace("\n", " "), "sets": {}}
    pooled_p, pooled_y, pooled_raw = [], [], []
    for name, exs in sets.items():
        others = [e for n, xs in sets.items() if n != name for e in xs]
        w, b = fit(*matrix(others)) if len(sets) > 1 else fit(*matrix(exs))
        report["sets"][name] = summarise(name, exs, w, b, "left out of the fit" if len(sets) > 1 else "fitted on itself")
        ok = [(pc, e["y"], e["x"][0]) for pc, e in zip(scored(exs, w, b), exs) if pc is not None]
        pooled_p += [t[0] for t in ok]
        pooled_y += [t[1] for t in ok]
        pooled_raw += [t[2] for t in ok]
    w, b = fit(*matrix([e for xs in sets.values() for e in xs]))
    for name, exs in checks.items():
        report["sets"][name] = summarise(name, exs, w, b, "never fitted (check)")
    report["pooled_left_out"] = {"n": len(pooled_y), "auroc_p_correct": _r(auroc(pooled_p, pooled_y)),
                                 "auroc_p_yes_alone": _r(auroc(pooled_raw, pooled_y)),
                                 "reliability": reliability(pooled_p, pooled_y)}
    report["fit_all"] = {"weights": [round(float(v), 4) for v in w], "bias": round(b, 4),
                         "features": list(confidence.FEATURES)}
    print(json.dumps(report, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if a.write:
        write(a.reader, w, b, report)
    return 0


def summarise(name: str, exs: list[dict], w, b, how: str) -> dict:
    p = scored(exs, w, b)
    ok = [(pc, e["y"], e["x"]) for pc, e in zip(p, exs) if pc is not None]
    ys = [t[1] for t in ok]
    return {"how": how, "n_questions": len(exs), "n_checked": len(ok), "share_right": _r(np.mean(ys) if ys else None),
            "auroc_p_correct": _r(auroc([t[0] for t in ok], ys)),
            "auroc_p_yes_alone": _r(auroc([t[2][0] for t in ok], ys)),
            "auroc_rules_alone": _r(auroc([sum(t[2][1:]) for t in ok], ys)),
            "at_threshold": decide(exs, p), "without_threshold": decide(exs, [None] * len(exs)),
            "rules_only": decide(exs, [None if e["x"] is None else float(all(e["x"][1:])) for e in exs]),
            "reliability": reliability([t[0] for t in ok], ys)}


def _r(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 3)


def write(reader: str, w, b, report: dict) -> None:
    path = confidence.CALIBRATION_FILE
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"readers": {}}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    data["readers"][reader] = {
        "features": list(confidence.FEATURES), "weights": [round(float(v), 4) for v in w], "bias": round(b, 4),
        "threshold_rule": "answer when P(correct) >= RAG_MIN_CONFIDENCE/100 (0.5 maximises truthfulness)",
        "fitted_on": {n: s["n_checked"] for n, s in report["sets"].items() if not s["how"].startswith("never")},
        "method": "logistic regression, Newton's method, L2 1.0 on the weights (bench/calibrate.py)",
        "left_out_auroc": report["pooled_left_out"]["auroc_p_correct"],
        "fitted": f"{date.today().isoformat()} at {commit}"}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
