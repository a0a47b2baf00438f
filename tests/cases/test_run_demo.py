"""bin/run-demo: the port comes from PORT, and the logins are printed last, once the site
answers, so that they are what a new user sees; Ctrl-C (SIGINT) stops the site and the
worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent

pytestmark = pytest.mark.worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path: Path, port: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "VENV": str(VENV),
        "PORT": port,
        "DEBUG": "1",
        "GANTRY_VAR_DIR": str(tmp_path),
        "CELERY_BROKER_URL": "filesystem://",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    return subprocess.Popen(
        [str(ROOT / "bin" / "run-demo")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # As from a terminal: a shell cannot trap a SIGINT ignored when it starts, and a
        # test runner started in the background (`cmd &`) passes SIGINT on ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_the_demo_answers_on_port_and_prints_the_logins_last(tmp_path):
    port = _free_port()
    demo = _run(tmp_path, str(port))
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not any("trainee " in line for line in lines):
            line = demo.stdout.readline()
            assert line, "run-demo ended early:\n" + "".join(lines)
            lines.append(line)
        text = "".join(lines)
        assert f"Gantry is at http://127.0.0.1:{port}" in text
        answered = next(i for i, line in enumerate(lines) if "GET /accounts/login/" in line)
        logins = next(i for i, line in enumerate(lines) if "Logins:" in line)
        assert answered < logins  # printed once the site answered, after its start-up output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/") as reply:
            assert reply.status == 200
        assert (tmp_path / "log" / "worker.log").read_text().count("ready.") == 1
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=60)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2)


def test_a_port_that_is_not_a_number_is_refused(tmp_path):
    demo = _run(tmp_path, "eighty")
    out, _ = demo.communicate(timeout=30)
    assert demo.returncode == 2
    assert "PORT must be a port number, not 'eighty'" in out
