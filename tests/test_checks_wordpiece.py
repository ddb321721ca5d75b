"""The chapter 03 checks pass bertmini's WordPiece and name each typical mistake."""

from collections import Counter

import pytest

from bertmini.checks import CheckFailed
from bertmini.checks.wordpiece import check_best_pair, check_wordpiece, reference_best_pair
from bertmini.tokenizer import likelihood_ratio_score, train_wordpiece
from bertmini.tokenizer import wordpiece as bertmini_wordpiece


def student_wordpiece(order="longest", hashes="continuations", on_failure="unk", limit=True):
    """WordPiece as a student would write it, with one choice made (right or wrong)."""

    def wordpiece(word, vocab, unk="[UNK]", max_chars=100):
        if limit == ">=" and len(word) >= max_chars:
            return [unk]
        if limit == "fixed" and len(word) > 100:
            return [unk]
        if limit is True and len(word) > max_chars:
            return [unk]
        pieces, start = [], 0
        while start < len(word):
            ends = (
                range(len(word), start, -1)
                if order == "longest"
                else range(start + 1, len(word) + 1)
            )
            match = None
            for end in ends:
                prefix = (
                    "##" if (hashes == "all" or (hashes == "continuations" and start > 0)) else ""
                )
                if prefix + word[start:end] in vocab:
                    match = (prefix + word[start:end], end)
                    break
            if match is None:
                if on_failure == "partial":
                    return pieces + [unk]
                return [unk]
            pieces.append(match[0])
            start = match[1]
        return pieces

    return wordpiece


def test_reference_and_a_student_solution_pass(capsys):
    check_wordpiece(student_wordpiece())
    assert capsys.readouterr().out.count("✅") == 1
    with pytest.raises(CheckFailed, match="bertmini's own wordpiece, which refuses"):
        check_wordpiece(
            lambda w, v, unk="[UNK]", max_chars=100: (
                [unk] if len(w) > max_chars else bertmini_wordpiece(w, v, unk)
            )
        )


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_wordpiece(order="shortest"), "shortest match first"),
        (student_wordpiece(hashes="none"), "without the '##' prefix"),
        (student_wordpiece(hashes="all"), "first piece has a '##' prefix"),
        (student_wordpiece(on_failure="partial"), "whole word"),
        (student_wordpiece(limit=False), "longer than max_chars"),
        (student_wordpiece(limit=">="), "exactly max_chars characters .* not >="),
        (student_wordpiece(limit="fixed"), "longer than max_chars \\(the argument"),
        (lambda w, v, unk="[UNK]", max_chars=100: list(w), "differs|spell"),
    ],
)
def test_wordpiece_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_wordpiece(wrong)


def student_best_pair(score="wordpiece", weighted=True):
    def best_pair(word_splits, word_counts):
        symbols, pairs = Counter(), Counter()
        for word, split in word_splits.items():
            n = word_counts[word] if weighted else 1
            for s in split:
                symbols[s] += n
            for pair in zip(split[:-1], split[1:], strict=True):
                pairs[pair] += n
        if not pairs:
            return None
        if score == "frequency":  # BPE's rule
            return max(sorted(pairs), key=lambda p: pairs[p])
        return min(pairs, key=lambda p: (-pairs[p] / (symbols[p[0]] * symbols[p[1]]), p))

    return best_pair


def test_best_pair_reference_and_student_pass(capsys):
    check_best_pair(reference_best_pair)
    check_best_pair(student_best_pair())
    assert capsys.readouterr().out.count("✅") == 2


@pytest.mark.parametrize(
    "wrong, words",
    [
        (student_best_pair(score="frequency"), "most frequent pair: that is BPE"),
        (student_best_pair(weighted=False), "ignore word_counts"),
    ],
)
def test_best_pair_mistakes_are_named(wrong, words):
    with pytest.raises(CheckFailed, match=words):
        check_best_pair(wrong)


def test_reference_best_pair_repeated_is_train_wordpiece():
    """Merging best_pair again and again gives the vocabulary train_wordpiece learns."""
    word_counts = {"hugging": 7, "hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5, "gig": 3}
    vocab = train_wordpiece(word_counts, 40, min_frequency=1, score=likelihood_ratio_score)
    splits = {w: [w[0]] + ["##" + c for c in w[1:]] for w in word_counts}
    mine = list(vocab[: 5 + 2 * len({c for w in word_counts for c in w})])
    while len(mine) < 40 and (pair := reference_best_pair(splits, word_counts)) is not None:
        merged = pair[0] + pair[1][2:]
        if merged not in mine:
            mine.append(merged)
        for w, s in splits.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and (s[i], s[i + 1]) == pair:
                    out.append(merged)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            splits[w] = out
    assert mine == vocab


@pytest.mark.parametrize("check", [check_wordpiece, check_best_pair])
def test_stub_raises_not_implemented(check):
    def stub(*args, **kwargs):
        raise NotImplementedError("exercise")

    with pytest.raises(NotImplementedError):
        check(stub)
