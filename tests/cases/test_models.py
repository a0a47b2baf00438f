import pytest
from django.core.exceptions import ValidationError

from cases.models import GeneratorModel
from tests.factories import (
    CaseTemplateFactory,
    GenerationJobFactory,
    TemplateVersionFactory,
    version_content,
)


def test_register_reads_the_model_card_and_is_idempotent(generator_model, tiny_checkpoint):
    assert generator_model.modality == "MR"
    assert generator_model.findings == ["normal", "glioma"]
    assert len(generator_model.sha256) == 64
    again = GeneratorModel.register(tiny_checkpoint, name="other", title="Other")
    assert again.pk == generator_model.pk


def test_editing_a_template_adds_a_version_and_keeps_the_old_one(generator_model, educator):
    v1 = TemplateVersionFactory(generator=generator_model)
    template = v1.template
    v2 = template.add_version(
        author=educator, **version_content(generator_model, diagnosis="High-grade glioma")
    )
    assert (v1.number, v2.number) == (1, 2)
    assert template.current == v2
    v1.refresh_from_db()
    assert v1.diagnosis == "Glioma"


def test_versions_are_immutable(generator_model):
    version = TemplateVersionFactory(generator=generator_model)
    version.diagnosis = "changed"
    with pytest.raises(ValidationError, match="immutable"):
        version.save()


def test_a_finding_the_generator_does_not_know_is_refused(generator_model, educator):
    template = CaseTemplateFactory()
    with pytest.raises(ValidationError, match="makes only"):
        template.add_version(
            author=educator, **version_content(generator_model, finding="fracture")
        )
    assert template.versions.count() == 0


@pytest.mark.parametrize(
    ("progression", "message"),
    [
        (
            {
                "timepoints": 0,
                "severity_from": 0,
                "severity_to": 1,
                "interval_days": 30,
                "method": "condition",
            },
            "timepoints",
        ),
        (
            {
                "timepoints": 3,
                "severity_from": 0,
                "severity_to": 1.5,
                "interval_days": 30,
                "method": "condition",
            },
            "severity_to",
        ),
        (
            {
                "timepoints": 3,
                "severity_from": 0,
                "severity_to": 1,
                "interval_days": 30,
                "method": "magic",
            },
            "method",
        ),
    ],
)
def test_bad_progression_recipes_are_refused(generator_model, educator, progression, message):
    template = CaseTemplateFactory()
    with pytest.raises(ValidationError, match=message):
        template.add_version(
            author=educator, **version_content(generator_model, progression=progression)
        )


def test_bad_vignette_placeholder_is_refused(generator_model, educator):
    template = CaseTemplateFactory()
    content = version_content(generator_model, history="Aged {age}, shoe size {shoe_size}")
    with pytest.raises(ValidationError, match="shoe_size"):
        template.add_version(author=educator, **content)


def test_launch_job_queues_one_task_per_chunk_after_commit(
    generator_model, educator, django_capture_on_commit_callbacks, monkeypatch, settings
):
    sent = []
    monkeypatch.setattr(
        "gantry.celery.app.send_task",
        lambda name, kwargs, queue: sent.append((name, kwargs, queue)),
    )
    settings.GANTRY_CHUNK_CASES = 2
    version = TemplateVersionFactory(generator=generator_model)
    with django_capture_on_commit_callbacks(execute=True):
        job = version.launch_job(requested_by=educator, n_cases=5, seed=7)
        assert sent == []
    assert sent == [
        ("cases.tasks.generate_chunk", {"job_pk": job.pk, "chunk_index": i}, "gpu")
        for i in range(3)
    ]
    assert [(c.first_case, c.n_cases, c.status) for c in job.chunks.all()] == [
        (0, 2, "queued"),
        (2, 2, "queued"),
        (4, 1, "queued"),
    ]
    assert (job.status, job.done, job.total, job.seed) == ("queued", 0, 5, 7)


def test_enqueueing_again_reuses_the_chunks_and_skips_finished_ones(
    generator_model, settings, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        "gantry.celery.app.send_task", lambda name, kwargs, queue: sent.append(kwargs)
    )
    settings.GANTRY_CHUNK_CASES = 2
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=4
    )
    job.enqueue()
    job.chunks.filter(index=0).update(status="done")
    job.enqueue()
    assert job.chunks.count() == 2
    assert [kwargs["chunk_index"] for kwargs in sent] == [0, 1, 1]


def test_launch_job_refuses_too_many_cases(generator_model, educator):
    version = TemplateVersionFactory(generator=generator_model)
    with pytest.raises(ValidationError, match="1 to"):
        version.launch_job(requested_by=educator, n_cases=10_000)


def test_progress_never_goes_back_when_a_slower_worker_reports_an_older_count(make_cases):
    (case,) = make_cases(1)
    job = case.job
    job.record_progress()
    assert job.done == 1
    type(job).objects.filter(pk=job.pk).update(done=3)  # another worker counted later cases
    job.record_progress()
    assert job.done == 3
