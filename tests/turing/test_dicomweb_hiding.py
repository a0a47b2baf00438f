"""An open study's raters cannot reach its source images through DICOMweb; others can."""

from __future__ import annotations

import pytest
from django.test import Client

from cases.models import AccessToken
from turing.models import TuringStudy


def _sop_uids(response) -> set[str]:
    assert response.status_code in (200, 204), response.content[:200]
    if response.status_code == 204:
        return set()
    return {item["00080018"]["Value"][0] for item in response.json()}


def _client(user) -> Client:
    key = AccessToken.issue(user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.mark.django_db
def test_open_study_sources_are_hidden_from_its_raters_only(make_study, raters, expert):
    study = make_study()
    sources = {
        image.instance.sop_instance_uid if image.instance else image.reference.sop_instance_uid
        for image in study.images.select_related("instance", "reference")
    }
    for_rater = _sop_uids(_client(raters[0]).get("/dicomweb/instances?limit=1000"))
    for_outsider = _sop_uids(_client(expert).get("/dicomweb/instances?limit=1000"))
    assert sources <= for_outsider
    assert not sources & for_rater

    TuringStudy.objects.filter(pk=study.pk).update(status=TuringStudy.Status.CLOSED)
    assert sources <= _sop_uids(_client(raters[0]).get("/dicomweb/instances?limit=1000"))
