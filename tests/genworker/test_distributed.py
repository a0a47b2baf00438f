"""Data-parallel training under torchrun, on the CPU with gloo: two ranks take the steps one
process takes with their summed batch, only rank 0 writes and logs, a run resumes on any
number of ranks, and the anatomy GAN's ranks train one network."""

import os
import socket
from dataclasses import replace

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genworker.latent import anatomy_gan
from genworker.latent.renderer import RendererConfig, RendererData, train_renderer
from genworker.latent.runs import Ranks, init_ranks
from genworker.networks import GeneratorConfig

CONFIG = RendererConfig(latent_channels=2, map_channels=2, width=8)
STEPS = 4
BATCH = 4  # the global batch: 2 per rank on two ranks


def _data() -> RendererData:
    rng = np.random.default_rng(0)
    return RendererData(
        normal=rng.standard_normal((3, 2, 8, 8)).astype(np.float32),
        target=rng.standard_normal((12, 2, 8, 8)).astype(np.float32),
        maps=rng.random((12, 2, 32, 32)).astype(np.float16),
        track=rng.integers(0, 3, 12),
    )


def _train(out_dir, *, max_steps=None, **kw) -> dict[str, torch.Tensor]:
    model, _ = train_renderer(
        _data(), CONFIG, out_dir=out_dir, steps=STEPS, max_steps=max_steps, **kw
    )
    return model.state_dict()


