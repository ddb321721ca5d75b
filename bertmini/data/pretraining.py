"""Pretraining data as in the original BERT: sentence pairs for NSP, masked tokens for MLM.

BERT learns from two self-made tasks, so raw text is all it needs:

1. **Next sentence prediction (NSP).** Each example is two segments A and B packed as
   ``[CLS] A [SEP] B [SEP]``, with segment ids 0 for ``[CLS] A [SEP]`` and 1 for ``B [SEP]``.
   Half the time B is the text that really follows A (label 0 = IsNext, as Hugging Face);
   half the time B is a span from another document (label 1 = NotNext).
   :func:`make_nsp_pairs` builds them the way Google's ``create_pretraining_data.py`` does:
   walk a document sentence by sentence, fill a chunk up to a target length (sometimes a
   shorter one, so the model also sees short inputs), split the chunk at a random sentence
   boundary, and trim the longer segment until the pair fits in ``max_seq_len``.

2. **Masked language modelling (MLM).** :func:`mask_tokens` chooses 15% of the real tokens
   (never ``[CLS]``, ``[SEP]`` or padding). Of the chosen ones, 80% become ``[MASK]``, 10% a
   random token and 10% stay as they are: the model cannot rely on seeing ``[MASK]``, which
   never occurs at fine-tuning time. ``labels`` hold the original id at chosen positions and
   -100 (ignored by ``cross_entropy``) everywhere else. With ``whole_word=True`` a word's
   pieces (``play ##ing``) are chosen together, so the model cannot guess ``##ing`` from
   ``play`` alone.

Pairs are built once (:class:`PretrainingDataset`); masking happens in the collator
(:class:`PretrainingCollator`), so every epoch sees fresh masks. This is RoBERTa's *dynamic
masking*; Google's script fixed the masks when it wrote the data (and repeated each document
``dupe_factor`` times with different masks to compensate). The collator also pads each batch
only to its longest example (*dynamic padding*).

A batch is a dict of int64 tensors::

    input_ids            (batch, seq)   [CLS] A [SEP] B [SEP] [PAD]..., some ids masked
    token_type_ids       (batch, seq)   segment ids: 0 for A, 1 for B, 0 on padding
    attention_mask       (batch, seq)   1 = real token, 0 = padding
    labels               (batch, seq)   original id where masked, -100 elsewhere
    next_sentence_label  (batch,)       0 = IsNext, 1 = NotNext

Taught in chapter 06 (`chapters/06_mlm_nsp_data.ipynb`).
"""

from __future__ import annotations

import random
import re
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from ..guard import refuse_if_checked
from ..model import IGNORE_INDEX

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer


# ---------------------------------------------------------------------------------------------
# From text to token ids
# ---------------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """Split running text after ``.``, ``!`` or ``?`` followed by whitespace (a simple rule)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def tokenize_documents(
    documents: Sequence[Sequence[str] | str], tokenizer: Tokenizer
) -> list[list[list[int]]]:
    """Turn documents (lists of sentences) into lists of token-id lists, in one batch call.

    A document given as one string is split into sentences with :func:`split_sentences`.
    Empty sentences are dropped (they carry no tokens); a document left empty stays empty.
    """
    if isinstance(documents, str):
        raise TypeError(
            "documents must be a list of documents (each a list of sentences or a string); "
            "got a single string. Wrap it: [text]."
        )
    sentences_per_doc = []
    for index, document in enumerate(documents):
        if isinstance(document, str):
            document = split_sentences(document)
        elif not all(isinstance(sentence, str) for sentence in document):
            raise TypeError(
                f"document {index} must be a string or a list of sentence strings; "
                f"got {type(document).__name__} containing non-strings."
            )
        sentences_per_doc.append([s for s in document if s.strip()])

    # One batch call for the whole corpus: the fast (Rust) tokenizer then runs in parallel.
    all_sentences = [s for doc in sentences_per_doc for s in doc]
    flat_ids = tokenizer.encode_batch(all_sentences, add_special_tokens=False)
    tokenized, start = [], 0
    for doc in sentences_per_doc:
        sentence_ids = flat_ids[start : start + len(doc)]
        tokenized.append([ids for ids in sentence_ids if ids])
        start += len(doc)
    return tokenized


# ---------------------------------------------------------------------------------------------
# Next sentence prediction: building the pairs
# ---------------------------------------------------------------------------------------------

