"""Generator speed: images per second by batch size and device, and one progression series.

Measures every shipped pixel-space generator (``genworker/models/*.pt``, or the checkpoints named on
the command line) and the *same-config* model, built to compare Gantry's generator with
NVIDIA's StyleGAN2-ADA generator: z 512, w 512, 4 findings, 1 image channel, 2 mapping
layers, channel_base 16384, channel_max 512 (``GeneratorConfig``'s defaults), at 128² and
256², with random weights (speed does not depend on training).
Gantry's condition vector is the 4-way one-hot plus severity, age and sex (7 values);
NVIDIA's would be the one-hot alone, a difference of three inputs to one layer.

1. Images/s at each batch size on the CPU and, when CUDA is available, in fp32 and bf16
   (autocast), timed through ``generator.sample`` (mapping, synthesis, clamp; z drawn
   from the seed with numpy), with the ratio to batch 1 on the same device and precision.
   A batch whose estimated time exceeds ``--budget`` seconds is skipped and says so.
   With ``--compile`` (or ``--compile bf16``: that precision only), the same again with the
   synthesis network compiled (``genworker.compiled``: torch.compile, CUDA graphs on a
   GPU), each batch size compiled before it is timed; every row other than eager fp32
   notes how far its images are from eager fp32's.
2. One 10-timepoint progression series (same-config 128² and each shipped model at its
   resolution), generator only (``sampling.progression_series``) and end to end through
   DICOM (``pipeline.generate_case``: patient, series, DICOM image and SEG objects as
   bytes).

    python bench/generator_speed.py            # everything; 256² at batch 256 takes long
    python bench/generator_speed.py --quick    # about a minute on 2 CPU cores
    python bench/generator_speed.py --quick --compile --no-series   # + compiled rows
    python bench/generator_speed.py --devices cuda --no-shipped --compile bf16 --no-series \
        --batches 1,64,256        # the reference's table on a GPU (bench/gpu_session.sh)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genworker.checkpoint import (  # noqa: E402
    LoadedGenerator,
    card_path,
    load_generator,
    shipped_generators,
)
from genworker.compiled import CompiledSynthesis  # noqa: E402
from genworker.memory import is_tuned  # noqa: E402
from genworker.networks import GeneratorConfig, build_generator, z_from_seed  # noqa: E402
from genworker.patients import PatientRecipe  # noqa: E402
from genworker.pipeline import CaseRequest, generate_case  # noqa: E402
from genworker.sampling import progression_series  # noqa: E402

SAME_CONFIG_FINDINGS = ("normal", "glioma", "nodule", "effusion")
SERIES_TIMEPOINTS = 10
SERIES_TARGET_S = 10.0  # the target: one series end to end on 2 CPU cores
# The reference: NVIDIA's StyleGAN2-ADA generator at this config on an H100, with its
# compiled CUDA ops: batch-1 latency in ms, and its best batch-256 figure (its fp16 mode).
REFERENCE_BATCH_ONE_MS = {128: 8.96, 256: 12.2}
REFERENCE_BEST_IMG_S = {128: 2550.0, 256: 1579.0}


@dataclass
class Subject:
    name: str
    loaded: LoadedGenerator
    shipped: bool

    @property
    def resolution(self) -> int:
        return self.loaded.generator.config.resolution


@dataclass
class Measurement:
    subject: str
    resolution: int
    device: str
    precision: str
    batch: int
    seconds: float | None  # median wall seconds per batch; None when skipped
    cpu_seconds: float | None = None  # median CPU seconds of this process (all threads)
    note: str = ""


def same_config(resolution: int) -> Subject:
    torch.manual_seed(0)
    config = GeneratorConfig(resolution=resolution, findings=SAME_CONFIG_FINDINGS)
    generator = build_generator(config).eval().requires_grad_(False)
    card = {"name": f"same-config-{resolution}", "architecture": config.architecture}
    loaded = LoadedGenerator(generator, card, directions={}, sha256="0" * 64)
    return Subject(f"same-config {resolution}²", loaded, shipped=False)


def shipped(paths: list[Path]) -> list[Subject]:
    return [Subject(path.stem, load_generator(path), shipped=True) for path in paths]


def devices(names: list[str], compiled: str | None) -> list[tuple[str, str]]:
    """(device, precision) pairs to measure: fp32 on each device, bf16 on CUDA, and the
    ``compiled`` precisions ("all", "fp32" or "bf16") again with torch.compile's synthesis."""
    pairs = [(device, "fp32") for device in names]
    pairs += [(device, "bf16") for device in names if device == "cuda"]
    if compiled:
        pairs += [
            (device, f"{precision} compiled")
            for device, precision in pairs
            if compiled in ("all", precision)
        ]
    return pairs


