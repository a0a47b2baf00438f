"""The LTI 1.3 flow against a simulated platform, from deep linking to a score in its
gradebook: an instructor picks a quiz, a learner launches it, takes it, finishes, and the
platform receives the score through Assignment and Grade Services."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from django.urls import reverse

from edu import answering
from edu.models import Answer, Attempt
from lti import grades
from lti.launch import QUIZ_PARAMETER
from lti.models import ScoreReport
from tests.edu.conftest import perfect_responses
from tests.factories import PASSWORD
from tests.lti.conftest import launch
from tests.lti.platform import form_of

LAUNCH_URL = "http://testserver/lti/launch/"


def _deep_link(client, platform, registration, quiz) -> str:
    """The instructor adds ``quiz`` to the course; returns the new resource link's id."""
    response = launch(
        client, platform, registration, user="teacher", hint="deep-link", target=LAUNCH_URL
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("lti:deep-link")
    picker = client.get(reverse("lti:deep-link"))
    assert quiz.title in picker.content.decode()
    answer = client.post(reverse("lti:deep-link"), {"quiz": quiz.pk})
    action, fields = form_of(answer.content.decode(), "lti-deep-link-return")
    assert action == f"{platform.url}/deep-link-return"
    added = requests.post(action, data=fields, timeout=10)
    assert added.status_code == 200, platform.refusals
    return next(iter(platform.resource_links))


def test_deep_link_launch_and_score_back(
    client,
    platform,
    registration,
    gantry_platform,
    lti_quiz,
    educator,
    django_capture_on_commit_callbacks,
):
    platform.tool_jwks = client.get(reverse("lti:jwks")).json()
    link_id = _deep_link(client, platform, registration, lti_quiz)
    link = platform.resource_links[link_id]
    assert link["url"] == LAUNCH_URL
    assert QUIZ_PARAMETER in link["custom"]
    assert platform.line_items[link["line_item"]]["scoreMaximum"] == 5  # five 1-point questions
    assert platform.line_items[link["line_item"]]["label"] == lti_quiz.title

    client.logout()
    response = launch(
        client, platform, registration, user="learner", hint=link_id, target=LAUNCH_URL
    )
    attempt = Attempt.objects.get(quiz=lti_quiz)
    assert response["Location"] == reverse("edu:attempt-item", args=[attempt.pk, 0])
    learner = attempt.user
    assert learner.first_name == "Lee"
    assert set(learner.groups.values_list("name", flat=True)) == {
        "trainee",
        gantry_platform.cohort.name,
    }
    assert client.get(response["Location"]).status_code == 200  # logged in as the learner
    report = ScoreReport.objects.get(attempt=attempt)
    assert report.lineitem_url == f"{platform.url}/lineitems/{link['line_item']}"

    for question, answer in perfect_responses(attempt, attempt.items()[0]).items():
        answering.submit(attempt, question, answer)
    with django_capture_on_commit_callbacks() as queued:
        client.post(reverse("edu:attempt-finish", args=[attempt.pk]))
    assert len(queued) == 1  # the score task, sent once the finish is committed
    grades.send_score(report.pk)  # what the cpu worker runs
    (score,) = platform.scores
    assert score["line_item"] == link["line_item"]
    assert score["userId"] == "learner-1"
    assert (score["scoreGiven"], score["scoreMaximum"]) == (4.0, 4.0)  # free text ungraded
    assert (score["activityProgress"], score["gradingProgress"]) == ("Completed", "PendingManual")

    # The educator grades the free text: the platform gets the final score.
    client.logout()
    assert client.login(username=educator.username, password=PASSWORD)
    free_text = Answer.objects.get(attempt=attempt, question__kind="free_text")
    with django_capture_on_commit_callbacks() as queued:
        client.post(reverse("edu:grade-answer", args=[free_text.pk]), {"score": "0.5"})
    assert len(queued) == 1
    grades.send_score(report.pk)
    final = platform.scores[-1]
    assert (final["scoreGiven"], final["scoreMaximum"], final["gradingProgress"]) == (
        4.5,
        5.0,
        "FullyGraded",
    )
    report.refresh_from_db()
    assert (report.status, report.error) == (ScoreReport.Status.SENT, "")
    assert platform.refusals == []


def test_an_unreachable_gradebook_is_recorded_not_raised(
    client, platform, registration, gantry_platform, lti_quiz
):
    platform.tool_jwks = client.get(reverse("lti:jwks")).json()
    link_id = _deep_link(client, platform, registration, lti_quiz)
    client.logout()
    launch(client, platform, registration, user="learner", hint=link_id, target=LAUNCH_URL)
    attempt = Attempt.objects.get(quiz=lti_quiz)
    attempt.finish()
    platform.close()  # the platform is down when the score goes
    report = grades.send_score(ScoreReport.objects.get(attempt=attempt).pk)
    assert report.status == ScoreReport.Status.FAILED
    assert "ConnectionError" in report.error


@pytest.mark.parametrize(
    ("custom", "message"),
    [
        ({}, "names no Gantry quiz"),
        ({QUIZ_PARAMETER: "7"}, "not made by Gantry for this platform"),
    ],
)
def test_a_link_gantry_did_not_make_is_refused(
    client, platform, registration, gantry_platform, lti_quiz, custom, message
):
    platform.tool_jwks = client.get(reverse("lti:jwks")).json()
    link_id = _deep_link(client, platform, registration, lti_quiz)
    client.logout()
    platform.custom_override = custom or {"other": "x"}
    response = launch(
        client, platform, registration, user="learner", hint=link_id, target=LAUNCH_URL
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Attempt.objects.exists()


def test_a_launch_signed_by_another_key_is_refused(client, platform, registration, gantry_platform):
    from jwcrypto.jwk import JWK

    platform.signing_key = JWK.generate(kty="RSA", size=2048)
    response = launch(
        client, platform, registration, user="teacher", hint="deep-link", target=LAUNCH_URL
    )
    assert response.status_code == 400
    assert "could not be validated" in response.content.decode()


def test_an_inactive_deployment_is_refused(client, platform, registration, gantry_platform):
    registration.deployments.update(is_active=False)
    response = launch(
        client, platform, registration, user="teacher", hint="deep-link", target=LAUNCH_URL
    )
    assert response.status_code == 403
    assert "not active" in response.content.decode()


def test_a_learner_cannot_deep_link(client, platform, registration, gantry_platform):
    response = launch(
        client, platform, registration, user="learner", hint="deep-link", target=LAUNCH_URL
    )
    assert response.status_code == 403
    assert client.get(reverse("lti:deep-link")).status_code in (302, 403)


def test_a_platform_without_a_cohort_is_told_so(client, platform, registration):
    response = launch(
        client, platform, registration, user="teacher", hint="deep-link", target=LAUNCH_URL
    )
    assert response.status_code == 400
    assert "choose the cohort" in response.content.decode()


def test_a_replayed_launch_is_refused(client, platform, registration, gantry_platform):
    login = client.get(
        platform.login_url(
            f"/lti/login/{registration.uuid}/", user="teacher", hint="deep-link", target=LAUNCH_URL
        )
    )
    action, fields = form_of(requests.get(login["Location"], timeout=10).text)
    assert client.post(urlsplit(action).path, fields).status_code == 302
    replay = client.post(urlsplit(action).path, fields)
    assert replay.status_code == 400  # the nonce was used


def test_the_jwks_is_public_and_holds_the_tool_key(client, registration):
    keys = client.get(reverse("lti:jwks")).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA"
    assert "d" not in keys[0]  # no private part
