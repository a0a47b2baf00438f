"""Celery tasks of the cases app: generation, one chunk of a job per task on the gpu queue;
imports into pools, sends to a PACS, imported generators and their taught directions,
background operations on the cpu queue.

Only workers import this module (it brings the engine, and torch, with it); the web process
sends the tasks by name (``cases.models.GENERATE_TASK``, ``Operation.task``).
"""

from __future__ import annotations

from cases.generation.imported_models import run_fit, run_samples, run_stylegan_import
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


@app.task(queue=CPU_QUEUE, acks_late=True, reject_on_worker_lost=True)
def import_stylegan(*, operation_pk: int) -> None:
    """Convert an uploaded StyleGAN pickle and register it unpublished. Budget: the
    pickle's size twice on disk, seconds to a minute of CPU for a 256² network."""
    Operation.run(operation_pk, run_stylegan_import)


@app.task(queue=CPU_QUEUE, acks_late=True, reject_on_worker_lost=True)
def draw_generator_samples(*, operation_pk: int) -> None:
    """Draw the samples an unconditional imported generator is labelled on. Budget: 48
    images."""
    Operation.run(operation_pk, run_samples)


@app.task(queue=CPU_QUEUE, acks_late=True, reject_on_worker_lost=True)
def fit_taught_direction(*, operation_pk: int) -> None:
    """Fit a direction to an educator's labels and draw its preview. Budget: 48 mappings
    and 5 images."""
    Operation.run(operation_pk, run_fit)
