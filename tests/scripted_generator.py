"""A small TorchScript generator (and segmenter) for tests of the generator contract.

Each image is a textured background drawn from z with a bright disk whose radius grows
with the severity column of c, so a series visibly progresses and the segmenter's mask
(the bright pixels) grows with it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from genworker.scripted import pack_scripted_generator

CARD = {
    "name": "scripted-disk",
    "z_dim": 8,
    "conditions": {
        "findings": ["normal", "nodule"],
        "continuous": {"severity": [0, 1], "age": [20, 90], "sex": [0, 1]},
    },
    "resolution": 16,
    "channels": ["DX"],
    "modality": "DX",
    "pixel_spacing_mm": 0.5,
}


class DiskGenerator(torch.nn.Module):
    def __init__(self, z_dim: int, severity_column: int, resolution: int) -> None:
        super().__init__()
        self.texture = torch.nn.Linear(z_dim, resolution * resolution)
        self.severity_column = severity_column
        self.resolution = resolution
        grid = torch.linspace(-1, 1, resolution)
        self.register_buffer("radius2", grid[None, :] ** 2 + grid[:, None] ** 2)

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        n, r = z.shape[0], self.resolution
        background = 0.2 * torch.tanh(self.texture(z)).view(n, 1, r, r) - 0.5
        severity = c[:, self.severity_column].view(n, 1, 1, 1)
        disk = (self.radius2 < (0.15 + 0.6 * severity) ** 2).float()
        return (background + 1.2 * disk).clamp(-1.0, 1.0)


class BrightSegmenter(torch.nn.Module):
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images[:, 0] > 0.3).float()


def write_scripted_generator(folder: Path, *, segmenter: bool = True, card: dict = CARD) -> Path:
    """Script the modules into ``folder`` and pack them; the packed file's path."""
    torch.manual_seed(0)
    generator_path = folder / "disk-generator.ts"
    severity_column = len(card["conditions"]["findings"])
    torch.jit.save(
        torch.jit.script(DiskGenerator(card["z_dim"], severity_column, card["resolution"])),
        generator_path,
    )
    segmenter_path = None
    if segmenter:
        segmenter_path = folder / "bright-segmenter.ts"
        torch.jit.save(torch.jit.script(BrightSegmenter()), segmenter_path)
    out = folder / ("scripted-disk.pt" if segmenter else "scripted-disk-no-masks.pt")
    pack_scripted_generator(generator_path, card, out, segmenter_path=segmenter_path)
    return out
