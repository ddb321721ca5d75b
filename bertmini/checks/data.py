"""Checks for chapter 06: MLM masking and NSP pair sampling, both checked statistically.

    check_mask_tokens(mask_tokens)
        # (input_ids, special_tokens_mask, mask_token_id, replacement_ids, mlm_probability,
        #  generator) -> (masked_input_ids, labels), each (batch, seq) int64
    check_nsp_pair(sample_nsp_pair)
        # (documents, doc_index, sentence_index, rng) -> (sentence_a, sentence_b, label)

Random functions cannot be compared value by value with a reference that draws its random
numbers in another order, so these checks run the student's function on many inputs (over 50,000
tokens; 4,000 pairs) and test what must hold: rates within a tolerance of several standard
deviations (so a correct answer fails with a negligible probability) and rules that must hold
every time. `bertmini.data.pretraining.mask_tokens` computes what the check asks for.

Mistakes they name: special tokens or padding chosen, every chosen token turned into [MASK] (no
80/10/10), labels not -100 at unchosen positions, random replacements outside the allowed ids
(special tokens), 15% of all positions taken (padding included), mlm_probability ignored,
the generator ignored, a pool narrowed by its last id (`randint(len - 1)`), ids drawn from the
range min..max of a pool with gaps, a non-uniform draw; IsNext/NotNext labels swapped, a NotNext
B from the same document, an IsNext B that is not the next sentence, a NotNext B always a
document's first sentence, always the next document's, the same for a given A on every draw, or
never the last document, the `random` module used instead of the `rng` argument.

The masking check ends on a small pool with gaps (`SMALL_POOL`, 8 ids, each drawn ~100 times),
and the NSP check draws the same three sentences A 100 times each, so a choice that is narrowed
or fixed per A shows. bertmini's own `mask_tokens` refuses to run inside the student's function.
"""

import random
from collections.abc import Callable

import torch
from torch import Tensor

from ..data.pretraining import IGNORE_INDEX, IS_NEXT, NOT_NEXT
from ..data.pretraining import mask_tokens as _mask_tokens
from . import call_student, diagnose, fail, passed

# ---------------------------------------------------------------------------------------------
# Exercise 1: MLM masking
# ---------------------------------------------------------------------------------------------

PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = 0, 1, 2, 3, 4  # as in a vocabulary bertmini trains
VOCAB_SIZE = 1000


class _Vocabulary:
    """The little a tokenizer gives `bertmini.data.pretraining.mask_tokens`."""

    def __init__(self, size: int, special_ids: set[int], mask_token_id: int) -> None:
        self.size, self.special_ids, self.mask_token_id = size, special_ids, mask_token_id
        self.pad_token_id = -1  # padding is marked in special_tokens_mask

    def __len__(self) -> int:
        return self.size


