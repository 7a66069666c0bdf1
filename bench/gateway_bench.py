#!/usr/bin/env python3
"""LLM gateway benchmark (issue 7), with wrk on loopback.

Usage: python3 bench/gateway_bench.py [--duration 20] [--rounds 2] [--loom PATH] [--double PATH]

The upstream is `loom-test-llm-double` (the TEST DOUBLE standing in for an OpenAI-compatible
provider; release build), answering chat completions deterministically. The gateway route under
test, `bench`, has a safety policy on (PII redaction and prompt-injection checks on the input)
and, as every route, usage and cost accounting (a catalog price is set, so cost is computed).

1. latency: wrk sends the same chat completion (a 4-message conversation, ~400 bytes) at a fixed
   2,000 requests/s (20 connections, each waiting 10 ms between requests: wrk's `delay()`),
   alternately to the double directly (`/v1/chat/completions`, model `echo-1`) and through Loom
   (model `bench`), `--rounds` times each; the added p50 and p99 are, per round, Loom's minus the
   direct one measured just before it, and the median of those over the rounds (pairing by round
   cancels the machine's drift between rounds). The server's peak resident memory (VmHWM of its
   process tree) is read after the runs, and its CPU per request from /proc. When nginx is
   installed, nginx in front of the same double (a keep-alive reverse proxy and nothing else) is
   measured in the same rounds too: what a proxy adds on this machine at all.
2. ttft: time to first token of a streamed completion (the first SSE event that carries content),
   sequential requests over one keep-alive connection, directly and through Loom, interleaved;
   the added median and p99. Measured on `bench` (input policies: nothing held back) and on
   `bench-out` (a PII policy on the output too, which holds back up to 256 bytes of the
   stream: reported for transparency).

Markdown goes to stdout and bench/results/gateway.md (JSON next to it).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import cpu_seconds, process_tree  # noqa: E402
from endpoint_bench import Proc, free_port, log, start_nginx, wait_http, wrk  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
KEY = "bench-double-key"

LUA_AUTH = 'wrk.headers["Authorization"] = "Bearer ' + KEY + '"\n'


def body(model: str, stream: bool = False) -> str:
    return json.dumps({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant for an online shop. Answer briefly."},
            {"role": "user", "content": "Where is my order? It was placed last Tuesday and has not arrived yet."},
            {"role": "assistant", "content": "Let me check that for you."},
            {"role": "user", "content": "Thanks, the order number is 48213 and my name is Sam."},
        ],
        "max_tokens": 64,
        "stream": stream,
    })


def vm_hwm_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def wrk_with_auth(url: str, payload: str, seconds: float) -> dict:
    # endpoint_bench.wrk takes a body; the double wants its key, Loom takes any key without auth.
    import endpoint_bench
    saved = endpoint_bench.LUA
    endpoint_bench.LUA = LUA_AUTH + saved
    try:
        return wrk(url, payload, seconds, 2, 20, 10)
    finally:
        endpoint_bench.LUA = saved


def first_token_ms(host: str, port: int, path: str, payload: str, n: int) -> list[float]:
    """Sequential streamed requests on one connection: ms from sending to the first content event."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    out = []
    data = payload.encode()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + KEY}
    for _ in range(n):
        start = time.perf_counter()
        conn.request("POST", path, body=data, headers=headers)
        r = conn.getresponse()
        first = None
        buf = b""
        while True:
            line = r.readline()
            if not line:
                break
            if first is None and line.startswith(b"data: ") and b'"content":"' in line and b'"content":""' not in line:
                first = (time.perf_counter() - start) * 1000
            buf += line
            if line.startswith(b"data: [DONE]"):
                break
        # Drain the chunked terminator so the connection can be reused.
        r.read()
        if first is not None:
            out.append(first)
    conn.close()
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def run(loom: str, double: str, seconds: float, rounds: int) -> dict:
    work = tempfile.mkdtemp(prefix="gateway-bench-")
    dport, lport = free_port(), free_port()
    up = Proc([double, str(dport)], env={"LLM_DOUBLE_KEY": KEY}, log_path=os.path.join(work, "double.log"))
    server = Proc([loom, "server", "--port", str(lport), "--data", os.path.join(work, "data"), "--log-level", "warning"],
                  env={"LLM_DOUBLE_KEY": KEY}, log_path=os.path.join(work, "loom.log"))
    # The floor of this machine, when nginx is installed: nginx as a keep-alive reverse proxy in
    # front of the same double (no JSON, no policies, no accounting), measured in the same rounds.
    nginx = None
    if shutil.which("nginx"):
        nginx, nport = start_nginx(work, dport)
    try:
        wait_http(f"http://127.0.0.1:{dport}/health")
        wait_http(f"http://127.0.0.1:{lport}/health")
        base = f"http://127.0.0.1:{lport}"
        specs = [
            f"kind: provider\nname: double\ntype: openai-compatible\nbase_url: http://127.0.0.1:{dport}/v1\napi_key_env: LLM_DOUBLE_KEY\n",
            "kind: policy\nname: guard-in\nrules:\n  - {type: pii, action: redact, apply_to: input}\n  - {type: injection, action: block}\n",
            "kind: policy\nname: guard-out\nrules:\n  - {type: pii, action: redact}\n",
            "kind: route\nname: bench\npolicies: [guard-in]\ntargets: [{provider: double, model: echo-1}]\n",
            "kind: route\nname: bench-out\npolicies: [guard-out]\ntargets: [{provider: double, model: echo-1}]\n",
        ]
        for i, text in enumerate(specs):
            path = os.path.join(work, f"spec{i}.yaml")
            with open(path, "w") as f:
                f.write(text)
            subprocess.run([loom, "apply", "-f", path, "--server", base], check=True, capture_output=True, timeout=60)
        subprocess.run([loom, "catalog", "set", "double", "echo-1", "--input-price", "0.15", "--output-price", "0.6", "--server", base],
                       check=True, capture_output=True, timeout=60)
        direct_url = f"http://127.0.0.1:{dport}/v1/chat/completions"
        loom_url = f"{base}/v1/chat/completions"
        # Warm both paths (connections, caches, JIT-free but page-cache warm).
        wrk_with_auth(direct_url, body("echo-1"), 3)
        wrk_with_auth(loom_url, body("bench"), 3)
        targets = [("direct", direct_url, body("echo-1")), ("loom", loom_url, body("bench"))]
        if nginx:
            nginx_url = f"http://127.0.0.1:{nport}/v1/chat/completions"
            wait_http(f"http://127.0.0.1:{nport}/health")
            wrk_with_auth(nginx_url, body("echo-1"), 3)
            targets.append(("nginx", nginx_url, body("echo-1")))
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in targets}
        pids = process_tree(server.p.pid)
        cpu0 = cpu_seconds(pids)
        loom_requests = 0
        loom_time = 0.0
        for r in range(rounds):
            for name, url, payload in targets:
                log(f"round {r + 1}: {name} at 2,000 req/s for {seconds:.0f} s")
                t0 = cpu_seconds(pids)
                res = wrk_with_auth(url, payload, seconds)
                if name == "loom":
                    loom_requests += res["requests"]
                    loom_time += cpu_seconds(pids) - t0
                runs[name].append(res)
                log(f"  {res['rps']:.0f} req/s, p50 {res['p50_us'] / 1000:.3f} ms, p99 {res['p99_us'] / 1000:.3f} ms, statuses {res['statuses']}")
        hwm = vm_hwm_kib(process_tree(server.p.pid))
        _ = cpu0

        def med(name: str, key: str) -> float:
            return statistics.median(x[key] for x in runs[name]) / 1000

        def added(name: str, key: str) -> float:
            # Paired by round: each round's figure minus the direct one measured just before it,
            # so that the machine's drift between rounds (0.1 ms at p50 here) cancels out.
            return statistics.median(a[key] - d[key] for a, d in zip(runs[name], runs["direct"])) / 1000

        latency = {
            "direct_p50_ms": med("direct", "p50_us"), "direct_p99_ms": med("direct", "p99_us"),
            "loom_p50_ms": med("loom", "p50_us"), "loom_p99_ms": med("loom", "p99_us"),
            "added_p50_ms": added("loom", "p50_us"),
            "added_p99_ms": added("loom", "p99_us"),
            "added_p50_by_round_ms": [(a["p50_us"] - d["p50_us"]) / 1000 for a, d in zip(runs["loom"], runs["direct"])],
            "added_p99_by_round_ms": [(a["p99_us"] - d["p99_us"]) / 1000 for a, d in zip(runs["loom"], runs["direct"])],
            "loom_rps": statistics.median(x["rps"] for x in runs["loom"]),
            "statuses": [x["statuses"] for x in runs["loom"]],
            "cpu_us_per_request": loom_time / max(loom_requests, 1) * 1e6,
            "peak_rss_mib": hwm / 1024,
        }
        if "nginx" in runs:
            latency["nginx_added_p50_ms"] = added("nginx", "p50_us")
            latency["nginx_added_p99_ms"] = added("nginx", "p99_us")
        usage = json.loads(subprocess.run([loom, "gateway", "usage", "--group-by", "route", "--json", "--server", base],
                                          check=True, capture_output=True, text=True, timeout=60).stdout)
        latency["usage_rows"] = [{k: i[k] for k in ("route", "requests", "prompt_tokens", "completion_tokens", "cost")} for i in usage["items"]]

        ttft = {}
        for route in ("bench", "bench-out"):
            direct, through = [], []
            for _ in range(5):
                direct += first_token_ms("127.0.0.1", dport, "/v1/chat/completions", body("echo-1", stream=True), 40)
                through += first_token_ms("127.0.0.1", lport, "/v1/chat/completions", body(route, stream=True), 40)
            ttft[route] = {
                "direct_p50_ms": statistics.median(direct), "loom_p50_ms": statistics.median(through),
                "added_p50_ms": statistics.median(through) - statistics.median(direct),
                "added_p99_ms": pct(through, 99) - pct(direct, 99), "n": len(through),
            }
            log(f"ttft {route}: direct {ttft[route]['direct_p50_ms']:.3f} ms, through Loom {ttft[route]['loom_p50_ms']:.3f} ms")
        return {"latency": latency, "ttft": ttft, "runs": runs}
    finally:
        if nginx:
            nginx.stop()
        server.stop()
        up.stop()


