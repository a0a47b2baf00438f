"""While a study is open its raters reach no image its sources were drawn from, through any
door: pages, the REST API, WADO-URI, QIDO-RS, WADO-RS, the pool pages and quiz images. What
the doors leave out is the whole synthetic side and the whole pool, the same whatever was
drawn, so a rater cannot do better than chance at naming sources; an outsider sees all."""

from __future__ import annotations

import pytest
from django.test import Client

from cases.models import AccessToken, Instance, ReferenceImage, SyntheticPatient
from turing.models import StudyImage, TuringStudy

pytestmark = pytest.mark.django_db


def probe(user, study) -> dict[str, object]:
    """Everything ``user`` can list or fetch of the study's two sides, door by door."""
    web = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.issue(user)}")
    page = Client()
    page.force_login(user)
    cases = SyntheticPatient.objects.filter(template_version__generator=study.generator)
    instances = Instance.objects.filter(series__study__patient__in=cases)
    pool_images = ReferenceImage.objects.filter(pool=study.pool)
    qido = web.get("/dicomweb/instances?limit=1000").json()
    listed = {item["00080018"]["Value"][0] for item in qido}
    rs = [
        f"/dicomweb/studies/{i.series.study.study_uid}/series/{i.series.series_uid}"
        f"/instances/{i.sop_instance_uid}"
        for i in instances.select_related("series__study")
    ] + [
        f"/dicomweb/studies/{r.study_uid}/series/{r.series_uid}/instances/{r.sop_instance_uid}"
        for r in pool_images
    ]
    return {
        "api": {c["id"] for c in page.get("/api/cases/?limit=1000").json()["results"]}
        & set(cases.values_list("pk", flat=True)),
        "case pages": {page.get(f"/cases/{c.pk}/").status_code for c in cases},
        "review pages": {page.get(f"/edu/reviews/cases/{c.pk}/").status_code for c in cases},
        "wado-uri": {page.get(i.wado_uri).status_code for i in instances},
        "qido": len(listed & {*instances.values_list("sop_instance_uid", flat=True)})
        + len(listed & {*pool_images.values_list("sop_instance_uid", flat=True)}),
        "wado-rs": {web.get(url).status_code for url in rs},
        "pool page": page.get(f"/reference/{study.pool.pk}/").status_code,
        "pool listed": study.pool.name in page.get("/reference/").content.decode(),
        "pool service": web.get(f"/dicomweb/pools/{study.pool.pk}/instances").status_code,
    }


CLOSED_DOORS = {
    "api": set(),
    "case pages": {404},
    "review pages": {404},
    "wado-uri": {404},
    "qido": 0,
    "wado-rs": {404},
    "pool page": 404,
    "pool listed": False,
    "pool service": 404,
}


def test_every_door_is_closed_to_raters_of_an_open_study_only(make_study, raters, expert):
    study = make_study()
    assert probe(raters[0], study) == CLOSED_DOORS
    outsider = probe(expert, study)
    assert outsider["case pages"] == outsider["wado-uri"] == outsider["wado-rs"] == {200}
    assert outsider["qido"] == Instance.objects.count() + study.pool.images.count()

    study.close()
    assert probe(raters[0], study)["wado-rs"] == {200}


def test_what_a_rater_can_reach_does_not_depend_on_the_draw(make_study, raters):
    """Two studies over the same sides, drawn with other seeds: the rater's listings are the
    same, so nothing in them points at the images drawn."""
    first = make_study(seed=1)
    listing = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.issue(raters[0])}")
    before = listing.get("/dicomweb/instances?limit=1000").content
    TuringStudy.objects.filter(pk=first.pk).update(status=TuringStudy.Status.CLOSED)
    second = make_study(seed=2)
    drawn = [set(s.images.values_list("instance", "reference")) for s in (first, second)]
    assert drawn[0] != drawn[1]
    assert listing.get("/dicomweb/instances?limit=1000").content == before


def test_a_rater_gets_no_quiz_image_of_a_studys_case(make_study, raters, educator):
    from django.contrib.auth.models import Group

    from edu.models import Attempt
    from tests.edu.conftest import build_quiz

    study = make_study()
    rater = raters[0]
    cohort = Group.objects.create(name="readers")
    rater.groups.add(cohort)
    case = StudyImage.objects.filter(study=study, side="synthetic")[0].instance.series.study
    quiz = build_quiz(educator, cohort, case.patient)
    attempt = Attempt.start(quiz=quiz, user=rater)
    page = Client()
    page.force_login(rater)
    image = f"/edu/attempts/{attempt.pk}/items/{attempt.item_ids[0]}/images/0/"
    assert page.get(image).status_code == 404
    study.close()
    assert page.get(image).status_code == 200
