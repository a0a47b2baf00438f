"""Imports run one way: ``edu``, ``turing`` -> ``cases`` -> ``genworker``.

The engine (genworker) imports nothing from Django, Celery or Gantry's apps, so it trains and
samples in any Python process; the core app (cases) imports no feature app, which add their
rules to it through registries instead. Every import statement counts, those inside
functions too.
"""

import ast

import pytest

from tests.conftest import ROOT


def imported_roots(package: str) -> dict[str, set[str]]:
    """Each module's file -> the top-level packages its import statements name."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        roots = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                roots.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = roots
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "genworker",
            {
                "django",
                "celery",
                "kombu",
                "rest_framework",
                "gantry",
                "cases",
                "edu",
                "turing",
                "lti",
            },
        ),
        ("cases", {"edu", "turing", "lti"}),
        # edu tells feature apps through signals (edu.signals), never imports them
        ("edu", {"turing", "lti", "lti_tool", "pylti1p3"}),
    ],
)
def test_imports_run_one_way(package, forbidden):
    modules = imported_roots(package)
    assert len(modules) > 10  # the package was found and read
    offending = {
        path: sorted(roots & forbidden) for path, roots in modules.items() if roots & forbidden
    }
    assert offending == {}


def test_the_check_sees_imports_inside_functions(tmp_path, monkeypatch):
    import tests.test_architecture as here

    package = tmp_path / "pkg"
    package.mkdir()
    for index in range(11):
        (package / f"m{index}.py").write_text("import numpy\n")
    (package / "lazy.py").write_text("def f():\n    from django.conf import settings\n")
    monkeypatch.setattr(here, "ROOT", tmp_path)
    assert here.imported_roots("pkg")["pkg/lazy.py"] == {"django"}
