"""Fixtures of the engine tests: one torch thread, and a briefly trained toy generator
shared by the training, checkpoint and sampling tests (trained once per session)."""

from __future__ import annotations

import pytest
import torch

from tests.toy_training import ToyTraining, train_toy


@pytest.fixture(scope="session")
def one_torch_thread():
    """The test machine's cores are shared (two torch threads on a busy 2-core machine ran
    small models 50 times slower than one); one thread also keeps CPU results repeatable."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def toy_training(tmp_path_factory, one_torch_thread) -> ToyTraining:
    return train_toy(tmp_path_factory.mktemp("toy-training"))
