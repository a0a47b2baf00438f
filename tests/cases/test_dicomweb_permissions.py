"""Who may reach what through DICOMweb and the reference-pool pages, role by role."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from cases.dicom_import import import_files
from cases.dicomweb import access, catalog
from cases.models import Instance, PatientQuerySet, ReferencePool
from tests.cases import dicom_samples as samples

STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=XyZ'


def stow_body(data: bytes) -> bytes:
    return b"--XyZ\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--XyZ--\r\n"


def token_client(user) -> Client:
    token, _ = Token.objects.get_or_create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {token.key}")


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
    monkeypatch.setattr(access, "_filters", [])
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


def test_educator_creates_a_pool_and_reads_the_import_report(login, educator):
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
    page = web.post(f"/reference/{pool.pk}/", {"files": files})
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 imported" in text
    assert "bad.dcm" in text
    assert "truncated" in text
    assert pool.images.count() == 1


def test_token_page_shows_and_renews_the_token(client, login, trainee):
    assert client.get("/dicomweb/").status_code == 302
    web = login(trainee)
    first = web.get("/dicomweb/").context["token"].key
    web.post("/dicomweb/")
    assert Token.objects.get(user=trainee).key != first
