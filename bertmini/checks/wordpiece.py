"""Checks for chapter 03: WordPiece encoding of a word, and one step of vocabulary training.

    check_wordpiece(wordpiece)   # (word, vocab, unk="[UNK]", max_chars=100) -> list[str]
    check_best_pair(best_pair)   # (word_splits, word_counts) -> (a, b) or None

`wordpiece` is compared with `bertmini.tokenizer.wordpiece` (greedy longest match first, `##` on
every piece but the first, the whole word becomes `[UNK]` when some part cannot be matched or when
it is longer than `max_chars`). The mistakes it names: shortest match first, continuations looked
up without `##`, `##` on the first piece too, partial pieces kept around an `[UNK]`, long
words not turned into `[UNK]`, `>=` instead of `>` for `max_chars` (a word of exactly
`max_chars` characters given up on), and `[UNK]` returned instead of the `unk` argument.

`best_pair` is the step `bertmini.tokenizer.train_wordpiece` repeats: among the adjacent symbol
pairs, pick the one with the highest score count(ab) / (count(a) * count(b)), every count weighted
by how often its word occurs; ties go to the smallest pair. The inputs are built so that the
mistakes give other answers: the most frequent pair (BPE's rule), counts not weighted by word
frequency, dividing by one part's count only, and ties broken another way.
"""

import random
from collections import Counter
from collections.abc import Callable

from ..tokenizer import UNK
from ..tokenizer import wordpiece as _wordpiece
from . import call_student, fail, passed

# ---------------------------------------------------------------------------------------------
# Exercise 1: greedy longest-match-first WordPiece
# ---------------------------------------------------------------------------------------------


def reference_wordpiece(
    word: str, vocab: dict[str, int] | set[str], unk: str = UNK, max_chars: int = 100
) -> list[str]:
    """bertmini's `wordpiece`, with the length limit as a parameter."""
    if len(word) > max_chars:
        return [unk]
    return _wordpiece(word, vocab, unk)


def _greedy(
    word,
    vocab,
    unk,
    max_chars,
    *,
    shortest=False,
    hashes="continuations",
    partial=None,
    at_limit=False,
):
    """A configurable greedy splitter: each keyword reproduces one typical mistake."""
    if max_chars is not None and (len(word) > max_chars or (at_limit and len(word) == max_chars)):
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        ends = range(start + 1, len(word) + 1) if shortest else range(len(word), start, -1)
        for end in ends:
            prefix = {"continuations": start > 0, "none": False, "all": True}[hashes]
            piece = ("##" if prefix else "") + word[start:end]
            if piece in vocab:
                pieces.append(piece)
                start = end
                break
        else:
            if partial == "stop":  # keep what was matched, then one [UNK]
                return pieces + [unk]
            if partial == "skip":  # [UNK] for one character, then carry on
                pieces.append(unk)
                start += 1
                continue
            return [unk]
    return pieces


_WORDPIECE_MISTAKES = [
    (
        lambda w, v, u, m: _greedy(w, v, u, m, shortest=True),
        "you take the shortest match first. WordPiece is greedy *longest* match first: at each "
        "position try the whole rest of the word, then one character less, and so on.",
    ),
    (
        lambda w, v, u, m: _greedy(w, v, u, m, hashes="none"),
        "pieces after the first are looked up without the '##' prefix. A piece that continues a "
        "word is a different vocabulary entry: look up '##' + word[start:end] when start > 0.",
    ),
    (
        lambda w, v, u, m: _greedy(w, v, u, m, hashes="all"),
        "the first piece has a '##' prefix too. Only continuations get '##'; the piece at the "
        "start of the word is looked up as it is.",
    ),
    (
        lambda w, v, u, m: _greedy(w, v, u, m, partial="stop"),
        "when a position cannot be matched you keep the pieces found so far. BERT turns the "
        "*whole word* into a single [UNK] then (return [unk] alone).",
    ),
    (
        lambda w, v, u, m: _greedy(w, v, u, m, partial="skip"),
        "when a position cannot be matched you emit [UNK] for one character and carry on. BERT "
        "turns the *whole word* into a single [UNK] (return [unk] alone).",
    ),
    (
        lambda w, v, u, m: _greedy(w, v, u, None),
        "words longer than max_chars (the argument: these cases use 6) must become [unk] "
        "without trying to split them (BERT does this for URLs, base64 blobs... of more than "
        "100 characters).",
    ),
    (
        lambda w, v, u, m: _greedy(w, v, u, m, at_limit=True),
        "a word of exactly max_chars characters became [unk]: only words *longer* than "
        "max_chars are given up on, so the test is len(word) > max_chars, not >=.",
    ),
    (
        lambda w, v, u, m: _greedy(w, v, UNK, m),
        f"you return {UNK!r} for unknown words whatever `unk` says: return [unk], the argument.",
    ),
]

