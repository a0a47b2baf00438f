"""WADO-RS instance retrieval under concurrent clients, against the same file served static.

Sets up a throwaway SQLite site in a temporary folder (no services needed), imports one
``--size``² 16-bit image into a reference pool, gives an educator a DICOMweb token, and copies
the stored file into STATIC_ROOT so that WhiteNoise serves the very same bytes. gunicorn serves
the site; ``--clients`` threads, each with its own HTTP session, fetch for ``--seconds``:

1. the instance through WADO-RS (token auth, permission check, catalog query, multipart), and
2. the same file as a plain static file (the baseline).

Both URLs are first fetched for ``--warmup`` seconds and the replies checked (the WADO-RS
body must hold the very bytes of the static file); those requests are not counted. Without
it, the first phase would also time each worker's first request, which imports the URLconf
and with it pydicom and numpy, while 50 clients queue behind it. ``--rounds`` alternates the
two phases that many times (WADO-RS, static, WADO-RS, ...) so that a change in the load of a
shared machine weighs on both alike.

Prints requests/s, p50 and p95 per kind, and the ratios WADO-RS / static. The site opens a
database connection per request (``?conn_max_age=0`` in DATABASE_URL) unless
``--conn-max-age`` says otherwise; Gantry's own default keeps them 60 s.

    python bench/wado_throughput.py                       # 50 clients, 10 s per phase
    python bench/wado_throughput.py --seconds 5 --workers 2 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, start_gunicorn  # noqa: E402


def setup_site(folder: Path, size: int, conn_max_age: int = 0) -> tuple[dict[str, str], str, str]:
    """Migrate, import one image, make a token; returns env, WADO-RS path, static path."""
    env = {
        "DATABASE_URL": f"sqlite:///{folder / 'bench.sqlite3'}?conn_max_age={conn_max_age}",
        "GANTRY_VAR_DIR": str(folder),
        "MEDIA_ROOT": str(folder / "media"),
        "SECRET_KEY": secrets.token_hex(32),
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on 127.0.0.1
        "GANTRY_PSEUDONYM_KEY": secrets.token_hex(32),
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "gantry.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from cases.models import AccessToken, ReferencePool
    from cases.reference.dicom_import import import_files
    from tests.cases import dicom_samples
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    user = UserFactory(role="educator")
    pool = ReferencePool.objects.create(name="bench")
    data = dicom_samples.to_bytes(dicom_samples.dataset(dicom_samples.pixels(size, size)))
    (image,) = import_files(pool, [("bench.dcm", data)], user).imported
    key = AccessToken.issue(user)
    static = Path(settings.STATIC_ROOT) / "bench" / "instance.dcm"
    static.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(image.file.path, static)
    wado = (
        f"/dicomweb/studies/{image.study_uid}/series/{image.series_uid}"
        f"/instances/{image.sop_instance_uid}"
    )
    env["TOKEN"] = key
    return env, wado, "/static/bench/instance.dcm"


def check(base: str, wado: str, static: str, headers: dict[str, str]) -> None:
    """One WADO-RS reply must be a multipart holding exactly the static file's bytes."""
    original = requests.get(base + static, timeout=60)
    reply = requests.get(base + wado, headers=headers, timeout=60)
    if original.status_code != 200 or reply.status_code != 200:
        raise SystemExit(f"static {original.status_code}, WADO-RS {reply.status_code}")
    content_type = reply.headers["Content-Type"]
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"')
    part = reply.content.split(f"--{boundary}".encode())[1]
    body = part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")
    if not content_type.startswith("multipart/related") or body != original.content:
        raise SystemExit("the WADO-RS reply does not hold the stored file")


def load(url: str, headers: dict[str, str], clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        session = requests.Session()
        mine, bad = [], 0
        while time.monotonic() < stop:
            start = time.perf_counter()
            response = session.get(url, headers=headers, timeout=30)
            _ = response.content
            mine.append(time.perf_counter() - start)
            bad += response.status_code != 200
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "errors": errors[0], "seconds": time.monotonic() - began}


def summary(runs: list[dict]) -> dict[str, float]:
    latencies = sorted(x for run in runs for x in run["latencies"])
    return {
        "requests": len(latencies),
        "errors": sum(run["errors"] for run in runs),
        "rps": len(latencies) / sum(run["seconds"] for run in runs),
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--warmup", type=float, default=3, help="seconds per URL, not counted")
    parser.add_argument("--rounds", type=int, default=1, help="alternations of the two phases")
    parser.add_argument(
        "--compare-caches",
        action="store_true",
        help="also serve WADO-RS from a second site without its caches (GANTRY_DICOMWEB_CACHES=0)",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=0,
        help="CONN_MAX_AGE of the site's database (0, Django's default: a connection per request)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env, wado, static = setup_site(Path(tmp), args.size, args.conn_max_age)
        port = free_port()
        servers = [
            start_gunicorn(
                env, port, workers=args.workers, threads=4, log=Path(tmp) / "gunicorn.log"
            )
        ]
        try:
            base = f"http://127.0.0.1:{port}"
            accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
            auth = {"Authorization": f"Bearer {env['TOKEN']}", "Accept": accept}
            check(base, wado, static, auth)
            phases = {"WADO-RS": (base + wado, auth), "static": (base + static, {})}
            if args.compare_caches:  # the same site and database, served without its caches
                bare = free_port()
                servers.append(
                    start_gunicorn(
                        {**env, "GANTRY_DICOMWEB_CACHES": "0"}, bare, workers=args.workers,
                        threads=4, log=Path(tmp) / "gunicorn-bare.log",
                    )
                )  # fmt: skip
                phases["no-cache"] = (f"http://127.0.0.1:{bare}{wado}", auth)
            for url, headers in phases.values():
                load(url, headers, args.clients, args.warmup)
            runs: dict[str, list[dict]] = {name: [] for name in phases}
            for _ in range(args.rounds):
                for name, (url, headers) in phases.items():
                    runs[name].append(load(url, headers, args.clients, args.seconds))
            results = {name: summary(found) for name, found in runs.items()}
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
    print(
        f"{args.clients} clients, {args.rounds} x {args.seconds:g} s per kind after "
        f"{args.warmup:g} s warm-up, {args.workers} gunicorn workers x 4 threads, "
        f"{args.size}x{args.size} 16-bit instance, CONN_MAX_AGE {args.conn_max_age}, "
        f"{os.cpu_count()} CPUs"
    )
    for name, r in results.items():
        print(
            f"{name:8s} {r['rps']:8.1f} req/s  p50 {r['p50_ms']:7.1f} ms  "
            f"p95 {r['p95_ms']:7.1f} ms  ({r['requests']} requests, {r['errors']} errors)"
        )
    wado_r, static_r = results["WADO-RS"], results["static"]
    if "no-cache" in results:
        bare_r = results["no-cache"]
        print(
            f"RATIO WADO-RS with caches / without: throughput {wado_r['rps'] / bare_r['rps']:.2f}, "
            f"p95 latency {wado_r['p95_ms'] / bare_r['p95_ms']:.2f}"
        )
    print(
        f"RATIO WADO-RS/static: throughput {wado_r['rps'] / static_r['rps']:.2f} "
        f"(1.00 = as fast as static), p95 latency {wado_r['p95_ms'] / static_r['p95_ms']:.2f} "
        "(1.00 = as short as static)"
    )


if __name__ == "__main__":
    main()
