"""Who may reach what through DICOMweb and the reference-pool pages, role by role."""

from __future__ import annotations

import hashlib
import importlib
import io
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from cases.dicomweb import access, catalog
from cases.models import AccessToken, Instance, PatientQuerySet, ReferencePool, hiding
from cases.reference.dicom_import import import_files
from tests.cases import dicom_samples as samples

STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=XyZ'


def stow_body(data: bytes) -> bytes:
    return b"--XyZ\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--XyZ--\r\n"


def token_client(user) -> Client:
    key = AccessToken.issue(user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.fixture(autouse=True)
def fresh_plans():
    """Kept WADO-RS plans depend on the rules' code, which some tests here replace."""
    catalog.forget_plans()
    yield
    catalog.forget_plans()


@pytest.fixture
def case(make_cases):
    return make_cases(1)[0]


@pytest.fixture
def pool(db, educator):
    pool = ReferencePool.objects.create(name="real")
    import_files(pool, [("a.dcm", samples.to_bytes(samples.dataset()))], educator)
    return pool


def urls_for(case, pool) -> list[str]:
    instance = Instance.objects.filter(series__study__patient=case)[0]
    study, series = instance.series.study.study_uid, instance.series.series_uid
    image = pool.images.get()
    ref = f"studies/{image.study_uid}/series/{image.series_uid}/instances/{image.sop_instance_uid}"
    syn = f"studies/{study}/series/{series}/instances/{instance.sop_instance_uid}"
    return [
        "/dicomweb/studies",
        "/dicomweb/series",
        "/dicomweb/instances",
        f"/dicomweb/studies/{study}",
        f"/dicomweb/studies/{study}/metadata",
        f"/dicomweb/{syn}",
        f"/dicomweb/{syn}/frames/1",
        f"/dicomweb/{syn}/rendered",
        f"/dicomweb/{ref}",
        f"/dicomweb/pools/{pool.pk}/studies",
    ]


def test_anonymous_and_bad_tokens_get_401_everywhere(client, case, pool):
    bad = Client(HTTP_AUTHORIZATION="Bearer not-a-token")
    for url in urls_for(case, pool):
        for anonymous in (client, bad):
            response = anonymous.get(url)
            assert response.status_code == 401, url
            assert response["WWW-Authenticate"].startswith("Bearer")


def test_trainee_reaches_no_unrevealed_case_and_no_reference_image(trainee, case, pool):
    web = token_client(trainee)
    assert web.get("/dicomweb/studies").json() == []
    assert web.get("/dicomweb/instances").json() == []
    for url in urls_for(case, pool)[3:]:
        assert web.get(url).status_code == 404, url


def test_dicomweb_follows_visible_to(trainee, case, monkeypatch):
    monkeypatch.setattr(PatientQuerySet, "visible_to", lambda self, user: self.all())
    studies = token_client(trainee).get("/dicomweb/studies").json()
    assert len(studies) == case.studies.count()


@pytest.mark.parametrize("role", ["expert", "educator"])
def test_experts_and_educators_see_cases_and_pools(role, case, pool, request):
    web = token_client(request.getfixturevalue(role))
    for url in urls_for(case, pool):
        assert web.get(url).status_code == 200, url
    found = web.get("/dicomweb/studies").json()
    assert len(found) == case.studies.count() + 1


def test_registered_hidden_filter_hides_images(expert, case, pool, monkeypatch):
    image = pool.images.get()
    hidden = access.Hidden(
        instances=Instance.objects.filter(series__study__patient=case),
        reference_images=pool.images.all(),
    )
    monkeypatch.setattr(hiding, "_filters", [])
    access.register_hidden_filter(lambda user: hidden)
    web = token_client(expert)
    assert web.get("/dicomweb/studies").json() == []
    assert web.get(f"/dicomweb/studies/{image.study_uid}").status_code == 404


@pytest.mark.parametrize(("role", "status"), [("trainee", 403), ("expert", 403), ("educator", 200)])
def test_only_educators_store(role, status, pool, request):
    web = token_client(request.getfixturevalue(role))
    response = web.post(
        f"/dicomweb/pools/{pool.pk}/studies",
        stow_body(samples.to_bytes(samples.dataset())),
        content_type=STOW_TYPE,
    )
    assert response.status_code == status
    assert pool.images.count() == (2 if status == 200 else 1)


def test_session_store_needs_the_csrf_token(educator, pool):
    web = Client(enforce_csrf_checks=True)
    web.force_login(educator)
    url = f"/dicomweb/pools/{pool.pk}/studies"
    body = stow_body(samples.to_bytes(samples.dataset()))
    assert web.post(url, body, content_type=STOW_TYPE).status_code == 403
    assert pool.images.count() == 1


def test_bad_requests_get_400_not_500(expert, educator, pool):
    web = token_client(expert)
    assert web.get("/dicomweb/studies?StudyDate=yesterday").status_code == 400
    assert web.get("/dicomweb/studies?limit=-1").status_code == 400
    assert web.get("/dicomweb/studies?NoSuchAttribute=1").status_code == 400
    assert web.get("/dicomweb/studies?includefield=Nonsense").status_code == 400
    warned = web.get("/dicomweb/studies?PatientAge=040Y")
    assert warned.status_code == 200
    assert "not supported" in warned["Warning"]
    image = pool.images.get()
    instance = (
        f"studies/{image.study_uid}/series/{image.series_uid}/instances/{image.sop_instance_uid}"
    )
    assert web.get(f"/dicomweb/{instance}/frames/9").status_code == 400
    writer = token_client(educator)
    assert (
        writer.post(
            f"/dicomweb/pools/{pool.pk}/studies", b"x", content_type="text/plain"
        ).status_code
        == 415
    )
    assert (
        writer.post(
            f"/dicomweb/pools/{pool.pk}/studies", b"junk", content_type=STOW_TYPE
        ).status_code
        == 400
    )
    assert writer.post("/dicomweb/studies", b"", content_type=STOW_TYPE).status_code == 400


def test_pool_pages_by_role(client, login, trainee, expert, educator, pool):
    assert client.get("/reference/").status_code == 302  # anonymous: to the login page
    assert login(trainee).get("/reference/").status_code == 403
    assert login(trainee).get(f"/reference/{pool.pk}/").status_code == 403
    web = login(expert)
    assert web.get(f"/reference/{pool.pk}/").status_code == 200
    assert web.post("/reference/", {"name": "x"}).status_code == 403
    upload = samples.to_bytes(samples.dataset())
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = {"files": [SimpleUploadedFile("a.dcm", upload)]}
    assert web.post(f"/reference/{pool.pk}/", files).status_code == 403


def test_educator_creates_a_pool_and_reads_the_import_report(
    login, educator, task_queue, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    web = login(educator)
    response = web.post("/reference/", {"name": "knees", "description": "real knees"})
    pool = ReferencePool.objects.get(name="knees")
    assert response.status_code == 302
    assert response["Location"] == f"/reference/{pool.pk}/"
    files = [
        SimpleUploadedFile("good.dcm", samples.to_bytes(samples.dataset())),
        SimpleUploadedFile("bad.dcm", samples.truncated()),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        reply = web.post(f"/reference/{pool.pk}/", {"files": files})
    assert reply.status_code == 302
    assert task_queue.run() == 1
    page = web.get(reply["Location"])
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 imported" in text
    assert "bad.dcm" in text
    assert "truncated" in text
    assert pool.images.count() == 1


def test_the_token_is_shown_once_kept_as_a_digest_and_revoked_by_a_new_one(client, login, trainee):
    assert client.get("/dicomweb/").status_code == 302
    web = login(trainee)
    page = web.get("/dicomweb/")
    assert page.context["key"] is None
    assert "none yet" in page.content.decode()
    first = web.post("/dicomweb/").context["key"]
    stored = AccessToken.objects.get(user=trainee)
    assert stored.digest == hashlib.sha256(first.encode()).hexdigest()
    assert first not in str(list(AccessToken.objects.values_list()))  # the key is not kept
    again = web.get("/dicomweb/").content.decode()
    assert first not in again
    assert f"{first[:6]}…" in again
    assert Client(HTTP_AUTHORIZATION=f"Bearer {first}").get("/dicomweb/studies").status_code == 200
    second = web.post("/dicomweb/").context["key"]
    assert second != first
    revoked = Client(HTTP_AUTHORIZATION=f"Bearer {first}").get("/dicomweb/studies")
    assert revoked.status_code == 401
    assert revoked.json() == {"error": "invalid token"}
    assert Client(HTTP_AUTHORIZATION=f"Token {second}").get("/dicomweb/studies").status_code == 200


def test_malformed_headers_and_inactive_users_are_refused_by_name(trainee):
    key = AccessToken.issue(trainee)
    two_words = Client(HTTP_AUTHORIZATION=f"Bearer {key} extra").get("/dicomweb/studies")
    assert two_words.status_code == 401
    assert "invalid token header" in two_words.json()["error"]
    trainee.is_active = False
    trainee.save()
    inactive = Client(HTTP_AUTHORIZATION=f"Bearer {key}").get("/dicomweb/studies")
    assert inactive.status_code == 401
    assert inactive.json() == {"error": "the token's user is inactive"}


def test_an_admin_makes_a_token_from_the_command_line(trainee):
    out = io.StringIO()
    call_command("create_access_token", trainee.username, stdout=out)
    key = out.getvalue().strip()
    assert Client(HTTP_AUTHORIZATION=f"Bearer {key}").get("/dicomweb/studies").status_code == 200
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        call_command("create_access_token", "nobody")


def test_the_migration_hashes_tokens_rest_framework_kept_in_clear(trainee):
    """Tokens from before AccessToken (rest_framework.authtoken's table) keep working."""
    migration = importlib.import_module("cases.migrations.0006_access_tokens")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s)", ["a" * 40, trainee.pk])
    editor = SimpleNamespace(connection=connection)  # all the function uses of a schema editor
    migration.hash_rest_framework_tokens(apps, editor)
    assert AccessToken.user_for("a" * 40) == trainee
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone() == (0,)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("PatientName=" + "*" * 5000, "at most 200 characters"),
        ("PatientName=" + "a*" * 20, "at most 8 wildcards"),
        ("PatientID=A%00B", "control characters"),
        ("StudyInstanceUID=1.2%00.3", "control characters"),
        ("StudyDescription=%1B", "control characters"),
    ],
)
def test_search_values_the_database_cannot_take_are_400(expert, case, query, reason):
    reply = token_client(expert).get(f"/dicomweb/studies?{query}")
    assert reply.status_code == 400
    assert reason in reply.json()["error"]