# A hand-made vocabulary where each mistake gives a different split of some word.
_HAND_VOCAB = {
    "[UNK]", "un", "una", "##aff", "##ffa", "##ble", "##able", "##a", "play", "p", "##lay",
    "##ing", "##s", "##er", "pl", "##ay", "a", "able", "##b", "i", "##n", "##g", "s", "##un",
}  # fmt: skip
_HAND_WORDS = ["unaffable", "playing", "plays", "player", "play", "playable", "unplayable", "sun"]


def _wordpiece_cases(trial: int) -> list[tuple]:
    """(word, vocab, unk, max_chars): hand-made cases, then random ones over a tiny alphabet."""
    rng = random.Random(1234 + trial)
    cases = [(word, _HAND_VOCAB, UNK, 100) for word in _HAND_WORDS]
    alphabet = "abcd"
    for _ in range(40):
        starts = {"".join(rng.choices(alphabet, k=rng.randint(1, 4))) for _ in range(12)}
        continuations = {
            "##" + "".join(rng.choices(alphabet, k=rng.randint(1, 3))) for _ in range(12)
        }
        vocab = {UNK, "<unk>", *starts, *continuations}
        unk = rng.choice([UNK, "<unk>"])
        max_chars = rng.choice([100, 6])
        for _ in range(5):
            cases.append(
                ("".join(rng.choices(alphabet, k=rng.randint(1, 9))), vocab, unk, max_chars)
            )
    return cases


def _likeliest_mistake(answers, cases, first_bad, mistakes):
    """The mistake that reproduces the student's answers on the most cases (the failing one
    included); None if no mistake reproduces the failing case."""
    best, best_matches = None, 0
    for wrong, advice in mistakes:
        try:
            if answers[first_bad] != wrong(*cases[first_bad]):
                continue
            matches = sum(
                answer == wrong(*case) for answer, case in zip(answers, cases, strict=True)
            )
        except Exception:  # a variant that cannot run on these inputs
            continue
        if matches > best_matches:
            best, best_matches = advice, matches
    return best


def check_wordpiece(wordpiece_fn: Callable) -> None:
    """Check `wordpiece(word, vocab, unk="[UNK]", max_chars=100) -> list[str]`."""
    name = "wordpiece"
    for trial in range(2):
        cases = _wordpiece_cases(trial)
        answers = []
        for word, vocab, unk, max_chars in cases:
            got = call_student(
                f"{name}({word!r}, ...)",
                wordpiece_fn,
                word,
                vocab,
                unk=unk,
                max_chars=max_chars,
                refuse=["wordpiece"],
            )
            answers.append(list(got) if isinstance(got, tuple) else got)
        expected = [reference_wordpiece(*case) for case in cases]
        bad = [
            i for i, (got, want) in enumerate(zip(answers, expected, strict=True)) if got != want
        ]
        if not bad:
            continue
        word, vocab, unk, max_chars = cases[bad[0]]
        got = answers[bad[0]]
        example = _example(word, vocab, unk, max_chars, got, expected[bad[0]])
        advice = _likeliest_mistake(answers, cases, bad[0], _WORDPIECE_MISTAKES)
        if advice:
            fail(name, f"{advice}\n{example}")
        if not isinstance(got, list) or not all(isinstance(p, str) for p in got):
            fail(name, f"return a list of str (the pieces), got {got!r:.120}.\n{example}")
        if "".join(p.removeprefix("##") for p in got) != word and got != [unk]:
            fail(name, f"your pieces do not spell the word.\n{example}")
        fail(name, f"your split differs from greedy longest-match-first.\n{example}")
    passed(name, "greedy longest match first, '##' continuations, [UNK] for the whole word")


