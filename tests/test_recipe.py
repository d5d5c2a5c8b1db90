"""The training recipe (ser_model.recipe): one TOML file per shipped model, every member with its
full settings, stored whole in the bundle; train, compare and the model card read it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from ser_model.errors import ParameterError
from ser_model.recipe import RECIPE_FILE, HeadRecipe, Recipe, load_head_recipe, load_recipe, read_recipe

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "ser_model" / "configs" / "ser-crnn.toml"
BUNDLE = REPO / "models" / "ser-crnn-v2"


def test_recipe_loads_and_round_trips():
    recipe = load_recipe(SHIPPED)
    assert recipe.member_names == ["crnn", "lstm", "cnn1d", "cnn2d"] and recipe.model.architecture == "crnn"
    assert recipe.is_ensemble and recipe.cv_name() == "ensemble"
    again = Recipe.from_dict(json.loads(json.dumps(recipe.to_dict())))
    assert again == recipe and again.to_dict() == recipe.to_dict()
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.train = None  # type: ignore[misc]
    assert load_recipe(REPO / "ser_model" / "configs" / "xcorpus-ravdess.toml").members == recipe.members


@pytest.mark.parametrize("text, where", [
    ("[[members]]\narchitecture = 'crnn'\nbogus = 1\n", "bogus"),
    ("[train]\nepochs = 3\nbogus = 1\n", "bogus"),
    ("[model]\narchitecture = 'crnn'\n", "model"),  # the table before [[members]]
    ("[train]\nensemble_with = ['lstm']\n", "ensemble_with"),
    ("[[members]]\narchitecture = 'lstm'\n[[members]]\narchitecture = 'lstm'\n", "at most once"),
    ("[v3]\nhead = 'mlp'\nbogus = 1\n", "bogus"),  # ser-v3 recipes: the same reader
    ("[v3]\nhead = 'tree'\n", "head must be"),
    ("[v3]\nhead = 'mlp'\n[train]\nepochs = 3\n", "train"),
])
def test_unknown_or_bad_keys_are_refused_in_one_line(tmp_path, text, where):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParameterError) as err:
        read_recipe(path)
    message = str(err.value)
    assert where in message and str(path) in message and "\n" not in message


def test_the_v3_recipe_is_read_by_the_same_reader_and_stored_whole_in_its_bundle():
    v3 = REPO / "models" / "ser-v3"
    recipe = read_recipe(REPO / "ser_model" / "configs" / "ser-v3.toml")
    assert isinstance(recipe, HeadRecipe) and recipe.head == "logreg" and recipe.encoder_layers == (1, 4)
    assert load_head_recipe(v3 / RECIPE_FILE) == recipe  # retrain with --config models/ser-v3/recipe.toml
    config = json.loads((v3 / "config.json").read_text(encoding="utf-8"))
    assert HeadRecipe.from_dict({"v3": config["recipe"]}) == recipe
    assert HeadRecipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    with pytest.raises(ParameterError, match="ser-v3 recipe"):
        load_recipe(v3 / RECIPE_FILE)  # compare / the frame-network trainer refuse it in one line
    with pytest.raises(ParameterError, match="no \\[v3\\]"):
        load_head_recipe(SHIPPED)


def test_the_shipped_bundle_carries_the_recipe_it_was_trained_from():
    from ser_model.bundle import load_bundle_config
    from ser_model.train import check_trained_from

    config = load_bundle_config(BUNDLE)  # the weights still match their SHA-256
    recipe = load_recipe(SHIPPED)
    assert load_recipe(BUNDLE / RECIPE_FILE) == recipe  # retrain with --config models/ser-crnn-v2/recipe.toml
    assert Recipe.from_dict(config["training"]) == recipe
    assert config["architecture"] == "+".join(recipe.member_names)
    check_trained_from(recipe, config["training"], where=str(BUNDLE))
    other = replace(recipe, members=(recipe.model, replace(recipe.member("lstm"), rnn_units=80),
                                     *recipe.members[2:]))
    with pytest.raises(ParameterError, match="members"):
        check_trained_from(other, config["training"], where=str(BUNDLE))


def test_the_model_card_describes_the_recipe_members():
    from ser_model.train import model_card

    recipe = load_recipe(SHIPPED)
    metrics = json.loads((BUNDLE / "metrics.json").read_text(encoding="utf-8"))
    config = json.loads((BUNDLE / "config.json").read_text(encoding="utf-8"))
    card = model_card(recipe, params=config["params"], n_train=metrics["n_train"], metrics=metrics,
                      size_bytes=(BUNDLE / "model.keras").stat().st_size)
    assert card == (BUNDLE / "MODEL_CARD.md").read_text(encoding="utf-8")  # the shipped card is this text
    assert "LSTM 64 -> dropout -> LSTM 32" in card and "Conv1D (64, 64, 128, 128; kernel 5)" in card
    changed = replace(recipe, members=(recipe.model, replace(recipe.member("lstm"), rnn_units=80),
                                       replace(recipe.member("cnn1d"), channels=(32, 48), kernel_size=3)))
    card = model_card(changed, params=1, n_train={}, metrics=metrics)
    assert "LSTM 80 -> dropout -> LSTM 40" in card and "Conv1D (32, 48, 48, 48; kernel 3)" in card
    assert "cnn2d" not in card.split("## Training data")[0] and "Ensemble of 3 networks (crnn + lstm + cnn1d)" in card


def test_metadata_update_keeps_the_weights_and_refuses_other_ones(tmp_path):
    from ser_model.bundle import load_bundle_config, update_metadata
    from ser_model.errors import BundleError

    bundle = tmp_path / "b"
    shutil.copytree(BUNDLE, bundle)
    config = load_bundle_config(bundle)
    update_metadata(bundle, config={**config, "note": "x"}, files={RECIPE_FILE: "# r\n"})
    assert load_bundle_config(bundle)["note"] == "x" and (bundle / RECIPE_FILE).read_text() == "# r\n"
    with pytest.raises(BundleError, match="weights_sha256"):
        update_metadata(bundle, config={**config, "weights_sha256": "0" * 64})
    with pytest.raises(BundleError):
        update_metadata(bundle, files={"model.keras": ""})
    assert load_bundle_config(bundle)["weights_sha256"] == config["weights_sha256"]


def test_a_recipe_on_a_base_says_only_what_differs_and_its_bundle_text_stands_alone(tmp_path):
    from ser_model.recipe import recipe_text

    configs = REPO / "ser_model" / "configs"
    shipped = read_recipe(configs / "ser-v3.toml")
    final = read_recipe(configs / "ser-v3-final.toml")
    assert (final.head, final.encoder_layers, final.threads) == ("mlp", (), 2)
    assert dataclasses.replace(final, head=shipped.head, encoder_layers=shipped.encoder_layers,
                               threads=shipped.threads) == shipped
    assert read_recipe(configs / "ser-v3-layers.toml").encoder_layers == (1, 2, 3, 4)
    # the text a bundle stores reads back, on its own elsewhere, as the same recipe
    alone = tmp_path / "recipe.toml"
    alone.write_text(recipe_text(configs / "ser-v3-final.toml"), encoding="utf-8")
    assert "base =" not in alone.read_text(encoding="utf-8") and read_recipe(alone) == final
    assert recipe_text(configs / "ser-v3.toml") == (configs / "ser-v3.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("text, where", [
    ('base = "loop.toml"\n[v3]\nhead = "mlp"\n', "leads back to itself"),
    ('base = "missing.toml"\n[v3]\nhead = "mlp"\n', "cannot read config"),
    ('base = 3\n[v3]\nhead = "mlp"\n', "base must be"),
    ('base = "ser-v3.toml"\n[v3]\nhead = "tree"\n', "head must be"),
])
def test_a_bad_base_is_refused_in_one_line(tmp_path, text, where):
    shutil.copyfile(REPO / "ser_model" / "configs" / "ser-v3.toml", tmp_path / "ser-v3.toml")
    path = tmp_path / "loop.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParameterError) as err:
        read_recipe(path)
    assert where in str(err.value) and "\n" not in str(err.value)