IS_NEXT, NOT_NEXT = 0, 1


class NspPair(NamedTuple):
    tokens_a: list[int]
    tokens_b: list[int]
    next_sentence_label: int  # 0 = IsNext, 1 = NotNext


def truncate_pair(
    tokens_a: list[int], tokens_b: list[int], max_num_tokens: int, rng: random.Random
) -> None:
    """Trim the longer segment, one token at a time, until ``len(a) + len(b) <= max_num_tokens``.

    Tokens go from the front or the back at random (as Google), so the model does not learn
    that a segment always ends (or starts) at a sentence boundary. Works in place.
    """
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def make_nsp_pairs(
    documents: Sequence[Sequence[Sequence[int]]],
    max_seq_len: int,
    rng: random.Random,
    short_seq_prob: float = 0.1,
) -> list[NspPair]:
    """Build NSP sentence pairs from tokenized documents.

    Args:
        documents: each document is a list of sentences, each sentence a list of token ids
            (no special tokens). Empty sentences and documents are skipped.
        max_seq_len: length of ``[CLS] A [SEP] B [SEP]``; A and B share ``max_seq_len - 3``.
        rng: the only source of randomness, so a seed reproduces the pairs exactly.
        short_seq_prob: chance that a chunk aims at a random shorter length.

    Returns:
        pairs with ``1 <= len(a)``, ``1 <= len(b)`` and ``len(a) + len(b) <= max_seq_len - 3``;
        ``next_sentence_label`` is 0 (IsNext) or 1 (NotNext), each with probability 1/2.
        A NotNext B always comes from a different document. A text longer than the budget is
        truncated, never rejected.

    One difference from Google: when a chunk holds a single sentence and IsNext is drawn,
    Google switches to NotNext; that skews labels towards NotNext on corpora of long
    sentences. Here that sentence is split at a random token instead, so B is still the text
    that really follows A and the labels stay 50/50.
    """
    documents, non_empty = _usable_documents(documents, max_seq_len, short_seq_prob)
    max_num_tokens = max_seq_len - 3  # room for [CLS], [SEP], [SEP]
    pairs = []
    for doc_index in non_empty:
        document = documents[doc_index]
        # Mostly fill the whole budget; sometimes aim shorter so short inputs are seen too.
        target_len = max_num_tokens
        if rng.random() < short_seq_prob:
            target_len = rng.randint(2, max_num_tokens)

        chunk: list[list[int]] = []
        chunk_len = 0
        i = 0
        while i < len(document):
            chunk.append(document[i])
            chunk_len += len(document[i])
            if i == len(document) - 1 or chunk_len >= target_len:
                tokens_a, tokens_b, label, unused = _pair_from_chunk(
                    chunk, documents, non_empty, doc_index, target_len, rng
                )
                i -= unused  # the sentences after A that B did not use start the next chunk
                truncate_pair(tokens_a, tokens_b, max_num_tokens, rng)
                pairs.append(NspPair(tokens_a, tokens_b, label))
                chunk, chunk_len = [], 0
            i += 1
    return pairs


def _usable_documents(documents, max_seq_len: int, short_seq_prob: float):
    """The documents as lists of non-empty sentences, and the indices of the non-empty ones;
    a clear error when the arguments cannot give NSP pairs."""
    if max_seq_len < 5:
        raise ValueError(
            f"max_seq_len must be at least 5 ([CLS] a [SEP] b [SEP]); got {max_seq_len}."
        )
    if not 0.0 <= short_seq_prob <= 1.0:
        raise ValueError(f"short_seq_prob must be in [0, 1]; got {short_seq_prob}.")
    documents = [[list(s) for s in doc if len(s) > 0] for doc in documents]
    non_empty = [i for i, doc in enumerate(documents) if doc]
    if len(non_empty) < 2:
        raise ValueError(
            f"NSP needs at least 2 non-empty documents (NotNext draws B from another one); "
            f"got {len(non_empty)}. Pass more text, or check that your sentences are not empty."
        )
    return documents, non_empty


