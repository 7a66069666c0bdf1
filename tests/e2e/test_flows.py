"""Flows end to end (docs/flows.md): `loom flow run` against a real server whose LLM calls go
through the gateway to `loom-test-llm-double` (a TEST DOUBLE for an LLM provider: it answers
"echo: " and the last user message), a registry prompt with two versions as variants, and a
grounding index.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

import loomproc
from test_gateway import DOUBLE_KEY, Double

FLOW = """
kind: flow
name: docs-qa
inputs:
  question: string
nodes:
  - name: search
    kind: retrieve
    index: docs
    query: ${inputs.question}
    mode: bm25
    k: 2
  - name: ask
    kind: prompt
    prompt: qa@production
    variables: {question: "${inputs.question}", context: "${search.text}"}
    variants:
      candidate: {prompt: qa@candidate}
  - name: answer
    kind: llm
    route: chat
    messages: ${ask.messages}
    settings: {max_tokens: 50}
  - name: grounded
    kind: branch
    condition: ${search.count} > 0
  - name: per_source
    kind: map
    over: ${search.sources}
    node: {kind: llm, route: chat, prompt: "summarise ${item}"}
outputs:
  answer: ${answer.text}
  sources: ${search.sources}
  grounded: ${grounded.result}
  summaries: ${per_source.results}
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    double = Double()
    root = tmp_path_factory.mktemp("sources")
    (root / "docs").mkdir()
    (root / "docs" / "rollouts.md").write_text("# Rollouts\nA canary rollout rolls back when its gate fails.\n")
    (root / "docs" / "drift.md").write_text("# Drift\nMonitors compare live traffic with a reference window.\n")
    data = loomproc.temp_data_dir()
    server = loomproc.LoomServer(data=data, env={"LLM_DOUBLE_KEY": DOUBLE_KEY, "LOOM_SOURCES_ROOT": str(root)}).start()
    work = tmp_path_factory.mktemp("specs")
    specs = [
        f"kind: provider\nname: double\ntype: openai-compatible\nbase_url: {double.url}/v1\napi_key_env: LLM_DOUBLE_KEY\n",
        "kind: route\nname: chat\ntargets: [{provider: double, model: echo-1}]\n",
        "kind: route\nname: down\ntargets: [{provider: double, model: fail-503}]\n",
        "kind: index\nname: docs\nsources: [docs]\n",
    ]
    for i, text in enumerate(specs):
        f = work / f"{i}.yaml"
        f.write_text(text)
        p = run(server, "apply", "-f", str(f))
        assert p.returncode == 0, p.stdout + p.stderr
    assert run(server, "index", "build", "docs").returncode == 0
    for alias, template in (("production", "Context: {{context}}\nQuestion: {{question}}"), ("candidate", "Q: {{question}}")):
        p = run(server, "prompt", "create", "qa", "--template", template, "--alias", alias)
        assert p.returncode == 0, p.stdout + p.stderr
    flow = work / "flow.yaml"
    flow.write_text(FLOW)
    yield server, double, flow, work
    server.stop()
    double.stop()
    loomproc.remove(data)


def run(server, *args) -> subprocess.CompletedProcess:
    return subprocess.run([loomproc.loom_bin(), *args, "--server", server.url], capture_output=True, text=True, timeout=120)


