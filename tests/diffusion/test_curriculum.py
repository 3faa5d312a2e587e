"""Block-size curricula (``--block_size_schedule``): explicit stages, the grow and WSD presets,
and the refusals (a size that does not divide max_length, stages out of order, bad syntax)."""

import pytest

from a2dkit.diffusion.curriculum import parse_block_schedule


def test_explicit_stages_hold_until_their_end_step():
    schedule = parse_block_schedule("2:10,4:20,8", block_size=8, max_length=64)
    assert [schedule.at(s) for s in (0, 9, 10, 19, 20, 10_000)] == [2, 2, 4, 4, 8, 8]
    assert schedule.final == 8 and schedule.multiple == 8 and schedule.sizes == (2, 4, 8)


def test_a_bare_size_is_a_constant_schedule():
    schedule = parse_block_schedule("8", block_size=8, max_length=64)
    assert schedule.stages == ((8, None),) and schedule.at(0) == schedule.at(10_000) == 8


def test_grow_doubles_from_one_to_the_block_size_over_the_first_half():
    schedule = parse_block_schedule("grow", block_size=8, max_length=96, total_steps=100)
    sizes = [schedule.at(s) for s in range(100)]
    assert sizes[0] == 1 and sizes[49] < 8 and sizes[50:] == [8] * 50
    assert sizes == sorted(sizes) and set(sizes) == {1, 2, 4, 8}


def test_wsd_warms_up_to_the_whole_row_then_decays_to_the_block_size():
    """LLaDA2.0: 1 -> the whole row (MDLM), held, then back down to the target block size."""
    schedule = parse_block_schedule("wsd", block_size=8, max_length=96, total_steps=100)
    sizes = [schedule.at(s) for s in range(100)]
    peak = sizes.index(96)
    assert sizes[0] == 1 and sizes[:peak] == sorted(sizes[:peak])  # warm-up: growing
    assert sizes[peak:].count(96) >= 20  # stable: a quarter of the run at the whole row
    decay = sizes[peak + sizes[peak:].count(96) :]
    assert decay == sorted(decay, reverse=True) and decay[-1] == 8  # decay: down to the target
    assert all(96 % s == 0 for s in sizes)  # 64 does not divide 96: never used


@pytest.mark.parametrize(
    "spec, message",
    [
        ("4:10,6", r"block size 6, which does not divide max_length=64"),
        ("4:10,8:5,16", r"strictly increasing"),
        ("4:10,8:20", r"must end with a bare SIZE"),
        ("four:10,8", r"stage 1 \('four:10'\) is not 'SIZE:END_STEP'"),
        ("0:10,8", r"block size 0"),
        ("cosine", r"stage 1 \('cosine'\)"),
    ],
)
def test_bad_schedules_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_block_schedule(spec, block_size=8, max_length=64)
