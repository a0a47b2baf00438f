"""Celery tasks of the cases app: generation, one chunk of a job per task on the gpu queue;
imports into pools and sends to a PACS, background operations on the cpu queue.

Only workers import this module (it brings the engine, and torch, with it); the web process
sends the tasks by name (``cases.models.GENERATE_TASK``, ``Operation.task``).
"""

from __future__ import annotations

from cases.generation.worker import RETRY_AT_MOST_S, hostname, run_chunk
from cases.imaging.export import run_send
from cases.models import CPU_QUEUE, Operation
from cases.reference.pool_import import run_import
from gantry.celery import GPU_QUEUE, app


@app.task(bind=True, queue=GPU_QUEUE, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def generate_chunk(self, *, job_pk: int, chunk_index: int) -> None:
    """Acknowledged after it finishes, so the chunk of a worker that dies goes to the next.
    Budget: one chunk, seconds to minutes; one task per GPU at a time."""
    wait = run_chunk(
        job_pk=job_pk, chunk_index=chunk_index, worker=self.request.hostname or hostname()
    )
    if wait is not None:
        raise self.retry(countdown=min(wait, RETRY_AT_MOST_S))


@app.task(queue=CPU_QUEUE, acks_late=True, reject_on_worker_lost=True)
def import_into_pool(*, operation_pk: int) -> None:
    """Import uploaded files into a pool. Budget: seconds per file, one decoded frame in
    memory at a time."""
    Operation.run(operation_pk, run_import)


@app.task(queue=CPU_QUEUE, acks_late=True, reject_on_worker_lost=True)
def send_to_node(*, operation_pk: int) -> None:
    """C-STORE a case to the configured DICOM node. Budget: the node's pace, 30 s timeouts."""
    Operation.run(operation_pk, run_send)