def reference_mask_tokens(
    input_ids: Tensor,
    special_tokens_mask: Tensor,
    mask_token_id: int,
    replacement_ids: Tensor,
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """bertmini's `mask_tokens` called with the exercise's arguments."""
    size = int(max(replacement_ids.max(), input_ids.max(), mask_token_id)) + 1
    special_ids = set(range(size)) - set(replacement_ids.tolist())
    vocabulary = _Vocabulary(size, special_ids, mask_token_id)
    return _mask_tokens(
        input_ids, special_tokens_mask, vocabulary, mlm_probability, generator=generator
    )


def make_masking_batch(
    generator: torch.Generator, batch: int = 800, seq: int = 128
) -> tuple[Tensor, Tensor]:
    """A padded batch ``[CLS] A [SEP] B [SEP] [PAD]...`` of random ids, a few [UNK] among them.

    Returns (input_ids, special_tokens_mask), both (batch, seq); about 40% of it is padding.
    """
    input_ids = torch.randint(MASK_ID + 1, VOCAB_SIZE, (batch, seq), generator=generator)
    input_ids[torch.rand(batch, seq, generator=generator) < 0.01] = UNK_ID
    lengths = torch.randint(8, seq + 1, (batch,), generator=generator)  # (batch,)
    positions = torch.arange(seq)[None, :]  # (1, seq)
    first_sep = (lengths * torch.rand(batch, generator=generator) * 0.8).long().clamp(min=2)
    input_ids[:, 0] = CLS_ID
    input_ids[positions == first_sep[:, None]] = SEP_ID
    input_ids[positions == lengths[:, None] - 1] = SEP_ID
    input_ids[positions >= lengths[:, None]] = PAD_ID
    special_tokens_mask = input_ids <= MASK_ID  # (batch, seq) bool
    return input_ids, special_tokens_mask


def mask_statistics(
    input_ids: Tensor,
    special_tokens_mask: Tensor,
    masked_input_ids: Tensor,
    labels: Tensor,
    mask_token_id: int,
) -> dict[str, float]:
    """What a masking did: the share of real tokens chosen and, of the chosen, the shares that
    became [MASK], a random token or stayed; how many special positions were touched."""
    real = ~special_tokens_mask.bool()
    chosen = labels != IGNORE_INDEX
    num_chosen = max(int(chosen.sum()), 1)
    became_mask = chosen & (masked_input_ids == mask_token_id)
    kept = chosen & (masked_input_ids == input_ids)
    return {
        "real_tokens": int(real.sum()),
        "chosen_rate": float((chosen & real).sum() / real.sum().clamp(min=1)),
        "mask_share": float(became_mask.sum() / num_chosen),
        "random_share": float((chosen & ~became_mask & ~kept).sum() / num_chosen),
        "keep_share": float(kept.sum() / num_chosen),
        "special_touched": int(((chosen | (masked_input_ids != input_ids)) & ~real).sum()),
    }


def check_mask_tokens(mask_tokens_fn: Callable) -> None:
    """Check `mask_tokens(input_ids, special_tokens_mask, mask_token_id, replacement_ids,
    mlm_probability=0.15, generator=None) -> (masked_input_ids, labels)` statistically."""
    name = "mask_tokens"
    replacement_ids = torch.arange(MASK_ID + 1, VOCAB_SIZE)  # every id but the 5 special ones
    summary = ""
    for trial, probability in enumerate((0.15, 0.3)):
        input_ids, special = make_masking_batch(torch.Generator().manual_seed(99 + trial))
        masked, labels = _call(mask_tokens_fn, input_ids, special, replacement_ids, probability)
        _diagnose_masking(name, input_ids, special, masked, labels, probability)
        _diagnose_replacements(name, input_ids, masked, labels, replacement_ids)
        if trial == 0:
            summary = _summary(mask_statistics(input_ids, special, masked, labels, MASK_ID))
    # A small pool with gaps: each of its ids is drawn ~100 times, so a pool narrowed by one id
    # (its last, say) or a draw over the range min..max shows.
    input_ids, special = make_masking_batch(torch.Generator().manual_seed(101))
    masked, labels = _call(mask_tokens_fn, input_ids, special, SMALL_POOL, 0.15)
    _diagnose_masking(name, input_ids, special, masked, labels, 0.15)
    _diagnose_replacements(name, input_ids, masked, labels, SMALL_POOL)
    # The same seed must give the same masks: the randomness comes from `generator` only.
    small_ids, small_special = make_masking_batch(torch.Generator().manual_seed(7), 64, 32)
    with torch.random.fork_rng():  # the global RNG must not matter (and is restored after)
        torch.manual_seed(111)
        first = _call(mask_tokens_fn, small_ids, small_special, replacement_ids, 0.15, seed=5)
        torch.manual_seed(777)
        second = _call(mask_tokens_fn, small_ids, small_special, replacement_ids, 0.15, seed=5)
    if not (torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])):
        fail(
            name,
            "two calls with the same seeded generator gave different masks: pass "
            "`generator=generator` to every torch.rand / torch.randint / torch.bernoulli call, "
            "so a seed reproduces the masks.",
        )
    passed(name, summary)


# Non-contiguous, with its last id far from the others.
SMALL_POOL = torch.tensor([7, 8, 23, 24, 25, 301, 302, 998])


def _summary(stats: dict[str, float]) -> str:
    return (
        f"on {stats['real_tokens']:,} tokens: chose {stats['chosen_rate']:.1%}; of those "
        f"{stats['mask_share']:.1%} [MASK] / {stats['random_share']:.1%} random / "
        f"{stats['keep_share']:.1%} kept"
    )


