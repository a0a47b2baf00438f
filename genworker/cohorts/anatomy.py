"""Image operations shared by the cohort simulators: resampling, warps, scanner effects
(2D), and the pieces of a mask or a CT's body (any dimension).

Coordinates follow ``scipy.ndimage.map_coordinates``: a sampling grid is float32
[2, H, W] holding, for every output pixel, the (row, col) position to read in the
input. Displacements are offsets added to such a grid, in input pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def identity_grid(shape: tuple[int, int]) -> np.ndarray:
    """Sampling grid [2, H, W] that reads every pixel in place."""
    rows, cols = np.meshgrid(
        np.arange(shape[0], dtype=np.float32), np.arange(shape[1], dtype=np.float32), indexing="ij"
    )
    return np.stack([rows, cols])


def resize_grid(in_shape: tuple[int, int], out_shape: tuple[int, int]) -> np.ndarray:
    """Sampling grid [2, *out_shape] that maps pixel centres of the output onto the input."""
    axes = [
        (np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5
        for n_in, n_out in zip(in_shape, out_shape, strict=True)
    ]
    return np.stack(np.meshgrid(*axes, indexing="ij"))


def antialias(image: np.ndarray, factor: float) -> np.ndarray:
    """Low-pass ``image`` before it is sampled ``factor`` times more coarsely (no-op if < 1.2)."""
    if factor < 1.2:
        return image
    return ndimage.gaussian_filter(image, sigma=0.45 * factor, mode="nearest")


def sample(image: np.ndarray, grid: np.ndarray, *, edge: str = "constant") -> np.ndarray:
    """Bilinear read of ``image`` [H, W] at ``grid`` [2, h, w].

    Outside the image reads 0 (``edge="constant"``) or the nearest edge pixel ("nearest").
    """
    return ndimage.map_coordinates(image, grid, order=1, mode=edge, cval=0.0).astype(np.float32)


def resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of a 2D image to ``size`` (square if an int)."""
    out_shape = (size, size) if isinstance(size, int) else size
    if image.shape == out_shape:
        return image.astype(np.float32)
    factor = max(image.shape[0] / out_shape[0], image.shape[1] / out_shape[1])
    smooth = antialias(image.astype(np.float32), factor)
    return ndimage.map_coordinates(
        smooth, resize_grid(image.shape, out_shape), order=1, mode="nearest"
    ).astype(np.float32)


