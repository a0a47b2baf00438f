"""The synthesis network compiled with ``torch.compile``.

On CUDA, each batch shape is captured as a CUDA graph (mode ``reduce-overhead``), which
removes the per-layer launch cost that dominates small batches; graphs need fixed shapes,
so slices are padded up to the next power of two (padding rows repeat the last w and are
dropped from the output) and a worker compiles at most log2(max_batch) + 1 of them. On the
CPU there is no launch cost to remove, and padding wasted more than the fixed shape won
(a worker's 6-image batches padded to 8 ran no faster than eager), so one graph with a
dynamic batch size serves every slice.

Outputs match eager synthesis to float rounding (``tests/genworker/test_compiled.py``,
``bench/generator_speed.py --compile``), not bit for bit: the same request reproduces the
same pixels on workers that share device and compile setting.
"""

from __future__ import annotations

import torch

from genworker.networks import ConditionalGenerator


class CompiledSynthesis:
    """Call it like ``generator.synthesis``; a shape compiles when first asked for.
    ``pad`` (default: on CUDA) pads slices to fixed shapes as described above."""

    def __init__(self, generator: ConditionalGenerator, *, pad: bool | None = None) -> None:
        self.pad = generator.device.type == "cuda" if pad is None else pad
        mode = "reduce-overhead" if generator.device.type == "cuda" else None
        self._compiled = torch.compile(generator.synthesis, dynamic=not self.pad, mode=mode)
        self.shapes: set[int] = set()  # batch sizes run so far

    def __call__(
        self,
        ws: torch.Tensor,  # [n, num_ws, w_dim]
    ) -> torch.Tensor:  # [n, img_channels, R, R]
        n = len(ws)
        size = padded_size(n) if self.pad else n
        if size > n:
            ws = torch.cat([ws, ws[-1:].expand(size - n, *ws.shape[1:])])
        self.shapes.add(size)
        return self._compiled(ws)[:n]


def padded_size(n: int) -> int:
    """The batch size a slice of ``n`` runs at when padded: the next power of two."""
    if n < 1:
        raise ValueError("a batch needs at least one image")
    return 1 << (n - 1).bit_length()
