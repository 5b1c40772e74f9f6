"""`ohlora train` flags: defaults from TrainConfig, a --recipe under the flags given."""

from __future__ import annotations

import argparse

import pytest

from ohlora.errors import UserError
from training import cli
from training.config import TrainConfig, load_recipe


def parse(*argv: str) -> TrainConfig:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return cli.config_from_args(parser.parse_args(["train", *argv]))


def test_defaults_are_train_configs():
    assert parse() == TrainConfig()


def test_recipe_under_the_flags_given():
    cfg = parse("--persona", "ohlora", "--recipe", "shipped", "--lr", "1e-4")
    assert (cfg.epochs, cfg.dropout, cfg.lr, cfg.persona) == (2, 0.0, 1e-4, "ohlora")
    assert cfg.rank == TrainConfig.rank  # what the recipe says and the default agree on


def test_shipped_recipe_is_the_readme_command():
    """README: ohlora train --persona ohlora --epochs 2 --lr 3e-4 --dropout 0."""
    recipe = load_recipe("shipped")
    assert (recipe["epochs"], recipe["lr"], recipe["dropout"]) == (2, 3e-4, 0.0)


@pytest.mark.parametrize("text,match", [
    ("lr = 1e-3\nlearning_rate = 2\n", "unknown key 'learning_rate'"),
    ("epochs = \"two\"\n", "'epochs' must be float"),
    ("qlora = 1\n", "'qlora' must be bool"),
    ("lr = \n", "invalid TOML"),
])
def test_bad_recipe_names_file_and_key(tmp_path, text, match):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=match):
        parse("--recipe", str(path))


def test_unknown_recipe_lists_the_shipped_ones():
    with pytest.raises(UserError, match="unknown recipe 'nope'.*shipped"):
        parse("--recipe", "nope")
