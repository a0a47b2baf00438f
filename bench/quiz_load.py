"""Load test: N simulated trainees take one quiz at once against gunicorn + PostgreSQL.

Sets up a throwaway PostgreSQL database (``--db``, dropped and re-created), generates
``--cases`` cases with the tiny test generator, approves them and publishes a practice quiz
with four auto-scored questions per case (single best answer, staging, localisation,
severity) and one free-text question, then makes ``--trainees`` trainees with ready
sessions (logging in is not what is measured). gunicorn serves the site; each trainee is a
thread with its own HTTP session that starts an attempt through the API, loads each item's
blinded images, answers every question (re-sending ``--resubmit`` of them, as a client that
lost the reply would), reads its attempt state and finishes.

Prints throughput and p50/p95 latency per request kind, the baseline (the login page, a
template render with no queries of ours) measured in the same run, and after the run
counts rows: every acknowledged answer must be stored exactly once.

    python bench/quiz_load.py                    # 100 trainees, 3 cases, 4 gunicorn workers
    python bench/quiz_load.py --trainees 20 --workers 2
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, fresh_postgres, setup_django, start_gunicorn  # noqa: E402


def configure(folder: Path, db: str, secret: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": fresh_postgres(db),
        "MEDIA_ROOT": str(folder / "media"),
        "GANTRY_VAR_DIR": str(folder),
        "GANTRY_WORKER_CACHE_DIR": str(folder / "cache"),
        "GANTRY_DEVICE": "cpu",
        "SECRET_KEY": secret,
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on 127.0.0.1
        "GANTRY_PSEUDONYM_KEY": secrets.token_hex(32),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "gantry.settings",
    }
    setup_django(env)
    return env


def build_quiz(folder: Path, n_cases: int, n_trainees: int) -> tuple[int, dict[int, str]]:
    """The published quiz's id and {user id: session key} of its trainees."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group, User
    from django.contrib.sessions.backends.db import SessionStore

    from cases.generation import worker
    from cases.models import GeneratorModel
    from edu.models import Question, Quiz, QuizItem
    from tests.factories import GenerationJobFactory, TemplateVersionFactory
    from tests.tiny_generator import write_tiny_checkpoint

    generator = GeneratorModel.register(write_tiny_checkpoint(folder), name="tiny", title="Tiny")
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator), n_cases=n_cases
    )
    worker.run_generation_job(job_pk=job.pk)
    job.cases.update(status="approved")
    cohort = Group.objects.create(name="bench-cohort")
    quiz = Quiz.objects.create(
        title="Load", cohort=cohort, created_by=job.requested_by, unknown_case=True
    )
    options = [{"text": "Glioma", "correct": True}, {"text": "Abscess"}, {"text": "Infarct"}]
    for order, case in enumerate(job.cases.order_by("case_index")):
        item = QuizItem.objects.create(quiz=quiz, case=case, order=order)
        kinds = ["single_best", "staging", "localisation", "severity"]
        if order == 0:
            kinds.append("free_text")
        for q, kind in enumerate(kinds):
            Question.objects.create(
                item=item, order=q, kind=kind, prompt=kind, options=options if q == 0 else []
            )
    quiz.publish()
    trainee = Group.objects.get(name="trainee")
    sessions = {}
    for i in range(n_trainees):
        user = User.objects.create(username=f"trainee{i}", password="!")  # unusable password
        user.groups.add(trainee, cohort)
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        sessions[user.pk] = store.session_key
    return quiz.pk, sessions


def random_response(kind: str, n_images: int, rng: random.Random) -> dict:
    if kind == "single_best":
        return {"option": rng.randrange(3)}
    if kind == "staging":
        return {"order": rng.sample(range(n_images), n_images)}
    if kind == "localisation":
        return {"image": rng.randrange(n_images), "x": rng.uniform(0, 32), "y": rng.uniform(0, 32)}
    if kind == "severity":
        return {"value": round(rng.random(), 2)}
    return {"text": "A mass."}