def affine_grid(
    out_shape: tuple[int, int],
    in_shape: tuple[int, int],
    *,
    scale: tuple[float, float] = (1.0, 1.0),
    rotation_deg: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Sampling grid [2, *out_shape] showing the input scaled, rotated and shifted.

    The input is scaled by ``scale`` (row, col) about its centre, rotated by
    ``rotation_deg`` and moved by ``shift`` (a fraction of the field of view per
    axis); the output covers the same field of view as the input at its own
    pixel count.
    """
    out_centre = (np.asarray(out_shape, np.float32) - 1) / 2
    in_centre = (np.asarray(in_shape, np.float32) - 1) / 2
    pixel_ratio = np.asarray(in_shape, np.float32) / np.asarray(out_shape, np.float32)
    rows, cols = np.meshgrid(
        np.arange(out_shape[0], dtype=np.float32) - out_centre[0],
        np.arange(out_shape[1], dtype=np.float32) - out_centre[1],
        indexing="ij",
    )
    rows = rows - shift[0] * out_shape[0]
    cols = cols - shift[1] * out_shape[1]
    angle = np.deg2rad(rotation_deg)
    cos, sin = np.cos(angle), np.sin(angle)
    # Inverse rotation (output -> input), then inverse scale.
    in_rows = (cos * rows - sin * cols) / scale[0]
    in_cols = (sin * rows + cos * cols) / scale[1]
    return np.stack(
        [in_rows * pixel_ratio[0] + in_centre[0], in_cols * pixel_ratio[1] + in_centre[1]]
    ).astype(np.float32)


def smooth_displacement(
    rng: np.random.Generator, shape: tuple[int, int], *, amplitude: float, smoothness: float
) -> np.ndarray:
    """Random smooth displacement [2, H, W]: Gaussian-filtered white noise, max |d| = amplitude.

    ``smoothness`` is the filter's sigma in pixels (the size of the deformed features).
    """
    noise = rng.standard_normal((2, *shape)).astype(np.float32)
    field = np.stack([ndimage.gaussian_filter(c, smoothness, mode="wrap") for c in noise])
    peak = float(np.sqrt((field**2).sum(0)).max())
    return field * (amplitude / max(peak, 1e-8))


def largest_piece(mask: np.ndarray) -> np.ndarray:
    """The largest connected piece of a bool mask (the mask itself when it is one piece)."""
    labels, pieces = ndimage.label(mask)
    if pieces < 2:
        return mask
    return labels == 1 + int(np.argmax(ndimage.sum(mask, labels, range(1, pieces + 1))))


def ct_body(hu: np.ndarray) -> np.ndarray:
    """A CT's body: its largest connected non-air piece (drops the table), with the holes of
    every axial slice filled."""
    return np.stack([ndimage.binary_fill_holes(axial) for axial in largest_piece(hu > -400)])


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a 2D image, zero outside it. Wide kernels (sigma > 6 px) go through
    the FFT on a zero-padded copy, whose cost does not grow with sigma; the result matches
    ``ndimage.gaussian_filter(mode="constant")`` to about 1e-3 of the image's range."""
    image = np.asarray(image, dtype=np.float32)
    if sigma <= 6:
        return ndimage.gaussian_filter(image, sigma, mode="constant")
    pad = int(np.ceil(3 * sigma))
    padded = np.pad(image, pad)
    spectrum = ndimage.fourier_gaussian(np.fft.rfft2(padded), sigma, n=padded.shape[1])
    smooth = np.fft.irfft2(spectrum, s=padded.shape)
    return smooth[pad:-pad, pad:-pad].astype(np.float32)


def expansion_displacement(density: np.ndarray, *, sigma: float, max_shift: float) -> np.ndarray:
    """Displacement [2, H, W] that makes regions of high ``density`` swell.

    Sampling at ``grid + d`` with ``d`` along the gradient of the smoothed density
    reads each pixel from closer to the dense region, so the dense region grows
    and its surroundings are pushed outwards. Used for atrophy (density = CSF:
    ventricles and sulci widen) and for tumour mass effect (density = tumour).
    """
    smooth = blur(density, sigma)
    gradient = np.stack(np.gradient(smooth))
    peak = float(np.sqrt((gradient**2).sum(0)).max())
    return gradient * (max_shift / max(peak, 1e-8))


def bias_field(rng: np.random.Generator, shape: tuple[int, int], *, strength: float) -> np.ndarray:
    """Smooth multiplicative field [H, W] ``exp(b)``, b a random quadratic with |b| <= strength."""
    rows, cols = np.meshgrid(
        np.linspace(-1, 1, shape[0], dtype=np.float32),
        np.linspace(-1, 1, shape[1], dtype=np.float32),
        indexing="ij",
    )
    terms = np.stack([rows, cols, rows * cols, rows**2 - 0.5, cols**2 - 0.5])
    b = np.tensordot(rng.uniform(-1, 1, len(terms)).astype(np.float32), terms, axes=1)
    b *= strength / max(float(np.abs(b).max()), 1e-8)
    return np.exp(b).astype(np.float32)


def rician_noise(rng: np.random.Generator, image: np.ndarray, sigma: float) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise (MR magnitude images are Rician)."""
    real = image + rng.normal(0, sigma, image.shape)
    imaginary = rng.normal(0, sigma, image.shape)
    return np.sqrt(real**2 + imaginary**2).astype(np.float32)