def _pair_from_chunk(chunk, documents, non_empty, doc_index, target_len, rng):
    """Split a chunk of sentences into (tokens_a, tokens_b, label, unused): A is the chunk's
    first sentences, B the rest (IsNext) or a span of another document (NotNext); `unused`
    counts the chunk's sentences after A that B did not take."""
    label = IS_NEXT if rng.random() < 0.5 else NOT_NEXT
    # A = the first `a_end` sentences of the chunk (at least one).
    a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
    tokens_a = [t for sentence in chunk[:a_end] for t in sentence]
    if label == NOT_NEXT:
        tokens_b = _random_span(documents, non_empty, doc_index, target_len - len(tokens_a), rng)
        return tokens_a, tokens_b, label, len(chunk) - a_end
    if len(chunk) >= 2:
        return tokens_a, [t for sentence in chunk[a_end:] for t in sentence], label, 0
    if len(tokens_a) >= 2:
        # One sentence only: its second part is the real continuation of its first.
        split = rng.randint(1, len(tokens_a) - 1)
        return tokens_a[:split], tokens_a[split:], label, 0
    # A one-token document end cannot be split; fall back to a random B.
    tokens_b = _random_span(documents, non_empty, doc_index, target_len - 1, rng)
    return tokens_a, tokens_b, NOT_NEXT, 0


def _random_span(
    documents: list[list[list[int]]],
    non_empty: list[int],
    exclude: int,
    target_len: int,
    rng: random.Random,
) -> list[int]:
    """Sentences in a row from a random document other than ``exclude`` (~``target_len`` tokens)."""
    # Uniform over the other documents: draw from all but the last one, and let the last one
    # stand in for `exclude` when it comes up.
    other = rng.choice(non_empty[:-1])
    if other == exclude:
        other = non_empty[-1]
    document = documents[other]
    span: list[int] = []
    for sentence in document[rng.randint(0, len(document) - 1) :]:
        span.extend(sentence)
        if len(span) >= target_len:
            break
    return span


# ---------------------------------------------------------------------------------------------
# Masked language modelling
# ---------------------------------------------------------------------------------------------

MLM_PROBABILITY = 0.15  # share of tokens BERT predicts (of them 80% [MASK], 10% random, 10% kept)


