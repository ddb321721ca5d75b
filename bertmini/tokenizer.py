"""WordPiece tokenization, as BERT does it.

BERT never sees characters or whole words: it sees *wordpieces*. Text becomes ids in two stages.

1. The **basic tokenizer** turns raw text into words, in this order:
   clean the text (drop control and format characters such as zero-width spaces, turn every kind
   of whitespace into a plain space) -> put spaces around CJK ideographs (Chinese has no spaces,
   so every ideograph is a word) -> strip accents (NFD, then drop the combining marks) and
   lower-case, for an "uncased" vocabulary -> split on whitespace -> split off every
   punctuation character as a word of its own.

2. **WordPiece** splits each word greedily, longest match first, into pieces of a fixed vocabulary:
   ``"unaffable" -> ["una", "##ffa", "##ble"]``. A piece that continues a word carries the ``##``
   prefix. A word that cannot be spelled with the vocabulary, or that is longer than 100
   characters, becomes a single ``[UNK]``.

The model input then wraps the pieces in special tokens: ``[CLS] A [SEP]`` for one text and
``[CLS] A [SEP] B [SEP]`` for a pair, with segment ids (``token_type_ids``) 0 for the first part
and 1 for the second. ``[PAD]`` fills batches up to the same length and ``[MASK]`` is the token
the masked-language-model objective asks BERT to fill in. Written literally in the text, a
special token (``"Paris is the [MASK] of France."``) is kept as that token.

Training a vocabulary (``Tokenizer.train``) starts from every character (and its ``##`` form) and
repeatedly merges the most frequent adjacent pair of symbols, as Hugging Face's
``WordPieceTrainer`` does (``trainer="tokenizers"`` runs that one). The likelihood ratio
``count(ab) / (count(a) * count(b))`` that WordPiece is often explained with is kept as an
option for teaching (chapter 03): alone, it never merges frequent pairs on real text.

This file is the readable reference. ``fast=True`` switches encoding to Hugging Face
``tokenizers`` (Rust), configured the same way, which gives the same ids in parallel
threads, for corpus-scale work (on text with many distinct words; on very repetitive text the
pure path's per-word cache keeps up). Both follow ``BertTokenizerFast``: its character classes,
its accent-stripping-before-lower-casing order, its longest-first truncation. The one known
difference: Rust classifies characters with older Unicode tables than Python's ``unicodedata``,
so a few hundred rare, recently added code points (new punctuation and combining marks) are
split or stripped differently by the two paths.

Taught in chapter 03 (`chapters/03_wordpiece.ipynb`).
"""

from __future__ import annotations

import heapq
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import torch

from .guard import refuse_if_checked

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)  # a trained vocabulary puts them first: ids 0..4
MAX_CHARS_PER_WORD = 100  # longer "words" (URLs, base64...) become [UNK], as in BERT
CONTINUATION = "##"
_SPECIAL_TOKEN_PATTERN = re.compile("(" + "|".join(map(re.escape, SPECIAL_TOKENS)) + ")")


# ---------------------------------------------------------------------------------------------
# 1. The basic tokenizer: text -> words
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def is_control(char: str) -> bool:
    """Characters BERT deletes: control (Cc), format (Cf, e.g. zero-width space) and private use
    (Co). Tab, newline and carriage return are whitespace instead. NUL and the replacement
    character U+FFFD are deleted too (they mark broken input)."""
    if char in "\t\n\r":
        return False
    return char in "\x00\ufffd" or unicodedata.category(char) in ("Cc", "Cf", "Co")


def is_whitespace(char: str) -> bool:
    """Space, tab, newline, no-break space, ideographic space... (Unicode White_Space)."""
    return char.isspace()


