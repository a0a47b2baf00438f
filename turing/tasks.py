"""Celery tasks of the turing app: thin wrappers over ``turing.building``."""

from cases.models import CPU_QUEUE, Operation
from gantry.celery import app
from turing.building import run_build


@app.task(queue=CPU_QUEUE, acks_late=True, reject_on_worker_lost=True)
def build_study(*, operation_pk: int) -> None:
    """Build a planned Turing study. Budget: about a second per image blinded; every blinded
    image is held in memory until the study's transaction (400 images at most)."""
    Operation.run(operation_pk, run_build)
