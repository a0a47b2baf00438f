"""Load the demo: a user per role, the shipped generators, templates and generated cases.

Safe to run again: existing users, generators and templates are kept; cases are generated
only for templates that have none yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError

from cases.models import CaseTemplate, GenerationJob, GeneratorModel, SyntheticPatient

MODELS_DIR = Path(settings.BASE_DIR) / "genworker" / "models"
DEMO_USERS = {  # username: (role, password) — demo only; change them on a shared machine
    "educator": ("educator", "gantry-educator"),
    "expert": ("expert", "gantry-expert"),
    "trainee": ("trainee", "gantry-trainee"),
}
ADMIN_LOGIN = ("admin", "gantry-admin")
DEMO_CASES_PER_TEMPLATE = 3

TEMPLATES: dict[str, list[dict[str, Any]]] = {
    "glioma": [
        {
            "title": "Enlarging left hemispheric glioma",
            "body_region": "brain",
            "progression": {
                "timepoints": 5,
                "severity_from": 0.15,
                "severity_to": 0.9,
                "interval_days": 90,
                "method": "condition",
            },
            # Word-finding difficulty: the dominant (left) temporoparietal region.
            "placement": {"side": "left", "location": "temporoparietal"},
            "patient_recipe": {
                "age_min": 35,
                "age_max": 70,
                "sex_mix": 0.55,
                "comorbidities": {"epilepsy": 0.4, "hypertension": 0.25},
            },
            "history": "A {age}-year-old {sex_word} with {comorbidities} presents with new "
            "headaches and word-finding difficulty; follow-up MRI every 3 months.",
            "findings_text": "An intra-axial mass with a necrotic core and an enhancing rim on "
            "T1 post-contrast, surrounded by FLAIR-bright oedema, grows across the series.",
            "diagnosis": "Diffuse glioma, progressing",
            "discussion": "Gliomas infiltrate along white matter; growth with mass effect on "
            "serial imaging suggests progression.",
            "teaching_points": "Compare lesion size and mass effect against the earliest study.\n"
            "Oedema and mass effect may grow faster than the enhancing core.",
            "question_stems": [
                "What is the most likely diagnosis?",
                "Order the studies from earliest to latest.",
            ],
        }
    ],
    "nodule": [
        {
            "title": "Growing solitary pulmonary nodule",
            "body_region": "chest",
            "progression": {
                "timepoints": 4,
                "severity_from": 0.4,  # 12 mm: the chest model draws 10 mm nodules too faintly
                # for the image check (`latent yield`, docs/engine.md)
                "severity_to": 0.9,
                "interval_days": 120,
                "method": "condition",
            },
            "patient_recipe": {
                "age_min": 50,
                "age_max": 80,
                "sex_mix": 0.5,
                "comorbidities": {"COPD": 0.3, "former smoker": 0.6},
            },
            "history": "A {age}-year-old {sex_word} ({comorbidities}) with an incidental nodule "
            "on a chest radiograph, followed up every 4 months.",
            "findings_text": "A rounded opacity in the lung field enlarges on each radiograph.",
            "diagnosis": "Enlarging pulmonary nodule",
            "discussion": "Growth of a solid nodule on serial imaging raises concern for "
            "malignancy.",
            "teaching_points": "Always compare with prior films.\nGrowth changes management.",
            "question_stems": ["Where is the abnormality?"],
        }
    ],
    "effusion": [
        {
            "title": "Enlarging pleural effusion",
            "body_region": "chest",
            "progression": {
                "timepoints": 4,
                "severity_from": 0.2,
                "severity_to": 0.9,
                "interval_days": 14,
                "method": "condition",
            },
            "patient_recipe": {
                "age_min": 55,
                "age_max": 85,
                "sex_mix": 0.5,
                "comorbidities": {"heart failure": 0.5, "chronic kidney disease": 0.2},
            },
            "history": "A {age}-year-old {sex_word} with {comorbidities} and increasing "
            "breathlessness; radiographs every two weeks.",
            "findings_text": "Blunting of the costophrenic angle progresses to a meniscus-shaped "
            "opacity rising up the hemithorax.",
            "diagnosis": "Pleural effusion, increasing",
            "discussion": "A rising meniscus indicates an enlarging free-flowing effusion.",
            "teaching_points": "Look at the costophrenic angles first.",
            "question_stems": ["How severe is the effusion?"],
        }
    ],
}


class Command(BaseCommand):
    help = "Load demo users, the shipped generator models, case templates and cases."

    def add_arguments(self, parser):
        parser.add_argument(
            "--cases",
            type=int,
            default=DEMO_CASES_PER_TEMPLATE,
            help="cases to generate per template (0 for none)",
        )

    def handle(self, *args: Any, cases: int, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "load_demo makes users with published passwords (an admin among them): it runs "
                "only in the demo, with DEBUG=1. In production create users with "
                "`manage.py createsuperuser` and the admin pages."
            )
        self._users()
        generators = self._generators()
        if not generators:
            raise CommandError(f"no generator checkpoints (*.pt with a .card.json) in {MODELS_DIR}")
        educator = User.objects.get(username="educator")
        for generator in generators:
            for finding in generator.findings:
                for spec in TEMPLATES.get(finding, []):
                    template = self._template(generator, finding, spec, educator)
                    self._cases(template, educator, cases)

    def _users(self) -> None:
        for username, (role, password) in DEMO_USERS.items():
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.save()
            user.groups.add(Group.objects.get(name=role))
        if not User.objects.filter(is_superuser=True).exists():
            User.objects.create_superuser(ADMIN_LOGIN[0], password=ADMIN_LOGIN[1])
        self.stdout.write(
            f"Demo users: {', '.join(DEMO_USERS)} and admin (`manage.py demo_logins` prints "
            "their passwords)"
        )

    def _generators(self) -> list[GeneratorModel]:
        generators = []
        # Generator checkpoints have a card beside them; feature networks do not.
        for checkpoint in sorted(MODELS_DIR.glob("*.pt")):
            if not checkpoint.with_suffix(".card.json").exists():
                continue
            name = checkpoint.stem
            generator = GeneratorModel.register(
                checkpoint, name=name, title=name.replace("-", " ").capitalize()
            )
            self.stdout.write(f"Generator {generator.name} ({generator.sha256[:12]})")
            generators.append(generator)
        return generators

    def _template(
        self, generator: GeneratorModel, finding: str, spec: dict[str, Any], educator: User
    ) -> CaseTemplate:
        """The spec's template for this generator; a second generator offering the same
        finding gets its own copy, titled with its architecture. The spec's placement (side,
        location) goes to generators that place lesions."""
        spec = dict(spec)
        placement = spec.pop("placement", {})
        title = spec.pop("title")
        taken = CaseTemplate.objects.filter(title=title).first()
        if taken is not None and taken.current.generator_id != generator.pk:
            title = f"{title} ({generator.architecture})"
        template = CaseTemplate.objects.filter(title=title).first()
        if template is None:
            if generator.placement(finding)["sides"]:
                spec["progression"] = {**spec["progression"], **placement}
            template = CaseTemplate.objects.create(title=title, created_by=educator)
            template.add_version(
                author=educator,
                title=title,
                finding=finding,
                generator=generator,
                modality=generator.modality,
                truncation=0.7,
                **spec,
            )
            self.stdout.write(f"Template {template.title!r}")
        return template

    def _cases(self, template: CaseTemplate, educator: User, n_cases: int) -> None:
        """Generate in this process (the worker's own code path), then publish for trainees."""
        from cases.generation.worker import run_generation_job

        if (
            n_cases == 0
            or SyntheticPatient.objects.filter(template_version__template=template).exists()
        ):
            return
        job = GenerationJob.objects.create(
            template_version=template.current,
            requested_by=educator,
            n_cases=n_cases,
            seed=2026,
            with_twins=True,  # each case's normal twin, for the twin and prior questions
        )
        run_generation_job(job_pk=job.pk)
        job.refresh_from_db()
        if job.status != job.Status.SUCCEEDED:
            raise CommandError(f"demo generation failed: {job.error}")
        # All but the last case are approved for the demo quiz; the last waits for the expert.
        *approved, waiting = job.cases.cases().order_by("case_index")  # twins go with them
        SyntheticPatient.objects.filter(pk__in=[c.pk for c in approved]).update(
            status=SyntheticPatient.Status.APPROVED
        )
        SyntheticPatient.objects.filter(pk=waiting.pk).update(
            status=SyntheticPatient.Status.IN_REVIEW
        )
        self.stdout.write(f"  {job.done} case(s) generated: {len(approved)} approved, 1 in review")
