#!/usr/bin/env python3
"""Grounding index benchmark (issue 8): build an index of N chunks through a real `loom server`
(release build) and query it, next to Python references on the same data in the same run.

- Corpus: N JSON Lines records of 20-60 words, one chunk each, under a temporary
  LOOM_SOURCES_ROOT. Each record has one of 300 topics and draws 80 % of its words from its
  topic's 100 words, the rest from a Zipf(1.1) vocabulary of 30,000 synthetic words; queries
  are three words of one topic.
- Embeddings: `loom-test-llm-double`'s `embed-bow-64` model (a TEST DOUBLE standing in for an
  embedding provider): the normalised sum of one pseudo-random unit vector per word, so that
  texts sharing words are near each other. This script computes the same vectors in numpy.
- Loom: `loom apply` an index spec, `POST /api/v1/indexes/bench/build` (timed; the server's
  peak resident memory from /proc), then sequential queries through `POST .../query` in `bm25`
  and `vector` mode (the vector query includes the embedding call to the double).
- References: `rank_bm25.BM25Okapi` (build time; `get_scores` + top 10 per query) and numpy
  exact cosine search (matrix-vector product + argpartition) over the same vectors; Loom's
  vector hits are compared with numpy's exact top 10 (recall@10 of HNSW at its defaults).

    .venv/bin/python bench/retrieval_bench.py --chunks 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from endpoint_bench import Proc, free_port, log, wait_http  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "bench-double-key"
DIMS = 64
M64 = (1 << 64) - 1


def word_vector(word: str, dims: int = DIMS) -> np.ndarray:
    """The double's `embedding(of:)`: FNV-1a of the UTF-8 seeds a 64-bit LCG."""
    state = 0xCBF29CE484222325
    for b in word.encode():
        state = ((state ^ b) * 0x100000001B3) & M64
    values = np.empty(dims, dtype=np.float64)
    for i in range(dims):
        state = (state * 6364136223846793005 + 1442695040888963407) & M64
        values[i] = (state >> 11) / float(1 << 53) * 2 - 1
    norm = np.sqrt((values * values).sum())
    return (values / norm).astype(np.float32)


