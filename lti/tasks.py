"""Celery tasks of the LTI app: thin wrappers over ``lti.grades``."""

from gantry.celery import app
from lti import grades


@app.task(name=grades.SEND_TASK, queue="cpu", acks_late=True)
def send_score(*, score_report_pk: int) -> str:
    """Post one attempt's score to its platform's gradebook (AGS); returns the status."""
    return grades.send_score(score_report_pk).status
