"""Importing NVIDIA StyleGAN2-ADA / StyleGAN3 network pickles: read as data, never run,
and Gantry's networks give the images NVIDIA's code gives."""

from __future__ import annotations

import copy
import json
import os
import pickle
import sys
from datetime import date
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from genworker.checkpoint import card_path, sha256_file
from genworker.cli import main
from genworker.loading import load_model
from genworker.patients import PatientRecipe
from genworker.pipeline import CaseRequest, generate_case
from genworker.sampling import SeriesSpec, progression_batch
from genworker.stylegan.convert import CardFields, generator_from_pickle, import_network_pickle
from genworker.stylegan.model import ImportedStyleGAN, StyleGANGenerator
from genworker.stylegan.unpickle import RefusedGlobal, read_network_pickle

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "stylegan-pickles"
needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"the StyleGAN pickle fixtures are absent ({FIXTURES})"
)
TOLERANCE = 1e-4
CLASSES = {
    "stylegan2-ada-cond-gray32": ("normal", "glioma", "meningioma"),
    "stylegan2-ada-uncond-rgb32": (),
    "stylegan3-t-cond-gray32": ("normal", "glioma"),
}


def fixture(name: str) -> Path:
    return FIXTURES / f"{name}.pkl"


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict[str, Path]:
    if not FIXTURES.is_dir():
        pytest.skip(f"the StyleGAN pickle fixtures are absent ({FIXTURES})")
    folder = tmp_path_factory.mktemp("imported")
    for name, classes in CLASSES.items():
        import_network_pickle(fixture(name), folder / f"{name}.pt", CardFields("MR", classes))
    return {name: folder / f"{name}.pt" for name in CLASSES}


@needs_fixtures
@pytest.mark.parametrize("name", sorted(CLASSES))
def test_an_imported_model_maps_and_synthesises_as_nvidias_code(converted, name, one_torch_thread):
    loaded = load_model(converted[name])
    assert isinstance(loaded, ImportedStyleGAN)
    expected = np.load(FIXTURES / f"{name}.expected.npz")
    g = loaded.generator
    z = torch.from_numpy(expected["z"])
    c = torch.from_numpy(expected["c"]).float().reshape(len(z), g.c_dim)
    np.testing.assert_allclose(g.mapping.w_avg.numpy(), expected["w_avg"], atol=TOLERANCE)
    with torch.no_grad():
        for psi, key in ((1.0, "psi10"), (0.7, "psi07")):
            ws = g.mapping(z, c, psi)
            np.testing.assert_allclose(ws.numpy(), expected[f"ws_{key}"], atol=TOLERANCE)
            images = g.synthesis(ws)
            np.testing.assert_allclose(images.numpy(), expected[f"img_{key}"], atol=TOLERANCE)


@needs_fixtures
def test_the_card_says_what_the_pickle_and_the_user_say(tmp_path, capsys):
    out = tmp_path / "glioma-sg2.pt"
    code = main(
        [
            "import-stylegan",
            str(fixture("stylegan2-ada-cond-gray32")),
            "--out",
            str(out),
            "--modality",
            "MR",
            "--findings",
            "normal,glioma,meningioma",
            "--licence",
            "CC BY 4.0",
            "--citation",
            "Doe et al. 2024",
            "--truncation",
            "0.7",
        ]
    )
    assert code == 0, capsys.readouterr().err
    card = json.loads(card_path(out).read_text())
    assert card["sha256"] == sha256_file(out)
    assert card["provenance"]["sha256"] == sha256_file(fixture("stylegan2-ada-cond-gray32"))
    assert card["architecture"] == "stylegan2 (imported)"
    assert (card["resolution"], card["channels"], card["modality"]) == (32, ["image"], "MR")
    assert card["classes"] == ["normal", "glioma", "meningioma"]
    assert card["conditions"]["findings"] == ["glioma", "meningioma"]
    assert card["training_set"] == {"resolution": 32, "use_labels": True}
    assert (card["licence"], card["citation"]) == ("CC BY 4.0", "Doe et al. 2024")
    assert card["truncation_default"] == 0.7
    assert card["masks"] is False


