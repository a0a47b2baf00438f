"""WADO-RS retrieval cost and its kept query plans: a constant handful of queries however many
cases are stored, the file streamed as stored, and every permission change applied at once
although the SQL that applies the rules is reused."""

from __future__ import annotations

import pydicom
import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pydicom.uid import generate_uid

from cases.dicomweb import access, catalog, pixels
from cases.models import AccessToken, Instance, ReferencePool, SyntheticPatient, hiding
from cases.reference.dicom_import import import_files
from edu import answering
from edu.models import Attempt
from tests.cases import dicom_samples as samples
from tests.edu.conftest import build_quiz
from turing.models import StudyImage, StudyRater, TuringStudy

AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture(autouse=True)
def fresh_plans():
    catalog.forget_plans()
    yield
    catalog.forget_plans()


def token_client(user) -> Client:
    key = AccessToken.issue(user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_ACCEPT=AS_STORED)


def instance_url(instance: Instance) -> str:
    series = instance.series
    return (
        f"/dicomweb/studies/{series.study.study_uid}/series/{series.series_uid}"
        f"/instances/{instance.sop_instance_uid}"
    )


def reference_url(image) -> str:
    return (
        f"/dicomweb/studies/{image.study_uid}/series/{image.series_uid}"
        f"/instances/{image.sop_instance_uid}"
    )


def first_image(case) -> Instance:
    return Instance.objects.filter(series__study__patient=case).exclude(series__modality="SEG")[0]


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def part_of(response, body: bytes) -> bytes:
    """The body of the only part of a multipart/related reply."""
    boundary = response["Content-Type"].split("boundary=")[1]
    part = body.split(f"--{boundary}".encode())[1]
    return part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")


def store_more_cases(case, n: int) -> None:
    """``n`` more stored cases: copies of ``case``'s rows with new identifiers (same files)."""
    studies = list(case.studies.all())
    for k in range(n):
        patient = SyntheticPatient.objects.get(pk=case.pk)
        patient.pk = None
        patient.case_index = 1000 + k
        patient.patient_id = f"{case.patient_id}-copy{k}"
        patient.save()
        for study in studies:
            series_list = list(study.series.all())
            study.pk, study.patient, study.study_uid = None, patient, generate_uid()
            study.save()
            for series in series_list:
                instances = list(series.instances.all())
                series.pk, series.study, series.series_uid = None, study, generate_uid()
                series.save()
                for instance in instances:
                    instance.pk, instance.series = None, series
                    instance.sop_instance_uid = generate_uid()
                    instance.save()


