from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from cases.generation.bulk import insert_rows
from cases.models import GenerationChunk
from tests.factories import GenerationJobFactory, TemplateVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(generator_model):
    return GenerationJobFactory(template_version=TemplateVersionFactory(generator=generator_model))


def chunk_row(job, index, **fields):
    return {
        "job_id": job.pk,
        "index": index,
        "first_case": 8 * index,
        "n_cases": 8,
        "status": GenerationChunk.Status.QUEUED,
        "worker": "",
        "attempts": 0,
        "lease_expires_at": None,
        "finished_at": None,
        "timings": {},
        **fields,
    }


def test_rows_are_inserted_as_given_and_their_keys_map_to_their_rows(job):
    finished = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    shared = {"generator": 1.5, "storage": 0.25}  # one object on two rows
    rows = [
        chunk_row(job, 100, status="done", finished_at=finished, timings=shared),
        chunk_row(job, 101, worker="gpu-1@host", attempts=2, timings=shared),
        chunk_row(job, 102),
    ]
    with transaction.atomic():
        ids = insert_rows(GenerationChunk, rows, key=("job_id", "index"))
    assert set(ids) == {(job.pk, 100), (job.pk, 101), (job.pk, 102)}
    stored = {chunk.pk: chunk for chunk in GenerationChunk.objects.filter(pk__in=ids.values())}
    first, second, third = (stored[ids[job.pk, index]] for index in (100, 101, 102))
    assert (first.index, first.status, first.finished_at) == (100, "done", finished)
    assert first.timings == second.timings == shared
    assert (second.worker, second.attempts, second.lease_expires_at) == ("gpu-1@host", 2, None)
    assert (third.first_case, third.n_cases, third.timings) == (816, 8, {})


def test_rows_beyond_one_statement_go_in_several(job, monkeypatch):
    monkeypatch.setattr(connection.ops, "bulk_batch_size", lambda fields, rows: 2)
    with transaction.atomic():
        ids = insert_rows(
            GenerationChunk, [chunk_row(job, i) for i in range(100, 105)], key="index"
        )
    assert sorted(ids) == [100, 101, 102, 103, 104]
    assert GenerationChunk.objects.filter(pk__in=ids.values()).count() == 5


def test_a_row_without_every_field_is_refused_before_anything_is_written(job):
    incomplete = chunk_row(job, 101)
    del incomplete["attempts"]
    incomplete["colour"] = "blue"
    with pytest.raises(ValueError, match=r"lacks \['attempts'\] and has unknown \['colour'\]"):
        insert_rows(GenerationChunk, [chunk_row(job, 100), incomplete])
    assert not GenerationChunk.objects.filter(index__in=(100, 101)).exists()