@needs_fixtures
def test_reading_a_pickle_imports_none_of_nvidias_code():
    read_network_pickle(fixture("stylegan3-t-cond-gray32"))
    assert not {"torch_utils", "dnnlib", "training"} & set(sys.modules)


class _Runs:
    """Pickles as a call of ``function(*args)``: what a malicious pickle plants."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def _planted_pickle(global_name: str, target: Path) -> bytes:
    """A snapshot whose weights hide a call that would write ``target``."""
    if global_name == "builtins.open":  # pickle spells open io.open: write the opcodes
        return b"(dVG_ema\ncbuiltins\nopen\n(V" + str(target).encode() + b"\nVw\ntRs."
    planted = {
        "posix.system": _Runs(os.system, f"touch {target}"),
        "builtins.exec": _Runs(exec, f"open({str(target)!r}, 'w')"),
    }[global_name]
    return pickle.dumps({"G_ema": {"state": [1.0, planted]}}, protocol=4)


@pytest.mark.parametrize("global_name", ["posix.system", "builtins.open", "builtins.exec"])
def test_a_pickle_asking_for_any_other_global_is_refused_and_nothing_runs(tmp_path, global_name):
    target = tmp_path / "written-by-the-pickle"
    path = tmp_path / "network.pkl"
    path.write_bytes(_planted_pickle(global_name, target))
    with pytest.raises(RefusedGlobal, match=global_name.replace(".", r"\.")):
        read_network_pickle(path)
    assert not target.exists()
    # The control: the ordinary unpickler would have written it.
    pickle.loads(path.read_bytes())
    assert target.exists()


def test_a_numpy_array_asking_for_memory_beyond_its_data_is_refused(tmp_path):
    from numpy._core.multiarray import _reconstruct

    path = tmp_path / "network.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Runs(_reconstruct, np.ndarray, (10**12,), b"b")}))
    with pytest.raises(RefusedGlobal, match="shape"):
        read_network_pickle(path)


def test_the_cli_names_a_refused_global_and_writes_no_checkpoint(tmp_path, capsys):
    target = tmp_path / "written-by-the-pickle"
    path = tmp_path / "network.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Runs(os.system, f"touch {target}")}, protocol=4))
    out = tmp_path / "model.pt"
    code = main(["import-stylegan", str(path), "--out", str(out), "--modality", "MR"])
    assert code == 2
    assert "posix.system" in capsys.readouterr().err
    assert not target.exists()
    assert not out.exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no network pickle at"),
        (lambda p: p.write_bytes(b"not a pickle at all"), "not a readable pickle"),
        (lambda p: p.write_bytes(pickle.dumps({"G": 1})), "holds no G_ema network"),
        (lambda p: p.write_bytes(pickle.dumps([1, 2])), "not a snapshot dict"),
    ],
)
def test_the_cli_names_what_is_wrong_with_the_file(tmp_path, capsys, make, message):
    path = tmp_path / "network.pkl"
    make(path)
    code = main(["import-stylegan", str(path), "--out", str(tmp_path / "m.pt"), "--modality", "MR"])
    assert code == 2
    assert message in capsys.readouterr().err


@needs_fixtures
@pytest.mark.parametrize(
    ("name", "findings", "message"),
    [
        ("stylegan3-t-cond-gray32", "normal", "has 2 classes: --findings needs 2"),
        ("stylegan3-t-cond-gray32", "normal,normal", "distinct names"),
        ("stylegan2-ada-uncond-rgb32", "glioma", "unconditional"),
    ],
)
def test_the_cli_names_findings_that_do_not_fit_the_classes(
    tmp_path, capsys, name, findings, message
):
    out = tmp_path / "m.pt"
    arguments = ["--out", str(out), "--modality", "MR", "--findings", findings]
    code = main(["import-stylegan", str(fixture(name)), *arguments])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@needs_fixtures
def test_a_series_walks_from_the_normal_class_toward_the_disease_class(converted):
    loaded = load_model(converted["stylegan3-t-cond-gray32"])
    g = loaded.generator
    z = np.random.default_rng(0).standard_normal(g.z_dim).astype(np.float32)
    (series,) = progression_batch(loaded, [SeriesSpec(z, "glioma", [0.0, 0.5, 1.0], 50, "F")])
    assert series.images.shape == (3, 32, 32)
    assert series.masks is None
    with torch.no_grad():
        normal = g.mapping(torch.from_numpy(z[None]), g.one_hot([0]))[0, 0].numpy()
        means = g.class_mean_w().numpy()
    np.testing.assert_allclose(series.w[0], normal, atol=1e-5)
    np.testing.assert_allclose(series.w[2] - series.w[0], means[1] - means[0], atol=1e-5)
    assert not np.allclose(series.images[0], series.images[2])


@needs_fixtures
def test_an_unconditional_model_has_no_direction_until_one_is_taught(converted):
    loaded = load_model(converted["stylegan2-ada-uncond-rgb32"])
    z = np.zeros(loaded.z_dim, np.float32)
    with pytest.raises(KeyError, match="no direction for 'glioma'"):
        progression_batch(loaded, [SeriesSpec(z, "glioma", [0.0, 1.0], 50, "F")])


@needs_fixtures
def test_an_imported_models_case_is_synthetic_dicom_without_a_mask(converted, one_torch_thread):
    loaded = load_model(converted["stylegan2-ada-cond-gray32"])
    request = CaseRequest(
        job_uid="1d2f0c8e-5b7a-4d0e-9d0a-3f1e2a4b5c6d",
        job_seed=5,
        case_index=0,
        title="Imported glioma",
        finding="meningioma",
        modality="MR",
        truncation=0.7,
        method="direction",
        recipe=PatientRecipe(timepoints=3),
        start_date=date(2024, 5, 6),
    )
    case = generate_case(loaded, request, software_version="t")
    assert len(case.timepoints) == 3
    assert all(tp.seg_bytes is None for tp in case.timepoints)
    first = pydicom.dcmread(BytesIO(case.timepoints[0].image_bytes))
    assert first.SyntheticData == "YES"


def _edited(g_ema, edit):
    g_ema = copy.deepcopy(g_ema)
    edit(g_ema)
    return generator_from_pickle(g_ema)[0]


@needs_fixtures
def test_orig_and_resnet_synthesis_and_deeper_mappings_load_and_run():
    g_ema = read_network_pickle(fixture("stylegan2-ada-cond-gray32"))["G_ema"]

    def orig(g):
        for block in g.child("synthesis").modules.values():
            block.state["architecture"] = "orig"
            if not block.state["is_last"]:
                block.state["num_torgb"] = 0
                del block.state["_modules"]["torgb"]

    def resnet(g):
        for block in g.child("synthesis").modules.values():
            block.state["architecture"] = "resnet"
            if block.state["in_channels"]:
                skip = copy.deepcopy(block.child("conv0"))
                skip.class_name = "Conv2dLayer"
                out_channels, in_channels = skip.parameters["weight"].shape[:2]
                skip.state["_parameters"] = {"weight": torch.randn(out_channels, in_channels, 1, 1)}
                skip.state["_modules"] = {}
                skip.state.update(activation="linear", down=1, padding=0, act_gain=1.0)
                skip.state["weight_gain"] = 1 / np.sqrt(in_channels)
                block.state["_modules"]["skip"] = skip

    def deeper(g):
        mapping = g.child("mapping")
        mapping.state["num_layers"] = 3
        mapping.state["_modules"]["fc2"] = copy.deepcopy(mapping.child("fc1"))

    for edit in (orig, resnet, deeper):
        generator = _edited(g_ema, edit)
        assert isinstance(generator, StyleGANGenerator)
        with torch.no_grad():
            ws = generator.mapping(torch.randn(2, 32), generator.one_hot([0, 2]))
            images = generator.synthesis(ws)
        assert images.shape == (2, 1, 32, 32)
        assert torch.isfinite(images).all()