def report(results: dict, command: str) -> str:
    lat, ttft = results["latency"], results["ttft"]
    lines = [
        "## LLM gateway (issue 7)", "",
        f"Command: `{command}`", "",
        "| figure | target | measured |", "| --- | --- | --- |",
        f"| added latency p50 at 2,000 req/s (safety policy and usage accounting on) | < 0.3 ms | {lat['added_p50_ms']:.3f} ms |",
        f"| added latency p99 at 2,000 req/s | < 1 ms | {lat['added_p99_ms']:.3f} ms |",
        f"| peak resident memory of `loom server` under that load | < 100 MB | {lat['peak_rss_mib']:.1f} MiB |",
        f"| streaming time to first token, added (p50; input policies) | < 1 ms | {ttft['bench']['added_p50_ms']:.3f} ms |",
        "",
        f"Direct to the double: p50 {lat['direct_p50_ms']:.3f} ms, p99 {lat['direct_p99_ms']:.3f} ms; through Loom: p50 {lat['loom_p50_ms']:.3f} ms, "
        f"p99 {lat['loom_p99_ms']:.3f} ms at {lat['loom_rps']:.0f} req/s (statuses {lat['statuses']}); Loom's CPU per request "
        f"{lat['cpu_us_per_request']:.0f} µs. Added by round: p50 {', '.join(f'{x:.3f}' for x in lat['added_p50_by_round_ms'])} ms; "
        f"p99 {', '.join(f'{x:.3f}' for x in lat['added_p99_by_round_ms'])} ms."
        + (f" For scale, nginx in front of the same double (a keep-alive reverse proxy, nothing else) added p50 {lat['nginx_added_p50_ms']:.3f} ms, "
           f"p99 {lat['nginx_added_p99_ms']:.3f} ms in the same rounds." if "nginx_added_p50_ms" in lat else ""),
        "",
        f"Time to first token: direct p50 {ttft['bench']['direct_p50_ms']:.3f} ms, through Loom p50 {ttft['bench']['loom_p50_ms']:.3f} ms "
        f"(added p99 {ttft['bench']['added_p99_ms']:.3f} ms, {ttft['bench']['n']} streams). With a PII policy on the output "
        f"(`bench-out`, which holds back up to 256 bytes): added p50 {ttft['bench-out']['added_p50_ms']:.3f} ms.",
        "",
        f"Usage recorded by the gateway during the run: {lat['usage_rows']}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--loom", default=os.path.join(ROOT, ".build-rel2", "release", "loom"))
    ap.add_argument("--double", default=os.path.join(ROOT, ".build-rel2", "release", "loom-test-llm-double"))
    args = ap.parse_args()
    results = run(args.loom, args.double, args.duration, args.rounds)
    command = "python3 bench/gateway_bench.py " + " ".join(sys.argv[1:])
    text = report(results, command.strip())
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "gateway.md"), "w") as f:
        f.write(text)
    with open(os.path.join(RESULTS, "gateway.json"), "w") as f:
        json.dump(results, f, indent=2, default=str)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