def post(base: str, path: str, body: dict, timeout: float = 7200) -> dict:
    req = urllib.request.Request(base + path, method="POST", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"{}")


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--reference-queries", type=int, default=50, help="rank_bm25 is slow: fewer queries for it")
    ap.add_argument("--loom", default=os.path.join(ROOT, ".build-rel2", "release", "loom"))
    ap.add_argument("--double", default=os.path.join(ROOT, ".build-rel2", "release", "loom-test-llm-double"))
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--skip-bm25-reference", action="store_true", help="numpy's exact vector search only (rank_bm25 takes minutes at 1M)")
    ap.add_argument("--vector", default="", help="the index spec's vector settings, e.g. '{ef_search: 128}' (default: Loom's defaults)")
    ap.add_argument("--sweep-ef", default="", help="also query with these ef_search values (per query), e.g. 512,1024,2048: q/s and recall@10 of each")
    args = ap.parse_args()
    rng = random.Random(5)
    work = tempfile.mkdtemp(prefix="loom-retrieval-bench-")
    vocab = [f"w{i}" for i in range(30_000)]
    weights = [1 / (r + 1) ** 1.1 for r in range(len(vocab))]

    log(f"generating {args.chunks:,} records")
    os.makedirs(os.path.join(work, "src", "corpus"))
    gen = np.random.default_rng(5)
    p = np.array(weights) / sum(weights)
    lengths = gen.integers(20, 61, size=args.chunks)
    # Documents have topics, as real ones do: each draws 80 % of its words from its topic's own
    # 100 words (300 topics) and the rest from the whole Zipf-weighted vocabulary.
    topics = gen.integers(0, 300, size=args.chunks)
    total = int(lengths.sum())
    words = gen.choice(len(vocab), size=total, p=p)
    owner = np.repeat(topics, lengths)
    own = gen.random(total) < 0.8
    words[own] = owner[own] * 100 + gen.integers(0, 100, size=int(own.sum()))
    texts: list[list[str]] = []
    per_file = 100_000
    offset = 0
    for start in range(0, args.chunks, per_file):
        n = min(per_file, args.chunks - start)
        with open(os.path.join(work, "src", "corpus", f"part-{start // per_file:03d}.jsonl"), "w") as f:
            for i in range(start, start + n):
                doc = [vocab[w] for w in words[offset:offset + lengths[i]]]
                offset += lengths[i]
                texts.append(doc)
                f.write(json.dumps({"text": " ".join(doc), "topic": f"t{topics[i]}"}) + "\n")
    queries = [" ".join(vocab[t * 100 + j] for j in rng.sample(range(100), 3)) for t in (rng.randrange(300) for _ in range(args.queries))]

    dport, lport = free_port(), free_port()
    double = Proc([args.double, str(dport)], env={"LLM_DOUBLE_KEY": KEY}, log_path=os.path.join(work, "double.log"))
    server = Proc([args.loom, "server", "--port", str(lport), "--data", os.path.join(work, "data"), "--log-level", "warning"],
                  env={"LLM_DOUBLE_KEY": KEY, "LOOM_SOURCES_ROOT": os.path.join(work, "src")}, log_path=os.path.join(work, "loom.log"))
    base = f"http://127.0.0.1:{lport}"
    results: dict = {"chunks": args.chunks}
    try:
        time.sleep(0.5)
        wait_http(base + "/health")
        for spec in (f"kind: provider\nname: double\ntype: openai-compatible\nbase_url: http://127.0.0.1:{dport}/v1\napi_key_env: LLM_DOUBLE_KEY\n",
                     "kind: route\nname: embed\ntask: embeddings\ntimeout: 300s\ntargets: [{provider: double, model: embed-bow-64}]\n"):
            kind = "providers" if "provider\n" in spec.split("name")[0] else "routes"
            post(base, f"/api/v1/gateway/{kind}", {"spec": spec})
        post(base, "/api/v1/indexes", {"spec": "kind: index\nname: bench\nsources: [corpus]\n"
                                               "chunking: {strategy: tokens, size: 1000}\nembeddings: {route: embed, batch: 512}\n"
                                               + (f"vector: {args.vector}\n" if args.vector else "")})
        rss_before = peak_rss_mib(server.p.pid)
        log("building the index through the server")
        t0 = time.time()
        build = post(base, "/api/v1/indexes/bench/build", {})
        build_s = time.time() - t0
        v = build["version"]
        results["loom_build_s"] = build_s
        results["loom_build_chunks_per_s"] = v["chunks"] / build_s
        results["loom_peak_rss_mib"] = peak_rss_mib(server.p.pid)
        results["loom_rss_before_mib"] = rss_before
        results["loom_recall_at_10_build_sample"] = v["details"]["build"].get("recall_at_10")
        log(f"  {v['chunks']:,} chunks in {build_s:.1f} s; peak RSS {results['loom_peak_rss_mib']:.0f} MiB; "
            f"recall@10 on the build's sample {results['loom_recall_at_10_build_sample']}")

        seen_scores: dict[str, list[list[float]]] = {"bm25": [], "vector": []}

        def timed(mode: str, ef: int | None = None) -> tuple[list[float], list[list[int]]]:
            lat, hits = [], []
            for q in queries:
                body = {"query": q, "mode": mode, "k": 10}
                if ef:
                    body["ef_search"] = ef
                t = time.perf_counter()
                r = post(base, "/api/v1/indexes/bench/query", body)
                lat.append(time.perf_counter() - t)
                hits.append([int(h["source"].split("#")[1]) - 1 + 100_000 * int(h["source"].split("part-")[1][:3]) for h in r["hits"]])
                if not ef:
                    seen_scores[mode].append([h["score"] for h in r["hits"]])
            return lat, hits

        post(base, "/api/v1/indexes/bench/query", {"query": queries[0], "mode": "bm25", "k": 10})  # loads the version
        bm25_lat, bm25_hits = timed("bm25")
        vec_lat, vec_hits = timed("vector")
        for name, lat in (("loom_bm25", bm25_lat), ("loom_vector", vec_lat)):
            results[name + "_qps"] = len(lat) / sum(lat)
            results[name + "_p50_ms"] = percentile(lat, 50) * 1000
            results[name + "_p99_ms"] = percentile(lat, 99) * 1000
        sweep = {}
        for ef in [int(x) for x in args.sweep_ef.split(",") if x.strip()]:
            lat, hits = timed("vector", ef)
            sweep[ef] = hits
            results[f"loom_vector_ef{ef}_qps"] = len(lat) / sum(lat)
            results[f"loom_vector_ef{ef}_p99_ms"] = percentile(lat, 99) * 1000
            log(f"  vector at ef_search {ef}: {results[f'loom_vector_ef{ef}_qps']:.0f} q/s p99 {results[f'loom_vector_ef{ef}_p99_ms']:.1f} ms")
        results["loom_peak_rss_after_queries_mib"] = peak_rss_mib(server.p.pid)
        log(f"  bm25 {results['loom_bm25_qps']:.0f} q/s p99 {results['loom_bm25_p99_ms']:.1f} ms; "
            f"vector {results['loom_vector_qps']:.0f} q/s p99 {results['loom_vector_p99_ms']:.1f} ms")
    finally:
        server.stop()
        double.stop()

    if not args.skip_reference:
        log("numpy: the same vectors, exact search")
        cache: dict[str, np.ndarray] = {}

        def vec(words: list[str]) -> np.ndarray:
            s = np.zeros(DIMS, dtype=np.float64)
            for w in words:
                if w not in cache:
                    cache[w] = word_vector(w)
                s += cache[w]
            return (s / np.linalg.norm(s)).astype(np.float32)

        matrix = np.stack([vec(t) for t in texts])
        exact_lat, recall_found, drift = [], 0, 0.0
        swept = {ef: 0 for ef in sweep}
        for i, (q, loom, loom_scores) in enumerate(zip(queries, vec_hits, seen_scores["vector"])):
            qv = vec(q.split())
            t = time.perf_counter()
            scores = matrix @ qv
            top = np.argpartition(-scores, 10)[:10]
            top = top[np.argsort(-scores[top])]
            exact_lat.append(time.perf_counter() - t)
            # Loom's hits scored by numpy: equal scores mean the same vectors (the check of this replica).
            drift = max([drift] + [abs(float(scores[i]) - s) for i, s in zip(loom, loom_scores)])
            # Near-ties: a hit whose exact score is within 1e-6 of the 10th best counts as found.
            tenth = float(scores[top[-1]])
            def found(hits: list[int]) -> int:
                exact = set(top.tolist())
                return min(10, len(exact & set(hits)) + sum(1 for h in hits if h not in exact and scores[h] >= tenth - 1e-6))
            recall_found += found(loom)
            for ef in sweep:
                swept[ef] += found(sweep[ef][i])
        results["vector_score_check_max_abs_diff"] = drift
        results["numpy_exact_qps"] = len(exact_lat) / sum(exact_lat)
        results["numpy_exact_p99_ms"] = percentile(exact_lat, 99) * 1000
        results["loom_hnsw_recall_at_10_vs_numpy"] = recall_found / (10 * len(queries))
        log(f"  numpy {results['numpy_exact_qps']:.0f} q/s; Loom HNSW recall@10 {results['loom_hnsw_recall_at_10_vs_numpy']:.3f}")
        for ef, n in swept.items():
            results[f"loom_hnsw_ef{ef}_recall_at_10_vs_numpy"] = n / (10 * len(queries))
            log(f"  recall@10 at ef_search {ef}: {results[f'loom_hnsw_ef{ef}_recall_at_10_vs_numpy']:.3f}")
        del matrix

    if not args.skip_reference and not args.skip_bm25_reference:
        log("rank_bm25: building")
        from rank_bm25 import BM25Okapi
        t0 = time.time()
        bm25 = BM25Okapi(texts)
        results["rank_bm25_build_s"] = time.time() - t0
        ref_lat, agree = [], 0
        for q, loom in list(zip(queries, bm25_hits))[: args.reference_queries]:
            t = time.perf_counter()
            scores = bm25.get_scores(q.split())
            top = np.argpartition(-scores, 10)[:10]
            ref_lat.append(time.perf_counter() - t)
            agree += len(set(top.tolist()) & set(loom))
        results["rank_bm25_qps"] = len(ref_lat) / sum(ref_lat)
        results["rank_bm25_p99_ms"] = percentile(ref_lat, 99) * 1000
        results["bm25_top10_agreement"] = agree / (10 * len(ref_lat))
        log(f"  rank_bm25 built in {results['rank_bm25_build_s']:.0f} s, {results['rank_bm25_qps']:.2f} q/s")
    print(json.dumps(results, indent=2))
    with open(os.path.join(ROOT, "bench", "results", f"retrieval-{args.chunks}.json"), "w") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
