"""``pip install .`` ships every app and the shipped generators."""

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import ROOT

NOT_SHIPPED = (".git", ".venv", "var", "build", "*.egg-info", "static", "tests", "bench")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The names in a wheel built from a copy of the tree (the build leaves files behind)."""
    source = tmp_path_factory.mktemp("source") / "gantry"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "-q", "-w", str(out), str(source)], check=True, capture_output=True)
    (path,) = out.glob("gantry-*.whl")
    return set(zipfile.ZipFile(path).namelist())


@pytest.mark.parametrize(
    "module",
    [
        "gantry/settings.py",
        "cases/models/__init__.py",
        "edu/models.py",
        "turing/models.py",
        "turing/migrations/0001_initial.py",
        "genworker/cli.py",
    ],
)
def test_the_wheel_holds_every_app(wheel, module):
    assert module in wheel


def test_the_wheel_holds_the_shipped_generators(wheel):
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "genworker/models").iterdir()}
    assert {name for name in shipped if name.endswith(".pt")}  # checkpoints, cards, figures
    assert shipped <= wheel
