"""Who reaches which LTI endpoint, and bad input: a 4xx with a reason, never a 500."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse


@pytest.fixture(params=["anonymous", "trainee", "educator"])
def visitor(request, db, client, login):
    if request.param != "anonymous":
        login(request.getfixturevalue(request.param))
    return client


def test_the_jwks_is_public(visitor, registration):
    response = visitor.get(reverse("lti:jwks"))
    assert response.status_code == 200
    assert response.json()["keys"]


def test_the_picker_needs_a_deep_linking_launch(visitor):
    response = visitor.get(reverse("lti:deep-link"))
    if visitor.session.get("_auth_user_id"):
        assert response.status_code == 403
        assert "start from your course" in response.content.decode()
    else:
        assert response.status_code == 302  # to the login page
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    "data",
    [{}, {"id_token": "not-a-jwt", "state": "x"}, {"id_token": "a.b.c", "state": "x"}],
)
def test_a_malformed_launch_is_a_400_with_a_reason(visitor, registration, data):
    response = visitor.post(reverse("lti:launch"), data)
    assert response.status_code == 400
    assert "could not be validated" in response.content.decode()


def test_a_launch_is_posted_not_fetched(visitor):
    assert visitor.get(reverse("lti:launch")).status_code == 405


def test_login_initiation_needs_a_target_and_a_known_registration(visitor, registration):
    url = reverse("lti:login", args=[registration.uuid])
    assert visitor.get(url).status_code == 400
    unknown = reverse("lti:login", args=[uuid.uuid4()])
    response = visitor.get(
        unknown,
        {"iss": registration.issuer, "login_hint": "x", "target_link_uri": "http://testserver/"},
    )
    assert response.status_code == 400
    assert "refused" in response.content.decode()
