"""The rater's reading flow and the educator's pages, through the real views."""

import csv
import io

from cases.models import Operation, SyntheticPatient
from turing.models import Response, TuringStudy
from turing.results import CSV_COLUMNS, study_analysis
from turing.templatetags.turing import crossed


def answer(client, study, position, **fields):
    data = {"call": "synthetic", "confidence": 4, "time_ms": 1200, **fields}
    return client.post(f"/turing/studies/{study.pk}/read/{position}/", data)


def test_a_rater_reads_every_image_in_their_order_then_is_done(make_study, raters, login):
    study = make_study()
    rater = study.rater_set.get(user=raters[0])
    client = login(raters[0])
    assert client.get(f"/turing/studies/{study.pk}/read/").url.endswith("/start/")
    client.post(f"/turing/studies/{study.pk}/start/", {"experience_years": "12"})
    rater.refresh_from_db()
    assert rater.experience_years == 12
    assert rater.started_at is not None
    order = rater.order()
    for position in range(1, 9):
        page = client.get(f"/turing/studies/{study.pk}/read/")
        assert page.url == f"/turing/studies/{study.pk}/read/{position}/"
        token = study.images.get(pk=order[position - 1]).token
        assert f"/turing/image/{token}/" in client.get(page.url).content.decode()
        assert answer(client, study, position).status_code == 302
    done = client.get(f"/turing/studies/{study.pk}/read/")
    assert b"You have answered every image" in done.content
    saved = Response.objects.filter(rater=rater)
    assert saved.count() == 8
    assert {r.time_on_image_ms for r in saved} == {1200}


def test_without_going_back_earlier_and_later_images_redirect_to_the_next(
    make_study, raters, login
):
    study = make_study()
    client = login(raters[0])
    client.post(f"/turing/studies/{study.pk}/start/", {})
    assert answer(client, study, 1).status_code == 302
    assert Response.objects.count() == 1
    for position in (1, 3):
        assert client.get(f"/turing/studies/{study.pk}/read/{position}/").url.endswith("/read/")
    assert answer(client, study, 1, call="real").status_code == 302
    assert not Response.objects.filter(called_synthetic=False).exists()


def test_with_going_back_a_rater_may_change_an_answer(make_study, raters, login):
    study = make_study(allow_back=True, ask_realism=True, ask_comment=True)
    client = login(raters[0])
    client.post(f"/turing/studies/{study.pk}/start/", {})
    assert client.post(f"/turing/studies/{study.pk}/start/", {}).status_code == 302
    answer(client, study, 1, realism=2, comment="too smooth")
    page = client.get(f"/turing/studies/{study.pk}/read/2/").content.decode()
    assert f"/turing/studies/{study.pk}/read/1/" in page
    assert 'name="realism"' in page
    assert 'name="comment"' in page
    answer(client, study, 1, call="real", confidence=1, time_ms=300)
    response = Response.objects.get()
    assert (response.called_synthetic, response.realism, response.time_on_image_ms) == (
        False,
        None,
        1500,
    )


def test_bad_answers_are_400_and_store_nothing(make_study, raters, login):
    study = make_study(n_cases=1, n_images=4)
    client = login(raters[0])
    client.post(f"/turing/studies/{study.pk}/start/", {})
    good = {"call": "synthetic", "confidence": 4, "time_ms": 1200}
    bad_ones = [{"call": "maybe"}, {"confidence": 9}, {"time_ms": -1}, {"time_ms": "soon"}]
    for bad in [*bad_ones, {"call": ""}]:
        response = client.post(f"/turing/studies/{study.pk}/read/1/", {**good, **bad})
        assert response.status_code == 400, bad
    assert client.post(f"/turing/studies/{study.pk}/read/1/", {}).status_code == 400
    assert not Response.objects.exists()


def test_pause_and_resume(make_study, raters, login):
    study = make_study(n_cases=1, n_images=4)
    client = login(raters[0])
    client.post(f"/turing/studies/{study.pk}/start/", {})
    answer(client, study, 1)
    client.post(f"/turing/studies/{study.pk}/pause/")
    listing = client.get("/turing/").content.decode()
    assert "1 / 4 · paused" in listing
    assert "Resume" in listing
    assert client.get(f"/turing/studies/{study.pk}/read/").url.endswith("/read/2/")
    client.get(f"/turing/studies/{study.pk}/read/2/")
    assert study.rater_set.get(user=raters[0]).paused_at is None


