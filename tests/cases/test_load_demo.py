"""load_demo: the demo's users, shipped generators and one template per generator and spec."""

import io

import pytest
from django.core.management import call_command

from cases.models import CaseTemplate, GeneratorModel


@pytest.mark.django_db
def test_the_demo_gets_a_template_per_shipped_generator_and_finding_once(settings, media_root):
    settings.DEBUG = True
    call_command("load_demo", cases=0, stdout=io.StringIO())
    generators = list(GeneratorModel.objects.all())
    assert generators
    expected = {f for g in generators for f in g.findings if f != "normal"}
    templates = list(CaseTemplate.objects.all())
    assert {t.current.finding for t in templates} == expected
    for template in templates:
        version = template.current
        assert version.title == template.title
        placement = version.generator.placement(version.finding)
        assert version.side in placement["sides"] + [""]  # only where the generator places

    call_command("load_demo", cases=0, stdout=io.StringIO())  # again: nothing new
    assert CaseTemplate.objects.count() == len(templates)
