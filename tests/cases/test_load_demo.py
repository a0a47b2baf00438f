"""load_demo: the demo's users, shipped generators and one template per generator and spec."""

import io

import pytest
from django.core.management import call_command

from cases.models import CaseTemplate, GeneratorModel, SyntheticPatient
from edu.models import has_normal_twin


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


@pytest.mark.django_db
def test_demo_cases_carry_twins_and_all_but_the_last_case_is_approved(settings, media_root):
    settings.DEBUG = True
    out = io.StringIO()
    call_command("load_demo", cases=2, stdout=out)
    for template in CaseTemplate.objects.all():
        cases = SyntheticPatient.objects.cases().filter(template_version__template=template)
        statuses = list(cases.order_by("case_index").values_list("status", flat=True))
        assert statuses == [SyntheticPatient.Status.APPROVED, SyntheticPatient.Status.IN_REVIEW]
        assert all(has_normal_twin(case) for case in cases)
    assert "2 case(s) generated: 1 approved, 1 in review" in out.getvalue()