class Trainee(threading.Thread):
    def __init__(
        self,
        base: str,
        quiz: int,
        session: str,
        resubmit: float,
        log: dict,
        acked: list,
        barrier: threading.Barrier,
        seed: int,
    ) -> None:
        super().__init__(daemon=True)
        self.base, self.quiz, self.resubmit = base, quiz, resubmit
        self.log, self.acked, self.barrier = log, acked, barrier
        self.rng = random.Random(seed)
        self.http = requests.Session()
        csrf = secrets.token_hex(16)  # 32 characters: an unmasked CSRF secret
        self.http.cookies.set("sessionid", session, domain="127.0.0.1")
        self.http.cookies.set("csrftoken", csrf, domain="127.0.0.1")
        self.http.headers.update({"X-CSRFToken": csrf, "Referer": base})
        self.errors: list[str] = []

    def call(self, kind: str, method: str, path: str, **kwargs) -> requests.Response:
        start = time.perf_counter()
        response = self.http.request(method, self.base + path, timeout=120, **kwargs)
        self.log[kind].append(time.perf_counter() - start)
        if response.status_code >= 400:
            self.errors.append(f"{kind} {path}: {response.status_code} {response.text[:200]}")
        return response

    def run(self) -> None:
        self.barrier.wait()
        self.call("baseline", "GET", "/accounts/login/")
        state = self.call("start", "POST", f"/edu/api/quizzes/{self.quiz}/start/").json()
        attempt = state["id"]
        for item in state["items"]:
            for url in item["images"]:
                self.call("image", "GET", url)
            for question in item["questions"]:
                body = {
                    "question": question["id"],
                    "response": random_response(question["kind"], len(item["images"]), self.rng),
                }
                reply = self.call(
                    "answer", "POST", f"/edu/api/attempts/{attempt}/answers/", json=body
                )
                if reply.status_code in (200, 201):
                    self.acked.append((attempt, question["id"]))
                if self.rng.random() < self.resubmit:
                    self.call(
                        "resubmit", "POST", f"/edu/api/attempts/{attempt}/answers/", json=body
                    )
            self.call("state", "GET", f"/edu/api/attempts/{attempt}/")
        self.call("finish", "POST", f"/edu/api/attempts/{attempt}/finish/")
        self.call("baseline", "GET", "/accounts/login/")


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def report(log: dict, wall: float) -> None:
    base = statistics.median(log["baseline"])
    print(f"{'kind':<10}{'n':>6}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p50/base':>10}")
    for kind in ("baseline", "start", "image", "answer", "resubmit", "state", "finish"):
        values = log.get(kind, [])
        if not values:
            continue
        p50, p95 = statistics.median(values), percentile(values, 95)
        print(
            f"{kind:<10}{len(values):>6}{len(values) / wall:>9.1f}{1000 * p50:>9.1f}"
            f"{1000 * p95:>9.1f}{p50 / base:>10.1f}"
        )


def check_rows(acked: list, n_trainees: int) -> int:
    from django.db.models import Count

    from edu.models import Answer, Attempt

    stored = set(Answer.objects.values_list("attempt_id", "question_id"))
    duplicated = (
        Answer.objects.values("attempt", "question").annotate(n=Count("id")).filter(n__gt=1).count()
    )
    lost = len(set(acked) - stored)
    print(
        f"attempts {Attempt.objects.count()} (finished "
        f"{Attempt.objects.filter(finished_at__isnull=False).count()}) for {n_trainees} "
        f"trainees; answers acknowledged {len(set(acked))}, stored {Answer.objects.count()}, "
        f"lost {lost}, duplicated {duplicated}"
    )
    return lost + duplicated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trainees", type=int, default=100)
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--resubmit", type=float, default=0.2, help="share of answers sent twice")
    parser.add_argument("--db", default="gantry_quiz_bench")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gantry-quiz-bench-") as tmp:
        folder = Path(tmp)
        env = configure(folder, args.db, secrets.token_urlsafe(32))
        quiz, sessions = build_quiz(folder, args.cases, args.trainees)
        port = free_port()
        server = start_gunicorn(
            env, port, workers=args.workers, threads=1, log=folder / "gunicorn.log"
        )
        log: dict[str, list[float]] = defaultdict(list)
        acked: list = []
        barrier = threading.Barrier(args.trainees)
        trainees = [
            Trainee(f"http://127.0.0.1:{port}", quiz, key, args.resubmit, log, acked, barrier, i)
            for i, key in enumerate(sessions.values())
        ]
        try:
            start = time.perf_counter()
            for t in trainees:
                t.start()
            for t in trainees:
                t.join()
            wall = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(timeout=30)
        errors = [e for t in trainees for e in t.errors]
        print(
            f"{args.trainees} trainees, {args.cases} items, {args.workers} gunicorn workers, "
            f"{os.cpu_count()} CPUs: {wall:.1f} s wall; "
            f"{len(log['answer']) / wall:.1f} answer submissions/s"
        )
        report(log, wall)
        bad = check_rows(acked, args.trainees)
        if errors:
            print(f"{len(errors)} failed requests, e.g. {errors[0]}")
        sys.exit(1 if bad or errors else 0)


if __name__ == "__main__":
    main()