def queries_of(client: Client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        body_of(response)
    assert response.status_code == 200, response.content[:300]
    return [query["sql"] for query in captured.captured_queries]


def reveal(case, trainee, educator) -> None:
    """A published practice quiz of the trainee's cohort over ``case``, answered and finished."""
    cohort = Group.objects.create(name=f"cohort-{trainee.pk}")
    trainee.groups.add(cohort)
    quiz = build_quiz(educator, cohort, case)
    attempt = Attempt.start(quiz=quiz, user=trainee)
    question = attempt.items()[0].questions.get(kind="single_best")
    answering.submit(attempt, question, {"option": 0})
    attempt.finish()


@pytest.mark.django_db
def test_instance_retrieval_takes_a_few_queries_however_many_cases_are_stored(
    make_cases, expert, educator, trainee
):
    case = make_cases(1)[0]
    pool = ReferencePool.objects.create(name="real")
    files = [(f"{k}.dcm", samples.to_bytes(samples.dataset())) for k in range(3)]
    image = import_files(pool, files, educator).imported[0]
    reveal(case, trainee, educator)
    synthetic = instance_url(first_image(case))
    retrievals = [
        (token_client(expert), synthetic),
        (token_client(trainee), synthetic),
        (token_client(educator), reference_url(image)),
    ]
    # token and user, permissions, the instance: the second request reuses the kept plan
    before = [len(queries_of(client, url)) for client, url in retrievals for _ in range(2)]
    assert max(before) <= 3, before
    assert len(catalog._plans) == 3  # one per user (and path shape)

    store_more_cases(case, 12)
    more = [(f"m{k}.dcm", samples.to_bytes(samples.dataset())) for k in range(20)]
    assert len(import_files(pool, more, educator).imported) == 20
    catalog.forget_plans()
    after = [len(queries_of(client, url)) for client, url in retrievals for _ in range(2)]
    assert after == before


@pytest.mark.django_db
def test_the_file_is_streamed_as_stored_without_parsing_it(make_cases, expert, monkeypatch):
    instance = first_image(make_cases(1)[0])

    def no_parsing(*args, **kwargs):
        raise AssertionError("the retrieve path parsed the file")

    monkeypatch.setattr(pydicom, "dcmread", no_parsing)
    monkeypatch.setattr(pixels, "load", no_parsing)
    web = token_client(expert)
    with instance.file.open("rb") as fh:
        stored = fh.read()
    for accept in (AS_STORED, 'multipart/related; type="application/dicom"'):
        response = web.get(instance_url(instance), HTTP_ACCEPT=accept)
        assert response.status_code == 200
        assert response.streaming
        body = body_of(response)
        assert int(response["Content-Length"]) == len(body)
        assert part_of(response, body) == stored


@pytest.mark.django_db
@pytest.mark.parametrize("caches", [True, False])
def test_a_quiz_revealing_a_case_and_a_role_change_apply_at_once(
    make_cases, trainee, expert, educator, settings, caches
):
    settings.GANTRY_DICOMWEB_CACHES = caches  # kept plans and loaded permissions, or neither
    case = make_cases(1)[0]
    url = instance_url(first_image(case))
    learner, reader = token_client(trainee), token_client(expert)
    assert learner.get(url).status_code == 404
    assert reader.get(url).status_code == 200

    reveal(case, trainee, educator)
    assert learner.get(url).status_code == 200
    SyntheticPatient.objects.filter(pk=case.pk).update(status=SyntheticPatient.Status.REJECTED)
    assert learner.get(url).status_code == 404  # trainees see approved cases only

    expert.groups.clear()  # no longer an expert: sees what a trainee would
    assert reader.get(url).status_code == 404
    assert bool(catalog._plans) == caches


@pytest.mark.django_db
def test_an_open_turing_study_hides_its_sources_from_its_raters_at_once(
    make_cases, expert, educator
):
    case = make_cases(1)[0]
    pool = ReferencePool.objects.create(name="real")
    image = import_files(pool, [("a.dcm", samples.to_bytes(samples.dataset()))], educator)
    image = image.imported[0]
    instance = first_image(case)
    urls = [instance_url(instance), reference_url(image)]
    web = token_client(expert)
    assert [web.get(url).status_code for url in urls] == [200, 200]
    assert len(catalog._plans) == 1  # the same plan serves the next requests

    study = TuringStudy.objects.create(
        title="t",
        created_by=educator,
        pool=pool,
        n_images=2,
        synthetic_ratio=0.5,
        modality="MR",
        image_size=32,
        pixel_spacing_mm=1.0,
    )
    StudyRater.objects.create(study=study, user=expert)
    StudyImage.objects.create(
        study=study, side="synthetic", instance=instance, blinded="turing/a.dcm", blinded_size=1
    )
    StudyImage.objects.create(
        study=study, side="real", reference=image, blinded="turing/b.dcm", blinded_size=1
    )
    assert [web.get(url).status_code for url in urls] == [404, 404]
    assert token_client(educator).get(urls[1]).status_code == 200  # not a rater

    TuringStudy.objects.filter(pk=study.pk).update(status=TuringStudy.Status.CLOSED)
    assert [web.get(url).status_code for url in urls] == [200, 200]


@pytest.mark.django_db
def test_rules_that_read_the_database_while_built_are_not_kept(make_cases, expert, monkeypatch):
    case = make_cases(1)[0]
    url = instance_url(first_image(case))

    def rejected_eagerly(user):  # evaluates its rule in Python: a kept plan would go stale
        pks = list(
            Instance.objects.filter(series__study__patient__status="rejected").values_list(
                "pk", flat=True
            )
        )
        return access.Hidden(instances=Instance.objects.filter(pk__in=pks))

    monkeypatch.setattr(hiding, "_filters", [])
    access.register_hidden_filter(rejected_eagerly)
    web = token_client(expert)
    assert web.get(url).status_code == 200
    assert web.get(url).status_code == 200
    SyntheticPatient.objects.filter(pk=case.pk).update(status=SyntheticPatient.Status.REJECTED)
    assert web.get(url).status_code == 404


@pytest.mark.django_db
def test_study_and_series_retrieval_and_metadata_follow_the_plans(make_cases, expert):
    case = make_cases(1)[0]
    instance = first_image(case)
    study = instance.series.study
    web = token_client(expert)
    whole = web.get(f"/dicomweb/studies/{study.study_uid}")
    assert whole.status_code == 200
    boundary = whole["Content-Type"].split("boundary=")[1]
    assert (
        body_of(whole).count(f"--{boundary}\r\n".encode())
        == Instance.objects.filter(series__study=study).count()
    )
    meta = web.get(f"{instance_url(instance)}/metadata", HTTP_ACCEPT="application/dicom+json")
    assert meta.json()[0]["00080018"]["Value"] == [instance.sop_instance_uid]
    other = f"/dicomweb/studies/{study.study_uid}/series/{generate_uid()}"
    assert web.get(other).status_code == 404
