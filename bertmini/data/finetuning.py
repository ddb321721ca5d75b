"""Fine-tuning data: labelled sentences (or sentence pairs) in length-bucketed batches.

A classification example is ``[CLS] text [SEP]`` (single sentence, e.g. sentiment) or
``[CLS] text [SEP] text_pair [SEP]`` (sentence pair, e.g. entailment) with one integer label;
the classifier reads the ``[CLS]`` position. Texts longer than ``max_seq_len`` are truncated
(for pairs, the longer text loses tokens from its end first, as the tokenizer does).

Padding is wasted work: a batch is as long as its longest example. Batching examples of
similar length cuts that waste. :class:`LengthBucketSampler` sorts examples by length, cuts the
sorted list into buckets of a few batches, shuffles inside each bucket and then shuffles the
order of the batches (training), or keeps the sorted order (evaluation, deterministic).
:func:`padding_fraction` measures what it saves.

A token-level (tagging) example is ``[CLS] word pieces [SEP]`` with one label per word: on the
word's first WordPiece, -100 on its other pieces and on [CLS]/[SEP] (BERT's NER recipe).

A batch is a dict of int64 tensors::

    input_ids       (batch, seq)   padded with [PAD] to the batch's longest example
    token_type_ids  (batch, seq)   0 for the first text, 1 for the second, 0 on padding
    attention_mask  (batch, seq)   1 = real token, 0 = padding
    labels          (batch,)       class ids, or (batch, seq) tags with -100 where none

A :class:`Task` holds a whole labelled task (its splits and label names), from the embedded
generators (`data/tasks.py`), the hub or local files (`data/real.py`).

Taught in chapter 08 (`chapters/08_finetuning.ipynb`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ..model import IGNORE_INDEX
from .pretraining import EncodedExamples, pad_batch

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer


@dataclass
class Task:
    """A labelled fine-tuning task.

    splits: {split: columns}. Sequence tasks (``kind="sequence"``) have columns ``text``,
        optionally ``text_pair``, and ``label`` (class ids); token tasks (``kind="token"``) have
        ``words`` (a list of words per example) and ``tags`` (one class id per word).
    label_names: the name of each class id, e.g. ``["negative", "positive"]``.
    source: what the task is, for the record kept beside a fine-tuned model.
    """

    name: str
    splits: dict[str, dict[str, list]]
    label_names: list[str]
    kind: str = "sequence"
    source: dict | None = None

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))

    def dataset(self, split: str, tokenizer: Tokenizer, max_seq_len: int) -> Dataset:
        """The split as a tokenized dataset (sequence or token classification)."""
        columns = self.splits[split]
        if self.kind == "token":
            return TokenClassificationDataset(
                columns["words"], columns["tags"], tokenizer, max_seq_len
            )
        return ClassificationDataset(
            columns["text"], columns["label"], tokenizer, max_seq_len, columns.get("text_pair")
        )

    @classmethod
    def from_rows(cls, name: str, rows: dict[str, list[tuple[str, int]]], label_names: list[str]):
        """From ``{split: [(text, label), ...]}``, the form `load_task` returns."""
        splits = {
            split: {"text": [text for text, _ in examples], "label": [y for _, y in examples]}
            for split, examples in rows.items()
        }
        return cls(name, splits, label_names, source={"task": name})


class ClassificationDataset(EncodedExamples):
    """Texts (or text pairs) with integer labels, tokenized once up front.

    Args:
        texts: the (first) text of each example; must not be empty.
        labels: one class id (>= 0) per text.
        tokenizer: a bertmini ``Tokenizer``.
        max_seq_len: longest example, special tokens included; longer texts are truncated.
        text_pairs: the second text of each example, for sentence-pair tasks.

    Each item is a dict: ``input_ids`` (seq,), ``token_type_ids`` (seq,), ``labels`` ().
    """

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence[int],
        tokenizer: Tokenizer,
        max_seq_len: int = 128,
        text_pairs: Sequence[str] | None = None,
    ) -> None:
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings; got one string. Wrap it: [text].")
        if len(texts) != len(labels):
            raise ValueError(
                f"got {len(texts)} texts but {len(labels)} labels; need one label per text."
            )
        if text_pairs is not None and len(text_pairs) != len(texts):
            raise ValueError(
                f"got {len(texts)} texts but {len(text_pairs)} text_pairs; need one pair each."
            )
        min_len = 3 if text_pairs is None else 5  # [CLS] a [SEP] (b [SEP]): one token each
        if max_seq_len < min_len:
            raise ValueError(
                f"max_seq_len must be >= {min_len} to hold any text; got {max_seq_len}."
            )
        if len(texts) == 0:
            raise ValueError("no examples: texts is empty.")
        _check_texts(texts, "texts")
        if text_pairs is not None:
            _check_texts(text_pairs, "text_pairs")
        bad_labels = [
            i for i, label in enumerate(labels) if not isinstance(label, Integral) or label < 0
        ]
        if bad_labels:
            raise ValueError(
                f"labels must be class ids >= 0; example {bad_labels[0]} has "
                f"{labels[bad_labels[0]]!r}. "
                "(Unlabelled splits, such as GLUE test sets with label -1, cannot be trained on.)"
            )

        self.pad_token_id: int = tokenizer.pad_token_id  # for the collator
        # The tokenizer adds [CLS]/[SEP], segment ids, and truncates the longer text first.
        encoded = tokenizer(
            list(texts),
            None if text_pairs is None else list(text_pairs),
            max_length=max_seq_len,
            padding=False,
            return_tensors=None,
        )
        self.examples: list[tuple[list[int], list[int], int]] = list(
            zip(encoded["input_ids"], encoded["token_type_ids"], map(int, labels), strict=True)
        )

    @property
    def lengths(self) -> list[int]:
        """Number of tokens of each example, special tokens included."""
        return [len(input_ids) for input_ids, _, _ in self.examples]


def _check_texts(texts: Sequence[str], name: str) -> None:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] is a {type(text).__name__}; expected a string.")
        if not text.strip():
            raise ValueError(
                f"{name}[{i}] is empty; every example needs some text. Drop empty rows first."
            )


class TokenClassificationDataset(Dataset):
    """Sentences as lists of words, with one tag (class id) per word.

    Each word is split into WordPieces; its tag goes on the first piece and -100 on the rest,
    so the loss and the metrics count each word once. Sentences longer than ``max_seq_len``
    lose their last words. Items are dicts of ``input_ids``, ``token_type_ids`` and
    ``labels``, each (seq,).
    """

    def __init__(
        self,
        words: Sequence[Sequence[str]],
        tags: Sequence[Sequence[int]],
        tokenizer: Tokenizer,
        max_seq_len: int = 128,
    ) -> None:
        if len(words) != len(tags) or not words:
            raise ValueError(f"need one tag list per sentence; got {len(words)} and {len(tags)}")
        for i, (sentence, sentence_tags) in enumerate(zip(words, tags, strict=True)):
            if not sentence or len(sentence) != len(sentence_tags):
                raise ValueError(
                    f"sentence {i} has {len(sentence)} words and {len(sentence_tags)} tags; "
                    "need one tag per word, and at least one word"
                )
        if max_seq_len < 3:
            raise ValueError(f"max_seq_len must be >= 3 to hold a word; got {max_seq_len}.")
        self.pad_token_id: int = tokenizer.pad_token_id
        vocabulary = sorted({word for sentence in words for word in sentence})
        encoded = tokenizer(
            vocabulary, padding=False, return_tensors=None, add_special_tokens=False
        )
        pieces = {
            word: ids or [tokenizer.unk_token_id]
            for word, ids in zip(vocabulary, encoded["input_ids"], strict=True)
        }
        self.examples: list[tuple[list[int], list[int]]] = []
        for sentence, sentence_tags in zip(words, tags, strict=True):
            input_ids, labels = [tokenizer.cls_token_id], [IGNORE_INDEX]
            for word, tag in zip(sentence, sentence_tags, strict=True):
                word_ids = pieces[word][: max_seq_len - 1 - len(input_ids)]
                input_ids += word_ids
                labels += [int(tag)] + [IGNORE_INDEX] * (len(word_ids) - 1)
                if len(input_ids) >= max_seq_len - 1:
                    break
            self.examples.append(
                (input_ids + [tokenizer.sep_token_id], labels[: len(input_ids)] + [IGNORE_INDEX])
            )

    @property
    def lengths(self) -> list[int]:
        return [len(input_ids) for input_ids, _ in self.examples]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        input_ids, labels = self.examples[index]
        return {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),  # (seq,)
            "token_type_ids": torch.zeros(len(input_ids), dtype=torch.long),  # (seq,)
            "labels": torch.tensor(labels, dtype=torch.long),  # (seq,)
        }


class ClassificationCollator:
    """Pads a list of dataset items to the longest one (dynamic padding); tags pad with -100."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
        if len(examples) == 0:
            raise ValueError("cannot collate an empty batch.")
        return {
            "input_ids": pad_batch([e["input_ids"] for e in examples], self.pad_token_id),
            "token_type_ids": pad_batch([e["token_type_ids"] for e in examples], 0),
            "attention_mask": pad_batch([torch.ones_like(e["input_ids"]) for e in examples], 0),
            "labels": (
                torch.stack([e["labels"] for e in examples])  # (batch,)
                if examples[0]["labels"].dim() == 0
                else pad_batch([e["labels"] for e in examples], IGNORE_INDEX)  # (batch, seq)
            ),
        }