def _call(fn, input_ids, special, replacement_ids, probability, seed=0):
    originals = (input_ids.clone(), special.clone())
    generator = torch.Generator().manual_seed(seed)
    result = call_student(
        "mask_tokens",
        fn,
        input_ids,
        special,
        MASK_ID,
        replacement_ids,
        probability,
        generator,
        refuse=["mask_tokens"],
    )
    if not (torch.equal(input_ids, originals[0]) and torch.equal(special, originals[1])):
        fail(
            "mask_tokens",
            "your function changed input_ids (or special_tokens_mask) in place; work on a copy "
            "(`input_ids.clone()`, or `torch.where`) so the originals stay available for labels.",
        )
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        fail(
            "mask_tokens", f"return a tuple (masked_input_ids, labels), got {type(result).__name__}"
        )
    for what, tensor in zip(("masked_input_ids", "labels"), result, strict=True):
        if not isinstance(tensor, Tensor) or tensor.shape != input_ids.shape:
            got = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
            fail(
                "mask_tokens",
                f"{what} must be a tensor of shape {tuple(input_ids.shape)}, got {got}",
            )
        if tensor.is_floating_point() or tensor.dtype == torch.bool:
            fail("mask_tokens", f"{what} must hold integer ids (int64), got {tensor.dtype}")
    return result[0].long(), result[1].long()


def _diagnose_masking(name, input_ids, special, masked, labels, probability):
    """Which tokens were chosen and labelled, then how many, then how they were corrupted."""
    _diagnose_labels(name, input_ids, special, masked, labels, probability)
    stats = mask_statistics(input_ids, special, masked, labels, MASK_ID)
    _diagnose_rate(name, stats["chosen_rate"], probability)
    _diagnose_split(name, stats["mask_share"], stats["random_share"], stats["keep_share"])


def _diagnose_labels(name, input_ids, special, masked, labels, probability):
    """Labels only at chosen real tokens, holding their original ids: ordered (predicate,
    advice) pairs, the first that holds names the mistake."""
    real = ~special
    labelled = labels != IGNORE_INDEX
    changed = masked != input_ids
    labelled_share = float(labelled[real].float().mean())
    touched = (labelled | changed) & special
    padding = int((touched & (input_ids == PAD_ID)).sum())
    others = int(touched.sum()) - padding
    wrong_labels = not torch.equal(labels[labelled], input_ids[labelled])
    diagnoses = [
        (
            labelled_share > 0.5 and (labels[real] == input_ids[real]).float().mean() > 0.5,
            f"{labelled_share:.0%} of the real tokens have a label: labels must be -100 "
            "everywhere except the chosen positions (`torch.where(chosen, input_ids, -100)`), "
            "or the loss trains on copying visible tokens.",
        ),
        (
            labelled_share > 0.5,
            f"most labels are {int(labels[real].mode().values)}: positions that were not chosen "
            "must have the label -100, the ignore_index of cross_entropy, so they add nothing "
            "to the loss.",
        ),
        (
            touched.any() and others * 4 < padding,
            f"{padding} padding positions were chosen (and {others} [CLS]/[SEP]/[UNK]): you "
            f"took {probability:.0%} of all positions, padding included. [PAD] is not text; "
            "choose only where special_tokens_mask is False (it is True on padding too).",
        ),
        (
            touched.any(),
            f"{int(touched.sum())} special positions were chosen ({padding} of them [PAD], the "
            "rest [CLS]/[SEP]/[UNK]). Only real tokens may be chosen: `chosen = "
            "(torch.rand(...) < mlm_probability) & ~special_tokens_mask`. Padding and "
            "[CLS]/[SEP] are not words to predict.",
        ),
        (
            (changed & ~labelled).any(),
            f"{int((changed & ~labelled).sum())} tokens were changed but have label -100: every "
            "position you corrupt must be labelled with its original id.",
        ),
        (
            wrong_labels and torch.equal(labels[labelled], masked[labelled]),
            "the labels hold the corrupted ids ([MASK] or the random token): they must hold "
            "the original ids, taken from input_ids before masking.",
        ),
        (wrong_labels, "at chosen positions the label must be the original id (input_ids there)."),
    ]
    diagnose(name, diagnoses)


def _diagnose_rate(name: str, rate: float, probability: float) -> None:
    """Each real token chosen with probability `probability`: ordered (predicate, advice)."""
    off = abs(rate - probability) > 0.01
    diagnoses = [
        (
            off and probability != 0.15 and abs(rate - 0.15) < 0.01,
            f"you chose 15% with mlm_probability={probability}: use the argument.",
        ),
        (
            off and rate < probability,
            f"only {rate:.1%} of the real tokens were chosen instead of {probability:.0%}: "
            "if you counted 15% of *all* positions (padding and [CLS]/[SEP] included) and "
            "then dropped the special ones, too few real tokens remain. Choose each real "
            "token independently with probability mlm_probability.",
        ),
        (
            off,
            f"{rate:.1%} of the real tokens were chosen; expected mlm_probability = "
            f"{probability:.0%} of them (each independently).",
        ),
    ]
    diagnose(name, diagnoses)


