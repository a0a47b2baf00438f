"""A production deployment passes Django's deployment checks with the settings' defaults;
the demo's own command and the API schema are closed to it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tests.conftest import ROOT


def test_check_deploy_finds_no_security_warning(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SECURE_", "SESSION_", "CSRF_", "DEBUG"))
    }
    env.update(GANTRY_PSEUDONYM_KEY="a-long-random-pseudonym-key")
    env.update(
        SECRET_KEY="x" * 20 + "production-secret-key-of-fifty-characters",
        GANTRY_VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--tag", "security"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "security.W" not in result.stdout + result.stderr, result.stdout + result.stderr
    del env["GANTRY_PSEUDONYM_KEY"]
    missing = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--tag", "security"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "gantry.E001" in missing.stderr + missing.stdout


@pytest.mark.django_db
def test_the_demo_command_refuses_outside_the_demo(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only in the demo"):
        call_command("load_demo", cases=0)
    assert not User.objects.exists()


@pytest.mark.django_db
def test_the_api_schema_needs_a_login(client, login, trainee):
    assert client.get("/api/schema/").status_code in (401, 403)
    assert login(trainee).get("/api/schema/").status_code == 200
