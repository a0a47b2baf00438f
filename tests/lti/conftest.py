"""A registered simulated platform, a cohort with a published quiz, and the tool's key."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import Group
from lti_tool.models import Key, LtiDeployment, LtiRegistration

from lti.models import Platform
from tests.edu.conftest import build_quiz
from tests.lti.platform import SimulatedPlatform, form_of


@pytest.fixture
def platform():
    simulated = SimulatedPlatform(tool_launch_url="http://testserver/lti/launch/")
    yield simulated
    simulated.close()


def register(platform: SimulatedPlatform, *, name: str) -> LtiRegistration:
    """The tool's signing key and the platform registered with Gantry, with its deployment."""
    Key.objects.generate()
    registration = LtiRegistration.objects.create(
        name=name,
        issuer=platform.issuer,
        client_id=platform.client_id,
        auth_url=f"{platform.url}/auth",
        token_url=f"{platform.url}/token",
        keyset_url=f"{platform.url}/jwks",
    )
    LtiDeployment.objects.create(
        registration=registration, deployment_id=platform.deployment_id, is_active=True
    )
    return registration


@pytest.fixture
def registration(db, platform):
    return register(platform, name="Simulated LMS")


@pytest.fixture
def lti_cohort(db):
    return Group.objects.create(name="LMS course: neuroradiology")


@pytest.fixture
def gantry_platform(registration, lti_cohort):
    return Platform.objects.create(registration=registration, cohort=lti_cohort)


@pytest.fixture
def lti_quiz(educator, lti_cohort, make_cases):
    return build_quiz(educator, lti_cohort, make_cases(1)[0])


def launch(client, platform, registration, *, user: str, hint: str, target: str):
    """Walk one launch as the browser does: the platform's login initiation to the tool,
    the tool's redirect to the platform's authorisation endpoint, and the platform's
    page posting the id_token back to the tool. Returns the tool's answer to that post."""
    login = client.get(
        platform.login_url(f"/lti/login/{registration.uuid}/", user=user, hint=hint, target=target)
    )
    assert login.status_code == 302, login.content
    auth = login["Location"]
    assert auth.startswith(f"{platform.url}/auth?")
    assert parse_qs(urlsplit(auth).query)["redirect_uri"] == [target]
    page = requests.get(auth, timeout=10)
    assert page.status_code == 200, platform.refusals
    action, fields = form_of(page.text)
    return client.post(urlsplit(action).path, fields)