@lru_cache(maxsize=65536)
def is_punctuation(char: str) -> bool:
    """Unicode punctuation (categories P*), plus every non-alphanumeric printable ASCII
    character such as ``$ + < = > ^ ` | ~``, which Unicode calls symbols but BERT splits too."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def is_cjk_ideograph(char: str) -> bool:
    """The CJK Unified Ideographs blocks (Chinese characters, also used in Japanese and Korean).
    Hiragana, katakana and hangul are *not* included: they are written with spaces or kana."""
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B920 <= code <= 0x2CEAF  # sic: 0x2B920, as the Rust implementation
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


def clean_text(text: str) -> str:
    """Delete control/format characters; turn every whitespace character into ``" "``."""
    return "".join(" " if is_whitespace(c) else c for c in text if not is_control(c))


def space_cjk_ideographs(text: str) -> str:
    """Surround every CJK ideograph with spaces, so each becomes a word of its own."""
    return "".join(f" {c} " if is_cjk_ideograph(c) else c for c in text)


def strip_accents(text: str) -> str:
    """``"café" -> "cafe"``: decompose (NFD: é = e + combining acute) and drop the nonspacing
    marks (category Mn)."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def lowercase(text: str) -> str:
    """Lower-case character by character (so Greek final sigma is not context dependent)."""
    return "".join(c.lower() for c in text)


def split_on_punctuation(word: str) -> list[str]:
    """``"don't!" -> ["don", "'", "t", "!"]``: every punctuation character is its own word."""
    pieces: list[str] = []
    current = ""
    for char in word:
        if is_punctuation(char):
            if current:
                pieces.append(current)
            pieces.append(char)
            current = ""
        else:
            current += char
    if current:
        pieces.append(current)
    return pieces


def basic_tokenize(text: str, do_lower_case: bool = True, accents: bool | None = None) -> list[str]:
    """Raw text -> words, in the order BERT applies the steps.

    ``accents=None`` strips accents exactly when lower-casing (BERT's uncased models); pass
    ``True``/``False`` to force it. Accents are stripped *before* lower-casing, as the Rust
    implementation does (it matters for e.g. ``"İ"``: its dot above is dropped, then ``I -> i``).
    """
    text = clean_text(text)
    text = space_cjk_ideographs(text)
    if do_lower_case if accents is None else accents:
        text = strip_accents(text)
    if do_lower_case:
        text = lowercase(text)
    words: list[str] = []
    for chunk in text.split():
        words.extend(split_on_punctuation(chunk))
    return words


# ---------------------------------------------------------------------------------------------
# 2. WordPiece: word -> pieces
# ---------------------------------------------------------------------------------------------


def wordpiece(word: str, vocab: dict[str, int] | set[str], unk_token: str = UNK) -> list[str]:
    """Split one word greedily, longest match first: ``"playing" -> ["play", "##ing"]``.

    At each position take the longest vocabulary entry that matches there (with the ``##``
    prefix unless it is the word's start). If some position has no match at all, the whole
    word is ``[UNK]`` (not just the bad part), as is any word over 100 characters.
    """
    refuse_if_checked("wordpiece")  # see bertmini.guard
    if len(word) > MAX_CHARS_PER_WORD:
        return [unk_token]
    pieces: list[str] = []
    start = 0
    while start < len(word):
        for end in range(len(word), start, -1):  # longest candidate first
            piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
            if piece in vocab:
                pieces.append(piece)
                start = end
                break
        else:  # no piece matched at `start`
            return [unk_token]
    return pieces


def decode_tokens(tokens: Sequence[str]) -> str:
    """Join wordpieces back into text: ``##`` pieces glue onto the previous piece, others get a
    space, and a space before ``. , ! ?`` is removed (as Hugging Face's WordPiece decoder)."""
    parts = []
    for i, token in enumerate(tokens):
        if i > 0:
            token = token[len(CONTINUATION) :] if token.startswith(CONTINUATION) else " " + token
        for spaced, tight in _DECODE_CLEANUP:
            token = token.replace(spaced, tight)
        parts.append(token)
    return "".join(parts)


_DECODE_CLEANUP = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'")]
_DECODE_CLEANUP += [(" n't", "n't"), (" 'm", "'m"), (" do not", " don't"), (" 's", "'s")]
_DECODE_CLEANUP += [(" 've", "'ve"), (" 're", "'re")]


# ---------------------------------------------------------------------------------------------
# 3. Training a WordPiece vocabulary
# ---------------------------------------------------------------------------------------------

PairScore = Callable[[int, int, int], float]  # (count(ab), count(a), count(b)) -> score


def frequency_score(count_ab: int, count_a: int, count_b: int) -> float:
    """``count(ab)``: merge the most frequent pair. The rule of BPE, of Hugging Face's
    ``WordPieceTrainer`` (a BPE trainer that writes ``##`` continuations) and bertmini's default.
    Frequent words are merged first, so they end up whole: "the" is one of the first tokens."""
    return count_ab


