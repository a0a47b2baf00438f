"""Generators and discriminators: shapes, ranges, determinism, truncation, conditioning."""

import dataclasses

import numpy as np
import pytest
import torch

from genworker.networks import (
    TRUNCATION_SAMPLES,
    TRUNCATION_SEED,
    GeneratorConfig,
    build_discriminator,
    build_generator,
    modulated_conv2d,
    z_from_seed,
)

torch.set_num_threads(1)

ARCHITECTURES = ["stylegan2", "cgan"]


def tiny_config(architecture: str, **changes) -> GeneratorConfig:
    config = GeneratorConfig(
        architecture=architecture,
        resolution=16,
        findings=("normal", "glioma"),
        z_dim=16,
        w_dim=16,
        img_channels=2,
        channel_base=128,
        channel_max=32,
    )
    return dataclasses.replace(config, **changes)


def conditions(config: GeneratorConfig, severities=(0.0, 0.3, 0.6, 1.0)) -> torch.Tensor:
    return torch.from_numpy(config.schema.encode("glioma", np.asarray(severities), 60.0, "M"))


@pytest.fixture(params=ARCHITECTURES)
def generator(request):
    torch.manual_seed(0)
    return build_generator(tiny_config(request.param)).eval()


def test_z_from_seed_is_numpy_normal_per_seed():
    z = z_from_seed(7, 3, 16)
    assert z.shape == (3, 16)
    assert z.dtype == np.float32
    np.testing.assert_array_equal(z, z_from_seed(7, 3, 16))
    assert not np.allclose(z, z_from_seed(8, 3, 16))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("img_channels", [1, 2])
def test_sample_shape_and_range(architecture, img_channels):
    config = tiny_config(architecture, img_channels=img_channels)
    generator = build_generator(config).eval()
    images = generator.sample(conditions(config), seed=1, truncation=0.7)
    assert images.shape == (4, img_channels, 16, 16)
    assert images.min() >= -1
    assert images.max() <= 1
    assert images.std() > 0


def test_num_ws_follow_the_architecture():
    # StyleGAN2 at 16²: 4x4 block has 1 conv, 8x8 and 16x16 two each, plus the last toRGB.
    assert build_generator(tiny_config("stylegan2")).num_ws == 6
    assert build_generator(tiny_config("stylegan2", resolution=64)).num_ws == 10
    assert build_generator(tiny_config("cgan")).num_ws == 1


def test_sample_is_deterministic_per_seed(generator):
    cond = conditions(generator.config)
    first = generator.sample(cond, seed=3)
    torch.manual_seed(123)  # the global torch RNG must not matter
    torch.testing.assert_close(generator.sample(cond, seed=3), first, rtol=0, atol=0)
    assert (generator.sample(cond, seed=4) - first).abs().mean() > 1e-3


def test_sample_is_mapping_then_synthesis_of_the_seeds_z(generator):
    cond = conditions(generator.config)
    z = torch.from_numpy(z_from_seed(5, len(cond), generator.z_dim))
    w = generator.mapping(z, cond, truncation=0.5)
    assert w.shape == (4, generator.num_ws, generator.w_dim)
    by_parts = generator.synthesis(w)
    torch.testing.assert_close(generator.sample(cond, seed=5, truncation=0.5), by_parts)


def test_condition_changes_the_image(generator):
    config = generator.config
    normal = torch.from_numpy(config.schema.encode("normal", 0.0, 60.0, "M"))
    glioma = torch.from_numpy(config.schema.encode("glioma", 1.0, 60.0, "M"))
    assert (generator.sample(normal, seed=0) - generator.sample(glioma, seed=0)).abs().mean() > 1e-3


def test_truncation_zero_gives_the_per_condition_mean_w(generator):
    cond = conditions(generator.config)
    z = torch.from_numpy(z_from_seed(9, len(cond), generator.z_dim))
    w0 = generator.mapping(z, cond, truncation=0.0)
    # Independently: the mean over the fixed truncation latents, one condition at a time.
    fixed_z = torch.from_numpy(z_from_seed(TRUNCATION_SEED, TRUNCATION_SAMPLES, generator.z_dim))
    for row in range(len(cond)):
        repeated = cond[row : row + 1].expand(TRUNCATION_SAMPLES, -1)
        expected = generator.mapping_network(fixed_z, repeated).mean(dim=0)
        for layer in range(generator.num_ws):
            torch.testing.assert_close(w0[row, layer], expected, rtol=1e-5, atol=1e-5)
    assert (w0[0, 0] - w0[-1, 0]).abs().max() > 1e-4  # severity moves the mean