def test_an_educator_builds_a_study_through_the_form(
    make_cases, pool, raters, login, educator, task_queue, django_capture_on_commit_callbacks
):
    cases = make_cases(2)
    client = login(educator)
    data = {
        "title": "Form study",
        "cases": [c.pk for c in cases],
        "pool": pool.pk,
        "n_images": 6,
        "synthetic_ratio": 0.5,
        "raters": [r.pk for r in raters[:2]],
        "allow_back": "on",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/turing/new/", data)
    operation = Operation.objects.get()
    assert response.url == f"/operations/{operation.pk}/"
    assert not TuringStudy.objects.exists()  # built by the task, not in the request
    assert task_queue.sent == [("turing.tasks.build_study", {"operation_pk": operation.pk}, "cpu")]
    assert f'href="/operations/{operation.pk}/"' in client.get("/turing/").content.decode()
    task_queue.run()
    assert f'href="/operations/{operation.pk}/"' not in client.get("/turing/").content.decode()
    study = TuringStudy.objects.get()
    page = client.get(response.url).content.decode()
    assert "Study created with 6 images." in page
    assert f'href="/turing/studies/{study.pk}/"' in page
    assert (study.n_images, study.allow_back, study.rater_set.count()) == (6, True, 2)
    assert set(study.cases.all()) == set(cases)
    too_many = client.post("/turing/new/", {**data, "n_images": 40})
    assert too_many.status_code == 400
    assert b"synthetic images but only 6" in too_many.content
    both = client.post(
        "/turing/new/", {**data, "generator": cases[0].template_version.generator.pk}
    )
    assert both.status_code == 400
    assert TuringStudy.objects.count() == Operation.objects.count() == 1


def test_draft_cases_cannot_be_chosen(make_cases, pool, raters, login, educator):
    draft = make_cases(1, status=SyntheticPatient.Status.DRAFT)
    data = {
        "title": "x",
        "cases": [draft[0].pk],
        "pool": pool.pk,
        "n_images": 2,
        "synthetic_ratio": 0.5,
        "raters": [raters[0].pk],
    }
    assert login(educator).post("/turing/new/", data).status_code == 400


def closed_study_with_answers(make_study):
    """Three raters: the first wrong on every other image, the other two sure of every
    synthetic image (so closing flags its case); answers do not depend on database ids,
    which differ between SQLite and PostgreSQL runs."""
    study = make_study(ask_realism=True)
    for n, rater in enumerate(study.rater_set.all()):
        rater.experience_years = (None, 3, 20)[n]
        rater.save()
        for i, image in enumerate(study.images.order_by("pk")):
            sure = n > 0 and image.is_synthetic
            Response.record(
                rater=rater,
                image=image,
                time_ms=700 + n,
                called_synthetic=image.is_synthetic != (n == 0 and i % 2 == 0),
                confidence=5 if sure else 1 + (i + n) % 5,
                realism=3,
            )
    study.close()
    return study


def test_results_page_shows_the_figures_and_plots(make_study, educator, login):
    study = closed_study_with_answers(make_study)
    page = login(educator).get(f"/turing/studies/{study.pk}/results/").content.decode()
    for text in (
        "Accuracy",
        "Sensitivity",
        "Specificity",
        "AUC",
        "Fleiss",
        "pooled",
        "&lt; 5 years",
        "≥ 10 years",
        "not recorded",
    ):
        assert text in page, text
    for plot in ("roc", "accuracy", "fooling"):
        assert f'data-plot="{plot}"' in page
    assert page.count('class="roc-curve"') == 3
    mrmc = study_analysis(study).reader_case
    assert (mrmc.raters, mrmc.images) == (3, 8)
    assert f"Accuracy <strong>{crossed(mrmc.accuracy)}</strong>" in page
    assert f"mean AUC of the raters <strong>{crossed(mrmc.auc)}</strong>" in page


def test_csv_export_has_every_response_and_what_redoes_the_analysis(make_study, educator, login):
    study = closed_study_with_answers(make_study)
    response = login(educator).get(f"/turing/studies/{study.pk}/results.csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 24
    image = study.images.filter(side="synthetic").first()
    row = next(r for r in rows if r["image_token"] == image.token)
    assert row["truth"] == "synthetic"
    assert row["study_seed"] == str(study.seed)
    assert image.instance.sop_instance_uid in row["source"]
    assert {r["rater_experience_years"] for r in rows} == {"", "3.0", "20.0"}
    positions = {r["position"] for r in rows if r["rater"] == rows[0]["rater"]}
    assert positions == {str(i) for i in range(1, 9)}
    assert all(int(r["score_1_to_10"]) in range(1, 11) for r in rows)


def test_generator_page_lists_its_studies_and_case_page_shows_flags(
    make_study, educator, login, trainee, client
):
    study = closed_study_with_answers(make_study)
    page = login(educator).get(study.generator.get_absolute_url()).content.decode()
    assert "Visual Turing tests" in page
    assert study.title in page
    assert f"<td>{crossed(study_analysis(study).reader_case.accuracy)}</td>" in page
    flag = study.flags.first()
    assert flag is not None
    case_page = client.get(flag.case.get_absolute_url()).content.decode()
    assert "Recognised as synthetic" in case_page
    client.logout()
    login(trainee)
    assert (
        "Recognised as synthetic" not in client.get(flag.case.get_absolute_url()).content.decode()
    )


def test_the_start_page_says_what_the_pool_is_and_the_scales_have_anchors(
    make_study, raters, login
):
    from cases.models import ReferenceImage

    study = make_study(ask_realism=True)
    client = login(raters[0])
    start = client.get(f"/turing/studies/{study.pk}/start/").content.decode()
    assert "acquired from patients" in start
    study.pool.images.update(origin=ReferenceImage.Origin.COHORT)
    start = client.get(f"/turing/studies/{study.pk}/start/").content.decode()
    assert "acquired from patients" not in start
    assert "simulated images of held-out subjects of a training cohort, not of patients" in start
    client.post(f"/turing/studies/{study.pk}/start/", {})
    page = client.get(f"/turing/studies/{study.pk}/read/1/").content.decode()
    for anchor in ("1 · guessing", "5 · certain", "1 · clearly artificial", "3 · plausible"):
        assert anchor in page


def test_the_study_form_says_how_many_images_each_side_offers(make_cases, pool, login, educator):
    make_cases(2)
    make_cases(1, status=SyntheticPatient.Status.DRAFT)  # not counted: not approved
    page = login(educator).get("/turing/new/").content.decode()
    assert "Tiny brain (6 approved MR images)" in page
    assert "held-out MR (12 MR images)" in page
    assert "(3 approved MR images)" in page  # each approved case
