"""NSP pair building, MLM masking statistics and the pretraining collator."""

import random

import pytest
import torch

from bertmini.data.pretraining import (
    IS_NEXT,
    NOT_NEXT,
    PretrainingCollator,
    PretrainingDataset,
    make_nsp_pairs,
    mask_tokens,
    split_sentences,
    tokenize_documents,
)
from bertmini.tokenizer import Tokenizer

WORDS = (
    "the a cat dog sat ran on under mat house quickly slowly jumped river unaffable "
    "photosynthesis blorfing zebra playing reconsidered antidisestablishment green of and"
).split()


def random_documents(num_docs, seed=0):
    """Documents of random sentences; some words split into several word pieces."""
    rng = random.Random(seed)
    return [
        [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 15))) + "."
            for _ in range(rng.randint(1, 8))
        ]
        for _ in range(num_docs)
    ]


@pytest.fixture(scope="module")
def dataset(tokenizer):
    return PretrainingDataset.from_documents(random_documents(600), tokenizer, max_seq_len=64)


# ---- NSP pairs ------------------------------------------------------------------------------


def traceable_documents(num_docs, seed=0):
    """Token ids that encode where they come from: doc * 100_000 + position in the doc."""
    rng = random.Random(seed)
    documents = []
    for doc in range(num_docs):
        sentences, position = [], 0
        for _ in range(rng.randint(1, 10)):
            length = rng.randint(1, 25)
            sentences.append([doc * 100_000 + position + p for p in range(length)])
            position += length
        documents.append(sentences)
    return documents


