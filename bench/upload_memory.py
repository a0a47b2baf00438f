"""Peak memory of the web process while STOW-RS takes decompression bombs and a big upload.

Sets up a throwaway SQLite site in a temporary folder, serves it with gunicorn (one worker,
one thread) and sends, through STOW-RS into a reference pool, one request each:

1. a deflated DICOM of ``--bomb-mib`` MiB of pixel data (about a thousandth of it on the wire),
2. the same inside a zip,
3. an RLE file whose header declares 20000 x 20000 x 2 frames of 16-bit pixels,
4. ``--upload-mib`` MiB of real images in parts of about 9.5 MiB.

Each body is written to a file first and streamed from it with its Content-Length (Django
reads no body that comes without one, as a chunked request does).

Before each request the worker's peak resident size is reset (``/proc/PID/clear_refs``);
after it, its peak (VmHWM) is read. Prints the status of each request, its peak and the
ratio of that peak to ``--target-mib`` (below 1.00: within the target).

    python bench/upload_memory.py                    # 1024 MiB bombs, a 190 MiB upload
    python bench/upload_memory.py --upload-mib 60    # quicker
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, start_gunicorn  # noqa: E402

BOUNDARY = "bench-upload-memory-boundary-5a1f"


def setup_site(folder: Path) -> tuple[dict[str, str], int]:
    """Migrate, make an educator with a token and a pool; returns env and the pool's id."""
    env = {
        "DATABASE_URL": f"sqlite:///{folder / 'bench.sqlite3'}",
        "GANTRY_VAR_DIR": str(folder),
        "MEDIA_ROOT": str(folder / "media"),
        "SECRET_KEY": secrets.token_hex(32),
        "GANTRY_PSEUDONYM_KEY": secrets.token_hex(32),
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on 127.0.0.1
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "gantry.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from cases.models import AccessToken, ReferencePool
    from tests.factories import UserFactory

    call_command("migrate", verbosity=0)
    user = UserFactory(role="educator")
    env["TOKEN"] = AccessToken.issue(user)
    return env, ReferencePool.objects.create(name="bench").pk


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def multipart(parts: Iterator[bytes]) -> Iterator[bytes]:
    for data in parts:
        yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        yield data
        yield b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()


def bombs(bomb_mib: int) -> dict[str, bytes]:
    from tests.cases import dicom_samples as samples

    deflated = samples.deflate_bomb(bomb_mib * 2**20)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.dcm", deflated)
    return {
        f"deflated ({len(deflated) / 2**20:.1f} MiB, {bomb_mib} MiB inflated)": deflated,
        f"zip ({len(archive.getvalue()) / 2**20:.1f} MiB)": archive.getvalue(),
        "RLE declaring 20000x20000x2": samples.rle_declaring(20000, 20000, 2),
    }


def upload_parts(total_mib: int) -> Iterator[bytes]:
    """Real 16-bit images of about 9.5 MiB each, made one at a time."""
    from tests.cases import dicom_samples as samples

    side = 2230
    for _ in range(max(1, round(total_mib / 9.5))):
        yield samples.to_bytes(samples.dataset(samples.pixels(side, side)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bomb-mib", type=int, default=1024)
    parser.add_argument("--upload-mib", type=int, default=190)
    parser.add_argument("--target-mib", type=float, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env, pool = setup_site(Path(tmp))
        port = free_port()
        server = start_gunicorn(env, port, workers=1, threads=1, log=Path(tmp) / "gunicorn.log")
        try:
            pid = worker_pid(server.pid)
            url = f"http://127.0.0.1:{port}/dicomweb/pools/{pool}/studies"
            headers = {
                "Authorization": f"Bearer {env['TOKEN']}",
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
            }
            requests.get(url.replace("/studies", "/instances"), headers=headers, timeout=60)
            baseline = peak_mib(pid)
            runs = [(name, [data]) for name, data in bombs(args.bomb_mib).items()]
            runs.append((f"upload of {args.upload_mib} MiB", upload_parts(args.upload_mib)))
            print(f"web worker after its first request: {baseline:.0f} MiB")
            for name, parts in runs:
                body = Path(tmp) / "body"
                with body.open("wb") as out:
                    out.writelines(multipart(iter(parts)))
                reset_peak(pid)
                with body.open("rb") as data:  # sent with its Content-Length, read as it goes
                    reply = requests.post(url, data=data, headers=headers, timeout=900)
                peak = peak_mib(pid)
                print(
                    f"{name:40s} HTTP {reply.status_code}  peak {peak:6.0f} MiB  "
                    f"RATIO peak/target {peak / args.target_mib:.2f}"
                )
                if reply.status_code >= 400:
                    print(f"    {reply.text[:300]}")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
