"""Closed-form tests for diffusion.schedules (alpha, alpha', p_mask, weight, make_schedule)."""

from __future__ import annotations

import math

import pytest
import torch

from a2dkit.diffusion import schedules
from a2dkit.diffusion.schedules import CosineSchedule, LinearSchedule, make_schedule

ALL = [LinearSchedule(), CosineSchedule()]
IDS = ["linear", "cosine"]


@pytest.mark.parametrize("schedule", ALL, ids=IDS)
def test_alpha_boundary_values(schedule):
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(schedule.alpha(t), torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(schedule.p_mask(t), torch.tensor([0.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("schedule", ALL, ids=IDS)
def test_alpha_prime_matches_central_finite_difference(schedule):
    t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    h = 1e-6
    fd = (schedule.alpha(t + h) - schedule.alpha(t - h)) / (2 * h)
    torch.testing.assert_close(schedule.alpha_prime(t), fd, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("schedule", ALL, ids=IDS)
def test_weight_is_positive_and_matches_definition(schedule):
    t = torch.linspace(1e-3, 1.0, 1000, dtype=torch.float64)
    w = schedule.weight(t)
    assert torch.isfinite(w).all() and (w > 0).all()
    expected = -schedule.alpha_prime(t) / (1.0 - schedule.alpha(t))
    torch.testing.assert_close(w, expected, rtol=1e-10, atol=0.0)


@pytest.mark.parametrize("schedule", ALL, ids=IDS)
def test_p_mask_is_one_minus_alpha_and_alpha_is_decreasing(schedule):
    t = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    torch.testing.assert_close(schedule.p_mask(t), 1.0 - schedule.alpha(t))
    assert (schedule.alpha(t).diff() < 0).all()


def test_linear_weight_is_exactly_one_over_t():
    t = torch.rand(10_000, generator=torch.Generator().manual_seed(0)) * 0.999 + 1e-3
    lin = LinearSchedule()
    assert torch.equal(lin.p_mask(t), t)
    assert torch.equal(lin.weight(t), 1.0 / t)
    assert torch.equal(lin.alpha(t), 1.0 - t)


def test_cosine_closed_forms():
    t = torch.linspace(1e-3, 1.0, 500, dtype=torch.float64)
    cos = CosineSchedule()
    torch.testing.assert_close(cos.alpha(t), torch.cos(math.pi * t / 2))
    # w = (pi/2) sin(pi t/2) / (1 - cos(pi t/2)) = (pi/2) / tan(pi t/4)
    torch.testing.assert_close(cos.weight(t), (math.pi / 2) / torch.tan(math.pi * t / 4))


def test_cosine_weight_is_accurate_near_zero_in_float32():
    # (pi/2) cot(pi t / 4) -> 2 / t as t -> 0; a naive 1 - cos(.) would cancel to 0 here.
    t = torch.tensor([1e-6, 1e-5, 1e-4], dtype=torch.float32)
    torch.testing.assert_close(
        CosineSchedule().weight(t) * t, torch.full_like(t, 2.0), rtol=1e-5, atol=0
    )


@pytest.mark.parametrize("schedule", ALL, ids=IDS)
def test_elementwise_shapes_and_python_floats(schedule):
    t = torch.rand(3, 5, generator=torch.Generator().manual_seed(1))
    for fn in (schedule.alpha, schedule.alpha_prime, schedule.p_mask, schedule.weight):
        assert fn(t).shape == (3, 5)
        assert fn(t).dtype == torch.float32
    assert schedule.alpha(0.5).item() == pytest.approx(schedule.alpha(torch.tensor(0.5)).item())


def test_make_schedule_builds_every_registered_schedule_case_insensitively():
    assert set(schedules.SCHEDULES) == {"linear", "cosine"}
    for name, cls in schedules.SCHEDULES.items():
        assert type(make_schedule(name)) is cls
        assert type(make_schedule(name.upper())) is cls
        assert cls.name == name


def test_make_schedule_rejects_unknown_name_listing_valid_ones():
    with pytest.raises(ValueError, match=r"'cosinus'.*\['cosine', 'linear'\]"):
        make_schedule("cosinus")
    with pytest.raises(TypeError, match="str"):
        make_schedule(3)