def _example(word, vocab, unk, max_chars, got, expected) -> str:
    shown = sorted(vocab) if len(vocab) <= 30 else sorted(vocab)[:30] + ["..."]
    return (
        f"   word={word!r}, unk={unk!r}, max_chars={max_chars}, vocab={shown}\n"
        f"   expected {expected}, got {got}"
    )


# ---------------------------------------------------------------------------------------------
# Exercise 2: one step of WordPiece training
# ---------------------------------------------------------------------------------------------


def _counts(word_splits, word_counts, weighted=True):
    """Symbol and adjacent-pair counts over all words (weighted by word frequency)."""
    symbol_counts: Counter = Counter()
    pair_counts: Counter = Counter()
    for word, symbols in word_splits.items():
        count = word_counts[word] if weighted else 1
        for symbol in symbols:
            symbol_counts[symbol] += count
        for pair in zip(symbols[:-1], symbols[1:], strict=True):
            pair_counts[pair] += count
    return symbol_counts, pair_counts


def reference_best_pair(
    word_splits: dict[str, list[str]], word_counts: dict[str, int]
) -> tuple[str, str] | None:
    """The pair (a, b) with the highest count(ab) / (count(a) * count(b)); ties -> smallest pair.

    The same choice `bertmini.tokenizer.train_wordpiece` makes at each merge. None if no word
    has two symbols left.
    """
    symbol_counts, pair_counts = _counts(word_splits, word_counts)
    if not pair_counts:
        return None
    return min(
        pair_counts,
        key=lambda p: (-pair_counts[p] / (symbol_counts[p[0]] * symbol_counts[p[1]]), p),
    )


def _best_by(score, word_splits, word_counts, weighted=True, ties="smallest"):
    symbol_counts, pair_counts = _counts(word_splits, word_counts, weighted)
    if not pair_counts:
        return None
    scored = {
        p: score(pair_counts[p], symbol_counts[p[0]], symbol_counts[p[1]]) for p in pair_counts
    }
    best = max(scored.values())
    tied = [p for p in pair_counts if scored[p] == best]  # in first-seen order
    return {"smallest": min(tied), "largest": max(tied), "first": tied[0]}[ties]


def _wordpiece_score(ab, a, b):
    return ab / (a * b)


_BEST_PAIR_MISTAKES = [
    (
        lambda s, c: _best_by(lambda ab, a, b: ab, s, c),
        "you chose the most frequent pair: that is BPE's rule. WordPiece divides by the parts' "
        "counts, score = count(ab) / (count(a) * count(b)), so it prefers parts that belong "
        "together over parts that are merely common.",
    ),
    (
        lambda s, c: _best_by(_wordpiece_score, s, c, weighted=False),
        "your counts ignore word_counts: a word that occurs 50 times contributes its pairs and "
        "symbols 50 times. Add word_counts[word], not 1.",
    ),
    (
        lambda s, c: _best_by(lambda ab, a, b: ab / a, s, c),
        "you divide by count(a) only; the score divides by both parts: count(ab) / (count(a) * "
        "count(b)).",
    ),
    (
        lambda s, c: _best_by(lambda ab, a, b: ab / b, s, c),
        "you divide by count(b) only; the score divides by both parts: count(ab) / (count(a) * "
        "count(b)).",
    ),
    (
        lambda s, c: _best_by(lambda ab, a, b: ab / (a + b), s, c),
        "you divide by count(a) + count(b); the score divides by the *product* count(a) * "
        "count(b).",
    ),
    (
        lambda s, c: _best_by(_wordpiece_score, s, c, ties="largest"),
        "your score is right but ties go to the largest pair; return the smallest one "
        "(e.g. `min(pairs, key=lambda p: (-score[p], p))`), as bertmini does.",
    ),
    (
        lambda s, c: _best_by(_wordpiece_score, s, c, ties="first"),
        "your score is right but ties go to the first pair seen; return the smallest one "
        "(e.g. `min(pairs, key=lambda p: (-score[p], p))`), as bertmini does.",
    ),
]