def test_nsp_pairs_fit_are_balanced_and_come_from_the_right_place():
    max_seq_len = 40
    pairs = make_nsp_pairs(traceable_documents(3000), max_seq_len, random.Random(0))
    assert len(pairs) > 5000
    labels = [pair.next_sentence_label for pair in pairs]
    assert set(labels) == {IS_NEXT, NOT_NEXT}
    assert abs(sum(labels) / len(labels) - 0.5) < 0.02

    for a, b, label in pairs:
        assert len(a) >= 1 and len(b) >= 1
        assert len(a) + len(b) <= max_seq_len - 3
        doc_a = {t // 100_000 for t in a}
        doc_b = {t // 100_000 for t in b}
        assert len(doc_a) == 1 and len(doc_b) == 1  # a segment never spans documents
        # Truncation trims ends only: each segment is a contiguous run of its document.
        assert a == list(range(a[0], a[0] + len(a)))
        assert b == list(range(b[0], b[0] + len(b)))
        if label == IS_NEXT:
            assert doc_a == doc_b and b[0] > a[-1]  # B follows A in the same document
        else:
            assert doc_a != doc_b  # NotNext never draws from A's own document


def test_nsp_pairs_use_the_whole_budget_mostly_and_are_seeded():
    documents = traceable_documents(500)
    pairs = make_nsp_pairs(documents, 64, random.Random(1), short_seq_prob=0.1)
    lengths = [len(a) + len(b) for a, b, _ in pairs]
    assert max(lengths) == 61
    assert make_nsp_pairs(documents, 64, random.Random(1)) == pairs
    assert make_nsp_pairs(documents, 64, random.Random(2)) != pairs


def test_longer_segment_is_truncated_first():
    # One huge sentence per document: every pair needs truncation.
    documents = [[list(range(d * 10_000, d * 10_000 + 1000))] for d in range(50)]
    pairs = make_nsp_pairs(documents, 32, random.Random(0))
    for a, b, _ in pairs:
        assert len(a) + len(b) == 29
        if abs(len(a) - len(b)) > 1:
            # Only the longer one was trimmed: the shorter is still whole (IsNext splits the
            # single sentence in two, so A starts the document or B ends it).
            assert (len(a) < len(b) and a[0] % 10_000 == 0) or b[-1] % 10_000 == 999
    # Two long segments are trimmed in turn, down to equal lengths.
    assert sum(abs(len(a) - len(b)) <= 1 for a, b, _ in pairs) > len(pairs) / 3


def test_nsp_bad_input():
    with pytest.raises(ValueError, match="at least 2 non-empty documents"):
        make_nsp_pairs([[[1, 2, 3]], [[]], []], 32, random.Random(0))
    with pytest.raises(ValueError, match="max_seq_len"):
        make_nsp_pairs(traceable_documents(5), 4, random.Random(0))


def test_dataset_examples_are_cls_a_sep_b_sep(tokenizer, dataset):
    assert len(dataset) > 500
    for index in range(0, len(dataset), 50):
        item = dataset[index]
        ids, segments = item["input_ids"], item["token_type_ids"]
        assert ids.dtype == segments.dtype == torch.int64
        assert len(ids) <= 64
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        seps = (ids == tokenizer.sep_token_id).nonzero().flatten().tolist()
        assert len(seps) == 2
        # Segment 0 covers [CLS] A [SEP]; segment 1 covers B [SEP].
        assert segments[: seps[0] + 1].eq(0).all() and segments[seps[0] + 1 :].eq(1).all()
        assert item["next_sentence_label"].item() in (0, 1)


def test_from_documents_bad_input(tokenizer):
    with pytest.raises(ValueError, match="non-empty documents"):
        PretrainingDataset.from_documents([["", "   "], [""]], tokenizer)
    with pytest.raises(TypeError, match="single string"):
        PretrainingDataset.from_documents("just one text. Two sentences.", tokenizer)
    with pytest.raises(TypeError, match="document 1"):
        PretrainingDataset.from_documents([["ok."], [1, 2]], tokenizer)
    # A document given as one string is split into sentences; empty sentences vanish.
    tokenized = tokenize_documents(["One here. Two there!", ["", "three."]], tokenizer)
    assert [len(doc) for doc in tokenized] == [2, 1]
    assert split_sentences("A b. C d? E!") == ["A b.", "C d?", "E!"]


def test_text_longer_than_max_seq_len_is_truncated(tokenizer):
    long_text = " ".join(["word"] * 500) + "."
    data = PretrainingDataset.from_documents([[long_text], [long_text, "short."]], tokenizer, 32)
    assert all(len(data[i]["input_ids"]) <= 32 for i in range(len(data)))


def test_embedded_corpus_builds_quickly(tokenizer):
    import time

    from bertmini.data.corpus import generate_corpus

    start = time.perf_counter()
    data = PretrainingDataset.from_documents(generate_corpus().train, tokenizer, max_seq_len=128)
    seconds = time.perf_counter() - start
    assert len(data) > 100
    assert seconds < 30, f"building took {seconds:.1f}s; tokenization must be batched"


# ---- MLM masking ----------------------------------------------------------------------------


def collate_epochs(dataset, collator, epochs, batch_size=64):
    """Collate the whole dataset several times: masks are fresh on every pass."""
    batches = []
    for _ in range(epochs):
        for start in range(0, len(dataset), batch_size):
            examples = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
            original = collate_unmasked(examples, collator.tokenizer.pad_token_id)
            batches.append((original, collator(examples)))
    return batches


def collate_unmasked(examples, pad_id):
    from bertmini.data.pretraining import pad_batch

    return pad_batch([e["input_ids"] for e in examples], pad_id)


@pytest.mark.parametrize("whole_word", [False, True])
def test_masking_statistics(tokenizer, dataset, whole_word):
    generator = torch.Generator().manual_seed(0)
    collator = PretrainingCollator(tokenizer, whole_word=whole_word, generator=generator)
    batches = collate_epochs(dataset, collator, epochs=4)
    special = torch.tensor(sorted(tokenizer.special_ids))

    candidates = chosen = as_mask = unchanged = replaced = 0
    for original, batch in batches:
        assert batch["input_ids"].shape == original.shape  # padded to the longest example
        is_pad = batch["attention_mask"] == 0
        assert original[is_pad].eq(tokenizer.pad_token_id).all()
        is_candidate = ~torch.isin(original, special) & ~is_pad
        is_chosen = batch["labels"] != -100
        # Never a special token or padding; labels hold the original ids.
        assert not (is_chosen & ~is_candidate).any()
        assert torch.equal(batch["labels"][is_chosen], original[is_chosen])
        # Tokens that were not chosen are left alone.
        assert torch.equal(batch["input_ids"][~is_chosen], original[~is_chosen])
        new = batch["input_ids"][is_chosen]
        candidates += int(is_candidate.sum())
        chosen += int(is_chosen.sum())
        as_mask += int((new == tokenizer.mask_token_id).sum())
        unchanged += int((new == original[is_chosen]).sum())
        replacements = new[(new != tokenizer.mask_token_id) & (new != original[is_chosen])]
        replaced += len(replacements)
        assert not torch.isin(replacements, special).any()

    assert candidates >= 100_000
    assert abs(chosen / candidates - 0.15) < 0.005
    assert abs(as_mask / chosen - 0.8) < 0.01
    assert abs(unchanged / chosen - 0.1) < 0.01
    assert abs(replaced / chosen - 0.1) < 0.01


def word_spans(tokens):
    """[(start, end)] of each word: a piece and the '##' pieces after it. A '##' piece right
    after [CLS]/[SEP] (its word was cut by truncation) is a word of its own."""
    spans = []
    for i, token in enumerate(tokens):
        if token.startswith("##") and spans and tokens[i - 1] not in ("[CLS]", "[SEP]"):
            spans[-1][1] = i + 1
        else:
            spans.append([i, i + 1])
    return spans


def test_whole_word_masking_never_splits_a_word(tokenizer, dataset):
    collator = PretrainingCollator(
        tokenizer, whole_word=True, generator=torch.Generator().manual_seed(1)
    )
    multi_piece_words_chosen = 0
    for original, batch in collate_epochs(dataset, collator, epochs=1):
        for row in range(len(original)):
            tokens = tokenizer.convert_ids_to_tokens(original[row].tolist())
            chosen = (batch["labels"][row] != -100).tolist()
            for start, end in word_spans(tokens):
                assert len(set(chosen[start:end])) == 1, tokens[start:end]  # all or none
                multi_piece_words_chosen += end - start > 1 and chosen[start]
    assert multi_piece_words_chosen > 100  # the test did see words of several pieces


def test_replacements_never_special_with_a_tiny_vocabulary():
    # 5 special ids out of 8: a pool that let specials in would be caught at once.
    tokenizer = Tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "##c"])
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, 8, (400, 50), generator=generator)
    input_ids[:, 0] = tokenizer.cls_token_id
    input_ids[:, 40:] = tokenizer.pad_token_id
    masked, labels = mask_tokens(input_ids, None, tokenizer, generator=generator)
    random_positions = (labels != -100) & (masked != tokenizer.mask_token_id)
    assert set(masked[random_positions].unique().tolist()) == {5, 6, 7}
    assert labels[:, 0].eq(-100).all() and labels[:, 40:].eq(-100).all()
    assert masked[:, 40:].eq(tokenizer.pad_token_id).all()


def test_masks_are_seeded_and_fresh_each_epoch(tokenizer, dataset):
    examples = [dataset[i] for i in range(32)]

    def collate(seed):
        return PretrainingCollator(tokenizer, generator=torch.Generator().manual_seed(seed))

    first = collate(0)
    epoch_1, epoch_2 = first(examples), first(examples)
    assert not torch.equal(epoch_1["labels"], epoch_2["labels"])  # dynamic masking
    assert torch.equal(collate(0)(examples)["input_ids"], epoch_1["input_ids"])  # seeded
    assert torch.equal(epoch_1["next_sentence_label"], epoch_2["next_sentence_label"])


def test_mask_tokens_bad_input(tokenizer):
    ids = torch.full((2, 5), 2000)
    with pytest.raises(ValueError, match="mlm_probability"):
        mask_tokens(ids, None, tokenizer, mlm_probability=1.5)
    with pytest.raises(TypeError, match="integer tensor"):
        mask_tokens(ids.float(), None, tokenizer)
    with pytest.raises(ValueError, match="shape"):
        mask_tokens(ids, torch.zeros(2, 4, dtype=torch.bool), tokenizer)
    with pytest.raises(ValueError, match="empty batch"):
        PretrainingCollator(tokenizer)([])