def timed(
    call: Callable[[], object], *, repeats: int, budget: float, sync: Callable[[], None]
) -> tuple[float, float]:
    """Median wall and CPU seconds of ``call`` over up to ``repeats`` runs (at least one),
    stopping once ``budget`` seconds are spent. CPU seconds count every thread of this
    process: on a machine shared with other work they stay honest where wall time does not."""
    wall: list[float] = []
    cpu: list[float] = []
    deadline = time.perf_counter() + budget
    while len(wall) < repeats and (not wall or time.perf_counter() < deadline):
        started, cpu_started = time.perf_counter(), time.process_time()
        call()
        sync()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return statistics.median(wall), statistics.median(cpu)


def synchronizer(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else _none


def precision_context(device: str, precision: str):
    if precision.startswith("bf16"):
        return torch.autocast(device, dtype=torch.bfloat16)
    return nullcontext()


def sampler(generator, precision: str) -> Callable[[np.ndarray, int], torch.Tensor]:
    """``generator.sample`` (mapping, then synthesis), with the synthesis compiled
    (``genworker.compiled``, padded batch shapes) for the "compiled" precisions."""
    if "compiled" not in precision:
        return generator.sample
    synthesis = CompiledSynthesis(generator)

    def sample(cond: np.ndarray, seed: int) -> torch.Tensor:
        cond = torch.as_tensor(cond, dtype=torch.float32, device=generator.device)
        z = torch.from_numpy(z_from_seed(seed, len(cond), generator.z_dim))
        return synthesis(generator.mapping(z.to(generator.device), cond))

    return sample


def throughput(subject: Subject, device: str, precision: str, args) -> Iterator[Measurement]:
    """Images/s at each batch size, smallest first, each row as soon as it is measured;
    skips batches predicted over budget. The first batch's images are also compared with
    eager fp32's (max |difference|, on the generator's [-1, 1] scale)."""
    generator = subject.loaded.generator.to(device)
    schema, sync = generator.schema, synchronizer(device)
    rng = np.random.default_rng(0)
    per_image: float | None = None
    sample = sampler(generator, precision)
    with torch.inference_mode():
        for batch in args.batches:
            row = Measurement(subject.name, subject.resolution, device, precision, batch, None)
            if per_image is not None and per_image * batch > args.budget:
                row.note = f"skipped: about {per_image * batch:.0f} s per batch > --budget"
                yield row
                continue
            cond = schema.encode(
                rng.integers(0, len(schema.findings), batch),
                rng.uniform(0, 1, batch),
                rng.uniform(20, 80, batch),
                rng.integers(0, 2, batch),
            )
            with precision_context(device, precision):
                images = sample(cond, seed=1)  # warm-up; compiles this shape
            if not per_image and precision != "fp32":
                eager = generator.sample(cond, seed=1)
                row.note = f"max |diff| vs eager fp32 {(images.float() - eager).abs().max():.1e}"
            with precision_context(device, precision):
                row.seconds, row.cpu_seconds = timed(
                    lambda cond=cond: sample(cond, seed=1),
                    repeats=args.repeats,
                    budget=args.budget,
                    sync=sync,
                )
            per_image = row.seconds / batch
            yield row
    generator.to("cpu")


def series_request(finding: str, modality: str) -> CaseRequest:
    recipe = PatientRecipe(timepoints=SERIES_TIMEPOINTS, severity_from=0.1, severity_to=0.9)
    return CaseRequest(
        job_uid="bench-generator-speed",
        job_seed=2026,
        case_index=0,
        title="Speed benchmark series",
        finding=finding,
        modality=modality,
        truncation=0.7,
        method="condition",
        recipe=recipe,
        start_date=date(2026, 1, 5),
    )


def series_times(subject: Subject, repeats: int) -> dict[str, float]:
    """Median seconds for one 10-timepoint series: generator only, and end to end."""
    loaded = subject.loaded
    modality = loaded.card.get("modality", "MR")
    finding = loaded.generator.schema.findings[-1]  # a finding with a severity course
    request = series_request(finding, modality)
    z = z_from_seed(7, 1, loaded.generator.z_dim)[0]
    severities = np.linspace(0.1, 0.9, SERIES_TIMEPOINTS)

    def generator_only():
        progression_series(
            loaded, z=z, finding=finding, severities=severities, age=50.0, sex="F",
            truncation=0.7,
        )  # fmt: skip

    cases = []

    def end_to_end():
        cases.append(generate_case(loaded, request, software_version="bench"))

    # The throughput runs have warmed this model up on the CPU already.
    with torch.inference_mode():
        generator_s, generator_cpu = timed(generator_only, repeats=repeats, budget=60, sync=_none)
        total_s, total_cpu = timed(end_to_end, repeats=repeats, budget=60, sync=_none)
    return {
        "generator": generator_s,
        "generator_cpu": generator_cpu,
        "end_to_end": total_s,
        "end_to_end_cpu": total_cpu,
        "dicom": statistics.median(case.timings["dicom"] for case in cases),
        "seg": cases[0].timepoints[0].seg_bytes is not None,
    }


def _none() -> None:
    pass


def print_header() -> None:
    print(
        f"{'generator':<18}{'res':>5} {'device':<7}{'precision':<14}{'batch':>6}"
        f"{'img/s':>9}{'ms/img':>9}{'CPU ms/img':>11}{'x batch 1':>10}{'x fp32':>7}  note"
    )


def print_row(r: Measurement, earlier: list[Measurement]) -> None:
    """One line, printed as soon as it is measured (a run cut short keeps its rows), with
    ratios against batch 1 of the same precision and fp32 at the same batch, both measured
    earlier in this run."""
    line = f"{r.subject:<18}{r.resolution:>5} {r.device:<7}{r.precision:<14}{r.batch:>6}"
    if r.seconds is None:
        print(f"{line}{'-':>9}{'-':>9}{'-':>11}{'-':>10}{'-':>7}  {r.note}")
        return
    measured = {(e.subject, e.device, e.precision, e.batch): e for e in earlier}
    one = measured.get((r.subject, r.device, r.precision, 1))
    fp32 = measured.get((r.subject, r.device, "fp32", r.batch)) if r.precision != "fp32" else None
    print(
        f"{line}{r.batch / r.seconds:>9.2f}{1000 * r.seconds / r.batch:>9.2f}"
        f"{1000 * r.cpu_seconds / r.batch:>11.1f}{_ratio(one, r, per_image=True):>10}"
        f"{_ratio(fp32, r, per_image=False):>7}  {r.note}"
    )


def print_against_reference(rows: list[Measurement]) -> None:
    """The same-config rows on CUDA against the reference figures (taken on an H100,
    not in this run): the fastest batch-256 row against its best batch-256 figure (target
    at least twice), the quickest batch-1 row against its batch-1 latency (at most half)."""
    for resolution, reference_ms in REFERENCE_BATCH_ONE_MS.items():
        ours = [r for r in rows if (r.subject, r.device) == (f"same-config {resolution}²", "cuda")]
        widest = [r for r in ours if r.batch == 256 and r.seconds]
        single = [r for r in ours if r.batch == 1 and r.seconds]
        if not widest or not single:
            continue
        fastest = min(widest, key=lambda r: r.seconds)
        quickest = min(single, key=lambda r: r.seconds)
        speed = 256 / fastest.seconds / REFERENCE_BEST_IMG_S[resolution]
        latency = 1000 * quickest.seconds / reference_ms
        print(
            f"same-config {resolution}²: batch 256 {256 / fastest.seconds:,.0f} img/s "
            f"({fastest.precision}) = {speed:.2f}x the reference's "
            f"{REFERENCE_BEST_IMG_S[resolution]:,.0f} (target >= 2: {_verdict(speed >= 2)});"
            f" batch 1 {1000 * quickest.seconds:.2f} ms ({quickest.precision}) = "
            f"{latency:.2f} of its {reference_ms} ms (target <= 0.5: {_verdict(latency <= 0.5)})"
        )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _ratio(baseline: Measurement | None, row: Measurement, *, per_image: bool) -> str:
    """Speed of ``row`` relative to ``baseline`` (per image when batch sizes differ)."""
    if baseline is None or not baseline.seconds:
        return "-"
    scale = row.batch / baseline.batch if per_image else 1
    return f"{baseline.seconds * scale / row.seconds:.2f}"


def print_series(name: str, times: dict) -> None:
    verdict = _verdict(times["end_to_end"] <= SERIES_TARGET_S)
    print(
        f"{name:<18} generator only {times['generator']:6.2f} s"
        f" (CPU {times['generator_cpu']:.2f} s)"
        f"   end to end {times['end_to_end']:6.2f} s (CPU {times['end_to_end_cpu']:.2f} s)"
        f"   of which DICOM {times['dicom']:.2f} s "
        f"({'image + SEG' if times['seg'] else 'image only'})"
        f"   target <= {SERIES_TARGET_S:.0f} s wall: {verdict}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="*", type=Path, help="default: genworker/models/*.pt")
    parser.add_argument("--batches", default="1,16,64,256", help="comma-separated batch sizes")
    parser.add_argument("--resolutions", default="128,256", help="same-config resolutions")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds allowed per measurement"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-series", action="store_true", help="skip the progression series")
    parser.add_argument(
        "--compile",
        nargs="?",
        const="all",
        choices=("all", "fp32", "bf16"),
        help="also torch.compile's synthesis (every precision, or the one named), each batch "
        "size compiled before it is timed",
    )
    parser.add_argument(
        "--devices",
        default="cpu,cuda" if torch.cuda.is_available() else "cpu",
        help="comma-separated: cpu, cuda (default: both where CUDA is available)",
    )
    parser.add_argument(
        "--no-shipped", action="store_true", help="only the same-config models, no checkpoints"
    )
    parser.add_argument(
        "--quick", action="store_true", help="batches 1,16; 1 repeat; 15 s budget; ~1 min"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.repeats, args.budget = "1,16", 1, 15.0
    args.batches = sorted(int(b) for b in args.batches.split(","))
    args.resolutions = [int(r) for r in args.resolutions.split(",") if r]
    args.devices = args.devices.split(",")
    if unknown := set(args.devices) - {"cpu", "cuda"}:
        parser.error(f"--devices: unknown {sorted(unknown)}; known: cpu, cuda")
    if "cuda" in args.devices and not torch.cuda.is_available():
        parser.error("--devices names cuda, but CUDA is not available")
    if args.no_shipped:
        args.checkpoints = []
    elif not args.checkpoints:
        args.checkpoints = [  # the pixel-space generators: the latent models draw otherwise
            path
            for path in shipped_generators(ROOT / "genworker" / "models")
            if json.loads(card_path(path).read_text()).get("engine") != "latent"
        ]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    reuse = "malloc keeps freed memory" if is_tuned() else "default malloc (set GLIBC_TUNABLES)"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {reuse}", end="")
    print(f", CUDA: {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA")
    if not args.checkpoints and not args.no_shipped:
        print("no genworker/models/*.pt: the same-config models stand in for shipped ones")
    subjects = shipped(args.checkpoints) + [same_config(r) for r in args.resolutions]

    rows: list[Measurement] = []
    print()
    print_header()
    for subject in subjects:
        for device, precision in devices(args.devices, args.compile):
            for row in throughput(subject, device, precision, args):
                print_row(row, rows)
                rows.append(row)
    if any(r.device == "cuda" for r in rows):
        print("\nAgainst the reference (NVIDIA's generator on an H100, not this run):")
        print_against_reference(rows)
    if args.no_series:
        return
    print(f"\nOne {SERIES_TIMEPOINTS}-timepoint progression series on the CPU (truncation 0.7):")
    for subject in subjects:
        if subject.shipped or subject.resolution == 128:
            name = f"{subject.name} {subject.resolution}²" if subject.shipped else subject.name
            print_series(name, series_times(subject, min(args.repeats, 3)))


if __name__ == "__main__":
    main()