def _rank(rank: int, world: int, port: int, train, out_dir, max_steps) -> None:
    """One torchrun rank, as torchrun would start it (its environment)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    ranks = init_ranks()
    weights = train(out_dir, max_steps=max_steps, batch_size=BATCH // world, ranks=ranks)
    torch.save(weights, out_dir / f"weights-of-rank-{rank}.pt")
    dist.destroy_process_group()


def _two_ranks(out_dir, *, max_steps=None, train=_train) -> list[dict[str, torch.Tensor]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Forked, not spawned: a spawned rank imports torch again, which took a minute on a busy
    # 2-core machine.
    mp.start_processes(
        _rank, args=(2, port, train, out_dir, max_steps), nprocs=2, start_method="fork"
    )
    return [torch.load(out_dir / f"weights-of-rank-{r}.pt", weights_only=True) for r in (0, 1)]


def _assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-4, msg=name)


def _moved(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[name] - b[name]).abs().max()) for name in a)


def test_two_ranks_take_the_steps_of_one_process_with_their_summed_batch(
    tmp_path, capfd, one_torch_thread
):
    alone = _train(tmp_path / "alone", batch_size=BATCH)
    capfd.readouterr()
    rank_0, rank_1 = _two_ranks(tmp_path / "ranks")
    logged = capfd.readouterr().out
    _assert_same(rank_0, rank_1)
    _assert_same(rank_0, alone)
    start = _train(tmp_path / "start", batch_size=BATCH, max_steps=0)
    assert _moved(alone, start) > 1e-3  # the steps did train
    assert logged.count(f"renderer step {STEPS}/{STEPS}") == 1  # rank 0 logs, rank 1 does not
    state = torch.load(tmp_path / "ranks" / "renderer-state.pt", weights_only=True)
    assert state["step"] == STEPS
    assert state["history"]["step"] == [float(STEPS)]


def test_a_run_resumes_on_another_number_of_ranks(tmp_path, one_torch_thread):
    alone = _train(tmp_path / "alone", batch_size=BATCH)
    # Two ranks start it, one process finishes it; and the other way round.
    _two_ranks(tmp_path / "two-then-one", max_steps=STEPS // 2)
    finished_alone = _train(tmp_path / "two-then-one", batch_size=BATCH)
    _train(tmp_path / "one-then-two", batch_size=BATCH, max_steps=STEPS // 2)
    finished_on_two, _ = _two_ranks(tmp_path / "one-then-two")
    _assert_same(finished_alone, alone)
    _assert_same(finished_on_two, alone)


def test_the_pixel_space_training_refuses_to_start_under_torchrun(monkeypatch, capsys):
    from genworker.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "brain-glioma", "--runs", "/nonexistent"]) == 2
    assert "-m genworker latent train" in capsys.readouterr().err


ANATOMY = GeneratorConfig(
    resolution=8,
    findings=anatomy_gan.ANATOMY_FINDINGS,
    z_dim=8,
    w_dim=8,
    img_channels=4,
    channel_base=64,
    channel_max=8,
    mapping_layers=1,
)


def _train_anatomy(out_dir, *, max_steps=None, architecture="stylegan2", **kw):
    rng = np.random.default_rng(0)
    data = anatomy_gan.AnatomyData(
        latents=rng.standard_normal((64, 4, 8, 8)).astype(np.float32),
        age=rng.uniform(20, 80, 64).astype(np.float32),
        sex=rng.integers(0, 2, 64),
    )
    G_ema, _ = anatomy_gan.train_anatomy_gan(
        data,
        replace(ANATOMY, architecture=architecture),
        out_dir=out_dir,
        steps=STEPS,
        max_steps=max_steps,
        instance_noise=0.1,
        mode_seeking=1.0,
        sliced=1.0,
        ema_kimg=0.001,  # the EMA generator all but follows the generator
        **kw,
    )
    return G_ema.state_dict()


def _train_cgan(out_dir, **kw):
    return _train_anatomy(out_dir, architecture="cgan", **kw)


def _relative_distance(a, b, start) -> float:
    """|a - b| over |b - start|, all weights as one vector: 0 when a ends where b does."""
    names = [name for name in a if name != "mapping_network.w_avg"]  # set after training
    apart = sum(float((a[name] - b[name]).square().sum()) for name in names)
    moved = sum(float((b[name] - start[name]).square().sum()) for name in names)
    return (apart / moved) ** 0.5


def test_the_anatomy_gans_ranks_end_with_one_network_and_resume_it(tmp_path, one_torch_thread):
    """A StyleGAN2 (style mixing, path length, lazy R1, instance noise, mode seeking, the
    sliced distance): both ranks end with the same EMA generator, which follows the
    generator, whose steps depend on the discriminator's, so all three agree; and a run
    stopped and resumed on two ranks ends where the unbroken one does."""
    rank_0, rank_1 = _two_ranks(tmp_path / "ranks", train=_train_anatomy)
    _assert_same(rank_0, rank_1)
    start = _train_anatomy(tmp_path / "start", batch_size=BATCH, max_steps=0)
    assert _moved(rank_0, start) > 1e-3  # the steps did train
    _two_ranks(tmp_path / "resumed", train=_train_anatomy, max_steps=STEPS // 2)
    resumed, _ = _two_ranks(tmp_path / "resumed", train=_train_anatomy)
    _assert_same(resumed, rank_0)


def test_a_cgan_trained_on_two_ranks_ends_near_one_process_with_their_summed_batch(
    tmp_path, one_torch_thread
):
    """Near, not equal: the discriminator's minibatch standard deviation groups each rank's
    rows only, and mode seeking's shortfall is clipped per rank (a StyleGAN2 is further
    off at this batch: path length judges half of each rank's rows, not the first half of
    the global batch)."""
    rank_0, rank_1 = _two_ranks(tmp_path / "ranks", train=_train_cgan)
    _assert_same(rank_0, rank_1)
    alone = _train_cgan(tmp_path / "alone", batch_size=BATCH)
    start = _train_cgan(tmp_path / "start", batch_size=BATCH, max_steps=0)
    assert _relative_distance(rank_0, alone, start) < 0.5


def test_each_rank_augments_its_share_of_the_global_batch_as_one_process_augments_it():
    x = torch.randn(6, 4, 8, 8)
    whole = anatomy_gan.augment_grid(x, 0.5, torch.Generator().manual_seed(0))
    shares = [
        anatomy_gan.augment_grid(x[ranks.share(3)], 0.5, torch.Generator().manual_seed(0), ranks)
        for ranks in (Ranks(0, 2), Ranks(1, 2))
    ]
    assert torch.equal(torch.cat(shares), whole)
    assert not torch.equal(whole, x)
