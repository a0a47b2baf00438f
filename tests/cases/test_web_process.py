"""The web process never imports torch: pages, API and WADO are served without it."""

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gantry.settings")
import django
django.setup()
from django.urls import get_resolver
from django.test import Client
import gantry.wsgi, cases.views, cases.api, cases.admin
get_resolver().url_patterns
Client().get("/accounts/login/")
print("torch" in sys.modules, "genworker.pipeline" in sys.modules)
"""


def test_the_web_stack_does_not_import_torch():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DEBUG": "1", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert result.stdout.split() == ["False", "False"]
