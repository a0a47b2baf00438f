"""Set-up shared by the benchmarks: a throwaway database, Django, a benchmark template."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fresh_postgres(name: str) -> str:
    """Drop and re-create database ``name`` on the local PostgreSQL; its DATABASE_URL."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}"')
        c.execute(f'CREATE DATABASE "{name}"')
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def setup_django(env: dict[str, str]) -> None:
    """Apply ``env`` to this process, set Django up and migrate its database."""
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gantry.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from gantry.local import make_local_folders

    make_local_folders()  # the SQLite file's and the filesystem broker's, where used
    call_command("migrate", verbosity=0, interactive=False)


def benchmark_template_version(checkpoint: Path, *, timepoints: int, method: str = "condition"):
    """A registered generator and one template version asking for the benchmark's series."""
    from django.contrib.auth.models import User

    from cases.models import CaseTemplate, GeneratorModel

    user = User.objects.create_user("bench-educator")
    generator = GeneratorModel.register(checkpoint, name=checkpoint.stem, title=checkpoint.stem)
    progressive = generator.model_card.get("cohort", {}).get("findings_with_severity")
    template = CaseTemplate.objects.create(title="Generation benchmark", created_by=user)
    return template.add_version(
        author=user,
        title=template.title,
        modality=generator.modality,
        body_region="benchmark",
        finding=(progressive or generator.findings[-1:])[0],
        generator=generator,
        truncation=0.7,
        progression={
            "timepoints": timepoints,
            "severity_from": 0.1,
            "severity_to": 0.9,
            "interval_days": 90,
            "method": method,
        },
        patient_recipe={"age_min": 40, "age_max": 75, "sex_mix": 0.5},
        history="A {age}-year-old {sex_word}.",
        diagnosis="Benchmark",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PLAIN_HTTP = {"SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0"}


def start_gunicorn(
    env: dict[str, str], port: int, *, workers: int, threads: int, log: Path
) -> subprocess.Popen:
    """gunicorn serving Gantry on ``port`` with ``env``; returns once the login page answers."""
    import requests

    options = f"-b 127.0.0.1:{port} -w {workers} --threads {threads} --log-level warning"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "gantry.wsgi", *options.split()],
            cwd=ROOT,
            # Plain HTTP on the loopback: no redirect to HTTPS, cookies sent without TLS.
            env={**os.environ, **PLAIN_HTTP, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=10)
            return process
        except requests.RequestException:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit(f"gunicorn did not start:\n{log.read_text()[-2000:]}")
