"""CORS on the DICOMweb service only: a viewer on an allowed origin (OHIF) calls it with a
token; nothing is sent by default, and cookies never cross origins."""

from __future__ import annotations

import pytest
from django.test import Client

from cases.models import AccessToken, ReferencePool
from cases.reference.dicom_import import import_files
from tests.cases import dicom_samples as samples

VIEWER = "https://viewer.example.org"


@pytest.fixture
def image(db, educator):
    pool = ReferencePool.objects.create(name="real")
    return import_files(pool, [("a.dcm", samples.to_bytes(samples.dataset()))], educator).imported[
        0
    ]


def instance_path(image, prefix: str = "/dicomweb") -> str:
    return (
        f"{prefix}/studies/{image.study_uid}/series/{image.series_uid}"
        f"/instances/{image.sop_instance_uid}"
    )


def preflight(client: Client, url: str, origin: str = VIEWER):
    return client.options(
        url,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,accept",
    )


def test_no_cors_headers_by_default(client, expert, image):
    assert "Access-Control-Allow-Origin" not in preflight(client, "/dicomweb/studies")
    key = AccessToken.issue(expert)
    response = client.get(
        "/dicomweb/studies", HTTP_ORIGIN=VIEWER, HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


def test_an_allowed_viewer_calls_the_service_with_a_token(client, settings, expert, image):
    settings.CORS_ALLOWED_ORIGINS = [VIEWER]
    for url in ("/dicomweb/studies", instance_path(image), f"{instance_path(image)}/metadata"):
        answer = preflight(client, url)
        assert answer.status_code == 200, url
        assert answer["Access-Control-Allow-Origin"] == VIEWER
        allowed = {h.strip().lower() for h in answer["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "accept", "content-type"} <= allowed
        assert "GET" in answer["Access-Control-Allow-Methods"]
        assert "Access-Control-Allow-Credentials" not in answer
        assert "origin" in answer["Vary"].lower()

    key = AccessToken.issue(expert)
    found = client.get("/dicomweb/studies", HTTP_ORIGIN=VIEWER, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert found.status_code == 200
    assert found["Access-Control-Allow-Origin"] == VIEWER
    assert "Warning" in found["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in found
    assert "origin" in found["Vary"].lower()

    refused = client.get("/dicomweb/studies", HTTP_ORIGIN=VIEWER)  # no token: readable 401
    assert refused.status_code == 401
    assert refused["Access-Control-Allow-Origin"] == VIEWER
    missing = client.get(
        "/dicomweb/studies/1.2.3", HTTP_ORIGIN=VIEWER, HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert missing.status_code == 404
    assert missing["Access-Control-Allow-Origin"] == VIEWER


def test_other_origins_and_other_pages_get_nothing(client, login, settings, expert, image):
    settings.CORS_ALLOWED_ORIGINS = [VIEWER]
    other = "https://evil.example.com"
    assert "Access-Control-Allow-Origin" not in preflight(client, "/dicomweb/studies", other)
    key = AccessToken.issue(expert)
    response = client.get(
        "/dicomweb/studies", HTTP_ORIGIN=other, HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert "Access-Control-Allow-Origin" not in response
    # The token page is not part of the service: no CORS there.
    page = login(expert).get("/dicomweb/", HTTP_ORIGIN=VIEWER)
    assert page.status_code == 200
    assert "Access-Control-Allow-Origin" not in page
    # An OPTIONS that is not a preflight is an ordinary (unauthenticated) request.
    assert Client().options("/dicomweb/studies").status_code == 401


def test_any_origin_and_the_pool_scoped_service(client, settings, educator, image):
    settings.CORS_ALLOW_ALL_ORIGINS = True
    url = instance_path(image, f"/dicomweb/pools/{image.pool_id}")
    answer = preflight(client, url, origin="https://anywhere.example.net")
    assert answer.status_code == 200
    assert answer["Access-Control-Allow-Origin"] == "*"
    key = AccessToken.issue(educator)
    response = client.get(
        url,
        HTTP_ORIGIN="https://anywhere.example.net",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_ACCEPT='multipart/related; type="application/dicom"; transfer-syntax=*',
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"


def test_the_setting_becomes_the_cors_configuration(monkeypatch):
    """GANTRY_DICOMWEB_CORS_ORIGINS (with or without a trailing slash; * for any origin)."""
    import importlib

    import gantry.settings

    monkeypatch.setenv("GANTRY_DICOMWEB_CORS_ORIGINS", f"{VIEWER}/,https://b.example.org")
    configured = importlib.reload(gantry.settings)
    assert configured.CORS_ALLOWED_ORIGINS == [VIEWER, "https://b.example.org"]
    assert not configured.CORS_ALLOW_ALL_ORIGINS
    monkeypatch.setenv("GANTRY_DICOMWEB_CORS_ORIGINS", "*")
    assert importlib.reload(gantry.settings).CORS_ALLOW_ALL_ORIGINS
    monkeypatch.delenv("GANTRY_DICOMWEB_CORS_ORIGINS")
    importlib.reload(gantry.settings)
