"""The Celery app. Queues: ``gpu`` (generation, one task at a time per GPU) and ``cpu``."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gantry.settings")

app = Celery("gantry")
app.config_from_object("django.conf:settings", namespace="CELERY")
GPU_QUEUE = "gpu"
app.conf.task_routes = {"cases.tasks.generate_chunk": {"queue": GPU_QUEUE}}
app.autodiscover_tasks()  # each installed app's tasks.py


@worker_init.connect
def refuse_shared_gpu(sender, **_kwargs) -> None:
    """A worker consuming the gpu queue must run one task at a time and prefetch one.

    Two generation tasks in one process would fight over GPU memory, and a prefetched
    message would wait behind a long job instead of going to an idle GPU worker.
    """
    queues = {q.name for q in sender.app.amqp.queues.consume_from.values()}
    if GPU_QUEUE not in queues:
        return
    if sender.concurrency != 1 or sender.app.conf.worker_prefetch_multiplier != 1:
        raise RuntimeError(
            "a worker consuming the 'gpu' queue needs --concurrency 1 and prefetch multiplier 1"
        )


@worker_init.connect
def make_local_folders(**_kwargs) -> None:
    """The embedded default's folders (SQLite, the filesystem broker, media), if used."""
    from gantry.local import make_local_folders

    make_local_folders()