def mask_tokens(
    input_ids: Tensor,
    special_tokens_mask: Tensor | None,
    tokenizer: Tokenizer,
    mlm_probability: float = MLM_PROBABILITY,
    whole_word: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Choose tokens for MLM and corrupt them 80/10/10 (BERT's recipe), vectorised over a batch.

    Args:
        input_ids: (batch, seq) int64 token ids, padded with ``tokenizer.pad_token_id``.
        special_tokens_mask: (batch, seq) bool, True at ``[CLS]``/``[SEP]``/padding...; None
            computes it from ``tokenizer.special_ids``. Padding is never chosen either way.
        tokenizer: gives ``mask_token_id``, ``pad_token_id``, ``special_ids``, ``len()`` and,
            for ``whole_word``, ``convert_ids_to_tokens`` (a ``##`` piece continues a word).
        mlm_probability: chance that a candidate token (or, with ``whole_word``, a word) is chosen.
        whole_word: choose whole words: all pieces of a word or none. Each word is chosen with
            ``mlm_probability``, so the expected fraction of chosen tokens is unchanged.
            The 80/10/10 corruption is still decided token by token, as in Google's code.
        generator: a seeded ``torch.Generator`` for reproducible masks.

    Returns:
        ``(masked_input_ids, labels)``, both (batch, seq) int64: chosen positions hold
        ``[MASK]`` (80%), a random non-special token (10%) or the original token (10%);
        ``labels`` hold the original id at chosen positions and -100 elsewhere.
        ``input_ids`` is not modified.
    """
    refuse_if_checked("mask_tokens")  # see bertmini.guard
    if not isinstance(input_ids, Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
        raise TypeError("input_ids must be an integer tensor of shape (batch, seq).")
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(
            f"mlm_probability must be in (0, 1); got {mlm_probability} (BERT uses 0.15)."
        )
    special_ids = torch.tensor(sorted(tokenizer.special_ids), device=input_ids.device)
    if special_tokens_mask is None:
        special_tokens_mask = torch.isin(input_ids, special_ids)
    if special_tokens_mask.shape != input_ids.shape:
        raise ValueError(
            f"special_tokens_mask has shape {tuple(special_tokens_mask.shape)}; "
            f"expected the shape of input_ids {tuple(input_ids.shape)}."
        )
    is_candidate = ~special_tokens_mask.bool() & (input_ids != tokenizer.pad_token_id)
    chosen = _choose(input_ids, is_candidate, tokenizer, mlm_probability, whole_word, generator)

    # One draw decides the fate of each chosen token: [0, .8) mask, [.8, .9) random, else keep.
    fate = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    use_mask = chosen & (fate < 0.8)
    use_random = chosen & (fate >= 0.8) & (fate < 0.9)

    # Random replacements come uniformly from the non-special vocabulary.
    replacement_pool = _non_special_ids(len(tokenizer), special_ids)  # (num_allowed,)
    random_index = torch.randint(
        len(replacement_pool), input_ids.shape, generator=generator, device=input_ids.device
    )
    masked_input_ids = torch.where(use_mask, tokenizer.mask_token_id, input_ids)
    masked_input_ids = torch.where(use_random, replacement_pool[random_index], masked_input_ids)
    labels = torch.where(chosen, input_ids, IGNORE_INDEX)
    return masked_input_ids, labels


def _non_special_ids(vocab_size: int, special_ids: Tensor) -> Tensor:
    """(vocab_size - number of special ids,) int64: every id that is not special."""
    allowed = torch.ones(vocab_size, dtype=torch.bool, device=special_ids.device)
    allowed[special_ids] = False
    return allowed.nonzero().squeeze(1)


def _choose(input_ids, is_candidate, tokenizer, mlm_probability, whole_word, generator) -> Tensor:
    """(batch, seq) bool: the candidates chosen with probability `mlm_probability` each, or,
    with `whole_word`, all pieces of a word chosen together."""
    draw = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    if not whole_word:
        return (draw < mlm_probability) & is_candidate
    # Every position looks up the coin flip made at the start of its word.
    word_starts = _word_starts(input_ids, tokenizer) | ~is_candidate
    # A '##' piece right after [CLS]/[SEP] (a word cut by truncation) starts its own word.
    after_non_candidate = torch.ones_like(is_candidate)
    after_non_candidate[:, 1:] = ~is_candidate[:, :-1]
    word_starts |= after_non_candidate
    positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    start_of_word = torch.where(word_starts, positions, 0).cummax(dim=1).values  # (batch, seq)
    return (draw < mlm_probability).gather(1, start_of_word) & is_candidate


def _word_starts(input_ids: Tensor, tokenizer: Tokenizer) -> Tensor:
    """(batch, seq) bool: True where a token starts a word, False on ``##`` continuations."""
    unique_ids, inverse = torch.unique(input_ids, return_inverse=True)
    tokens = tokenizer.convert_ids_to_tokens(unique_ids.tolist())
    is_start = torch.tensor([not t.startswith("##") for t in tokens], device=input_ids.device)
    return is_start[inverse]


# ---------------------------------------------------------------------------------------------
# Dataset and collator
# ---------------------------------------------------------------------------------------------


def warn_if_nsp_is_solvable_from_length(documents: Sequence[Sequence[str]]) -> float:
    """Warn when most documents are a single sentence; returns their share.

    Then an IsNext pair is one sentence cut in two while a NotNext pair is a sentence plus a
    span of another document: NotNext examples are longer, and NSP can be solved from length
    alone (on single-sentence SST-2, IsNext averaged 14.7 tokens, NotNext 25.4).
    """
    single = sum(len(document) == 1 for document in documents)
    share = single / max(1, len(documents))
    if share > 0.5:
        warnings.warn(
            f"{share:.0%} of the {len(documents)} documents are a single sentence: NSP's "
            "IsNext pairs are then shorter than its NotNext pairs, so NSP can be solved from "
            "length alone. Give documents of several sentences (a blank line between "
            "documents), or pretrain without NSP (--no-nsp, nsp=False).",
            stacklevel=2,
        )
    return share


def check_dupe_factor(dupe_factor) -> None:
    """A clear error for a dupe_factor that is not a positive integer."""
    if not isinstance(dupe_factor, int) or dupe_factor < 1:
        raise ValueError(f"dupe_factor (--dupe-factor) must be an int >= 1; got {dupe_factor}.")


class EncodedExamples(Dataset):
    """Examples kept as (input_ids, token_type_ids, label) lists of ints, each item given as
    int64 tensors: ``input_ids`` (seq,), ``token_type_ids`` (seq,) and the label () under the
    keyword the model's forward takes for it, ``label_name``."""

    label_name = "labels"
    examples: list[tuple[list[int], list[int], int]]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        input_ids, token_type_ids, label = self.examples[index]
        return {
            "input_ids": torch.tensor(input_ids, dtype=torch.long),  # (seq,)
            "token_type_ids": torch.tensor(token_type_ids, dtype=torch.long),  # (seq,)
            self.label_name: torch.tensor(label, dtype=torch.long),  # ()
        }


class PretrainingDataset(EncodedExamples):
    """NSP pairs as unpadded examples ``[CLS] A [SEP] B [SEP]``, built once from documents.

    Each item is a dict: ``input_ids`` (seq,), ``token_type_ids`` (seq,) and
    ``next_sentence_label`` () — all int64, unmasked (the collator masks).

    Args:
        tokenized_documents: documents as lists of sentences as lists of token ids.
        tokenizer: gives ``cls_token_id`` and ``sep_token_id``.
        max_seq_len: the longest example, special tokens included.
        seed: seeds the pair building.
        short_seq_prob: see :func:`make_nsp_pairs`.
        dupe_factor: build pairs this many times over the corpus (different splits and random
            Bs each time); useful for a small corpus.
    """

    label_name = "next_sentence_label"

    def __init__(
        self,
        tokenized_documents: Sequence[Sequence[Sequence[int]]],
        tokenizer: Tokenizer,
        max_seq_len: int = 128,
        seed: int = 0,
        short_seq_prob: float = 0.1,
        dupe_factor: int = 1,
    ) -> None:
        check_dupe_factor(dupe_factor)
        rng = random.Random(seed)
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.examples: list[tuple[list[int], list[int], int]] = []
        for _ in range(dupe_factor):
            for a, b, label in make_nsp_pairs(
                tokenized_documents, max_seq_len, rng, short_seq_prob
            ):
                input_ids = [cls_id, *a, sep_id, *b, sep_id]
                token_type_ids = [0] * (len(a) + 2) + [1] * (len(b) + 1)
                self.examples.append((input_ids, token_type_ids, label))
        self.max_seq_len = max_seq_len

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Sequence[str] | str],
        tokenizer: Tokenizer,
        max_seq_len: int = 128,
        seed: int = 0,
        short_seq_prob: float = 0.1,
        dupe_factor: int = 1,
    ) -> PretrainingDataset:
        """Build from raw text: each document a list of sentences (or one string to split)."""
        tokenized = tokenize_documents(documents, tokenizer)
        return cls(tokenized, tokenizer, max_seq_len, seed, short_seq_prob, dupe_factor)


def pad_batch(sequences: Sequence[Tensor], pad_value: int) -> Tensor:
    """Stack 1-D tensors into (batch, longest), padding on the right with ``pad_value``."""
    return pad_sequence(list(sequences), batch_first=True, padding_value=pad_value)


class PretrainingCollator:
    """Pads a list of :class:`PretrainingDataset` items to the longest one and masks them.

    Masks are drawn at collate time, so the same example gets new masks every epoch
    (dynamic masking, as RoBERTa). Returns the batch dict described in the module docstring.
    With ``num_workers > 0`` leave ``generator`` as None: each worker then masks with its own
    seeded torch RNG, whereas a shared generator would be copied and repeat across workers.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        mlm_probability: float = MLM_PROBABILITY,
        whole_word: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.mlm_probability = mlm_probability
        self.whole_word = whole_word
        self.generator = generator

    def __call__(self, examples: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
        if len(examples) == 0:
            raise ValueError("cannot collate an empty batch.")
        pad_id = self.tokenizer.pad_token_id
        input_ids = pad_batch([e["input_ids"] for e in examples], pad_id)  # (batch, seq)
        token_type_ids = pad_batch([e["token_type_ids"] for e in examples], 0)  # (batch, seq)
        attention_mask = pad_batch([torch.ones_like(e["input_ids"]) for e in examples], 0)
        special_ids = torch.tensor(sorted(self.tokenizer.special_ids))
        special_tokens_mask = torch.isin(input_ids, special_ids) | (attention_mask == 0)
        masked_input_ids, labels = mask_tokens(
            input_ids,
            special_tokens_mask,
            self.tokenizer,
            self.mlm_probability,
            self.whole_word,
            self.generator,
        )
        return {
            "input_ids": masked_input_ids,
            "token_type_ids": token_type_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "next_sentence_label": torch.stack([e["next_sentence_label"] for e in examples]),
        }
