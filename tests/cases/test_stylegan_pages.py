"""StyleGAN pickles uploaded through the site: converted by a cpu-queue operation and
registered unpublished; an unconditional one is taught a finding's direction from an
educator's labels, shown as a preview, and used by jobs only once the preview is accepted."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from django.contrib.auth.models import Permission
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from cases.forms import TemplateForm
from cases.generation import worker
from cases.models import GeneratorModel, GeneratorSample, Operation, TaughtDirection
from genworker.loading import load_model
from genworker.stylegan.direction_fit import SAMPLE_SEEDS
from genworker.stylegan.directions import sample_ws
from tests.factories import CaseTemplateFactory, TemplateVersionFactory, UserFactory
from tests.stylegan_pickles import needs_pickles, pickle_path

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def registrar(db):
    """A user who may register generators (an admin's permission; no role holds it)."""
    user = UserFactory(role="educator")
    user.user_permissions.add(Permission.objects.get(codename="add_generatormodel"))
    return user


def form(name: str, network: bytes, **fields) -> dict:
    return {
        "network": SimpleUploadedFile(f"{name}.pkl", network),
        "name": name,
        "title": name.replace("-", " ").capitalize(),
        "modality": "MR",
        "findings": "normal, glioma, meningioma",
        "licence": "CC BY 4.0",
        "citation": "Someone et al., 2024",
        "pixel_spacing_mm": "0.9",
        **fields,
    }


def upload(web, data, commit):
    with commit(execute=True):
        return web.post(reverse("generator-import"), data)


@needs_pickles
def test_an_uploaded_pickle_is_converted_in_the_background_and_registered_unpublished(
    login, registrar, task_queue, django_capture_on_commit_callbacks
):
    web = login(registrar)
    network = pickle_path("stylegan2-ada-cond-gray32").read_bytes()
    reply = upload(web, form("brain-sg2", network), django_capture_on_commit_callbacks)
    operation = Operation.objects.get()
    assert reply.status_code == 302
    assert reply["Location"] == f"/operations/{operation.pk}/"
    assert not GeneratorModel.objects.exists()  # nothing converted inside the request
    sent = [("cases.tasks.import_stylegan", {"operation_pk": operation.pk}, "cpu")]
    assert task_queue.sent == sent
    assert "Queued" in web.get(reply["Location"]).content.decode()

    task_queue.run()
    operation.refresh_from_db()
    assert (operation.status, operation.error) == ("succeeded", "")
    generator = GeneratorModel.objects.get()
    assert (generator.name, generator.title) == ("brain-sg2", "Brain sg2")
    assert not generator.is_active
    assert generator.findings == ["glioma", "meningioma"]
    card = generator.model_card
    assert (card["licence"], card["citation"]) == ("CC BY 4.0", "Someone et al., 2024")
    assert card["pixel_spacing_mm"] == 0.9
    assert card["provenance"]["file"] == "brain-sg2.pkl"
    assert not generator.needs_taught_directions
    assert not generator.samples.exists()
    assert not default_storage.exists(operation.params["upload"])
    page = web.get(reply["Location"]).content.decode()
    assert "not published yet" in page
    assert f'href="/generators/{generator.pk}/"' in page

    # Unpublished, it is offered to no template; published, it is.
    assert generator not in TemplateForm().fields["generator"].queryset
    detail = web.get(generator.get_absolute_url()).content.decode()
    assert "offered to no template yet" in detail
    assert web.post(reverse("generator-publish", args=[generator.pk])).status_code == 302
    assert generator in TemplateForm().fields["generator"].queryset


def _planted(target) -> bytes:
    class Runs:
        def __reduce__(self):
            return os.system, (f"touch {target}",)

    return pickle.dumps({"G_ema": Runs()}, protocol=4)


def test_a_refused_pickle_fails_the_operation_with_the_unpicklers_message(
    login, registrar, task_queue, django_capture_on_commit_callbacks, tmp_path
):
    target = tmp_path / "written-by-the-pickle"
    web = login(registrar)
    upload(web, form("planted", _planted(target)), django_capture_on_commit_callbacks)
    task_queue.run()
    operation = Operation.objects.get()
    assert operation.status == "failed"
    assert operation.error.startswith("RefusedGlobal: ")
    assert "posix.system" in operation.error
    assert not target.exists()
    assert not GeneratorModel.objects.exists()
    assert not default_storage.exists(operation.params["upload"])
    assert "posix.system" in web.get(operation.get_absolute_url()).content.decode()


def test_the_upload_page_is_for_those_who_may_register_generators(
    login, educator, registrar, client
):
    assert login(educator).get(reverse("generator-import")).status_code == 403
    client.logout()
    web = login(registrar)
    assert web.get(reverse("generator-import")).status_code == 200
    GeneratorModel.objects.create(
        name="taken",
        title="Taken",
        sha256="0" * 64,
        architecture="x",
        modality="MR",
        resolution=32,
        conditions_schema={},
        model_card={},
    )
    reply = web.post(reverse("generator-import"), form("taken", b"x", findings="glioma, glioma"))
    assert reply.status_code == 400
    page = reply.content.decode()
    assert "a generator is already named taken" in page
    assert "each finding once" in page
    assert not Operation.objects.exists()


@needs_pickles
def test_a_conversion_failing_part_way_registers_nothing_and_keeps_no_file(
    login, registrar, task_queue, django_capture_on_commit_callbacks, monkeypatch
):
    stored = []
    real_add = GeneratorSample.add

    def third_fails(generator, seed, png):
        if len(stored) == 2:
            raise OSError("the storage is full")
        sample = real_add(generator, seed, png)
        stored.extend([sample.image.name, generator.checkpoint.name])
        return sample

    monkeypatch.setattr(GeneratorSample, "add", third_fails)
    network = pickle_path("stylegan2-ada-uncond-rgb32").read_bytes()
    web = login(registrar)
    data = form("uncond", network, findings="nodule", modality="DX")
    upload(web, data, django_capture_on_commit_callbacks)
    task_queue.run()
    operation = Operation.objects.get()
    assert (operation.status, operation.error) == ("failed", "OSError: the storage is full")
    assert not GeneratorModel.objects.exists()
    assert not GeneratorSample.objects.exists()
    assert stored
    assert not any(default_storage.exists(name) for name in stored)


@needs_pickles
def test_an_unconditional_model_is_taught_a_direction_before_its_cases_are_made(
    login, registrar, educator, client, task_queue, django_capture_on_commit_callbacks
):
    network = pickle_path("stylegan2-ada-uncond-rgb32").read_bytes()
    admin = login(registrar)
    data = form("chest-uncond", network, findings="nodule", modality="DX")
    upload(admin, data, django_capture_on_commit_callbacks)
    task_queue.run()
    generator = GeneratorModel.objects.get()
    assert generator.needs_taught_directions
    assert generator.findings == ["nodule"]
    assert sorted(generator.samples.values_list("seed", flat=True)) == list(SAMPLE_SEEDS)
    # Unconditional and untaught: it may not be published, and its jobs are refused.
    refused = admin.post(reverse("generator-publish", args=[generator.pk]))
    assert refused.status_code == 400
    assert "teach it a direction" in refused.content.decode()
    template = CaseTemplateFactory(created_by=educator)
    TemplateVersionFactory(
        template=template,
        generator=generator,
        finding="nodule",
        progression={
            "timepoints": 3,
            "severity_from": 0.0,
            "severity_to": 1.0,
            "interval_days": 60,
            "method": "direction",
        },
    )
    client.logout()
    web = login(educator)
    launch = web.post(reverse("job-launch", args=[template.pk]), {"n_cases": 1, "seed": 5})
    assert launch.status_code == 400
    assert "has no direction for nodule yet" in launch.content.decode()
    assert not template.current.jobs.exists()

    # The educator labels the samples by a known linear function of w.
    teach = reverse("generator-directions", args=[generator.pk])
    page = web.get(teach, {"finding": "nodule"}).content.decode()
    assert page.count('class="sample"') == len(SAMPLE_SEEDS)
    assert f"/generators/{generator.pk}/samples/0.png" in page
    sample = web.get(f"/generators/{generator.pk}/samples/0.png")
    assert sample["Content-Type"] == "image/png"
    model = load_model(default_storage.path(generator.checkpoint.name))
    ws = sample_ws(model, SAMPLE_SEEDS)
    u = np.random.default_rng(11).standard_normal(ws.shape[1])
    scores = ws @ u
    shows = scores > np.median(scores)
    too_few = {"finding": "nodule", "action": "fit", "label-0": "shows", "label-1": "does-not"}
    reply = web.post(teach, too_few)
    assert reply.status_code == 400
    assert "Label at least 5 samples that show the finding" in reply.content.decode()
    labels = {
        f"label-{seed}": "shows" if yes else "does-not"
        for seed, yes in zip(SAMPLE_SEEDS, shows, strict=True)
    }
    with django_capture_on_commit_callbacks(execute=True):
        reply = web.post(teach, {"finding": "nodule", "action": "fit", **labels})
    operation = Operation.objects.get(task="cases.tasks.fit_taught_direction")
    assert reply["Location"] == operation.get_absolute_url()
    task_queue.run()
    operation.refresh_from_db()
    assert (operation.status, operation.error) == ("succeeded", "")
    direction = TaughtDirection.objects.get(generator=generator, finding="nodule")
    assert (direction.positives, direction.negatives) == (24, 24)
    assert direction.approved_at is None
    assert np.asarray(direction.vector) @ u > 0  # it points the way the labels rise

    # The preview shows before the direction may be used; jobs wait until it is accepted.
    page = web.get(teach, {"finding": "nodule"}).content.decode()
    assert f"/generators/{generator.pk}/directions/{direction.pk}/preview.png" in page
    assert "Use this direction for nodule" in page
    preview = web.get(f"/generators/{generator.pk}/directions/{direction.pk}/preview.png")
    assert preview["Content-Type"] == "image/png"
    assert web.post(reverse("job-launch", args=[template.pk]), {"n_cases": 1}).status_code == 400
    web.post(teach, {"finding": "nodule", "action": "approve"})
    direction.refresh_from_db()
    assert direction.approved_at is not None

    # Now the job runs, and its series walks w along the taught direction.
    with django_capture_on_commit_callbacks(execute=False):
        launch = web.post(reverse("job-launch", args=[template.pk]), {"n_cases": 1, "seed": 5})
    assert launch.status_code == 302
    job = template.current.jobs.get()
    worker.run_generation_job(job_pk=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error, job.done) == ("succeeded", "", 1)
    loaded = worker.load_generator_for(generator, "cpu")
    np.testing.assert_allclose(loaded.directions["nodule"], direction.vector, rtol=1e-6)
    assert model.directions == {}
    client.logout()
    published = login(registrar).post(reverse("generator-publish", args=[generator.pk]))
    assert published.status_code == 302


@needs_pickles
def test_a_model_registered_from_the_command_line_draws_its_samples_from_the_page(
    login, educator, task_queue, django_capture_on_commit_callbacks, tmp_path
):
    from genworker.stylegan.convert import CardFields, import_network_pickle

    checkpoint = tmp_path / "uncond.pt"
    import_network_pickle(pickle_path("stylegan2-ada-uncond-rgb32"), checkpoint, CardFields("DX"))
    generator = GeneratorModel.register(checkpoint, name="uncond", title="Uncond")
    assert generator.findings == []
    web = login(educator)
    teach = reverse("generator-directions", args=[generator.pk])
    assert "Draw the samples" in web.get(teach, {"finding": "effusion"}).content.decode()
    bad = web.get(teach, {"finding": "Effusion!"})
    assert bad.status_code == 400
    assert "is not a finding" in bad.content.decode()
    not_fitted = web.post(teach, {"finding": "effusion", "action": "approve"})
    assert not_fitted.status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        reply = web.post(teach, {"action": "draw"})
    operation = Operation.objects.get()
    assert reply["Location"] == operation.get_absolute_url()
    task_queue.run()
    operation.refresh_from_db()
    assert (operation.status, operation.error) == ("succeeded", "")
    assert generator.samples.count() == len(SAMPLE_SEEDS)
    page = web.get(teach, {"finding": "effusion"}).content.decode()
    assert page.count('class="sample"') == len(SAMPLE_SEEDS)
    # Accepting a fit makes its finding one the generator makes.
    TaughtDirection.objects.create(
        generator=generator, finding="effusion", vector=[0.1] * 32, fitted_at=timezone.now()
    )
    web.post(teach, {"finding": "effusion", "action": "approve"})
    generator.refresh_from_db()
    assert generator.findings == ["effusion"]
    assert generator.why_it_cannot_make("effusion") == ""
    assert "has no direction for nodule" in generator.why_it_cannot_make("nodule")
    # A conditional generator is taught nothing here.
    conditional = GeneratorModel.objects.create(
        name="cond",
        title="Cond",
        sha256="1" * 64,
        architecture="stylegan2 (imported)",
        modality="MR",
        resolution=32,
        conditions_schema={"findings": ["glioma"]},
        model_card={"classes": ["normal", "glioma"]},
    )
    assert web.get(reverse("generator-directions", args=[conditional.pk])).status_code == 404
