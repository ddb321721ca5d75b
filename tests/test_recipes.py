"""`pretrained()`: the cached model the later chapters start from."""

from dataclasses import replace

from bertmini.course import get_profile
from bertmini.model import BertForPreTraining
from bertmini.recipes import pretrained


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
