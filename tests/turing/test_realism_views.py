"""The realism lab through the real views: the uninformed phase, forced-choice trials,
training feedback, the new results and the generator card."""

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from cases.models import GeneratorModel
from turing.building import StudyPlan, build_study
from turing.card import CARD_KEY
from turing.forms import StudyForm
from turing.models import LETTERS, QualityRating, Response, StudyImage, TrialResponse
from turing.results import study_results
from turing.templatetags.turing import pvalue


def start(client, study):
    assert client.post(f"/turing/studies/{study.pk}/start/", {}).status_code == 302


def next_url(client, study):
    return client.get(f"/turing/studies/{study.pk}/read/").url


def pick(client, study, rater, *, correct):
    """Answer the rater's next trial, right or wrong; returns the response."""
    url = next_url(client, study)
    position = int(url.rstrip("/").rsplit("/", 1)[1])
    shown = study.trials()[rater.trial_order()[position - 1]]
    sides = dict(StudyImage.objects.filter(pk__in=shown).values_list("pk", "side"))
    wanted = "synthetic" if study.picks_synthetic else "real"
    index = next(i for i, pk in enumerate(shown) if (sides[pk] == wanted) == correct)
    return client.post(url, {"pick": LETTERS[index], "time_ms": 900 + 100 * position})


def test_the_uninformed_phase_scores_quality_without_a_word_of_synthetic_then_informs(
    make_study, raters, login, educator
):
    study = make_study(n_cases=1, n_images=4, uninformed_phase=True, title="Synthetic or not?")
    rater = study.rater_set.get(user=raters[0])
    client = login(raters[0])
    pages = [client.get("/turing/").content.decode()]
    pages.append(client.get(f"/turing/studies/{study.pk}/start/").content.decode())
    start(client, study)
    for bad in ({"quality": 6, "time_ms": 5}, {"quality": 3}, {"quality": "", "time_ms": 5}):
        assert client.post(f"/turing/studies/{study.pk}/quality/1/", bad).status_code == 400
    assert not QualityRating.objects.exists()
    order = rater.quality_order()
    for position in range(1, 5):
        url = next_url(client, study)
        assert url == f"/turing/studies/{study.pk}/quality/{position}/"
        assert client.get(f"/turing/studies/{study.pk}/read/1/").url.endswith("/read/")
        page = client.get(url).content.decode()
        image = study.images.get(pk=order[position - 1])
        assert f"/turing/image/{image.token}/" in page
        pages.append(page)
        quality = 2 if image.is_synthetic else 5
        assert client.post(url, {"quality": quality, "time_ms": 800}).status_code == 302
    for page in pages:  # (paths hold "/turing/", which is not text on the page)
        for word in ("synthetic", "Synthetic", "generative", "Turing", "real or"):
            assert word not in page, word
    assert "Image quality study" in pages[0]
    informed = client.get(next_url(client, study)).content.decode()
    assert "Part two." in informed
    assert "made by a generative model" in informed
    assert "Synthetic or not?" in informed
    # once informed, the quality phase is over
    assert client.get(f"/turing/studies/{study.pk}/quality/1/").url.endswith("/read/")
    client.post(f"/turing/studies/{study.pk}/quality/1/", {"quality": 1, "time_ms": 1})
    assert set(QualityRating.objects.values_list("quality", flat=True)) == {2, 5}

    study.close()
    results = login(educator).get(f"/turing/studies/{study.pk}/results/").content.decode()
    quality = study_results(study).quality
    assert (quality.real.mean, quality.synthetic.mean) == (5.0, 2.0)
    assert 'id="turing-quality"' in results
    assert "5.00 ± 0.00" in results
    assert "2.00 ± 0.00" in results
    assert f'<strong id="turing-quality-p">{pvalue(quality.p_value)}</strong>' in results
    assert f"/turing/studies/{study.pk}/quality.csv" in results
    export = login(educator).get(f"/turing/studies/{study.pk}/quality.csv")
    assert export["Content-Disposition"].endswith(f'turing-study-{study.pk}-quality.csv"')
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert len(rows) == 4
    for row in rows:
        image = study.images.get(token=row["image_token"])
        assert row["truth"] == image.side
        assert row["quality_1_to_5"] == ("2" if image.is_synthetic else "5")
        assert row["rater"] == raters[0].get_username()