def likelihood_ratio_score(count_ab: int, count_a: int, count_b: int) -> float:
    """``count(ab) / (count(a) * count(b))``: how much more often a and b occur together than
    chance predicts. It asks a good question ("do these belong together?") but alone it fails on
    real text: a pair of rare symbols that always occur together (score near 1/count) beats every
    pair of frequent ones (score near 1/count(a)), so the vocabulary fills with rare fragments
    and "the" stays ``th ##e``. Google's WordPiece weighs the same ratio by the pair's count
    (the gain in the corpus's likelihood); this is the version chapter 03's exercise teaches."""
    return count_ab / (count_a * count_b)


class _MergeCounts:
    """Every word as its current symbols, with the counts a merge needs, kept up to date.

    ``splits["cats"] == ["c", "##a", "##t", "##s"]`` at the start; symbol and pair counts are
    weighted by word frequency. A merge re-splits only the words that contain the pair.
    """

    def __init__(self, word_counts: dict[str, int]):
        self.word_counts = word_counts
        self.splits = {w: [w[0]] + [CONTINUATION + c for c in w[1:]] for w in word_counts}
        self.symbol_counts: Counter[str] = Counter()
        self.pair_counts: Counter[tuple[str, str]] = Counter()
        self.words_with_pair: dict[tuple[str, str], set[str]] = {}
        self.pairs_with_symbol: dict[str, set[tuple[str, str]]] = {}
        for word in self.splits:
            self._add_word(word, +1)

    def _add_word(self, word: str, sign: int) -> set[tuple[str, str]]:
        """Add (sign=+1) or remove (sign=-1) one word's symbols and pairs from the counts."""
        symbols, count = self.splits[word], self.word_counts[word] * sign
        for symbol in symbols:
            self.symbol_counts[symbol] += count
        adjacent = list(zip(symbols[:-1], symbols[1:], strict=True))
        for pair in adjacent:
            self.pair_counts[pair] += count
        for pair in set(adjacent):
            if sign > 0:
                self.words_with_pair.setdefault(pair, set()).add(word)
                self.pairs_with_symbol.setdefault(pair[0], set()).add(pair)
                self.pairs_with_symbol.setdefault(pair[1], set()).add(pair)
            else:
                self.words_with_pair[pair].discard(word)
        return set(adjacent)

    def merge(self, a: str, b: str, merged: str) -> set[tuple[str, str]]:
        """Replace every adjacent (a, b) by ``merged``, left to right; returns the pairs whose
        count changed."""
        changed: set[tuple[str, str]] = set()
        for word in list(self.words_with_pair[(a, b)]):
            changed |= self._add_word(word, -1)
            symbols, merged_symbols, i = self.splits[word], [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == a and symbols[i + 1] == b:
                    merged_symbols.append(merged)
                    i += 2
                else:
                    merged_symbols.append(symbols[i])
                    i += 1
            self.splits[word] = merged_symbols
            changed |= self._add_word(word, +1)
        return changed

    def score(self, pair: tuple[str, str], score: PairScore) -> float:
        a, b = pair
        return score(self.pair_counts[pair], self.symbol_counts[a], self.symbol_counts[b])


def train_wordpiece(
    word_counts: dict[str, int],
    vocab_size: int,
    min_frequency: int = 2,
    score: PairScore = frequency_score,
) -> list[str]:
    """Learn a WordPiece vocabulary (a list of tokens, in id order) from word counts.

    Start with the special tokens, then every character seen both as a word start (``a``) and
    as a continuation (``##a``), so every word can be spelled. Then, until the vocabulary has
    ``vocab_size`` entries, merge the adjacent pair of symbols (a, b) with the highest
    ``score(count(ab), count(a), count(b))``, counts taken over all words weighted by their
    frequency: ``a + ##b -> ab``, ``##a + ##b -> ##ab``. Ties go to the smallest pair
    (alphabetically). Pairs seen fewer than ``min_frequency`` times are never merged.

    The default :func:`frequency_score` is the rule of Hugging Face's ``WordPieceTrainer``;
    :func:`likelihood_ratio_score` is the one chapter 03's exercise writes (it fails at scale).

    For speed, a heap holds the scores and is refreshed only for the pairs whose score changed:
    those in the re-split words, and (for a score that divides by the parts' counts) every pair
    containing a or b, whose counts fell.
    """
    alphabet = sorted({char for word in word_counts for char in word})
    vocab = list(SPECIAL_TOKENS) + alphabet + [CONTINUATION + char for char in alphabet]
    known = set(vocab)
    counts = _MergeCounts(word_counts)
    # A max-heap (negated scores) with lazy deletion: outdated entries are skipped when popped.
    heap: list[tuple[float, tuple[str, str]]] = []

    def push(pairs: Iterable[tuple[str, str]]) -> None:
        for pair in pairs:
            if counts.pair_counts[pair] >= min_frequency:
                heapq.heappush(heap, (-counts.score(pair, score), pair))

    push(counts.pair_counts)
    while len(vocab) < vocab_size and heap:
        negative_score, (a, b) = heapq.heappop(heap)
        if counts.pair_counts[(a, b)] < min_frequency or -negative_score != counts.score(
            (a, b), score
        ):
            continue  # outdated entry
        merged = a + b[len(CONTINUATION) :]
        if merged not in known:
            vocab.append(merged)
            known.add(merged)
        changed = counts.merge(a, b, merged)
        if score is not frequency_score:  # the parts' counts fell: their pairs' scores rose
            changed |= counts.pairs_with_symbol.get(a, set())
            changed |= counts.pairs_with_symbol.get(b, set())
        push(changed)
    return vocab


# ---------------------------------------------------------------------------------------------
# 4. Putting it together: special tokens, pairs, truncation, padding
# ---------------------------------------------------------------------------------------------


def truncate_longest_first(
    first: list[int], second: list[int] | None, max_tokens: int
) -> tuple[list[int], list[int] | None]:
    """Cut a pair down to ``max_tokens`` tokens in total (special tokens not counted).

    "Longest first": the shorter side is kept whole if it fits in half the budget and the longer
    side gets the rest; when both are too long they share the budget, the longer one getting
    the odd token (the first one when they tie). This is the rule of Hugging Face's fast
    tokenizers. A single text is simply cut at ``max_tokens``.
    """
    if second is None:
        return first[:max_tokens], None
    if len(first) + len(second) <= max_tokens:
        return first, second
    short, long_ = sorted((len(first), len(second)))
    short_keep = min(short, max_tokens)
    long_keep = max(short_keep, max_tokens - short_keep)
    if short_keep + long_keep > max_tokens:  # both longer than half the budget
        short_keep, long_keep = max_tokens // 2, max_tokens // 2 + max_tokens % 2
    if len(first) > len(second):
        return first[:long_keep], second[:short_keep]
    return first[:short_keep], second[:long_keep]


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_text(text: object, name: str = "text") -> str:
    """``text`` if it is a str of valid Unicode; both paths refuse the same inputs."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}: {text!r:.80}")
    # A lone surrogate (e.g. from bytes decoded with errors="surrogateescape") is not Unicode:
    # Rust cannot even receive it, so the pure path refuses it too.
    if not text.isascii() and (bad := _LONE_SURROGATE.search(text)):
        raise ValueError(
            f"{name} has a lone surrogate {bad.group()!r} at index {bad.start()}, which is not "
            "valid Unicode (bytes decoded with errors='surrogateescape'?); clean it first, e.g. "
            "text.encode('utf-8', 'replace').decode('utf-8')"
        )
    return text


def _train_with_tokenizers(
    texts: list[str], vocab_size: int, do_lower_case: bool, min_frequency: int
) -> list[str]:
    """Hugging Face's ``WordPieceTrainer`` on BERT's normalizer and pre-tokenizer -> tokens in
    bertmini's order: special tokens, characters, ``##`` characters (each sorted), then merges
    in the order they were learned (Rust numbers characters in hash order)."""
    from tokenizers import Tokenizer as RustTokenizer
    from tokenizers import models, normalizers, pre_tokenizers, trainers

    backend = RustTokenizer(models.WordPiece(unk_token=UNK))
    backend.normalizer = normalizers.BertNormalizer(lowercase=do_lower_case)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    by_id = sorted(backend.get_vocab(), key=backend.get_vocab().__getitem__)
    characters = sorted(t for t in by_id if len(t) == 1)
    continuations = sorted(t for t in by_id if t.startswith(CONTINUATION) and len(t) == 3)
    first = [*SPECIAL_TOKENS, *characters, *continuations]
    placed = set(first)
    return first + [t for t in by_id if t not in placed]


class Tokenizer:
    """BERT's WordPiece tokenizer: text <-> ids, for one text, a pair, or a padded batch.

    >>> tok = Tokenizer.from_pretrained(model_dir)          # reads model_dir/vocab.txt
    >>> tok.tokenize("Unaffable!")                          # ['una', '##ffa', '##ble', '!']
    >>> tok.encode("hello", "world")                        # [CLS] hello [SEP] world [SEP]
    >>> batch = tok(["a text", "another one"], max_length=128)  # dict of (batch, seq) tensors

    Special-token ids are read from the vocabulary, never assumed: a trained vocabulary has
    [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, bert-base-uncased has 0, 100, 101, 102, 103.
    An empty text encodes to ``[CLS] [SEP]``.
    """

    def __init__(
        self,
        vocab: dict[str, int] | Sequence[str],
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        fast: bool = False,
    ):
        tokens = sorted(vocab, key=vocab.__getitem__) if isinstance(vocab, dict) else list(vocab)
        missing = [t for t in SPECIAL_TOKENS if t not in tokens]
        if missing:
            raise ValueError(
                f"the vocabulary lacks the special tokens {missing}; a BERT vocabulary must "
                f"contain all of {list(SPECIAL_TOKENS)} (one token per line in vocab.txt). "
                "Train one with Tokenizer.train(texts, vocab_size) or add them to the file."
            )
        self.ids_to_tokens: list[str] = tokens
        # A duplicated line (rare, but real vocab files have some) maps to its last id, as in HF.
        self.vocab: dict[str, int] = {token: i for i, token in enumerate(tokens)}
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.pad_token_id = self.vocab[PAD]
        self.unk_token_id = self.vocab[UNK]
        self.cls_token_id = self.vocab[CLS]
        self.sep_token_id = self.vocab[SEP]
        self.mask_token_id = self.vocab[MASK]
        self.special_ids: set[int] = {self.vocab[t] for t in SPECIAL_TOKENS}
        self._word_cache: dict[str, list[int]] = {}  # word -> wordpiece ids (pure path)
        self.backend = self._build_backend() if fast else None

    @property
    def fast(self) -> bool:
        return self.backend is not None

    def __len__(self) -> int:
        return len(self.ids_to_tokens)

    def __repr__(self) -> str:
        return (
            f"Tokenizer(vocab_size={len(self)}, do_lower_case={self.do_lower_case}, "
            f"fast={self.fast}, special_ids={{[PAD]: {self.pad_token_id}, "
            f"[UNK]: {self.unk_token_id}, [CLS]: {self.cls_token_id}, "
            f"[SEP]: {self.sep_token_id}, [MASK]: {self.mask_token_id}}})"
        )

    # -- loading, training, saving ------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        directory_or_vocab_file: str | Path,
        do_lower_case: bool | None = None,
        fast: bool = False,
    ) -> Tokenizer:
        """Read a BERT ``vocab.txt`` (one token per line, the line number is the id) from a
        directory or a file path. ``do_lower_case=None`` takes it from a
        ``tokenizer_config.json`` next to the vocabulary if there is one, else True."""
        path = Path(directory_or_vocab_file)
        vocab_file = path / "vocab.txt" if path.is_dir() else path
        if not vocab_file.is_file():
            raise FileNotFoundError(
                f"no vocabulary at {vocab_file}: expected a BERT WordPiece vocab.txt (one "
                "token per line) there, or pass the path of such a file"
            )
        config_file = vocab_file.parent / "tokenizer_config.json"
        config = json.loads(config_file.read_text("utf-8")) if config_file.is_file() else {}
        if do_lower_case is None:
            do_lower_case = config.get("do_lower_case", True)
        # Split on "\n" only: some tokens are exotic whitespace-like characters.
        tokens = vocab_file.read_text("utf-8").split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        tokens = [t.rstrip("\r") for t in tokens]
        return cls(tokens, do_lower_case, config.get("strip_accents"), fast)

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        do_lower_case: bool = True,
        min_frequency: int = 2,
        fast: bool = False,
        trainer: str = "python",
    ) -> Tokenizer:
        """Learn a WordPiece vocabulary of (at most, about) ``vocab_size`` tokens from texts.

        ``trainer="python"``: words from the basic tokenizer, merges by :func:`train_wordpiece`;
        deterministic, readable, about 20 s for 60k sentences. ``trainer="tokenizers"``: Hugging
        Face's ``WordPieceTrainer`` (Rust, parallel), the same rule (most frequent pair) on the
        same words. The two vocabularies differ only where counts tie: Rust breaks ties by its
        symbol ids, which depend on hash order (so it can differ from run to run), Python
        alphabetically; Rust adds ``##c`` only for characters seen inside a word, Python for
        every character; Rust also counts words over 100 characters (encoded as [UNK] anyway).
        On SST-2's 60,614 training sentences at 8,192 entries they shared 7,841 entries and
        gave 1.127 and 1.126 pieces per word. ``fast`` chooses the encoding backend.
        Training stops early when no pair is seen ``min_frequency`` times any more.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be an iterable of str (e.g. a list), not one str")
        if trainer not in ("python", "tokenizers"):
            raise ValueError(f"trainer must be 'python' or 'tokenizers', got {trainer!r}")
        texts = [_check_text(text, f"texts[{i}]") for i, text in enumerate(texts)]
        if trainer == "tokenizers":
            vocab = _train_with_tokenizers(texts, vocab_size, do_lower_case, min_frequency)
            return cls(vocab, do_lower_case, None, fast)
        word_counts: Counter[str] = Counter()
        for text in texts:
            words = basic_tokenize(text, do_lower_case)
            word_counts.update(w for w in words if len(w) <= MAX_CHARS_PER_WORD)
        alphabet_size = len({c for w in word_counts for c in w})
        if vocab_size < len(SPECIAL_TOKENS) + 2 * alphabet_size:
            raise ValueError(
                f"vocab_size={vocab_size} is too small: the special tokens and the "
                f"{alphabet_size} characters seen (with their ## forms) need "
                f"{len(SPECIAL_TOKENS) + 2 * alphabet_size}; ask for more"
            )
        vocab = train_wordpiece(word_counts, vocab_size, min_frequency)
        return cls(vocab, do_lower_case, None, fast)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``vocab.txt`` and ``tokenizer_config.json`` (readable by Hugging Face's
        ``BertTokenizerFast.from_pretrained`` too). Returns the vocab file's path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vocab_file = directory / "vocab.txt"
        vocab_file.write_text("".join(t + "\n" for t in self.ids_to_tokens), "utf-8")
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": self.do_lower_case,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": True,
            **{f"{t[1:-1].lower()}_token": t for t in SPECIAL_TOKENS},
        }
        (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2), "utf-8")
        return vocab_file

    def _build_backend(self):
        """The same pipeline in Hugging Face ``tokenizers`` (Rust), for corpus-scale speed."""
        from tokenizers import Tokenizer as RustTokenizer
        from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

        backend = RustTokenizer(
            models.WordPiece(self.vocab, unk_token=UNK, max_input_chars_per_word=MAX_CHARS_PER_WORD)
        )
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=True,
            strip_accents=self.strip_accents,  # None: follows lowercase, as basic_tokenize
            lowercase=self.do_lower_case,
        )
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.add_special_tokens(list(SPECIAL_TOKENS))  # kept whole when written in text
        cls_, sep = (CLS, self.cls_token_id), (SEP, self.sep_token_id)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{CLS} $A {SEP}",
            pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
            special_tokens=[cls_, sep],
        )
        backend.decoder = decoders.WordPiece(prefix=CONTINUATION, cleanup=True)
        return backend

    # -- text -> tokens -> ids ----------------------------------------------------------------

    def _split_special_tokens(self, text: str) -> list[str]:
        """``"a [MASK] b" -> ["a ", "[MASK]", " b"]``: special tokens written in the text are
        kept whole (matched before any cleaning, case-sensitively, as Hugging Face does)."""
        return [part for part in _SPECIAL_TOKEN_PATTERN.split(text) if part]

    def tokenize(self, text: str) -> list[str]:
        """Text -> wordpieces (no [CLS]/[SEP]): ``"Hello, worldly!"`` ->
        ``['hello', ',', 'world', '##ly', '!']``."""
        return self.convert_ids_to_tokens(self._ids(_check_text(text)))

    def _ids(self, text: str) -> list[int]:
        """Text -> wordpiece ids without special tokens: the reference (pure-Python) path."""
        ids: list[int] = []
        for part in self._split_special_tokens(text):
            if part in SPECIAL_TOKENS:
                ids.append(self.vocab[part])
                continue
            for word in basic_tokenize(part, self.do_lower_case, self.strip_accents):
                if word not in self._word_cache:
                    if len(self._word_cache) > 500_000:  # bound memory on huge corpora
                        self._word_cache.clear()
                    pieces = wordpiece(word, self.vocab)
                    self._word_cache[word] = [self.vocab[p] for p in pieces]
                ids.extend(self._word_cache[word])
        return ids

    def _ids_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Many texts -> ids without special tokens, on the fast backend when there is one."""
        texts = [_check_text(t, f"texts[{i}]") for i, t in enumerate(texts)]
        if self.backend is None:
            return [self._ids(text) for text in texts]
        encodings = self.backend.encode_batch(texts, add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def _assemble(
        self,
        first: list[int],
        second: list[int] | None,
        add_special_tokens: bool,
        max_length: int | None,
    ) -> tuple[list[int], list[int]]:
        """Truncate, then add [CLS]/[SEP]: -> (input_ids, token_type_ids)."""
        if max_length is not None:
            num_special = (2 if second is None else 3) if add_special_tokens else 0
            if max_length < num_special:
                raise ValueError(
                    f"max_length={max_length} leaves no room: [CLS]/[SEP] alone take "
                    f"{num_special} positions for a {'pair' if second is not None else 'text'}"
                    f"; use max_length >= {num_special}"
                )
            first, second = truncate_longest_first(first, second, max_length - num_special)
        if not add_special_tokens:
            ids = first + (second or [])
            return ids, [0] * len(first) + [1] * len(second or [])
        ids = [self.cls_token_id, *first, self.sep_token_id]
        segment_ids = [0] * len(ids)
        if second is not None:
            ids += [*second, self.sep_token_id]
            segment_ids += [1] * (len(second) + 1)
        return ids, segment_ids

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        add_special_tokens: bool = True,
        max_length: int | None = None,
    ) -> list[int]:
        """One text (or pair) -> ids: ``[CLS] text [SEP]`` or ``[CLS] text [SEP] pair [SEP]``,
        cut to ``max_length`` tokens longest-first. ``encode("")`` is ``[CLS] [SEP]``, and an
        empty pair keeps its separator: ``encode("hi", "")`` is ``[CLS] hi [SEP] [SEP]`` (as a
        batched Hugging Face call; its single-pair call drops an empty ``text_pair``)."""
        pair_ids = None if text_pair is None else self._ids_batch([text_pair])[0]
        first = self._ids_batch([text])[0]
        return self._assemble(first, pair_ids, add_special_tokens, max_length)[0]

    def encode_batch(
        self,
        texts: Sequence[str],
        text_pairs: Sequence[str] | None = None,
        add_special_tokens: bool = True,
        max_length: int | None = None,
    ) -> list[list[int]]:
        """Many texts -> lists of ids (no padding). With ``fast=True`` this is the corpus-scale
        path: Rust tokenizes the whole batch in parallel."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of str; use encode() for one text")
        firsts = self._ids_batch(texts)
        seconds = self._check_pairs(texts, text_pairs)
        return [
            self._assemble(a, b, add_special_tokens, max_length)[0]
            for a, b in zip(firsts, seconds, strict=True)
        ]

    def _check_pairs(
        self, texts: Sequence[str], text_pairs: Sequence[str] | None
    ) -> list[list[int] | None]:
        if text_pairs is None:
            return [None] * len(texts)
        if isinstance(text_pairs, str) or len(text_pairs) != len(texts):
            raise ValueError(
                f"text_pairs must be a list of str with one entry per text ({len(texts)}), "
                f"got {type(text_pairs).__name__} of length {len(text_pairs)}"
            )
        return self._ids_batch(text_pairs)

    def __call__(
        self,
        texts: str | Sequence[str],
        text_pairs: str | Sequence[str] | None = None,
        max_length: int | None = None,
        padding: bool | str = True,
        return_tensors: str | None = "pt",
        return_special_tokens_mask: bool = False,
        add_special_tokens: bool = True,
    ) -> dict:
        """A batch of texts (or pairs) -> model inputs.

        Returns a dict of ``input_ids``, ``token_type_ids`` (segment ids) and ``attention_mask``
        (1 = real token, 0 = padding), plus ``special_tokens_mask`` if asked; each is an int64
        tensor of shape ``(batch, seq)`` with ``return_tensors="pt"``, or lists of lists with
        ``return_tensors=None``. A single str is a batch of one (lists are then flat).

        ``max_length`` truncates longest-first. ``padding``: True/"longest" pads to the longest
        sequence in the batch, "max_length" to ``max_length``, False not at all.
        """
        single = isinstance(texts, str)
        if single:
            texts = [texts]
            if text_pairs is not None:
                text_pairs = [_check_text(text_pairs, "text_pairs")]
        _check_call_options(padding, max_length, return_tensors)
        firsts = self._ids_batch(texts)
        seconds = self._check_pairs(texts, text_pairs)
        input_ids, token_type_ids = [], []
        for a, b in zip(firsts, seconds, strict=True):
            ids, segment_ids = self._assemble(a, b, add_special_tokens, max_length)
            input_ids.append(ids)
            token_type_ids.append(segment_ids)
        batch = {
            "input_ids": input_ids,
            "token_type_ids": token_type_ids,
            "attention_mask": [[1] * len(ids) for ids in input_ids],
            "special_tokens_mask": [self.get_special_tokens_mask(ids) for ids in input_ids],
        }
        if padding in (True, "longest", "max_length"):
            longest = max((len(ids) for ids in input_ids), default=0)
            self._pad(batch, max_length if padding == "max_length" else longest)
        if not return_special_tokens_mask:
            del batch["special_tokens_mask"]
        if return_tensors == "pt":
            return _as_tensors(batch)
        if single:
            return {name: rows[0] for name, rows in batch.items()}
        return batch

    def _pad(self, batch: dict[str, list[list[int]]], length: int) -> None:
        """Pad every row of `batch` on the right to `length`, in place."""
        fills = {"input_ids": self.pad_token_id, "special_tokens_mask": 1}  # else 0
        for name, rows in batch.items():
            for row in rows:
                row.extend([fills.get(name, 0)] * (length - len(row)))

    # -- ids -> text --------------------------------------------------------------------------

    def get_special_tokens_mask(self, ids: Sequence[int]) -> list[int]:
        """1 where the id is a special token ([PAD] [UNK] [CLS] [SEP] [MASK]), else 0. As in
        Hugging Face, [UNK] counts as special: MLM masking never picks these positions."""
        return [1 if int(i) in self.special_ids else 0 for i in ids]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Token(s) -> id(s); a token not in the vocabulary gives the [UNK] id."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        """Id(s) -> token(s). Accepts ints, lists and 1-d tensors."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        if isinstance(ids, int):
            return self.convert_ids_to_tokens([ids])[0]
        tokens = []
        for i in ids:
            if not 0 <= int(i) < len(self):
                raise ValueError(f"token id {i} is out of range for a vocabulary of {len(self)}")
            tokens.append(self.ids_to_tokens[int(i)])
        return tokens

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Ids -> text: ``##`` pieces are glued back, special tokens skipped by default.
        Lower-casing and accent stripping cannot be undone."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes one sequence (1-d), got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        if skip_special_tokens:
            ids = [i for i in ids if int(i) not in self.special_ids]
        return decode_tokens(self.convert_ids_to_tokens(list(ids)))


def _check_call_options(padding, max_length: int | None, return_tensors: str | None) -> None:
    """A clear error for options `Tokenizer.__call__` does not know."""
    if padding not in (True, False, "longest", "max_length", "do_not_pad"):
        raise ValueError(f"padding must be True/'longest', 'max_length' or False, got {padding!r}")
    if padding == "max_length" and max_length is None:
        raise ValueError("padding='max_length' needs max_length=...")
    if return_tensors not in ("pt", None):
        raise ValueError(f"return_tensors must be 'pt' or None, got {return_tensors!r}")


def _as_tensors(batch: dict[str, list[list[int]]]) -> dict[str, torch.Tensor]:
    """Rows of equal length -> (batch, seq) int64 tensors; a clear error when they differ."""
    lengths = {len(ids) for ids in batch["input_ids"]}
    if len(lengths) > 1:
        raise ValueError(
            f"sequences have different lengths {sorted(lengths)[:5]}: tensors need "
            "padding=True (or return_tensors=None for lists)"
        )
    return {name: torch.tensor(rows, dtype=torch.int64) for name, rows in batch.items()}
