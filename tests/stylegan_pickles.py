"""Where the tests find NVIDIA StyleGAN network pickles written by NVIDIA's own code:
beside the repository, in shared/fixtures/stylegan-pickles (see its README). Tests that need
them skip when the folder is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

PICKLES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "stylegan-pickles"
needs_pickles = pytest.mark.skipif(
    not PICKLES.is_dir(), reason=f"the StyleGAN pickle fixtures are absent ({PICKLES})"
)


def pickle_path(name: str) -> Path:
    """``name`` without its suffix, e.g. ``stylegan2-ada-cond-gray32``."""
    return PICKLES / f"{name}.pkl"
