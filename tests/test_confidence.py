"""The model's own check and the calibrated refusal (rag.confidence, issue 24), with the scripted
stand-in LLM: when the check is asked and with what, how P(correct) and the threshold decide,
and that a reader without calibration or probabilities keeps the word rules. The real model's
check is tested in test_answer.py; the fit itself in bench/calibrate.py's tests below."""
import json

import numpy as np
import pytest

from bench import calibrate
from rag import confidence
from rag.evaluate import auroc
from rag.bot import Bot
from rag.config import Config
from rag.scripted import ScriptedLLM
from rag.types import Answer, Evidence, Passage

CLOUD = Passage(rank=1, chunk_id="d2:x", doc_id="d2", text="Daniel Zhang stepped down as head of the "
                "cloud unit. He was replaced by Eddie Wu, the group's chief executive, in September.",
                start=0, end=101, score=0.1, dense_score=0.6, keyword_score=None, title="Cloud")
ASKED = "Who replaced Daniel Zhang as head of the cloud unit?"
DRAFT = "Daniel Zhang was replaced by Eddie Wu [1]."
# P(correct) = sigmoid(logit P(yes) + 2 * addresses_subject + 2 * gives_kind_asked - 4)
CAL = {"scripted": {"features": list(confidence.FEATURES), "weights": [1.0, 2.0, 2.0, 0.0], "bias": -4.0}}


def answer(yes, question=ASKED, draft=DRAFT, calibrated=True, monkeypatch=None, **cfg) -> tuple[Answer, ScriptedLLM]:
    monkeypatch.setattr(confidence, "calibrations", lambda: CAL if calibrated else {})
    cfg.setdefault("self_check", True)
    llm = ScriptedLLM([draft], yes=yes)
    bot = Bot(Config(**cfg), None, None, llm=llm)
    items = [i for i in bot.answer(bot.analyse(question), [CLOUD]) if not isinstance(i, (str, Evidence))]
    return items[-1], llm


def test_the_check_follows_the_draft_in_the_same_conversation(monkeypatch):
    a, llm = answer(0.9, monkeypatch=monkeypatch)
    assert len(llm.calls) == 1 and len(llm.checks) == 1
    check = llm.checks[0]
    assert check[:len(llm.calls[0])] == llm.calls[0]  # the answer's prompt is its prefix (KV cache)
    assert check[-2] == {"role": "assistant", "content": DRAFT}
    assert check[-1]["role"] == "user" and ASKED in check[-1]["content"]
    assert a.confidence["p_yes"] == 0.9 and a.confidence["addresses_subject"] is True


def test_without_self_check_the_model_is_not_asked_and_the_rules_decide(monkeypatch):
    a, llm = answer(0.01, monkeypatch=monkeypatch, self_check=False)
    assert llm.checks == [] and not a.refused and "p_yes" not in a.confidence


def test_a_low_calibrated_probability_refuses_a_verified_answer(monkeypatch):
    a, _ = answer(0.3, monkeypatch=monkeypatch)  # logit -0.85 + 4 - 4: P(correct) 0.30
    assert a.refused and "P(correct) 0.30 is below 0.50" in a.refusal_reason
    assert a.confidence["p_correct"] == pytest.approx(0.3, abs=1e-4)
    b, _ = answer(0.7, monkeypatch=monkeypatch)
    assert not b.refused and "Eddie Wu" in b.text and b.confidence["p_correct"] == pytest.approx(0.7, abs=1e-4)


def test_the_threshold_is_the_users_setting(monkeypatch):
    a, _ = answer(0.3, monkeypatch=monkeypatch, min_confidence=25)
    assert not a.refused
    b, _ = answer(0.8, monkeypatch=monkeypatch, min_confidence=90)
    assert b.refused and "below 0.90" in b.refusal_reason


def test_the_word_rules_enter_the_probability_instead_of_refusing_alone(monkeypatch):
    """A draft about another subject fails addresses_subject: the rules alone refuse it, the
    calibrated reader weighs it (here -2 on the logit) with the model's own check."""
    q = "Who replaced Jack Ma as chairman of Ant Group?"
    rules_only, _ = answer(None, question=q, monkeypatch=monkeypatch)
    assert rules_only.refused and rules_only.refusal_reason.startswith("the supported sentences do not address")
    unsure, _ = answer(0.9, question=q, monkeypatch=monkeypatch)  # logit 2.2 + 0 + 2 - 4: 0.55
    assert not unsure.confidence["addresses_subject"] and not unsure.refused
    doubtful, _ = answer(0.6, question=q, monkeypatch=monkeypatch)
    assert doubtful.refused and "do not address the question's subject" in doubtful.refusal_reason


def test_an_uncalibrated_reader_keeps_the_word_rules(monkeypatch):
    a, llm = answer(0.01, monkeypatch=monkeypatch, calibrated=False)
    assert not a.refused and a.confidence["p_correct"] is None and a.confidence["p_yes"] == 0.01
    b, _ = answer(0.99, question="Who replaced Jack Ma as chairman of Ant Group?", monkeypatch=monkeypatch,
                  calibrated=False)
    assert b.refused and b.refusal_reason.startswith("the supported sentences do not address")


def test_zero_answers_whatever_is_verified(monkeypatch):
    """RAG_MIN_CONFIDENCE=0, how bench/calibrate's runs see every answer's correctness."""
    a, _ = answer(None, question="Who replaced Jack Ma as chairman of Ant Group?", monkeypatch=monkeypatch,
                  min_confidence=0)
    assert not a.refused and a.confidence == {"addresses_subject": False, "gives_kind_asked": True,
                                             "adds_to_question": True}


