"""Celery tasks of the edu app: thin wrappers over ``edu.models``."""

from cases.models import CPU_QUEUE, Operation
from edu.models import CurationRule
from gantry.celery import app


@app.task(queue=CPU_QUEUE, acks_late=True, reject_on_worker_lost=True)
def apply_curation_rule(*, operation_pk: int) -> None:
    """Decide every case of a template again under its rule. Budget: one transaction over
    the template's cases and their reviews."""
    Operation.run(operation_pk, CurationRule.run_apply)
