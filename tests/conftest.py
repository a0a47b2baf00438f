"""Fixtures shared by every suite: media in a temporary folder, users per role, a tiny
real generator checkpoint, and a real Celery worker process for the worker tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings as django_settings
from django.db import connection

from tests.factories import PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parent.parent

# oneDNN (convolutions, matrix products) held to AVX2 on every x86 test machine, set before
# torch loads it, so that briefly trained toy models come out alike on machines with newer
# instructions: with AVX-512 and AMX kernels one series of the toy generator's lesions shrank
# where with AVX2 it grew. (ATEN_CPU_CAPABILITY=avx2 as well made compiled synthesis return
# NaN on such a machine, torch 2.13, so ATen's own kernels are left to choose.)
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")


@pytest.fixture(scope="session", autouse=True)
def plain_http() -> None:
    """The test client and the live server speak plain HTTP: no redirect to HTTPS and no
    HTTPS-only cookies, the production defaults (gantry.settings) set before any server
    starts. tests/test_deploy.py checks the defaults themselves."""
    django_settings.SECURE_SSL_REDIRECT = False
    django_settings.SESSION_COOKIE_SECURE = False
    django_settings.CSRF_COOKIE_SECURE = False


@pytest.fixture(autouse=True)
def pseudonym_key(settings) -> None:
    settings.GANTRY_PSEUDONYM_KEY = "test-pseudonym-key"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path_factory) -> Path:
    root = tmp_path_factory.getbasetemp() / "media"
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """PBKDF2's million rounds cost about a second per password set or checked on a CI core,
    and most tests make or log in users; no test measures the hashing itself."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def cases_written_in_the_test_thread(settings) -> None:
    """In-process generation writes cases in the caller's thread: other threads' database
    connections cannot see the rows of a test that runs inside a transaction. Worker
    processes (``start_worker``) and the tests that ask for it use writer threads."""
    settings.GANTRY_WRITER_THREADS = 0


@pytest.fixture
def trainee(db):
    return UserFactory(role="trainee")


@pytest.fixture
def other_trainee(db):
    return UserFactory(role="trainee")


@pytest.fixture
def educator(db):
    return UserFactory(role="educator")


@pytest.fixture
def expert(db):
    return UserFactory(role="expert")


@pytest.fixture
def login(client):
    def _login(user):
        assert client.login(username=user.username, password=PASSWORD)
        return client

    return _login


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A real, randomly initialised 32² StyleGAN2 generator (image + mask), saved as a
    Gantry checkpoint with its card: fast to load and sample on a CPU."""
    from tests.tiny_generator import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("generators"))


@pytest.fixture
def generator_model(db, tiny_checkpoint):
    from cases.models import GeneratorModel

    return GeneratorModel.register(tiny_checkpoint, name="tiny-brain", title="Tiny brain")


@pytest.fixture(scope="session")
def scripted_checkpoints(tmp_path_factory) -> dict[bool, Path]:
    """Packed TorchScript generators (tests/scripted_generator.py), by whether they have a
    segmenter."""
    from tests.scripted_generator import write_scripted_generator

    folder = tmp_path_factory.mktemp("scripted")
    return {masks: write_scripted_generator(folder, segmenter=masks) for masks in (True, False)}


@pytest.fixture
def scripted_model(db, scripted_checkpoints):
    """``scripted_model(masks=True)``: a registered TorchScript generator of DX disks."""
    from cases.models import GeneratorModel

    def _register(*, masks: bool = True):
        name = "scripted-disk" if masks else "scripted-disk-no-masks"
        return GeneratorModel.register(scripted_checkpoints[masks], name=name, title=name)

    return _register


@pytest.fixture
def make_cases(generator_model):
    """``make_cases(n, status=..., **version_fields)``: really generated cases (DICOM files in
    media, rows committed) from a fresh template version on the tiny generator."""
    from cases.generation import worker
    from cases.models import SyntheticPatient
    from tests.factories import GenerationJobFactory, TemplateVersionFactory

    def _make(n: int = 1, *, status: str = SyntheticPatient.Status.APPROVED, **fields):
        version = TemplateVersionFactory(generator=generator_model, **fields)
        job = GenerationJobFactory(template_version=version, n_cases=n)
        worker.run_generation_job(job_pk=job.pk)
        job.cases.update(status=status)
        return list(job.cases.order_by("case_index"))

    return _make


class TaskQueue:
    """Tasks sent by name, recorded instead of sent to a broker; ``run()`` runs them in this
    process, in order, by calling the task functions as a worker would."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict, str | None]] = []

    def send_task(self, name: str, kwargs: dict | None = None, queue: str | None = None, **_):
        self.sent.append((name, kwargs or {}, queue))

    def run(self) -> int:
        from django.utils.module_loading import import_string

        sent, self.sent = self.sent, []
        for name, kwargs, _queue in sent:
            import_string(name)(**kwargs)
        return len(sent)