def test_nothing_verified_is_refused_without_asking_the_check(monkeypatch):
    a, llm = answer(0.99, draft="The weather will be fine [1].", monkeypatch=monkeypatch, quotes=False)
    assert a.refused and llm.checks == [] and a.refusal_reason.startswith("no sentence")


# ---- bench/calibrate: the fit and its judges -------------------------------------------------
def test_logistic_fit_recovers_known_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 3))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(X @ np.array([1.5, -1.0, 0.5]) + 0.3)))).astype(float)
    w, b = calibrate.fit(X, y)
    # 4,000 examples: each weight's standard error is about 0.05; the L2 penalty of 1 shrinks
    # by about 1/4000 of the curvature, far less than that
    assert np.allclose(w, [1.5, -1.0, 0.5], atol=0.2) and abs(b - 0.3) < 0.2


def test_auroc_counts_ties_as_half():
    assert auroc([0.9, 0.8, 0.1], [1, 1, 0]) == 1.0
    assert auroc([0.5, 0.5], [1, 0]) == 0.5
    assert auroc([0.1, 0.9], [1, 0]) == 0.0
    assert auroc([0.3], [1]) is None


def test_decide_replays_the_eval_scores(tmp_path):
    rows = [
        {"answerable": True, "refused": False, "scores": {"answer_correctness": 1.0},
         "confidence": {"p_yes": 0.9, "addresses_subject": True, "gives_kind_asked": True, "adds_to_question": True}},
        {"answerable": True, "refused": False, "scores": {"answer_correctness": 0.0},
         "confidence": {"p_yes": 0.1, "addresses_subject": True, "gives_kind_asked": True, "adds_to_question": True}},
        {"answerable": False, "refused": False, "scores": {},
         "confidence": {"p_yes": 0.2, "addresses_subject": False, "gives_kind_asked": True, "adds_to_question": True}},
        {"answerable": False, "refused": True, "scores": {}, "confidence": {}},
    ]
    f = tmp_path / "results.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows))
    exs = calibrate.examples(f)
    assert [e["y"] for e in exs] == [1.0, 0.0, 0.0, None]
    assert calibrate.decide(exs, [None] * 4) == {"answer_correctness": 0.5, "truthfulness": 0.0,
                                                 "refusal_recall": 0.5, "false_refusal_rate": 0.0}
    assert calibrate.decide(exs, [0.9, 0.2, 0.3, None]) == {"answer_correctness": 0.5, "truthfulness": 0.75,
                                                            "refusal_recall": 1.0, "false_refusal_rate": 0.5}


def test_an_answer_that_only_repeats_the_question_answers_nothing(monkeypatch):
    """Seen on rtqa-dev: the draft restates the question and its passage supports it. Such a
    sentence is dropped by verification (a wh-question's restatement answers nothing) and, with
    nothing else verified, the answer is refused."""
    q = "Daniel Zhang stepped down as head of the cloud unit: who replaced him?"
    a, _ = answer(None, question=q, draft="Daniel Zhang stepped down as head of the cloud unit [1].",
                  monkeypatch=monkeypatch, calibrated=False, quotes=False)
    assert a.refused and a.flagged == ["Daniel Zhang stepped down as head of the cloud unit."]
    b, _ = answer(None, question=q, monkeypatch=monkeypatch, calibrated=False, quotes=False)
    assert not b.refused and b.confidence["adds_to_question"]


def test_a_restated_yes_no_question_is_kept_for_the_checks(monkeypatch):
    """"Did Eddie Wu replace Daniel Zhang as head of ...?" -- "Eddie Wu replaced Daniel Zhang as head of ... [1]" restates the
    question and is its answer (yes); only a wh-question's restatement answers nothing."""
    a, _ = answer(None, question="Did Eddie Wu replace Daniel Zhang as head of the cloud unit?",
                  draft="Eddie Wu replaced Daniel Zhang as head of the cloud unit [1].",
                  monkeypatch=monkeypatch, calibrated=False, quotes=False)
    assert not a.refused and a.text.startswith("Eddie Wu replaced Daniel Zhang as head")


# ---- an OpenAI-compatible server's log-probabilities (EndpointLLM.yes_probability) ------------
class _LogprobServer:
    """A local HTTP server answering POST /v1/chat/completions with ``reply``; keeps the bodies."""

    def __init__(self, reply: dict):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        bodies = self.bodies = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                bodies.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_servers_top_logprobs_give_p_yes_and_none_without_them():
    import math

    from rag.models import EndpointLLM, ModelSpec

    top = [{"token": "Yes", "logprob": math.log(0.6)}, {"token": "No", "logprob": math.log(0.2)},
           {"token": "The", "logprob": math.log(0.1)}]
    server = _LogprobServer({"choices": [{"logprobs": {"content": [{"top_logprobs": top}]}}]})
    try:
        llm = EndpointLLM(ModelSpec("endpoint", server.url, server.url))
        messages = [{"role": "user", "content": "Is it raining? Reply yes or no."}]
        assert llm.yes_probability(messages) == pytest.approx(0.75)
        path, body = server.bodies[0]
        assert path == "/v1/chat/completions" and body["messages"] == messages
        assert body["max_tokens"] == 1 and body["logprobs"] is True and body["temperature"] == 0
    finally:
        server.close()
    server = _LogprobServer({"choices": [{"message": {"content": "Yes"}}]})  # no logprobs reported
    try:
        assert EndpointLLM(ModelSpec("endpoint", server.url, server.url)).yes_probability(messages) is None
    finally:
        server.close()
