import math

import pytest
import torch

from pyro_vae import eval_view, train_view
from pyro_vae.data.pixels import unit_interval


def test_unit_interval_scales_by_the_number_of_levels(digits):
    x = unit_interval(digits.train, digits.levels)
    assert x.shape == (1197, 64) and x.dtype == torch.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert torch.allclose(x * 16, digits.train.images.reshape(1197, 64).float())


def test_dynamic_binarization_is_fresh_and_unbiased(digits):
    probs = unit_interval(digits.train, digits.levels)
    a = train_view(digits.train, digits.levels, "dynamic")
    b = train_view(digits.train, digits.levels, "dynamic")
    assert set(a.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(a, b)
    # E[x] = p: the mean over all pixels matches within 5 standard errors
    se = math.sqrt((probs * (1 - probs)).sum().item()) / probs.numel()
    assert abs(a.mean().item() - probs.mean().item()) < 5 * se
    # pixels that are always off or always on stay so
    assert torch.all(a[probs == 0] == 0) and torch.all(a[probs == 1] == 1)


def test_static_binarization_never_changes(digits):
    a = train_view(digits.train, digits.levels, "static")
    torch.manual_seed(123)
    b = train_view(digits.train, digits.levels, "static")
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("scheme", ["dynamic", "static", "grey"])
def test_binary_and_grey_models_are_scored_on_one_fixed_binary_test_set(digits, scheme):
    fixed = eval_view(digits.test, digits.levels, "static", "test")
    torch.manual_seed(7)
    assert torch.equal(eval_view(digits.test, digits.levels, scheme, "test"), fixed)
    # validation and test use different draws
    val = eval_view(digits.val, digits.levels, "static", "val")
    assert val.shape == fixed.shape and not torch.equal(val, fixed)


def test_grey_is_the_unit_interval(digits):
    assert torch.equal(
        train_view(digits.train, digits.levels, "grey"), unit_interval(digits.train, digits.levels)
    )


def test_dequantization_stays_in_each_level_cell(digits):
    y = train_view(digits.train, digits.levels, "dequantized")
    assert y.min() > 0 and y.max() < 1
    levels = digits.train.images.reshape(len(digits.train), -1).float()
    assert torch.equal(torch.floor(y * digits.levels), levels)
    assert not torch.equal(y, train_view(digits.train, digits.levels, "dequantized"))
    fixed = eval_view(digits.test, digits.levels, "dequantized", "test")
    assert torch.equal(fixed, eval_view(digits.test, digits.levels, "dequantized", "test"))


def test_unknown_scheme_is_refused(digits):
    with pytest.raises(ValueError, match="unknown pixel scheme"):
        train_view(digits.train, digits.levels, "jpeg")


def test_dequantization_never_rounds_into_the_next_cell():
    from pyro_vae.data.datasets import Split
    from pyro_vae.data.pixels import dequantize

    top = Split(torch.full((4, 5000), 255, dtype=torch.uint8), torch.zeros(4, dtype=torch.long))
    for seed in range(20):  # 400,000 draws at the top level, the worst case for rounding
        y = dequantize(top, 256, torch.Generator().manual_seed(seed))
        assert y.max() < 1.0 and torch.all(torch.floor(y * 256) == 255)