def test_truncation_interpolates_toward_the_mean(generator):
    cond = conditions(generator.config)
    z = torch.from_numpy(z_from_seed(9, len(cond), generator.z_dim))
    full, mean = generator.mapping(z, cond), generator.mapping(z, cond, truncation=0.0)
    half = generator.mapping(z, cond, truncation=0.5)
    torch.testing.assert_close(half, (full + mean) / 2, rtol=1e-5, atol=1e-5)


def test_random_noise_varies_constant_noise_does_not():
    torch.manual_seed(0)
    generator = build_generator(tiny_config("stylegan2")).eval()
    for module in generator.modules():
        if hasattr(module, "noise_strength"):
            module.noise_strength.data.fill_(0.5)
    cond = conditions(generator.config)
    w = generator.mapping(torch.from_numpy(z_from_seed(0, 4, 16)), cond)
    torch.testing.assert_close(generator.synthesis(w), generator.synthesis(w), rtol=0, atol=0)
    first = generator.synthesis(w, noise_mode="random")
    assert (first - generator.synthesis(w, noise_mode="random")).abs().max() > 1e-4


def test_modulated_conv_equals_per_sample_weight_form():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 8, 8)
    weight = torch.randn(7, 5, 3, 3)
    styles = torch.randn(3, 5)
    for demodulate in (True, False):
        expected = []
        for i in range(3):
            w = weight * styles[i][None, :, None, None]
            if demodulate:
                w = w / w.square().sum(dim=[1, 2, 3], keepdim=True).sqrt()
            expected.append(torch.nn.functional.conv2d(x[i : i + 1], w, padding=1))
        got = modulated_conv2d(x, weight, styles, demodulate=demodulate)
        torch.testing.assert_close(got, torch.cat(expected), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_discriminator_gives_one_logit_per_image_and_uses_the_condition(architecture):
    torch.manual_seed(0)
    config = tiny_config(architecture)
    discriminator = build_discriminator(config)
    images = torch.rand(4, 2, 16, 16) * 2 - 1
    logits = discriminator(images, conditions(config))
    assert logits.shape == (4,)
    other = conditions(config, severities=(1.0, 1.0, 0.0, 0.0))
    assert (discriminator(images, other) - logits).abs().max() > 1e-4
    with pytest.raises(AssertionError, match="expected shape"):
        discriminator(images[:, :1], conditions(config))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_discriminator_sees_how_alike_the_images_of_a_batch_are(architecture):
    """The minibatch-std channel: an image's logit depends on the others in its group, so
    the discriminator can tell a batch of one repeated image from a varied one."""
    torch.manual_seed(0)
    config = tiny_config(architecture)
    discriminator = build_discriminator(config)
    images = torch.rand(4, 2, 16, 16) * 2 - 1
    cond = conditions(config)
    varied = discriminator(images, cond)
    repeated = discriminator(images[:1].expand(4, -1, -1, -1), cond[:1].expand(4, -1))
    assert (varied[0] - repeated[0]).abs() > 1e-4


def test_generator_rejects_wrong_shapes(generator):
    with pytest.raises(AssertionError, match="expected shape"):
        generator.mapping(torch.zeros(2, 5), conditions(generator.config)[:2])
    with pytest.raises(AssertionError, match="expected shape"):
        generator.synthesis(torch.zeros(2, generator.num_ws + 1, generator.w_dim))


def test_config_round_trips_and_validates():
    config = tiny_config("cgan")
    assert GeneratorConfig.from_dict(config.to_dict()) == config
    assert config.schema.dim == 5
    with pytest.raises(ValueError, match="architecture"):
        tiny_config("vae")
    with pytest.raises(ValueError, match="power of two"):
        tiny_config("stylegan2", resolution=48)
    with pytest.raises(ValueError, match="img_channels"):
        tiny_config("stylegan2", img_channels=0)


def test_backward_reaches_every_generator_parameter(generator):
    generator.train()
    cond = conditions(generator.config)
    z = torch.from_numpy(z_from_seed(0, 4, generator.z_dim))
    generator(z, cond).square().mean().backward()
    # noise_strength starts at zero, so constant noise buffers get no gradient path; all
    # parameters still must receive a gradient tensor.
    missing = [name for name, p in generator.named_parameters() if p.grad is None]
    assert missing == []