def _diagnose_split(name: str, mask_share: float, random_share: float, keep_share: float) -> None:
    """The chosen tokens split 80/10/10: ordered (predicate, advice) pairs, the first that
    holds names the mistake."""
    split = f"(got {mask_share:.1%} [MASK] / {random_share:.1%} random / {keep_share:.1%} kept)"
    diagnoses = [
        (
            mask_share > 0.97,
            f"every chosen token became [MASK] {split}. BERT's recipe is 80/10/10: 80% [MASK], "
            "10% a random token, 10% unchanged, because [MASK] never appears when the model is "
            "fine-tuned or used; the model must build a good representation of every token.",
        ),
        (
            abs(random_share - 0.02) < 0.01 and keep_share > 0.15,
            f"only about 2% of the chosen tokens got a random replacement {split}: you took 10% "
            "of the 20% left after [MASK]. Among those, *half* become random.",
        ),
        (random_share < 0.03, f"no chosen token got a random replacement {split}: 10% should."),
        (
            keep_share < 0.03,
            f"no chosen token kept its original id {split}: 10% must stay unchanged (and still "
            "be labelled), so the model cannot assume that a visible token is always right.",
        ),
        (
            max(abs(mask_share - 0.8), abs(random_share - 0.1), abs(keep_share - 0.1)) > 0.03,
            f"the chosen tokens must split 80/10/10 {split}: draw one uniform number per "
            "token: < 0.8 -> [MASK], 0.8-0.9 -> random, >= 0.9 -> keep.",
        ),
    ]
    diagnose(name, diagnoses)


_LOOK_UP = (
    "Draw an index and look it up: "
    "`replacement_ids[torch.randint(len(replacement_ids), shape, generator=generator)]`."
)


def _diagnose_replacements(name, input_ids, masked, labels, replacement_ids):
    """The random replacements come from replacement_ids, all of them, about equally often."""
    replaced = (labels != IGNORE_INDEX) & (masked != input_ids) & (masked != MASK_ID)
    replacements = masked[replaced]
    outside = ~torch.isin(replacements, replacement_ids)
    pool = sorted(replacement_ids.tolist())
    if outside.any():
        bad = sorted(set(replacements[outside].tolist()))[:5]
        between = all(pool[0] <= i <= pool[-1] for i in bad)
        why = (
            f"they lie between the smallest and largest allowed id, but replacement_ids {pool} "
            "has gaps: drawing from the range min..max is not drawing from the list"
            if len(pool) < 20 and between
            else "special tokens such as [PAD]/[CLS]/[SEP] must never be inserted"
        )
        fail(
            name,
            f"{int(outside.sum())} random replacements are not in replacement_ids (e.g. ids "
            f"{bad}): {why}. {_LOOK_UP}",
        )
    counts = torch.bincount(torch.searchsorted(replacement_ids.sort().values, replacements))
    counts = torch.cat([counts, counts.new_zeros(len(pool) - len(counts))])
    expected = len(replacements) / len(pool)
    if expected < 40:  # too few draws per id to judge each id (the large pool)
        if len(set(replacements.tolist())) < 0.3 * min(len(replacements), len(pool)):
            fail(name, f"the random replacements use few different ids: {_LOOK_UP}")
        return
    never = [pool[i] for i in range(len(pool)) if counts[i] == 0]
    if never == [pool[-1]]:
        fail(
            name,
            f"the last id of replacement_ids ({pool[-1]}) was never drawn in {len(replacements)} "
            "random replacements: torch.randint(high) already excludes `high`, so draw the "
            "index with torch.randint(len(replacement_ids), ...), not len(...) - 1.",
        )
    if never == [pool[0]]:
        fail(
            name,
            f"the first id of replacement_ids ({pool[0]}) was never drawn: indices run from 0 "
            "to len(replacement_ids) - 1; draw with torch.randint(len(replacement_ids), ...).",
        )
    lopsided = (counts < expected / 3) | (counts > expected * 3)
    if lopsided.any():
        shares = ", ".join(f"{i}: {int(c)}" for i, c in zip(pool, counts.tolist(), strict=True))
        fail(
            name,
            f"the {len(replacements)} random replacements are not drawn uniformly from "
            f"replacement_ids (about {expected:.0f} each expected; got {shares}). {_LOOK_UP}",
        )


