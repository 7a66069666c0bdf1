"""The docs Q&A example (examples/docs-qa) as its README runs it, with `loom-test-llm-double`
(a TEST DOUBLE for an OpenAI-compatible provider) in place of the provider: the index over the
repository's own docs, the flow, both prompt variants, and the gated evaluation."""

from __future__ import annotations

import os
import subprocess

import loomproc
from test_gateway import DOUBLE_KEY, Double

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_example_runs_and_its_gate_decides():
    double = Double()
    data = loomproc.temp_data_dir()
    server = loomproc.LoomServer(data=data, env={"LLM_DOUBLE_KEY": DOUBLE_KEY, "LOOM_SOURCES_ROOT": ROOT}).start()
    try:
        env = dict(os.environ, LOOM=loomproc.loom_bin(), LOOM_SERVER=server.url, PROVIDER_URL=double.url + "/v1",
                   PROVIDER_KEY_ENV="LLM_DOUBLE_KEY", CHAT_MODEL="echo-1", EMBED_MODEL="embed-1")
        script = os.path.join(ROOT, "examples", "docs-qa", "run.sh")
        p = subprocess.run([script], capture_output=True, text=True, timeout=300, env=env)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        assert "index loom-docs version 1 (ready)" in p.stdout
        assert "gate hit_rate >= 0.6" in p.stdout and "passed" in p.stdout.splitlines()[-1]
        # The same evaluation with a gate the double cannot pass fails the job.
        p = subprocess.run([loomproc.loom_bin(), "eval", "run", "-f", os.path.join(ROOT, "examples", "docs-qa", "eval.yaml"),
                            "--fail-under", "groundedness=4", "--server", server.url], capture_output=True, text=True, timeout=300)
        assert p.returncode == 1 and "FAILED" in p.stdout, p.stdout + p.stderr
    finally:
        server.stop()
        double.stop()
        loomproc.remove(data)
