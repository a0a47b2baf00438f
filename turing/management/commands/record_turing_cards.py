"""Record every closed study's figures on its generator's card (as closing a study does).

For studies closed before Gantry kept Turing figures on model cards: run once after the
upgrade; running again rewrites the same entries.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from turing.card import record_on_card
from turing.models import TuringStudy


class Command(BaseCommand):
    help = "Write each closed, non-training study's figures on its generator's model card."

    def handle(self, *args: Any, **options: Any) -> None:
        studies = TuringStudy.objects.filter(
            status=TuringStudy.Status.CLOSED, training=False
        ).order_by("pk")
        for study in studies:
            record_on_card(study)
            self.stdout.write(f"Study {study.pk} ({study.title}) is on its generator's card")
        self.stdout.write(f"Closed studies recorded: {len(studies)}")
