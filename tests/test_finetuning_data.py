"""Classification datasets, length-bucketed batches and the padding they save."""

import random

import pytest
import torch

from bertmini.data.corpus import sentiment_task
from bertmini.data.finetuning import (
    ClassificationDataset,
    LengthBucketSampler,
    bucketed_batches,
    make_bucketed_loader,
    padding_fraction,
)


@pytest.fixture(scope="module")
def sentiment(tokenizer):
    texts, labels = zip(*sentiment_task()["train"], strict=True)
    return ClassificationDataset(list(texts), list(labels), tokenizer, max_seq_len=64)


def mixed_lengths(n=3000, seed=0):
    rng = random.Random(seed)
    return [min(512, int(rng.lognormvariate(4, 0.8)) + 3) for _ in range(n)]


def test_single_sentence_examples(tokenizer, sentiment):
    item = sentiment[0]
    assert item["input_ids"][0] == tokenizer.cls_token_id
    assert item["input_ids"][-1] == tokenizer.sep_token_id
    assert item["token_type_ids"].eq(0).all()
    assert item["labels"].dtype == torch.int64 and item["labels"].item() in (0, 1)
    assert sorted(set(label for _, _, label in sentiment.examples)) == [0, 1]


def test_pairs_get_segment_ids_and_long_texts_are_truncated(tokenizer):
    long_text = " ".join(["word"] * 300)
    data = ClassificationDataset(
        ["a short premise", long_text], [0, 1], tokenizer, max_seq_len=32,
        text_pairs=["the hypothesis", "tiny"],
    )  # fmt: skip
    short = data[0]
    seps = (short["input_ids"] == tokenizer.sep_token_id).nonzero().flatten().tolist()
    assert len(seps) == 2
    assert short["token_type_ids"][: seps[0] + 1].eq(0).all()
    assert short["token_type_ids"][seps[0] + 1 :].eq(1).all()
    # The long first text is cut so that the pair fits; the short second text survives.
    long = data[1]
    assert len(long["input_ids"]) == 32
    assert tokenizer.decode(long["input_ids"][long["token_type_ids"] == 1]) == "tiny"


def test_bad_input(tokenizer):
    with pytest.raises(ValueError, match="texts\\[1\\] is empty"):
        ClassificationDataset(["fine", "  "], [0, 1], tokenizer)
    with pytest.raises(ValueError, match="labels"):
        ClassificationDataset(["a", "b"], [0], tokenizer)
    with pytest.raises(ValueError, match="-1"):
        ClassificationDataset(["a", "b"], [0, -1], tokenizer)
    with pytest.raises(TypeError, match="one string"):
        ClassificationDataset("a text", [0], tokenizer)
    with pytest.raises(ValueError, match="text_pairs"):
        ClassificationDataset(["a", "b"], [0, 1], tokenizer, text_pairs=["x"])
    with pytest.raises(ValueError, match="no examples"):
        ClassificationDataset([], [], tokenizer)
    with pytest.raises(ValueError, match="batch_size"):
        bucketed_batches([3, 4], 0, shuffle=False)


def test_bucketed_batches_cover_every_example_once():
    lengths = mixed_lengths()
    for shuffle in (False, True):
        batches = bucketed_batches(lengths, 32, shuffle, random.Random(0))
        flat = sorted(i for batch in batches for i in batch)
        assert flat == list(range(len(lengths)))
        assert all(1 <= len(batch) <= 32 for batch in batches)


def test_bucketing_saves_padding():
    lengths = mixed_lengths()
    rng = random.Random(0)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    unbucketed = [order[k : k + 32] for k in range(0, len(order), 32)]
    random_waste = padding_fraction(lengths, unbucketed)
    train_waste = padding_fraction(lengths, bucketed_batches(lengths, 32, True, random.Random(0)))
    eval_waste = padding_fraction(lengths, bucketed_batches(lengths, 32, False))
    assert random_waste > 0.4  # mixed lengths: random batches are mostly padding
    assert train_waste < random_waste / 4
    assert eval_waste <= train_waste  # sorted order is the least padding possible


def test_sampler_shuffles_per_epoch_reproducibly_and_eval_is_fixed():
    lengths = mixed_lengths(500)
    train = LengthBucketSampler(lengths, 16, shuffle=True, seed=3)
    epoch_1, epoch_2 = list(train), list(train)
    assert epoch_1 != epoch_2
    again = LengthBucketSampler(lengths, 16, shuffle=True, seed=3)
    assert list(again) == epoch_1
    assert len(train) == len(epoch_1) == 32
    evaluation = LengthBucketSampler(lengths, 16, shuffle=False)
    assert list(evaluation) == list(evaluation)


def test_loader_pads_each_batch_to_its_longest(tokenizer, sentiment):
    loader = make_bucketed_loader(sentiment, batch_size=32, shuffle=True, seed=0)
    seen = 0
    for batch in loader:
        assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
        assert all(t.dtype == torch.int64 for t in batch.values())
        lengths = batch["attention_mask"].sum(dim=1)
        assert batch["input_ids"].shape[1] == lengths.max()  # dynamic padding
        padding = batch["attention_mask"] == 0
        assert batch["input_ids"][padding].eq(tokenizer.pad_token_id).all()
        assert batch["labels"].shape == (len(lengths),)
        seen += len(lengths)
    assert seen == len(sentiment)


def test_sampler_set_epoch_replays_an_epoch_and_shards_are_disjoint():
    lengths = mixed_lengths(500)
    sampler = LengthBucketSampler(lengths, 16, shuffle=True, seed=3)
    epochs = [list(sampler) for _ in range(3)]
    sampler.set_epoch(1)  # what the trainer does when it resumes in the middle of epoch 1
    assert list(sampler) == epochs[1]
    shards = [
        LengthBucketSampler(lengths, 16, True, seed=3, num_replicas=2, rank=r) for r in (0, 1)
    ]
    for shard in shards:
        shard.set_epoch(2)
    first, second = (list(shard) for shard in shards)
    assert len(first) == len(second) == len(shards[0])  # equal counts: no process waits forever
    assert not {i for b in first for i in b} & {i for b in second for i in b}
    assert sorted(first + second) == sorted(epochs[2][: len(first) + len(second)])
    with pytest.raises(ValueError, match="rank"):
        LengthBucketSampler(lengths, 16, True, num_replicas=2, rank=2)
