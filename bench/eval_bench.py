#!/usr/bin/env python3
"""A 1,000-row evaluation against the test double (issue 8): how much of the wall time is Loom.

`loom-test-llm-double` (a TEST DOUBLE for an LLM provider) answers model `slow-<ms>` after
<ms> milliseconds. The flow renders an inline prompt and calls the route `chat` (that model);
the evaluation scores each answer with exact match, token F1, ROUGE-L and an LLM judge on the
route `judge` (the same double, fast model), `concurrency` rows at once. With one upstream call
of L ms per row (the judge's is ~0), the wall time cannot be under rows × L / concurrency:
Loom's overhead is the rest. The server's CPU time per row comes from /proc.

    .venv/bin/python bench/eval_bench.py --rows 1000 --latency-ms 50 --concurrency 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cpu_seconds, process_tree  # noqa: E402
from endpoint_bench import Proc, free_port, log, wait_http  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "bench-double-key"


def post(base: str, path: str, body: dict, timeout: float = 3600) -> dict:
    req = urllib.request.Request(base + path, method="POST", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--loom", default=os.path.join(ROOT, ".build-rel2", "release", "loom"))
    ap.add_argument("--double", default=os.path.join(ROOT, ".build-rel2", "release", "loom-test-llm-double"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="loom-eval-bench-")
    dport, lport = free_port(), free_port()
    double = Proc([args.double, str(dport)], env={"LLM_DOUBLE_KEY": KEY}, log_path=os.path.join(work, "double.log"))
    server = Proc([args.loom, "server", "--port", str(lport), "--data", os.path.join(work, "data"), "--log-level", "warning"],
                  env={"LLM_DOUBLE_KEY": KEY}, log_path=os.path.join(work, "loom.log"))
    base = f"http://127.0.0.1:{lport}"
    try:
        time.sleep(0.5)
        wait_http(base + "/health")
        post(base, "/api/v1/gateway/providers", {"spec": f"kind: provider\nname: double\ntype: openai-compatible\nbase_url: http://127.0.0.1:{dport}/v1\n"
                                                          "api_key_env: LLM_DOUBLE_KEY\n"})
        post(base, "/api/v1/gateway/routes", {"spec": f"kind: route\nname: chat\ntargets: [{{provider: double, model: slow-{args.latency_ms}}}]\n"})
        post(base, "/api/v1/gateway/routes", {"spec": "kind: route\nname: judge\ntargets: [{provider: double, model: echo-1}]\n"})
        flow = ("kind: flow\nname: bench\ninputs: {question: string}\nnodes:\n"
                "  - {name: ask, kind: prompt, template: 'Answer briefly: {{q}}', variables: {q: '${inputs.question}'}}\n"
                "  - {name: answer, kind: llm, route: chat, messages: '${ask.messages}', settings: {max_tokens: 20}}\n"
                "outputs: {answer: '${answer.text}'}\n")
        spec = (f"kind: evaluation\nname: bench\nconcurrency: {args.concurrency}\nevaluators:\n"
                "  - {kind: exact_match}\n  - {kind: token_f1}\n  - {kind: rouge_l}\n"
                "  - {kind: llm_judge, name: judged, rubric: custom, model: judge, prompt: 'Grade. {\"score\": 4, \"reason\": \"ok\"} {{answer}}'}\n")
        rows = [{"question": f"what is item {i} of the list", "expected": f"echo: Answer briefly: what is item {i} of the list"} for i in range(args.rows)]
        pids = process_tree(server.p.pid)
        cpu0 = cpu_seconds(pids)
        t0 = time.time()
        report = post(base, "/api/v1/evaluations/run", {"spec": spec, "flow": flow, "rows": rows})
        wall = time.time() - t0
        cpu = cpu_seconds(pids) - cpu0
        v = report["variants"][0]
        floor = args.rows * args.latency_ms / 1000 / args.concurrency
        results = {
            "rows": args.rows, "latency_ms": args.latency_ms, "concurrency": args.concurrency, "wall_s": wall, "floor_s": floor,
            "overhead_s": wall - floor, "overhead_per_row_ms": (wall - floor) / args.rows * 1000, "server_cpu_s": cpu,
            "server_cpu_per_row_ms": cpu / args.rows * 1000, "failed_rows": v["failed_rows"],
            "judged_mean": v["aggregates"]["judged"]["mean"], "exact_match_mean": v["aggregates"]["exact_match"]["mean"],
        }
        log(f"{args.rows} rows in {wall:.2f} s (floor {floor:.2f} s): overhead {wall - floor:.2f} s; server CPU {cpu:.2f} s")
        print(json.dumps(results, indent=2))
        os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
        with open(os.path.join(ROOT, "bench", "results", "eval.json"), "w") as f:
            json.dump(results, f, indent=2)
    finally:
        server.stop()
        double.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
