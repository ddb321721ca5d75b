"""Recipes: `pretrain()` options and `pretrained()`, the cached model later chapters use."""

import json
from dataclasses import replace

import pytest

from bertmini.course import get_profile
from bertmini.model import BertForPreTraining
from bertmini.recipes import (
    EvaluateRecipe,
    evaluate_saved,
    pretrain,
    pretrain_short_first,
    pretrained,
)
from bertmini.tokenizer import Tokenizer
from bertmini.train import read_metrics


def test_pretrained_is_cached_per_recipe(tmp_path, capsys):
    profile = replace(get_profile("ci"), pretrain_steps=3)
    first = pretrained(profile, cache_dir=tmp_path)
    assert "pretraining" in capsys.readouterr().out
    names = {p.name for p in first.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.txt"} <= names
    assert not names & {"checkpoint", "checkpoint.prev"}  # no resume state: the model only
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


def test_short_first_runs_comment_threads_then_one_stance_documents(tmp_path, monkeypatch):
    """Phase 1 trains on comment threads in short sequences, phase 2 starts from its weights on
    short one-stance documents; one vocabulary, trained on the whole corpus, serves both."""
    import bertmini.recipes

    profile = replace(get_profile("ci"), short_steps=3, pretrain_steps=2, comment_share=0.3)
    corpora = []
    real_pretrain = bertmini.recipes.pretrain

    def spy(out, **options):
        profile = options["profile"]
        corpora.append(
            (options.get("corpus", "embedded"), profile.max_seq_len, options.get("init_from"))
        )
        return real_pretrain(out, **options)

    monkeypatch.setattr(bertmini.recipes, "pretrain", spy)
    final = pretrain_short_first(tmp_path, profile=profile)
    assert final == tmp_path / "2-full"
    assert corpora == [
        ("embedded-comments", profile.short_seq_len, None),
        ("embedded-short", profile.max_seq_len, tmp_path / "1-short"),
    ]
    assert [len(read_metrics(tmp_path / d / "metrics.jsonl")) for d in ("1-short", "2-full")] == [
        3,
        2,
    ]
    vocabulary = Tokenizer.from_pretrained(tmp_path / "vocabulary").vocab
    assert Tokenizer.from_pretrained(final).vocab == vocabulary
    assert {"loved", "hated", "baker"} <= set(vocabulary)  # comments and topics, whole words
    short = BertForPreTraining.from_pretrained(tmp_path / "1-short")
    untrained = BertForPreTraining(short.config)
    assert not (short.bert.embeddings.word.weight == untrained.bert.embeddings.word.weight).all()
    # `evaluate` scores each phase on the validation split of the corpus it learned
    assert json.loads((final / "trained_on.json").read_text()) == {"corpus": "embedded-short"}
    assert 0 <= evaluate_saved(final, EvaluateRecipe(), profile)["validation"]["mlm_accuracy"] <= 1
    (final / "trained_on.json").write_text(json.dumps({"corpus": "my_books/*.txt"}))
    with pytest.raises(ValueError, match="--corpus"):  # other text: it must be named
        evaluate_saved(final, EvaluateRecipe(), profile)