def _random_words(rng: random.Random) -> tuple[dict, dict]:
    """Random words over a small alphabet, split into characters (some already merged)."""
    alphabet = "abcdefgh"
    words = {"".join(rng.choices(alphabet, k=rng.randint(2, 6))) for _ in range(rng.randint(6, 14))}
    word_counts = {w: rng.choice([1, 1, 2, 3, 5, 8, 20, 50]) for w in sorted(words)}
    word_splits = {}
    for w in sorted(words):
        symbols = [w[0]] + ["##" + c for c in w[1:]]
        if len(symbols) > 2 and rng.random() < 0.3:  # an earlier merge
            symbols[:2] = [symbols[0] + symbols[1][2:]]
        word_splits[w] = symbols
    return word_splits, word_counts


def _best_pair_cases(trial: int) -> list[tuple[dict, dict]]:
    """Inputs on which every mistake gives an answer other than the reference's."""
    rng = random.Random(4321 + trial)
    cases: list[tuple[dict, dict]] = []
    wanted = [wrong for wrong, _ in _BEST_PAIR_MISTAKES]
    for _ in range(2000):  # for each mistake, a case that tells it apart from the reference
        if not wanted:
            break
        splits, counts = _random_words(rng)
        expected = reference_best_pair(splits, counts)
        caught = [wrong for wrong in wanted if wrong(splits, counts) != expected]
        if caught:
            cases.append((splits, counts))
            wanted = [wrong for wrong in wanted if wrong not in caught]
    cases.append(({"a": ["a"], "bc": ["bc"]}, {"a": 3, "bc": 2}))  # nothing left to merge
    return cases


def check_best_pair(best_pair_fn: Callable) -> None:
    """Check `best_pair(word_splits, word_counts) -> (a, b)` (or None when nothing can merge)."""
    name = "best_pair"
    for trial in range(3):
        cases = _best_pair_cases(trial)
        answers = []
        for splits, counts in cases:
            copies = ({w: list(s) for w, s in splits.items()}, dict(counts))
            got = call_student(name, best_pair_fn, *copies)
            if copies != ({w: list(s) for w, s in splits.items()}, counts):
                fail(name, "your function changed its inputs; only read word_splits/word_counts.")
            answers.append(tuple(got) if isinstance(got, list) else got)
        expected = [reference_best_pair(*case) for case in cases]
        bad = [
            i for i, (got, want) in enumerate(zip(answers, expected, strict=True)) if got != want
        ]
        if not bad:
            continue
        splits, counts = cases[bad[0]]
        got = answers[bad[0]]
        example = _pair_example(splits, counts, got, expected[bad[0]])
        advice = _likeliest_mistake(answers, cases, bad[0], _BEST_PAIR_MISTAKES)
        if advice:
            fail(name, f"{advice}\n{example}")
        if expected[bad[0]] is None:
            fail(
                name, f"no word has two symbols left, so there is no pair: return None.\n{example}"
            )
        if not (isinstance(got, tuple) and len(got) == 2):
            fail(name, f"return the pair as a tuple (a, b), got {got!r}.\n{example}")
        fail(name, f"your pair is not the one with the highest score.\n{example}")
    passed(name, "score = count(ab) / (count(a) * count(b)), weighted by word frequency")


def _pair_example(splits, counts, got, expected) -> str:
    symbol_counts, pair_counts = _counts(splits, counts)

    def describe(pair):
        if not (isinstance(pair, tuple) and pair in pair_counts):
            return repr(pair)
        ab, a, b = pair_counts[pair], symbol_counts[pair[0]], symbol_counts[pair[1]]
        return f"{pair} (count {ab}, score {ab}/({a}*{b}) = {ab / (a * b):.4f})"

    lines = [f"   {w!r} x{counts[w]}: {s}" for w, s in splits.items()]
    return (
        "   words (x count): splits\n"
        + "\n".join(lines)
        + f"\n   expected {describe(expected)}\n   got      {describe(got)}"
    )
