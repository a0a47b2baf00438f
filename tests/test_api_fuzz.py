"""The REST API fuzzed from its own OpenAPI schema (schemathesis), as each role: whatever a
request holds, the answer is never a server error (5xx).

Bounded: a few examples per operation and role, derandomised (the same requests every run),
so the whole takes seconds; operations whose requests would start generation are left out
(their input is checked by the same serializers, and a job would run the engine).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from schemathesis.core import NotSet
from schemathesis.openapi import from_dict

from tests.edu.conftest import build_quiz
from tests.factories import UserFactory

EXAMPLES = 4
SKIPPED = {("POST", "/api/templates/{id}/generate/")}


def operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for result in from_dict(json.loads(json.dumps(schema))).get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in SKIPPED:
            yield operation


def send(client: Client, case) -> int:
    query = "" if isinstance(case.query, NotSet) or not case.query else urlencode(case.query, True)
    kwargs = {"QUERY_STRING": query}
    if not isinstance(case.body, NotSet):
        kwargs.update(data=json.dumps(case.body), content_type="application/json")
    return client.generic(case.method, case.formatted_path, **kwargs).status_code


@pytest.fixture
def cohort(make_cases, educator):
    """A published quiz over a generated case, for a cohort the fuzzing user joins."""
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="fuzzed")
    build_quiz(educator, group, make_cases(1)[0])
    return group


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["trainee", "expert", "educator"])
def test_no_request_makes_a_server_error(role, cohort):
    user = UserFactory(role=role)
    user.groups.add(cohort)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    errors: list[str] = []
    for operation in operations():

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case) -> None:
            status = send(client, case)
            if status >= 500:
                errors.append(f"{status} {case.method} {case.formatted_path} {case.body!r:.200}")

        check()
    assert not errors, "\n".join(errors)
