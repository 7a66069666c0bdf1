"""Evaluator metrics against Python reference implementations on a larger fixture: ROUGE-L
against Google's `rouge-score` (RougeScorer(['rougeL']), no stemmer) and token F1 against the
SQuAD v1.1 evaluation script's normalisation and F1, through a real `loom server`'s
evaluation API (a flow whose answer is the row's question, so every score is the metric
itself; no provider is involved)."""

from __future__ import annotations

import collections
import random
import re
import string

import pytest
import requests
from rouge_score import rouge_scorer

import loomproc

FLOW = """
kind: flow
name: say
inputs: {question: string}
nodes:
  - {name: say, kind: prompt, template: "{{q}}", variables: {q: "${inputs.question}"}}
outputs: {answer: "${say.text}"}
"""

EVAL = """
kind: evaluation
name: metrics
evaluators:
  - {kind: rouge_l}
  - {kind: token_f1}
  - {kind: exact_match}
concurrency: 8
"""

WORDS = "the a an cat dog sat on mat rug quickly slowly ran jumped over under blue red big small model drift gate".split()


def squad_normalize(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_f1(prediction: str, truth: str) -> float:
    p, t = squad_normalize(prediction).split(), squad_normalize(truth).split()
    common = collections.Counter(p) & collections.Counter(t)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(t)
    return 2 * precision * recall / (precision + recall)


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 14))]
    text = " ".join(words)
    return text.capitalize() + rng.choice([".", "!", "", ", ok?"])


def test_rouge_l_and_token_f1_match_the_references():
    rng = random.Random(11)
    rows = []
    for _ in range(200):
        expected = sentence(rng)
        answer = expected if rng.random() < 0.1 else sentence(rng)
        rows.append({"question": answer, "expected": expected})
    data = loomproc.temp_data_dir()
    server = loomproc.LoomServer(data=data).start()
    try:
        r = requests.post(server.url + "/api/v1/evaluations/run", json={"spec": EVAL, "flow": FLOW, "rows": rows}, timeout=120)
        assert r.status_code == 200, r.text
        report = r.json()
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        results = report["variants"][0]["rows"]
        assert len(results) == 200
        exact = 0
        for row, result in zip(rows, results):
            scores = {s["name"]: s for s in result["scores"]}
            assert result["answer"] == row["question"]
            expected_rouge = scorer.score(row["expected"], row["question"])["rougeL"].fmeasure
            assert scores["rouge_l"]["score"] == pytest.approx(expected_rouge, abs=1e-9), row
            assert scores["token_f1"]["score"] == pytest.approx(squad_f1(row["question"], row["expected"]), abs=1e-9), row
            exact += squad_normalize(row["question"]) == squad_normalize(row["expected"])
        agg = report["variants"][0]["aggregates"]
        assert agg["exact_match"]["mean"] == pytest.approx(exact / 200)
        assert report["passed"] is True
    finally:
        server.stop()
        loomproc.remove(data)