def test_runs_of_asterisks_match_as_one(expert, case):
    web = token_client(expert)
    name = case.patient_name
    found = web.get(f"/dicomweb/studies?PatientName={name[:2]}{'*' * 60}")
    assert found.status_code == 200
    assert len(found.json()) == case.studies.count()


def test_a_part_whose_uid_is_no_uid_fails_alone_with_its_reason(educator, pool):
    bad = samples.dataset(sop_uid="1.2.840.10008.1/../../../etc/x")
    good = samples.dataset()
    body = (
        b"--XyZ\r\nContent-Type: application/dicom\r\n\r\n"
        + samples.to_bytes(bad)
        + b"\r\n--XyZ\r\nContent-Type: application/dicom\r\n\r\n"
        + samples.to_bytes(good)
        + b"\r\n--XyZ--\r\n"
    )
    reply = token_client(educator).post(
        f"/dicomweb/pools/{pool.pk}/studies", body, content_type=STOW_TYPE
    )
    assert reply.status_code == 202, reply.content[:300]
    assert reply["Content-Type"] == "application/dicom+json"
    failed = reply.json()["00081198"]["Value"]
    assert [item["00081155"]["Value"][0] for item in failed] == [bad.SOPInstanceUID]
    assert "part 1: SOPInstanceUID" in reply["Warning"]
    assert "is not a UID" in reply["Warning"]
    assert pool.images.count() == 2
