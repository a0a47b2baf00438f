"""The OpenAPI schema covers every endpoint, with no warning from drf-spectacular."""

import pytest
import yaml
from django.core.management import call_command


@pytest.mark.django_db
def test_the_schema_is_complete_and_valid(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    paths = yaml.safe_load(out.read_text())["paths"]
    for path in (
        "/edu/api/attempts/",
        "/edu/api/attempts/{id}/",
        "/edu/api/attempts/{id}/answers/",
        "/edu/api/attempts/{id}/finish/",
        "/edu/api/answers/{id}/grade/",
        "/api/templates/{id}/co-authors/",
    ):
        assert path in paths
