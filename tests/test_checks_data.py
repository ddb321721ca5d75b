"""The chapter 06 checks pass bertmini's masking and a correct NSP sampler, and name each
typical mistake."""

import random

import pytest
import torch

from bertmini.checks import CheckFailed
from bertmini.checks.data import (
    check_mask_tokens,
    check_nsp_pair,
    reference_mask_tokens,
    reference_nsp_pair,
)

pytestmark = pytest.mark.usefixtures("seeded")


def student_mask_tokens(
    skip_special=True,
    split=(0.8, 0.1),
    unchosen_label=-100,
    pool="replacement_ids",
    use_generator=True,
    of_all_positions=False,
    fixed_probability=None,
):
    """Masking as a student would write it, with one choice made (right or wrong)."""

    def mask_tokens(
        input_ids,
        special_tokens_mask,
        mask_token_id,
        replacement_ids,
        mlm_probability=0.15,
        generator=None,
    ):
        g = generator if use_generator else None
        p = fixed_probability or mlm_probability
        if of_all_positions:  # 15% of the tokens, spread over all positions, then drop specials
            num_real = (~special_tokens_mask).sum(dim=1, keepdim=True)
            k = (p * num_real).round().clamp(min=1)  # (batch, 1)
            rank = torch.rand(input_ids.shape, generator=g).argsort(dim=1).argsort(dim=1)
            chosen = rank < k
        elif of_all_positions is None:  # padding never excluded
            chosen = (
                (torch.rand(input_ids.shape, generator=g) < p) & (input_ids != 2) & (input_ids != 3)
            )
        else:
            chosen = torch.rand(input_ids.shape, generator=g) < p
        if skip_special and of_all_positions is not None:
            chosen &= ~special_tokens_mask
        fate = torch.rand(input_ids.shape, generator=g)
        use_mask = chosen & (fate < split[0])
        use_random = chosen & (fate >= split[0]) & (fate < split[0] + split[1])
        if pool == "replacement_ids":
            index = torch.randint(len(replacement_ids), input_ids.shape, generator=g)
            random_ids = replacement_ids[index]
        elif pool == "all but last":  # torch.randint(len - 1): the last id is never drawn
            index = torch.randint(len(replacement_ids) - 1, input_ids.shape, generator=g)
            random_ids = replacement_ids[index]
        elif pool == "range":  # every id between the smallest and the largest allowed one
            low, high = int(replacement_ids.min()), int(replacement_ids.max()) + 1
            random_ids = torch.randint(low, high, input_ids.shape, generator=g)
        else:  # the whole vocabulary, special ids included
            random_ids = torch.randint(int(replacement_ids.max()) + 1, input_ids.shape, generator=g)
        masked = torch.where(use_mask, mask_token_id, input_ids)
        masked = torch.where(use_random, random_ids, masked)
        if unchosen_label == "copy":
            labels = input_ids.clone()
        else:
            labels = torch.where(chosen, input_ids, unchosen_label)
        return masked, labels

    return mask_tokens


def test_mask_reference_and_student_pass(capsys):
    check_mask_tokens(student_mask_tokens())
    assert capsys.readouterr().out.count("✅") == 1
    with pytest.raises(CheckFailed, match="bertmini's own mask_tokens, which refuses"):
        check_mask_tokens(reference_mask_tokens)


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_mask_tokens(skip_special=False), "positions were chosen"),
        (student_mask_tokens(split=(1.0, 0.0)), "every chosen token became \\[MASK\\]"),
        (student_mask_tokens(split=(0.8, 0.02)), "half"),
        (student_mask_tokens(split=(0.9, 0.1)), "kept its original id"),
        (student_mask_tokens(unchosen_label="copy"), "must be -100 everywhere"),
        (student_mask_tokens(unchosen_label=0), "-100"),
        (student_mask_tokens(pool="vocab"), "not in replacement_ids"),
        (student_mask_tokens(pool="all but last"), "last id of replacement_ids \\(998\\)"),
        (student_mask_tokens(pool="range"), "has gaps"),
        (student_mask_tokens(of_all_positions=True), "too few real tokens remain"),
        (student_mask_tokens(of_all_positions=None), "padding positions were chosen"),
        (student_mask_tokens(fixed_probability=0.15), "use the argument"),
        (student_mask_tokens(use_generator=False), "same seeded generator"),
    ],
)
def test_mask_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_mask_tokens(wrong)


def test_mask_in_place_is_named():
    def in_place(input_ids, special, mask_id, replacement_ids, p=0.15, generator=None):
        masked, labels = student_mask_tokens()(
            input_ids, special, mask_id, replacement_ids, p, generator
        )
        input_ids.copy_(masked)
        return input_ids, labels

    with pytest.raises(CheckFailed, match="in place"):
        check_mask_tokens(in_place)


def student_nsp(
    swap=False,
    same_document=False,
    b_offset=1,
    first_only=False,
    module_rng=False,
    p_next=0.5,
    other_document="random",
):
    def sample_nsp_pair(documents, doc_index, sentence_index, rng):
        r = random if module_rng else rng
        a = documents[doc_index][sentence_index]
        if r.random() < p_next:
            b, label = documents[doc_index][sentence_index + b_offset], 0
        else:
            others = [d for i, d in enumerate(documents) if same_document or i != doc_index]
            other = r.choice(others)
            if other_document == "next":
                other = documents[(doc_index + 1) % len(documents)]
            elif other_document == "fixed per A":  # random-looking, but the same for each A
                other = others[(7 * doc_index + sentence_index) % len(others)]
            elif other_document == "never last":  # randrange(n - 1) without skipping A's own
                index = r.randrange(len(documents) - 1)
                other = documents[index if index != doc_index else (index + 1) % 39]
            b, label = (other[0] if first_only else r.choice(other)), 1
        return a, b, (1 - label if swap else label)

    return sample_nsp_pair


def test_nsp_reference_and_student_pass(capsys):
    check_nsp_pair(reference_nsp_pair)
    check_nsp_pair(student_nsp())
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_nsp(swap=True), "labels are swapped"),
        (student_nsp(same_document=True), "from A's own document"),
        (student_nsp(b_offset=0), "do not have the next sentence"),
        (student_nsp(first_only=True), "first sentence of its document"),
        (student_nsp(module_rng=True), "same seeded rng"),
        (student_nsp(p_next=0.7), "expected 50%"),
        (student_nsp(other_document="next"), "document right after A's"),
        (student_nsp(other_document="fixed per A"), "from the same document"),
        (student_nsp(other_document="never last"), "last document \\(index 39\\) is never"),
    ],
)
def test_nsp_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_nsp_pair(wrong)


@pytest.mark.parametrize("check", [check_mask_tokens, check_nsp_pair])
def test_stub_raises_not_implemented(check, stub):
    with pytest.raises(NotImplementedError):
        check(stub)
