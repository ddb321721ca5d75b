"""Every mistake a check knows, handed in as a student's answer, is named by its own advice.

Each check keeps its typical mistakes as a list of (wrong function, advice). Here each wrong
function is given to the check as if a student wrote it: the check must fail with that advice,
and not with another mistake's, a generic message, or a refusal.
"""

import re

import pytest

from bertmini.checks import (
    CheckFailed,
    Mistake,
    analysis,
    attention,
    bert,
    encoders,
    finetuning,
    positional,
    scaling,
    training,
    wordpiece,
)

CASES = [
    (attention.check_softmax, attention._SOFTMAX_MISTAKES),
    (attention.check_scaled_dot_product_attention, attention._SDPA_MISTAKES),
    (attention.check_multi_head_attention, attention._MULTI_HEAD_MISTAKES),
    (encoders.check_lstm_cell, encoders.LSTM_MISTAKES),
    (encoders.check_encoder_layer, encoders.LAYER_MISTAKES),
    (bert.check_embeddings, bert.EMBEDDING_MISTAKES),
    (positional.check_sinusoidal_encoding, positional._MISTAKES),
    (scaling.check_training_flops, scaling.FLOPS_MISTAKES),
    (scaling.check_mfu, scaling.MFU_MISTAKES),
    (scaling.check_parameter_count, scaling.PARAMETER_MISTAKES),
    (scaling.check_time_step, scaling.TIME_STEP_MISTAKES),
    (analysis.check_attention_entropy, analysis._ENTROPY_MISTAKES),
    (analysis.check_head_roles, analysis.ROLE_MISTAKES),
    (training.check_sparse_mlm_loss, training.MLM_MISTAKES),
    (training.check_lr_schedule, [Mistake(*pair) for pair in training.SCHEDULE_MISTAKES]),
    (training.check_training_step, [Mistake(*pair) for pair in training.STEP_MISTAKES]),
    (finetuning.check_classification_head, finetuning.HEAD_MISTAKES),
    (finetuning.check_finetuning_loop, finetuning.LOOP_MISTAKES),
    (wordpiece.check_best_pair, [Mistake(*pair) for pair in wordpiece._BEST_PAIR_MISTAKES]),
]
PARAMS = [
    pytest.param(check, mistake, id=f"{check.__name__}-{number}")
    for check, mistakes in CASES
    for number, mistake in enumerate(mistakes)
]


@pytest.mark.parametrize("check, mistake", PARAMS)
def test_each_known_mistake_is_named_by_its_own_advice(check, mistake):
    with pytest.raises(CheckFailed, match=re.escape(mistake.advice)):
        check(mistake.wrong)