# ---------------------------------------------------------------------------------------------
# Exercise 2: NSP pair sampling
# ---------------------------------------------------------------------------------------------


def reference_nsp_pair(
    documents: list[list[str]], doc_index: int, sentence_index: int, rng: random.Random
) -> tuple[str, str, int]:
    """A = sentence `sentence_index` of document `doc_index`; with probability 1/2 B is the next
    sentence (label 0, IsNext), otherwise a random sentence of a random *other* document
    (label 1, NotNext)."""
    document = documents[doc_index]
    sentence_a = document[sentence_index]
    if rng.random() < 0.5:
        return sentence_a, document[sentence_index + 1], IS_NEXT
    other = rng.randrange(len(documents) - 1)
    if other >= doc_index:  # skip our own document, uniformly over the others
        other += 1
    return sentence_a, rng.choice(documents[other]), NOT_NEXT


def _nsp_documents(rng: random.Random) -> list[list[str]]:
    return [[f"document {d}, sentence {s}." for s in range(rng.randint(2, 8))] for d in range(40)]


def check_nsp_pair(sample_nsp_pair_fn: Callable) -> None:
    """Check `sample_nsp_pair(documents, doc_index, sentence_index, rng) -> (a, b, label)` on
    4,000 draws: label 0 (IsNext) half the time with the true next sentence, label 1 (NotNext)
    with a sentence from another document."""
    name = "sample_nsp_pair"
    setup = random.Random(2024)
    documents = _nsp_documents(setup)
    draws = []
    for _ in range(4000):
        d = setup.randrange(len(documents))
        draws.append((d, setup.randrange(len(documents[d]) - 1)))
    # Then the same few sentence A's, each drawn 100 times: NotNext must vary from draw to draw.
    draws += [(d, 0) for d in (0, 17, 39) for _ in range(100)]
    results = _run_nsp_twice(name, sample_nsp_pair_fn, documents, draws)
    tally = _tally_nsp(name, documents, draws, results)
    _diagnose_nsp_pairs(name, tally, len(draws))
    _diagnose_not_next_documents(name, tally["not_next_docs"], len(documents))
    if len(tally["other_documents"]) < 0.8 * len(documents):
        fail(
            name,
            f"NotNext Bs came from only {len(tally['other_documents'])} of {len(documents)} "
            "documents: pick the other document uniformly at random.",
        )
    passed(
        name,
        f"{tally['num_next'] / len(draws):.1%} IsNext over {len(draws):,} draws; NotNext B "
        "always from another document",
    )


def _run_nsp_twice(name: str, sample_nsp_pair_fn: Callable, documents, draws) -> list:
    """The student's pairs for `draws`, from an rng seeded 0; the same on a second run with
    the `random` module's state set differently (then put back, so the notebook's own random
    numbers are not disturbed)."""

    def run() -> list:
        rng = random.Random(0)
        results = []
        for d, s in draws:
            copy = [list(doc) for doc in documents]
            results.append(call_student(name, sample_nsp_pair_fn, copy, d, s, rng))
            if copy != documents:
                fail(name, "your function changed `documents`; only read it.")
        return results

    state = random.getstate()
    random.seed(111)
    results = run()
    random.seed(777)
    again = run()
    random.setstate(state)
    if again != results:
        fail(
            name,
            "two runs with the same seeded rng gave different pairs: draw every random choice "
            "from the `rng` argument (rng.random(), rng.randrange, rng.choice), not from the "
            "`random` module, so a seed reproduces the data.",
        )
    return results