def test_a_2afc_study_reads_trials_of_a_real_and_a_synthetic_image(
    make_study, raters, login, educator
):
    study = make_study(n_cases=1, n_images=4, format="2afc")
    assert len(study.trials()) == study.n_readings == 2
    rater = study.rater_set.get(user=raters[0])
    client = login(raters[0])
    start(client, study)
    page = client.get(next_url(client, study)).content.decode()
    assert "Which image is real?" in page
    shown = study.trials()[rater.trial_order()[0]]
    for image in StudyImage.objects.filter(pk__in=shown):
        assert f"/turing/image/{image.token}/" in page
    assert '"timepoints": 2' in page
    assert client.post(next_url(client, study), {"pick": "C", "time_ms": 5}).status_code == 400
    assert not TrialResponse.objects.exists()
    for correct in (True, False):
        assert pick(client, study, rater, correct=correct).url.endswith("/read/")
    answers = TrialResponse.objects.order_by("created_at").values_list("correct", flat=True)
    assert list(answers) == [True, False]
    done = client.get(f"/turing/studies/{study.pk}/read/").content
    assert b"You have answered every image" in done
    assert client.get(f"/turing/studies/{study.pk}/feedback/1/").status_code == 404

    study.close()
    figures = study_results(study).forced_choice
    assert (figures.correct.k, figures.correct.n, figures.chance) == (1, 2, 0.5)
    assert figures.p_value == pytest.approx(0.75)
    results = login(educator).get(f"/turing/studies/{study.pk}/results/").content.decode()
    assert 'id="turing-forced-choice"' in results
    assert "0.50 (0.09-0.91) 1/2" in results
    assert "correct trials" in results
    assert "wrong trials" in results
    export = login(educator).get(f"/turing/studies/{study.pk}/results.csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(export)))
    assert sorted(row["correct"] for row in rows) == ["0", "1"]  # one right, one wrong
    for row in rows:
        shown = study.trials()[int(row["trial"]) - 1]
        tokens = [study.images.get(pk=pk).token for pk in shown]
        assert row["shown_tokens"].split() == tokens
        assert row["chosen_token"] in tokens
        assert sorted(row["shown_truths"].split()) == ["real", "synthetic"]
        assert row["correct"] == ("1" if row["chosen_truth"] == "real" else "0")
    no_quality = login(educator).get(f"/turing/studies/{study.pk}/quality.csv")
    assert no_quality.status_code == 404
    assert b"no uninformed phase" in no_quality.content


def test_a_4afc_study_picks_the_synthetic_one_and_needs_three_real_images(
    make_study, pool, raters, login, educator
):
    study = make_study(n_cases=1, n_images=4, synthetic_ratio=0.25, format="4afc")
    (trial,) = study.trials()
    assert len(trial) == 4
    rater = study.rater_set.get(user=raters[0])
    client = login(raters[0])
    start(client, study)
    assert "Which image is synthetic?" in client.get(next_url(client, study)).content.decode()
    pick(client, study, rater, correct=True)
    assert TrialResponse.objects.get().chosen.side == StudyImage.Side.SYNTHETIC
    plan = StudyPlan(
        title="Too few real",
        pool=pool,
        n_images=4,
        synthetic_ratio=0.5,
        raters=raters,
        generator=study.generator,
        format="4afc",
    )
    with pytest.raises(ValidationError, match="three real images"):
        build_study(plan, created_by=educator)
    data = {
        "title": "Lab",
        "generator": study.generator.pk,
        "pool": pool.pk,
        "n_images": 4,
        "synthetic_ratio": 0.25,
        "raters": [r.pk for r in raters],
        "format": "4afc",
        "uninformed_phase": "on",
        "training": "on",
    }
    form = StudyForm(data)
    assert form.is_valid(), form.errors
    plan = form.plan()
    assert (plan.format, plan.uninformed_phase, plan.training) == ("4afc", True, True)
    without_format = StudyForm({k: v for k, v in data.items() if k != "format"})
    assert without_format.is_valid()
    assert without_format.plan().format == "single"
    assert not StudyForm({**data, "format": "3afc"}).is_valid()


def test_training_gives_feedback_after_each_pick_and_stays_off_the_card(make_study, raters, login):
    study = make_study(n_cases=1, n_images=4, format="2afc", training=True)
    rater = study.rater_set.get(user=raters[0])
    client = login(raters[0])
    intro = client.get(f"/turing/studies/{study.pk}/start/").content.decode()
    assert "after each answer you are told" in intro
    start(client, study)
    response = pick(client, study, rater, correct=False)
    assert response.url == f"/turing/studies/{study.pk}/feedback/1/"
    page = client.get(response.url).content.decode()
    shown = study.trials()[rater.trial_order()[0]]
    synthetic = next(i for i, pk in enumerate(shown) if StudyImage.objects.get(pk=pk).is_synthetic)
    assert "<strong>Wrong.</strong> You picked image" in page
    assert f"Image {LETTERS[synthetic]} is the synthetic one." in page
    assert client.get(f"/turing/studies/{study.pk}/feedback/2/").url.endswith("/read/")
    page = client.get(pick(client, study, rater, correct=True).url).content.decode()
    assert "<strong>Correct.</strong>" in page
    card_before = dict(study.generator.model_card)
    study.close()
    assert GeneratorModel.objects.get(pk=study.generator.pk).model_card == card_before


def test_single_image_training_feedback_and_the_time_and_carry_over_results(
    make_study, raters, login, educator
):
    study = make_study(n_cases=1, n_images=4, training=True)
    rater = study.rater_set.get(user=raters[0])
    client = login(raters[0])
    start(client, study)
    image = StudyImage.objects.get(pk=rater.order()[0])
    call = "synthetic" if image.is_synthetic else "real"
    answer = {"call": call, "confidence": 3, "time_ms": 2000 if image.is_synthetic else 1000}
    feedback = client.post(f"/turing/studies/{study.pk}/read/1/", answer).url
    assert feedback == f"/turing/studies/{study.pk}/feedback/1/"
    page = client.get(feedback).content.decode()
    assert f"<strong>Correct.</strong> You called this image {call}. It is {call}." in page
    for rater in study.rater_set.all():
        for image in study.images.exclude(responses__rater=rater):
            Response.record(
                rater=rater,
                image=image,
                time_ms=2000 if image.is_synthetic else 1000,
                called_synthetic=True,
                confidence=3,
            )
    study.close()
    results = study_results(study)
    assert results.times["synthetic images"].median == 2000.0
    assert results.times["real images"].median == 1000.0
    assert sum(map(sum, results.carry_over.table)) == 3 * 3  # 3 consecutive pairs a rater
    page = login(educator).get(f"/turing/studies/{study.pk}/results/").content.decode()
    assert 'id="turing-times"' in page
    assert "<td>2.0 s</td>" in page
    assert "<td>1.0 s</td>" in page
    assert 'id="turing-carry-over"' in page


def test_closing_records_the_figures_on_the_generators_card(make_study, raters, login, educator):
    study = make_study(n_cases=1, n_images=4, format="2afc", title="Pairs")
    card_before = dict(study.generator.model_card)
    for rater in study.rater_set.all()[:2]:
        client = login(rater.user)
        start(client, study)
        for correct in (True, True):
            pick(client, study, rater, correct=correct)
        client.logout()
    study.close()
    generator = GeneratorModel.objects.get(pk=study.generator.pk)
    (entry,) = generator.model_card[CARD_KEY]
    assert {k: entry[k] for k in ("study", "title", "format", "raters", "responses")} == {
        "study": study.pk,
        "title": "Pairs",
        "format": "2afc",
        "raters": 2,
        "responses": 4,
    }
    assert entry["closed"] == study.closed_at.date().isoformat()
    assert (entry["correct"]["k"], entry["correct"]["n"], entry["chance"]) == (4, 4, 0.5)
    assert entry["p_value"] == pytest.approx(1 / 16)
    assert {k: v for k, v in generator.model_card.items() if k != CARD_KEY} == card_before

    page = login(educator).get(generator.get_absolute_url()).content.decode()
    assert f'<a href="/turing/studies/{study.pk}/results/">Pairs</a>' in page
    assert "<td>2AFC</td>" in page
    assert "<td>1.00 (0.51-1.00) 4/4</td>" in page
    study.close()  # closing again changes nothing
    generator.refresh_from_db()
    assert len(generator.model_card[CARD_KEY]) == 1


def test_studies_closed_before_the_card_kept_figures_are_recorded_by_a_command(
    make_study, raters, login
):
    study = make_study(n_cases=1, n_images=4, format="2afc", title="Older pairs")
    rater = study.rater_set.first()
    client = login(rater.user)
    start(client, study)
    pick(client, study, rater, correct=True)
    study.close()
    generator = GeneratorModel.objects.get(pk=study.generator.pk)
    entry = generator.model_card[CARD_KEY][0]
    card = dict(generator.model_card)
    card.pop(CARD_KEY)  # as a study closed before cards kept Turing figures
    GeneratorModel.objects.filter(pk=generator.pk).update(model_card=card)
    training = make_study(n_cases=1, n_images=4, training=True, title="Practice")
    training.close()
    out = io.StringIO()
    call_command("record_turing_cards", stdout=out)
    call_command("record_turing_cards", stdout=io.StringIO())  # again: the same entry
    generator.refresh_from_db()
    assert generator.model_card[CARD_KEY] == [entry]
    assert "Closed studies recorded: 1" in out.getvalue()
