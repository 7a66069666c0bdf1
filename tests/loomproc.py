"""Start and stop a real `loom server` process for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def loom_bin() -> str:
    path = os.environ.get("LOOM_BIN") or os.path.join(ROOT, ".build", "debug", "loom")
    if not os.path.exists(path):
        raise RuntimeError(f"loom binary not found at {path}; run `swift build` or set LOOM_BIN")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_url(schema: str | None = None) -> str:
    base = os.environ.get("LOOM_TEST_POSTGRES_URL")
    if not base:
        raise RuntimeError("LOOM_TEST_POSTGRES_URL is not set")
    schema = schema or "e2e_" + uuid.uuid4().hex[:12]
    return base + ("&" if "?" in base else "?") + f"schema={schema}"


@dataclass
class LoomServer:
    """A running `loom server` on a free loopback port."""

    data: str
    store: str | None = None
    auth: bool = False
    env: dict = field(default_factory=dict)
    args: list = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "LoomServer":
        self.port = self.port or free_port()
        cmd = [loom_bin(), "server", "--host", "127.0.0.1", "--port", str(self.port), "--data", self.data]
        if self.store:
            cmd += ["--store", self.store]
        cmd += ["--auth"] if self.auth else ["--no-auth"]
        cmd += self.args
        env = dict(os.environ)
        env.update(self.env)
        self.log_path = os.path.join(self.data, f"server-{self.port}.log")
        os.makedirs(self.data, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"loom server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"loom server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


def temp_data_dir(prefix: str = "loom-e2e-") -> str:
    base = os.path.join(ROOT, ".tmp", "e2e")
    os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def run_cli(*args: str, data: str, input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([loom_bin(), *args, "--data", data], input=input, capture_output=True, text=True, env=e, timeout=60)


def http_responses(sock, count: int) -> list[tuple[int, str, dict, bytes]]:
    """Reads `count` HTTP/1.1 responses (Content-Length bodies) from a socket, in order: each as
    (status, status line, headers with lower-case names, body)."""
    buf, out = b"", []
    while len(out) < count:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(buf) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed mid-body"
            buf += chunk
        out.append((int(lines[0].split()[1]), lines[0], headers, buf[:length]))
        buf = buf[length:]
    return out
