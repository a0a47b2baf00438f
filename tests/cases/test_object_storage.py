"""Case files on an S3-compatible object store: a moto server started as a process, reached by
django-storages exactly as a deployment on several hosts reaches its bucket.

A generation job stores its checkpoint, DICOM files and rows with nothing on the local disk;
the web serves the files back from the bucket; the sweep finds a dead attempt's files there.
"""

import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pydicom
import pytest
from django.core.files.storage import default_storage, storages

from cases.generation import persistence, worker
from cases.models import GeneratorModel, Instance
from tests.factories import GenerationJobFactory, TemplateVersionFactory

KEYS = {"access_key": "gantry-test", "secret_key": "gantry-test-secret"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """The URL of a moto S3 server in its own process (skipped, with the reason, if it
    cannot start)."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    except OSError as exc:
        pytest.skip(f"cannot start the moto S3 server: {exc}")
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                reason = server.stderr.read().decode(errors="replace")[-500:]
                pytest.skip(f"the moto S3 server did not start: {reason}")
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture
def bucket(settings, s3_endpoint, tmp_path):
    """A fresh bucket as the default storage (as GANTRY_S3_BUCKET configures it); its
    boto3 client, to look at the bucket past Django."""
    import boto3

    name = f"gantry-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "file_overwrite": False,
                "default_acl": None,
                **KEYS,
            },
        },
    }
    settings.MEDIA_ROOT = tmp_path / "no-media-here"
    settings.GANTRY_WORKER_CACHE_DIR = tmp_path / "worker-cache"
    client.bucket = name
    return client


def _keys(client, prefix=""):
    listed = client.list_objects_v2(Bucket=client.bucket, Prefix=prefix)
    return {item["Key"] for item in listed.get("Contents", [])}


@pytest.mark.django_db
def test_a_generation_job_runs_on_object_storage(
    bucket, tiny_checkpoint, login, educator, settings
):
    from storages.backends.s3 import S3Storage

    assert isinstance(storages["default"], S3Storage)
    model = GeneratorModel.register(tiny_checkpoint, name="tiny-brain", title="Tiny brain")
    assert _keys(bucket, "generators/") == {model.checkpoint.name}
    job = GenerationJobFactory(template_version=TemplateVersionFactory(generator=model), n_cases=2)

    worker.run_generation_job(job_pk=job.pk)

    job.refresh_from_db()
    assert (job.status, job.done, job.error) == ("succeeded", 2, "")
    instances = Instance.objects.filter(series__study__patient__job=job)
    assert instances.count() == 12  # 2 cases x 3 timepoints x (image + SEG)
    assert _keys(bucket, f"cases/{job.uid}/") == {i.file.name for i in instances}
    image = instances.exclude(series__modality="SEG").first()
    served = login(educator).get(image.wado_uri)
    assert served.status_code == 200
    body = b"".join(served.streaming_content)
    stored = bucket.get_object(Bucket=bucket.bucket, Key=image.file.name)["Body"].read()
    assert body == stored
    with default_storage.open(image.file.name) as file:
        assert pydicom.dcmread(file).SOPInstanceUID == image.sop_instance_uid
    assert not settings.MEDIA_ROOT.exists()  # nothing written to the local disk


@pytest.mark.django_db
def test_the_sweep_finds_a_dead_attempts_files_in_the_bucket(bucket, tiny_checkpoint):
    model = GeneratorModel.register(tiny_checkpoint, name="tiny-brain", title="Tiny brain")
    job = GenerationJobFactory(template_version=TemplateVersionFactory(generator=model), n_cases=1)
    orphan = f"cases/{job.uid}/0000/deadbeef0000/t00-image.dcm"
    bucket.put_object(Bucket=bucket.bucket, Key=orphan, Body=b"not committed")

    worker.run_generation_job(job_pk=job.pk)  # succeeds, then sweeps

    keys = _keys(bucket, f"cases/{job.uid}/")
    assert orphan not in keys
    assert keys == {i.file.name for i in Instance.objects.filter(series__study__patient__job=job)}
    assert persistence.sweep_unreferenced_files(job) == 0
