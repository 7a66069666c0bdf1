"""Grounding indexes end to end (docs/indexes.md): a real `loom server` reading sources under
LOOM_SOURCES_ROOT, the CLI, and `loom-test-llm-double` (a TEST DOUBLE standing in for an
embedding provider: its vectors are a hash of the text, so equal texts have equal vectors).

BM25 scores are checked against `rank_bm25.BM25Okapi` (the Python reference implementation)
on the same corpus and tokens.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time

import pytest
import requests
from rank_bm25 import BM25Okapi

import loomproc
from test_gateway import DOUBLE_KEY, Double

WORDS = ("model drift canary rollout gateway prompt index chunk vector token metric dataset pipeline schedule "
         "endpoint traffic mirror gate alert latency budget route provider key workspace lineage version digest").split()


def corpus(seed: int = 7, n: int = 300) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(WORDS[: rng.randint(4, len(WORDS))]) for _ in range(rng.randint(5, 40))]
        rows.append({"text": " ".join(words), "title": f"note {i}", "lang": "en" if i % 3 else "de"})
    return rows


def tokens(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    double = Double()
    root = tmp_path_factory.mktemp("sources")
    (root / "docs" / "guide").mkdir(parents=True)
    (root / "docs" / "guide" / "install.md").write_text(
        "---\nteam: platform\n---\n# Install\nRun loom server to start.\n\n## PostgreSQL\nTeams point Loom at PostgreSQL and S3.\n")
    (root / "docs" / "faq.html").write_text(
        "<html><head><title>FAQ</title><style>p {}</style></head><body><h1>Questions</h1>"
        "<p>A canary rollout rolls back when a gate fails.</p></body></html>")
    (root / "docs" / "broken.jsonl").write_text('{"text": "fine record"}\n{not json\n')
    (root / "notes").mkdir()
    (root / "notes" / "notes.jsonl").write_text("\n".join(json.dumps(r) for r in corpus()) + "\n")
    (root / "secret.md").write_text("# Secret\nnot under any source")
    data = loomproc.temp_data_dir()
    server = loomproc.LoomServer(data=data, env={"LLM_DOUBLE_KEY": DOUBLE_KEY, "LOOM_SOURCES_ROOT": str(root)}).start()
    work = tmp_path_factory.mktemp("specs")
    specs = {
        "provider": f"kind: provider\nname: double\ntype: openai-compatible\nbase_url: {double.url}/v1\napi_key_env: LLM_DOUBLE_KEY\n",
        "route": "kind: route\nname: embed\ntask: embeddings\ntargets: [{provider: double, model: embed-1}]\n",
        "docs": "kind: index\nname: docs\nsources: [docs]\nchunking: {strategy: headings, max_tokens: 100}\nembeddings: {route: embed, batch: 2}\n",
        "notes": "kind: index\nname: notes\nsources: [{path: notes, text_field: text}]\nchunking: {strategy: tokens, size: 1000, overlap: 0}\n",
    }
    for name, text in specs.items():
        f = work / f"{name}.yaml"
        f.write_text(text)
        p = cli(server, "apply", "-f", str(f))
        assert p.returncode == 0, p.stdout + p.stderr
    yield server, double, root
    server.stop()
    double.stop()
    loomproc.remove(data)


def cli(server, *args) -> subprocess.CompletedProcess:
    return subprocess.run([loomproc.loom_bin(), *args, "--server", server.url], capture_output=True, text=True, timeout=120)


def api(server, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, server.url + "/api/v1/indexes" + path, timeout=60, **kw)


def test_build_query_and_lineage(env):
    server, _, _ = env
    p = cli(server, "index", "build", "docs", "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    build = json.loads(p.stdout)
    assert build["changed"] is True and build["version"]["version"] == 1
    assert build["parsed_documents"] == 3 and build["version"]["documents"] == 3
    assert any("broken.jsonl#2" in s for s in build["problems"]), build["problems"]
    assert build["embedded_chunks"] == build["version"]["chunks"]
    assert build["version"]["details"]["build"]["recall_at_10"] == 1.0

    r = api(server, "POST", "/docs/query", json={"query": "postgresql teams", "mode": "bm25", "k": 2})
    assert r.status_code == 200, r.text
    hit = r.json()["hits"][0]
    assert hit["source"] == "docs/guide/install.md" and hit["heading"] == "Install > PostgreSQL" and hit["metadata"] == {"team": "platform"}

    # The double's vectors hash the text: a chunk's own text finds it first, at similarity 1.
    chunk = r.json()["hits"][0]["text"]
    v = api(server, "POST", "/docs/query", json={"query": chunk, "mode": "vector", "k": 1}).json()["hits"][0]
    assert v["text"] == chunk and v["score"] == pytest.approx(1.0, abs=1e-5) and v["vector_rank"] == 1
    # A query may widen (or narrow) the graph's candidate list: the same nearest chunk either way here.
    wide = api(server, "POST", "/docs/query", json={"query": chunk, "mode": "vector", "k": 1, "ef_search": 4000}).json()["hits"][0]
    assert wide["text"] == chunk
    h = api(server, "POST", "/docs/query", json={"query": "canary gate", "mode": "hybrid", "k": 3}).json()["hits"]
    assert h[0]["source"] == "docs/faq.html" and h[0]["bm25_rank"] == 1

    docs = api(server, "GET", "/docs/versions/1").json()["documents"]
    assert [d["source"] for d in docs] == ["docs/broken.jsonl#1", "docs/faq.html", "docs/guide/install.md"]
    assert all(d["digest"].startswith("sha256:") for d in docs)

    p = cli(server, "index", "query", "docs", "canary gate", "--mode", "bm25", "-k", "1")
    assert p.returncode == 0 and "docs/faq.html" in p.stdout, p.stdout + p.stderr


def test_rebuilds_reuse_unchanged_files_and_report_staleness(env):
    server, double, root = env
    assert api(server, "POST", "/docs/build").json()["changed"] is False, "nothing changed: no new version"
    before = len([x for x in requests.get(double.url + "/double/requests", timeout=5).json() if x["path"].endswith("/embeddings")])
    time.sleep(0.05)
    (root / "docs" / "faq.html").write_text("<html><body><h1>Questions</h1><p>A canary rollout rolls back twice.</p></body></html>")
    shown = api(server, "GET", "/docs").json()
    assert shown["pending_changes"] == ["docs/faq.html"] and shown["staleness_seconds"] >= 0
    build = api(server, "POST", "/docs/build").json()
    assert build["changed"] is True and build["version"]["version"] == 2
    assert build["reused_documents"] == 2 and build["parsed_documents"] == 1 and build["embedded_chunks"] == 1
    after = len([x for x in requests.get(double.url + "/double/requests", timeout=5).json() if x["path"].endswith("/embeddings")])
    assert after - before == 1, "only the changed chunk was embedded"
    assert api(server, "GET", "/docs").json()["pending_changes"] == []
    old = api(server, "POST", "/docs/query", json={"query": "twice", "mode": "bm25", "k": 1, "version": 1}).json()
    new = api(server, "POST", "/docs/query", json={"query": "twice", "mode": "bm25", "k": 1}).json()
    assert old["version"] == 1 and old["hits"] == [] and new["version"] == 2 and new["hits"][0]["source"] == "docs/faq.html"


def test_bm25_matches_rank_bm25(env):
    server, _, _ = env
    assert api(server, "POST", "/notes/build").status_code == 201
    rows = corpus()
    reference = BM25Okapi([tokens(r["text"]) for r in rows])
    rng = random.Random(3)
    for _ in range(20):
        query = " ".join(rng.sample(WORDS, rng.randint(1, 4)))
        expected = reference.get_scores(tokens(query))
        got = api(server, "POST", "/notes/query", json={"query": query, "mode": "bm25", "k": 10}).json()["hits"]
        assert got, query
        for hit in got:
            line = int(hit["source"].split("#")[1])
            assert hit["score"] == pytest.approx(expected[line - 1], rel=1e-9, abs=1e-9), (query, hit["source"])
        best = sorted(range(len(rows)), key=lambda i: (-expected[i], i))[:10]
        assert [int(h["source"].split("#")[1]) - 1 for h in got] == best, query
    german = api(server, "POST", "/notes/query", json={"query": "drift", "mode": "bm25", "k": 50, "filter": {"lang": "de"}}).json()["hits"]
    assert german and all(h["metadata"]["lang"] == "de" for h in german)


def test_bad_input_gets_4xx_and_changes_nothing(env, tmp_path):
    server, _, _ = env
    for spec, field in (("kind: index\nname: up\nsources: [../etc]\n", "sources[0]"),
                        ("kind: index\nname: up\nsources: [docs]\nchunking: {strategy: pages}\n", "chunking.strategy"),
                        ("kind: index\nname: up\nsources: [docs]\nembeddings: {}\n", "embeddings.route")):
        r = api(server, "POST", "", json={"spec": spec})
        assert r.status_code == 400 and field in r.text, r.text
    assert "up" not in [i["name"] for i in api(server, "GET", "").json()["items"]]
    assert api(server, "POST", "/nope/query", json={"query": "x"}).status_code == 404
    assert api(server, "POST", "/docs/query", json={"query": "x", "mode": "fuzzy"}).status_code == 400
    assert api(server, "POST", "/docs/query", json={"query": "x", "k": 0}).status_code == 400
    for ef in (0, 10_001, "many"):
        r = api(server, "POST", "/docs/query", json={"query": "x", "mode": "vector", "ef_search": ef})
        assert r.status_code == 400 and "ef_search" in r.text, r.text
    assert api(server, "POST", "/docs/query", json={"query": "x", "filter": {"lang": {"like": "e%"}}}).status_code == 400
    assert api(server, "POST", "/notes/query", json={"query": "x", "mode": "vector"}).status_code == 400, "notes has no embeddings"
    assert api(server, "GET", "/docs/versions/99").status_code == 404
    assert api(server, "GET", "/docs/versions/abc").status_code == 400
    r = api(server, "POST", "", json={"spec": "kind: index\nname: empty\nsources: [nowhere]\n"})
    assert r.status_code == 201
    r = api(server, "POST", "/empty/build")
    assert r.status_code == 400 and "nowhere" in r.text, r.text
    assert api(server, "DELETE", "/empty").status_code == 204
    assert api(server, "DELETE", "/empty").status_code == 404


def test_ui_pages_show_indexes_and_answer_queries(env):
    server, _, _ = env
    api(server, "POST", "/docs/build")
    r = requests.get(server.url + "/indexes", timeout=10)
    assert r.status_code == 200 and 'href="/indexes/docs"' in r.text and "notes" in r.text
    r = requests.get(server.url + "/indexes/docs", params={"q": "canary gate", "mode": "bm25"}, timeout=10)
    assert r.status_code == 200 and "docs/faq.html" in r.text and "Versions" in r.text and "docs/guide/install.md" in r.text
    assert "<script>" not in r.text.split("<main>")[1], "document text is escaped"
    assert requests.get(server.url + "/indexes/docs", params={"q": "x", "mode": "fuzzy"}, timeout=10).status_code == 400
    assert requests.get(server.url + "/indexes/nope", timeout=10).status_code == 404