def _tally_nsp(name: str, documents, draws, results) -> dict:
    """Fail on a malformed pair; else count what the pairs are (the keys below)."""
    where = {sentence: (d, s) for d, doc in enumerate(documents) for s, sentence in enumerate(doc)}
    tally = dict(next_ok=0, num_next=0, not_next_from_other=0, num_not_next=0, same_document=0)
    tally.update(first_sentences=0, other_documents=set())
    tally["not_next_docs"] = {}  # A's (doc, sentence) -> the documents of its NotNext Bs
    for (d, s), result in zip(draws, results, strict=True):
        if not (isinstance(result, (tuple, list)) and len(result) == 3):
            fail(name, f"return a tuple (sentence_a, sentence_b, label), got {result!r:.100}")
        a, b, label = result
        if label not in (IS_NEXT, NOT_NEXT):
            fail(name, f"label must be 0 (IsNext) or 1 (NotNext), got {label!r}")
        if a != documents[d][s]:
            fail(
                name,
                f"sentence_a must be documents[doc_index][sentence_index]: for ({d}, {s}) "
                f"expected {documents[d][s]!r}, got {a!r}",
            )
        if b not in where:
            fail(name, f"sentence_b must be a sentence of `documents`, got {b!r:.80}")
        b_doc, b_pos = where[b]
        if label == IS_NEXT:
            tally["num_next"] += 1
            tally["next_ok"] += (b_doc, b_pos) == (d, s + 1)
        else:
            tally["num_not_next"] += 1
            tally["not_next_from_other"] += b_doc != d
            tally["same_document"] += b_doc == d
            tally["first_sentences"] += b_pos == 0
            tally["other_documents"].add(b_doc)
            tally["not_next_docs"].setdefault((d, s), []).append(b_doc)
    return tally


def _diagnose_nsp_pairs(name: str, tally: dict, num_draws: int) -> None:
    """Labels, the IsNext rate, and where B comes from: ordered (predicate, advice) pairs."""
    num_next, num_not_next = tally["num_next"], tally["num_not_next"]
    next_rate = num_next / num_draws
    diagnoses = [
        (
            tally["next_ok"] < 0.5 * num_next and tally["not_next_from_other"] < 0.5 * num_not_next,
            "the labels are swapped: 0 means IsNext (B really follows A) and 1 means "
            "NotNext (B from another document), as in Hugging Face.",
        ),
        (
            abs(next_rate - 0.5) > 0.04,
            f"{next_rate:.1%} of the pairs are IsNext; expected 50% "
            "(`if rng.random() < 0.5:` IsNext, else NotNext).",
        ),
        (
            tally["next_ok"] < num_next,
            f"{num_next - tally['next_ok']} of {num_next} IsNext pairs do not have the next "
            "sentence as B: B must be documents[doc_index][sentence_index + 1].",
        ),
        (
            tally["same_document"] > 0,
            f"{tally['same_document']} of {num_not_next} NotNext Bs came from A's own document: "
            "draw the random document among the *other* documents, or the label is a lie.",
        ),
        (
            tally["first_sentences"] == num_not_next,
            "every NotNext B is the first sentence of its document: the model could "
            "spot NotNext by how openings look. Pick a random sentence of the other document.",
        ),
    ]
    diagnose(name, diagnoses)


def _diagnose_not_next_documents(name: str, not_next_docs: dict, num_documents: int) -> None:
    """For one sentence A, NotNext Bs must come from many documents, every other one possible.

    not_next_docs: A's (doc_index, sentence_index) -> the documents of the NotNext Bs drawn for
    it. The checks are ordered (predicate, advice) pairs; the first that holds is the mistake.
    """
    last = num_documents - 1
    per_a = {a: set(docs) for a, docs in not_next_docs.items()}
    repeated = {a: docs for a, docs in per_a.items() if len(not_next_docs[a]) >= 20}
    most_drawn = max(not_next_docs, key=lambda a: len(not_next_docs[a]))  # ~50 NotNext draws
    diagnoses = [
        (
            all(docs <= {(d + 1) % num_documents} for (d, _), docs in per_a.items()),
            "every NotNext B comes from the document right after A's (doc_index + 1): the "
            "model could learn that rule instead of reading the sentences. Draw the other "
            "document at random each time: `other = rng.randrange(len(documents) - 1)`, plus 1 "
            "if it is >= doc_index.",
        ),
        (
            all(len(docs) == 1 for docs in repeated.values()),
            "for a given sentence A, every NotNext B comes from the same document: the choice "
            "must be random on each draw, made with the `rng` argument (rng.randrange).",
        ),
        (
            len(per_a[most_drawn]) < 0.5 * (num_documents - 1),
            f"over {len(not_next_docs[most_drawn])} NotNext draws for one sentence A, B came "
            f"from only {len(per_a[most_drawn])} of the {num_documents - 1} other documents: "
            "draw the other document uniformly, on every draw.",
        ),
        (
            all(last not in docs for (d, _), docs in per_a.items() if d != last),
            f"the last document (index {last}) is never picked for NotNext: "
            "rng.randrange(len(documents) - 1) gives 0 .. n-2, so add 1 when the draw is "
            ">= doc_index (skipping A's own document), which makes n-1 reachable.",
        ),
    ]
    diagnose(name, diagnoses)