def bucketed_batches(
    lengths: Sequence[int],
    batch_size: int,
    shuffle: bool,
    rng: random.Random | None = None,
    batches_per_bucket: int = 4,
) -> list[list[int]]:
    """Group example indices into batches of similar length.

    Evaluation (``shuffle=False``): sort by length and cut into batches — deterministic, and
    the least padding possible. Training (``shuffle=True``): sort by length (ties broken at
    random), cut into buckets of ``batches_per_bucket`` batches, shuffle inside each bucket,
    cut into batches, then shuffle the batch order, so batches still differ every epoch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    if not shuffle:
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]

    rng = rng or random.Random(0)
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    bucket_size = batch_size * batches_per_bucket
    batches = []
    for start in range(0, len(order), bucket_size):
        bucket = order[start : start + bucket_size]
        rng.shuffle(bucket)
        batches += [bucket[k : k + batch_size] for k in range(0, len(bucket), batch_size)]
    rng.shuffle(batches)
    return batches


class LengthBucketSampler(Sampler[list[int]]):
    """A ``batch_sampler`` for ``DataLoader`` that yields length-bucketed batches of indices.

    With ``shuffle=True`` each pass (epoch) draws new batches from ``random.Random(seed + epoch)``,
    so runs are reproducible and resumable (the trainer calls ``set_epoch``, as for PyTorch's
    ``DistributedSampler``); with ``shuffle=False`` the batches are the same every pass. With
    ``num_replicas`` > 1 (data parallelism) every process draws the same batches and keeps every
    ``num_replicas``-th one, starting at its ``rank``.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"need 0 <= rank < num_replicas, got rank {rank}, {num_replicas}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass draw the batches of `epoch`."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        batches = bucketed_batches(self.lengths, self.batch_size, self.shuffle, rng)
        usable = len(batches) - len(batches) % self.num_replicas  # every process: same count
        yield from batches[self.rank : usable : self.num_replicas]

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size) // self.num_replicas


def make_bucketed_loader(
    dataset: ClassificationDataset | TokenClassificationDataset,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader over ``dataset`` with length-bucketed batches and dynamic padding.

    With ``shuffle=False`` (evaluation) the batches come in order of length, not in dataset
    order, and every process sees all of them. With ``shuffle=True`` (training) under
    ``torchrun`` each process gets its own share of the batches (``batch_size`` is per process).
    """
    sharded = shuffle and dist.is_initialized()
    world_size = dist.get_world_size() if sharded else 1
    rank = dist.get_rank() if sharded else 0
    sampler = LengthBucketSampler(dataset.lengths, batch_size, shuffle, seed, world_size, rank)
    return DataLoader(
        dataset, batch_sampler=sampler, collate_fn=ClassificationCollator(dataset.pad_token_id)
    )


def padding_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of the padded (batch, seq) positions that are padding: 0 = no waste."""
    padded = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    real = sum(lengths[i] for batch in batches for i in batch)
    return 1.0 - real / padded
