"""Saving a curation rule queues its application to the template's cases on the cpu queue:
the page answers at once with the operation's status page; the task decides every case
again in one transaction, so a failure part way changes no case."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cases.models import Operation, SyntheticPatient
from edu import curation
from edu.models import CurationRule, Review
from edu.tasks import apply_curation_rule
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed(make_cases):
    """Two cases in review, each with one review of realism 4 that confirms the finding."""
    cases = make_cases(2, status="draft")
    expert = UserFactory(role="expert")
    for case in cases:
        Review.submit(case=case, expert=expert, realism=4, shows_finding="yes", teaching_value=3)
    return cases


def statuses(cases) -> list[str]:
    return [SyntheticPatient.objects.get(pk=case.pk).status for case in cases]


def save_rule(web, template, commit, **values):
    p = f"t{template.pk}"
    with commit(execute=True):
        return web.post(
            reverse("edu:curation-rule", args=[template.pk]),
            {f"{p}-{name}": value for name, value in values.items()},
        )


def test_saving_a_rule_queues_its_application(
    login, educator, reviewed, task_queue, django_capture_on_commit_callbacks
):
    template = reviewed[0].template_version.template
    web = login(educator)
    reply = save_rule(
        web, template, django_capture_on_commit_callbacks, min_reviews=1, min_mean_realism=3
    )
    operation = Operation.objects.get()
    assert reply.url == f"/operations/{operation.pk}/"
    assert statuses(reviewed) == ["in_review", "in_review"]  # not applied in the request
    assert task_queue.sent == [
        ("edu.tasks.apply_curation_rule", {"operation_pk": operation.pk}, "cpu")
    ]
    task_queue.run()
    assert statuses(reviewed) == ["approved", "approved"]
    page = web.get(reply.url).content.decode()
    assert "Applied to 2 case(s); 2 to approved." in page
    assert (Operation.objects.get().status, Operation.objects.get().done) == ("succeeded", 2)


def test_a_failure_part_way_changes_no_case(
    login, educator, reviewed, task_queue, django_capture_on_commit_callbacks, monkeypatch
):
    template = reviewed[0].template_version.template
    save_rule(
        login(educator),
        template,
        django_capture_on_commit_callbacks,
        min_reviews=1,
        min_mean_realism=3,
    )
    decide, calls = curation.decide, []

    def second_fails(rule, votes):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return decide(rule, votes)

    monkeypatch.setattr(curation, "decide", second_fails)
    task_queue.run()
    operation = Operation.objects.get()
    assert (operation.status, operation.error) == ("failed", "RuntimeError: the database went away")
    assert statuses(reviewed) == ["in_review", "in_review"]


def test_a_repeated_delivery_decides_again_and_changes_nothing(educator, reviewed):
    rule = CurationRule.objects.create(
        template=reviewed[0].template_version.template, min_reviews=1, min_mean_realism=3
    )
    operation = rule.launch_apply(user=educator)
    apply_curation_rule(operation_pk=operation.pk)
    apply_curation_rule(operation_pk=operation.pk)
    operation.refresh_from_db()
    assert (operation.status, operation.attempts) == ("succeeded", 1)
    assert operation.result["moved"] == {"approved": 2}
    assert statuses(reviewed) == ["approved", "approved"]
