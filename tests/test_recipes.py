"""Recipes: `pretrain()` options and `pretrained()`, the cached model later chapters use."""

from dataclasses import replace

from bertmini.course import get_profile
from bertmini.model import BertForPreTraining
from bertmini.recipes import pretrain, pretrained


def test_pretrained_is_cached_per_recipe(tmp_path, capsys):
    profile = replace(get_profile("ci"), pretrain_steps=3)
    first = pretrained(profile, cache_dir=tmp_path)
    assert "pretraining" in capsys.readouterr().out
    assert {"config.json", "model.safetensors", "vocab.txt"} <= {p.name for p in first.iterdir()}
    BertForPreTraining.from_pretrained(first)  # a complete model
    stamp = (first / "model.safetensors").stat().st_mtime_ns

    assert pretrained(profile, cache_dir=tmp_path) == first  # second call: no training
    assert "pretraining" not in capsys.readouterr().out
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp

    other = pretrained(replace(profile, pretrain_steps=2), cache_dir=tmp_path)
    assert other != first  # another recipe never reuses the first model
    # nothing half-written is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, other.name])


def test_dupe_factor_builds_other_pairs_each_time(tmp_path, monkeypatch):
    """dupe_factor=3 gives three times the pairs, not three copies of the same pairs."""
    import bertmini.train

    seen = {}

    def capture(model, loader, config, *args, **kwargs):  # record the data, skip the training
        seen["examples"] = loader.dataset.examples
        return [{"step": 0}]

    monkeypatch.setattr(bertmini.train, "train", capture)
    profile = replace(get_profile("ci"), pretrain_steps=1)
    pretrain(tmp_path / "once", profile=profile)
    once = seen["examples"]
    pretrain(tmp_path / "thrice", profile=profile, dupe_factor=3)
    thrice = seen["examples"]
    assert len(thrice) > 2.5 * len(once)
    assert thrice[: len(once)] == once  # the first round is the dupe_factor=1 data
    copies = sum(example in once for example in thrice[len(once) :])
    assert copies < 0.5 * len(once)  # later rounds split and pair the documents differently
