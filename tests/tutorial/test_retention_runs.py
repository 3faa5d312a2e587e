"""tutorial.retention: every recipe of the table is a set of flags the training CLI accepts, for
the algorithms it is meant for; the shared right shift; the refusals."""

import pytest
import transformers

from a2dkit.training import config
from a2dkit.tutorial import get_scale, retention


@pytest.mark.parametrize("scale", ["smoke", "laptop"])
def test_every_recipe_parses_as_training_flags(scale, tmp_path):
    cfg = get_scale(scale)
    for name, recipe in retention.RECIPES.items():
        for algo in recipe.algos:
            cls = config.BD3LMConfig if algo == "bd3lm" else config.MDLMConfig
            parser = transformers.HfArgumentParser((config.ModelArguments, cls))
            flags = retention.recipe_flags(cfg, algo, name)
            _, args = parser.parse_args_into_dataclasses(
                [
                    "--model_name_or_path",
                    "x",
                    "--output_dir",
                    str(tmp_path),
                    "--max_steps",
                    str(cfg.retention.steps),
                    *flags,
                ]  # fmt: skip
            )
            assert args.right_shift_logits is True
            if name == "plain":
                assert args.recipe() == config.MDLMConfig(output_dir="x", max_steps=1).recipe()
    assert set(cfg.retention.recipes) <= set(retention.RECIPES)
    if scale == "laptop":  # the laptop table is every recipe
        assert set(cfg.retention.recipes) == set(retention.RECIPES)


def test_best_combines_single_recipes_and_unknown_recipes_are_refused():
    cfg = get_scale("smoke")
    for algo in ("mdlm", "bd3lm"):
        best = retention.recipe_flags(cfg, algo, "best")
        for part in ("joint-ar", "complementary", "layer-lr"):  # each one's flags, all in best
            single = retention.recipe_flags(cfg, algo, part)[2:]
            assert single and " ".join(single) in " ".join(best), (algo, part)
        assert "--distill_weight" not in best and "--block_size_schedule" not in best
    with pytest.raises(ValueError, match="recipe='magic' is not valid"):
        retention.recipe_flags(cfg, "mdlm", "magic")
    with pytest.raises(ValueError, match="'curriculum' is for \\('bd3lm',\\), not 'mdlm'"):
        retention.recipe_flags(cfg, "mdlm", "curriculum")


def test_chapter_trains_every_recipe_at_smoke_and_bd3lm_layer_lr_alone_at_laptop():
    smoke, laptop = get_scale("smoke").retention, get_scale("laptop").retention
    assert smoke.chapter_algos == ("mdlm", "bd3lm")
    assert laptop.chapter_algos == ("bd3lm",)  # the 90-minute book; MDLM rows from the bench
    assert smoke.chapter_recipes == smoke.recipes and laptop.chapter_recipes == ("layer-lr",)
    for bad, match in [((), "non-empty subset"), (("mdlm", "ar"), "non-empty subset"),
                       (("mdlm",), "must include 'bd3lm'")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            get_scale("smoke").replace(retention={"chapter_algos": bad})
    for bad in [(), ("plain", "magic")]:  # every chapter row is one of the bench's
        with pytest.raises(ValueError, match="chapter_recipes=.* must be a non-empty subset"):
            get_scale("smoke").replace(retention={"chapter_recipes": bad})


def test_table_rows_pair_each_recipe_with_the_algorithms_it_is_for():
    every = get_scale("smoke").retention.recipes
    got = retention.table_rows(("mdlm", "bd3lm"), every)
    assert len(got) == 19 and len(set(got)) == 19  # 11 recipes x 2, less 3 one-algorithm ones
    assert ("mdlm", "curriculum") not in got and ("bd3lm", "curriculum") in got
    assert ("bd3lm", "semi-ar") not in got and ("mdlm", "semi-ar") in got
    assert retention.table_rows(("bd3lm",), ("layer-lr",)) == [("bd3lm", "layer-lr")]
