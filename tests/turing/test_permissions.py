"""Role x endpoint matrix of the Turing pages (anonymous, trainee, outside expert, the
study's rater, educator), while the study is open (closing comes last)."""

import pytest

from tests.factories import UserFactory

LOGIN = "login"
ENDPOINTS = (
    "list",
    "create",
    "detail",
    "start",
    "read",
    "quality",
    "trial",
    "feedback",
    "image",
    "results",
    "csv",
    "close",
)
EXPECTED = {  # (a single-image study without an uninformed phase, not training)
    "trainee": (403, 403, 403, 404, 404, 404, 404, 404, 404, 403, 403, 403),
    "outsider": (200, 403, 403, 404, 404, 404, 404, 404, 404, 403, 403, 403),
    "rater": (200, 403, 403, 200, 302, 302, 302, 404, 200, 403, 403, 403),
    "educator": (200, 200, 200, 404, 404, 404, 404, 404, 200, 403, 403, 302),
}


def request(client, study, endpoint):
    image = study.images.first()
    base = f"/turing/studies/{study.pk}/"
    get = {
        "list": "/turing/",
        "create": "/turing/new/",
        "detail": base,
        "start": f"{base}start/",
        "read": f"{base}read/",
        "quality": f"{base}quality/1/",
        "trial": f"{base}trial/1/",
        "feedback": f"{base}feedback/1/",
        "image": image.get_absolute_url(),
        "results": f"{base}results/",
        "csv": f"{base}results.csv",
    }
    if endpoint == "close":
        return client.post(f"{base}close/")
    return client.get(get[endpoint])


@pytest.fixture
def study(make_study):
    return make_study(n_cases=1, n_images=4)


def test_anonymous_users_are_sent_to_the_login_page(study, client):
    for endpoint in ENDPOINTS:
        response = request(client, study, endpoint)
        assert response.status_code == 302, endpoint
        assert "/accounts/login/" in response.url, endpoint


@pytest.mark.parametrize("role", list(EXPECTED))
def test_each_role_gets_what_it_may(study, raters, educator, trainee, login, role):
    user = {
        "trainee": trainee,
        "outsider": UserFactory(role="expert"),
        "rater": raters[0],
        "educator": educator,
    }[role]
    client = login(user)
    got = tuple(request(client, study, endpoint).status_code for endpoint in ENDPOINTS)
    assert dict(zip(ENDPOINTS, got, strict=True)) == dict(
        zip(ENDPOINTS, EXPECTED[role], strict=True)
    )


def test_an_expert_without_a_study_is_told_so_and_sees_no_study(study, login):
    page = login(UserFactory(role="expert")).get("/turing/").content.decode()
    assert "No study has been assigned to you yet" in page
    assert study.title not in page
