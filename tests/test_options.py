"""One default per setting: the CLI is generated from the recipes' dataclasses, so they agree."""

from dataclasses import fields

import pytest

from bertmini.__main__ import build_parser
from bertmini.course import get_profile
from bertmini.options import given
from bertmini.recipes import FinetuneRecipe, PretrainRecipe, make_recipe, pretrain
from bertmini.train import TrainConfig


def declared(cls):
    return [f for f in fields(cls) if "help" in f.metadata]


@pytest.mark.parametrize(
    "command, classes",
    [("pretrain", (PretrainRecipe, TrainConfig)), ("finetune", (FinetuneRecipe, TrainConfig))],
)
def test_every_cli_default_is_the_dataclass_default(command, classes):
    argv = [command] + (["--model", "m"] if command == "finetune" else [])
    args = build_parser().parse_args(argv)
    for cls in classes:
        for f in declared(cls):
            expected = None if f.metadata["profile"] else f.default
            expected = f.metadata.get("cli_default", expected)
            assert getattr(args, f.name) == expected, f"{command} --{f.name}"


def test_the_cli_keeps_the_model_only_unless_asked():
    """The one CLI default that differs from the API's, on purpose (see TrainConfig)."""
    assert TrainConfig().keep_checkpoint is True
    assert given(build_parser().parse_args(["pretrain"]), TrainConfig)["keep_checkpoint"] is False
    args = build_parser().parse_args(["pretrain", "--keep-optimizer"])
    assert given(args, TrainConfig)["keep_checkpoint"] is True


def test_options_go_to_their_dataclass_and_none_means_the_profile():
    profile = get_profile("ci")
    recipe = make_recipe(PretrainRecipe, None, profile, dict(steps=None, seed=3, nsp=False))
    assert recipe.train.steps == profile.pretrain_steps  # None: the profile's
    assert (recipe.train.seed, recipe.nsp, recipe.vocab_size) == (3, False, profile.vocab_size)
    given_recipe = PretrainRecipe(vocab_size=500, train=TrainConfig(steps=7, lr=1e-3))
    recipe = make_recipe(PretrainRecipe, given_recipe, profile, dict(lr=2e-3))
    assert (recipe.vocab_size, recipe.train.steps, recipe.train.lr) == (500, 7, 2e-3)
    recipe = make_recipe(FinetuneRecipe, None, profile, {})
    assert recipe.max_seq_len == profile.finetune_seq_len
    assert (recipe.train.steps, recipe.train.lr) == (profile.finetune_steps, profile.finetune_lr)


def test_an_unknown_option_is_refused_before_any_work(tmp_path):
    with pytest.raises(TypeError, match="stpes"):
        pretrain(tmp_path / "run", profile="ci", stpes=3)
    assert not (tmp_path / "run").exists()