def test_a_flow_runs_through_the_gateway_with_a_trace(env):
    server, double, flow, _ = env
    p = run(server, "flow", "run", "-f", str(flow), "--input", "question=why did the canary roll back", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["status"] == "succeeded"
    assert r["outputs"]["sources"][0] == "docs/rollouts.md" and r["outputs"]["grounded"] is True
    # The double echoes the last user message: the production prompt's rendered text.
    assert r["outputs"]["answer"].startswith("echo: Context: [docs/rollouts.md]")
    assert [s["text"] for s in r["outputs"]["summaries"]] == [f"echo: summarise {s}" for s in r["outputs"]["sources"]]
    answer = next(n for n in r["nodes"] if n["name"] == "answer")
    assert answer["gateway_trace_id"] and r["prompt_tokens"] > 0

    trace = requests.get(server.url + "/api/v1/gateway/traces/" + r["trace_id"], timeout=10)
    deadline = 0
    while trace.status_code == 404 and deadline < 50:  # traces are written in batches
        import time
        time.sleep(0.1)
        deadline += 1
        trace = requests.get(server.url + "/api/v1/gateway/traces/" + r["trace_id"], timeout=10)
    assert trace.status_code == 200, trace.text
    t = trace.json()
    assert t["task"] == "flow" and t["route"] == "docs-qa"
    assert {s["name"] for s in t["spans"]} == {"node:search", "node:ask", "node:answer", "node:grounded", "node:per_source"}


def test_variants_change_the_prompt(env):
    server, _, flow, _ = env
    p = run(server, "flow", "run", "-f", str(flow), "--input", "question=drift?", "--variant", "ask=candidate", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["outputs"]["answer"] == "echo: Q: drift?"


def test_failures_and_bad_input(env):
    server, _, flow, work = env
    broken = work / "broken.yaml"
    broken.write_text(FLOW.replace("route: chat\n    messages", "route: down\n    messages"))
    p = run(server, "flow", "run", "-f", str(broken), "--input", "question=x", "--json")
    assert p.returncode == 1
    r = json.loads(p.stdout)
    assert r["status"] == "failed" and "node answer" in r["error"] and "503" in r["error"]

    spec = FLOW.replace("${ask.messages}", "${search.count}")
    r = requests.post(server.url + "/api/v1/flows/run", json={"spec": spec, "inputs": {"question": "x"}}, timeout=30)
    assert r.status_code == 400 and "nodes[2].messages" in r.text, r.text
    r = requests.post(server.url + "/api/v1/flows/run", json={"spec": FLOW, "inputs": {}}, timeout=30)
    assert r.status_code == 400 and "inputs.question" in r.text, r.text
    r = requests.post(server.url + "/api/v1/flows/run", json={"spec": FLOW, "inputs": {"question": "x"}, "variants": {"ask": "nope"}}, timeout=30)
    assert r.status_code == 400 and "no variant nope" in r.text, r.text
    r = requests.post(server.url + "/api/v1/flows/validate", json={"spec": FLOW}, timeout=30)
    assert r.status_code == 200 and [n["name"] for n in r.json()["nodes"]][0] == "search"
    cyc = work / "cycle.yaml"
    cyc.write_text(FLOW.replace("${inputs.question}\n    mode", "${answer.text}\n    mode"))
    p = subprocess.run([loomproc.loom_bin(), "flow", "validate", "-f", str(cyc)], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "cycle" in (p.stdout + p.stderr)


EVAL = """
kind: evaluation
name: qa-eval
flow: flow.yaml
dataset: rows.jsonl
answer: answer
retrieved: sources
variants:
  production: {}
  candidate: {ask: candidate}
concurrency: 3
evaluators:
  - {kind: contains, name: mentions, value: "echo:"}
  - {kind: hit_rate, k: 1}
  - {kind: token_f1}
  - {kind: llm_judge, name: judged, rubric: custom, model: chat, prompt: 'Grade this. {"score": 4, "reason": "fine"} {{answer}}'}
  - {kind: llm_judge, rubric: groundedness, model: chat}
"""

ROWS = [
    {"question": "why did the canary roll back", "expected": "echo: Q: why did the canary roll back", "relevant": ["docs/rollouts.md"]},
    {"question": "what do drift monitors compare", "expected": "traffic with a reference window", "relevant": ["docs/drift.md"]},
    {"question": "canary gate", "expected": "echo: Q: canary gate", "relevant": ["docs/rollouts.md"]},
]


def test_an_evaluation_compares_variants_and_gates(env):
    server, _, _, work = env
    (work / "eval.yaml").write_text(EVAL)
    (work / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    p = run(server, "eval", "run", "-f", str(work / "eval.yaml"), "--json")
    assert p.returncode == 0, "no gate in the spec: the run passes"
    r = json.loads(p.stdout)
    assert [v["name"] for v in r["variants"]] == ["candidate", "production"]
    for v in r["variants"]:
        assert len(v["rows"]) == 3 and v["failed_rows"] == 0
        assert v["aggregates"]["mentions"]["mean"] == 1.0
        assert v["aggregates"]["hit_rate"]["mean"] == 1.0, "the first source is the labelled one"
        assert v["aggregates"]["judged"]["mean"] == 4.0
        # The double echoes the rubric prompt: no score in it, an error per row, not a failed run.
        g = v["aggregates"]["groundedness"]
        assert g["errors"] == 3 and g.get("mean") is None
        assert all(any(s["name"] == "groundedness" and s.get("error") for s in row["scores"]) for row in v["rows"])
    candidate = next(v for v in r["variants"] if v["name"] == "candidate")
    production = next(v for v in r["variants"] if v["name"] == "production")
    assert candidate["aggregates"]["token_f1"]["mean"] > production["aggregates"]["token_f1"]["mean"], "the candidate echoes the expected answers"
    assert r["comparison"]["metric"] == "mentions"

    p = run(server, "eval", "run", "-f", str(work / "eval.yaml"), "--fail-under", "judged=4.0,hit_rate=0.8")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "passed" in p.stdout and "judged" in p.stdout
    p = run(server, "eval", "run", "-f", str(work / "eval.yaml"), "--fail-under", "token_f1>=0.99")
    assert p.returncode == 1 and "FAILED" in p.stdout, p.stdout + p.stderr

    bad = work / "bad-eval.yaml"
    bad.write_text(EVAL.replace("kind: hit_rate, k: 1", "kind: hit_rate, k: zero"))
    p = run(server, "eval", "run", "-f", str(bad))
    assert p.returncode != 0 and "evaluators[1].k" in (p.stdout + p.stderr)


def test_rows_the_rate_limit_refused_run_again(env):
    """A provider that answers 429 with Retry-After (the route does not retry) fails the row's
    flow with a rate limit: the evaluation waits as told and runs the row again."""
    server, _, _, work = env
    route = work / "limited.yaml"
    route.write_text("kind: route\nname: limited\nretries: 0\ntargets: [{provider: double, model: retry-after-1-2}]\n")
    assert run(server, "apply", "-f", str(route)).returncode == 0
    flow = work / "limited-flow.yaml"
    flow.write_text("kind: flow\nname: limited\ninputs: {question: string}\nnodes:\n"
                    "  - {name: answer, kind: llm, route: limited, prompt: '${inputs.question}'}\noutputs: {answer: '${answer.text}'}\n")
    (work / "limited-rows.jsonl").write_text(json.dumps({"question": "hello", "expected": "echo: hello"}) + "\n")
    (work / "limited-eval.yaml").write_text("kind: evaluation\nname: limited\nflow: limited-flow.yaml\ndataset: limited-rows.jsonl\n"
                                            "evaluators: [{kind: exact_match}]\n")
    p = run(server, "eval", "run", "-f", str(work / "limited-eval.yaml"), "--fail-under", "exact_match=1", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    v = json.loads(p.stdout)["variants"][0]
    assert v["failed_rows"] == 0 and v["aggregates"]["exact_match"]["mean"] == 1.0
    assert v["rows"][0]["latency_ms"] < 2000 <= json.loads(p.stdout)["duration_ms"], "the row waited for the Retry-After twice"