@pytest.fixture
def task_queue(monkeypatch) -> TaskQueue:
    """Sent tasks held for ``task_queue.run()``. A test in a transaction sends them on
    commit: wrap the request in ``django_capture_on_commit_callbacks(execute=True)``."""
    queue = TaskQueue()
    monkeypatch.setattr("gantry.celery.app.send_task", queue.send_task)
    return queue


def _database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or "postgres"
    return f"postgres://{user}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


@pytest.fixture
def start_worker(transactional_db, media_root, tmp_path):
    """``start_worker(name, **env)``: a real ``celery worker`` process on the configured
    broker and the test database, consuming the gpu and cpu queues; stopped at teardown."""
    from gantry.celery import app

    app.control.purge()
    workers = []

    def _start(name: str = "test", **extra_env: str):
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "MEDIA_ROOT": str(media_root),
            "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
            "GANTRY_WORKER_CACHE_DIR": str(tmp_path / f"cache-{name}"),
            "GANTRY_DEVICE": "cpu",
            "GANTRY_TORCH_THREADS": "1",
            **extra_env,
        }
        log = tmp_path / f"worker-{name}.log"
        command = "-m celery -A gantry worker -Q gpu,cpu -c 1 -P solo --prefetch-multiplier 1"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, *command.split(), "-l", "info", "-n", f"{name}-{os.getpid()}@%h"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = SimpleNamespace(process=process, log=log, name=f"{name}-{os.getpid()}@")
        workers.append(worker)
        _wait_for(lambda: "ready." in log.read_text(), timeout=60, what="worker start", log=log)
        return worker

    yield _start
    for worker in workers:
        if worker.process.poll() is None:
            os.kill(worker.process.pid, signal.SIGCONT)  # a test may have left it stopped
            worker.process.terminate()
            worker.process.wait(timeout=30)
        print(worker.log.read_text()[-3000:])


@pytest.fixture
def celery_worker(start_worker):
    return start_worker()


def _wait_for(
    condition, *, timeout: float, what: str, log: Path | None = None, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    detail = log.read_text()[-2000:] if log else ""
    raise AssertionError(f"timed out waiting for {what}\n{detail}")


@pytest.fixture
def wait_for():
    return _wait_for


@pytest.fixture(scope="session", autouse=True)
def local_folders() -> None:
    """The embedded default's folders (the SQLite file's, the filesystem broker's)."""
    from gantry.local import make_local_folders

    make_local_folders()


@pytest.fixture(scope="session")
def tiny_brain_run(tmp_path_factory):
    """The brain-mri latent recipe trained two steps a stage (every part exists, none is
    good), and the recipe it ran: (recipe, run folder)."""
    from dataclasses import replace

    import torch

    from genworker.cohorts import sources
    from genworker.latent import training
    from genworker.latent.recipes import latent_recipe
    from tests.genworker.tiny_latent import TINY_LENGTHS

    if not sources.is_fetched("antspyx"):
        pytest.skip(f"the antspyx anatomy is not fetched (run `{sources.FETCH_COMMAND}`)")
    torch.set_num_threads(1)
    # Its handful of normal subjects are too few to calibrate the anatomy GAN by (the chest
    # recipe's test calibrates one on more), and its two-step renderer draws no lesion for a
    # gain to scale (test_latent fits one to a change it sets).
    recipe = replace(
        latent_recipe("brain-mri"), **TINY_LENGTHS, anatomy_calibration=(), lesion_gain=False
    )
    run = tmp_path_factory.mktemp("tiny-brain-run")
    training.train_recipe(recipe, run, architectures=("cgan",), workers=1)
    return recipe, run


@pytest.fixture(scope="session")
def subject_anatomy():
    import numpy as np

    from genworker.cohorts import brain_mri

    return brain_mri.draw_subject(np.random.default_rng(2), 60.0, 0).tissue


@pytest.fixture
def plan_on_a_real_brain(subject_anatomy, monkeypatch):
    """A tiny latent model's decoder draws no brain to plan in: plan on a simulated
    subject's instead."""
    from genworker.latent import model

    plan = model.PLANNERS["brain-mri"]
    monkeypatch.setitem(
        model.PLANNERS, "brain-mri", lambda _anatomy, *a, **k: plan(subject_anatomy, *a, **k)
    )
