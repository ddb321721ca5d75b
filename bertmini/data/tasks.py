"""Two more fine-tuning tasks from the embedded corpus's lexicon: sentence pairs and tagging.

BERT's paper fine-tunes one pretrained model on three kinds of task: single sentences (SST-2;
here `corpus.sentiment_task`), sentence pairs (MNLI) and tokens (CoNLL NER). These are the
other two, generated offline from the same words the corpus is made of (chapter 08).

* :func:`nli_task`, three labels as in NLI. Segment A states a fact, "the baker is called
  maria.", then says something else about the topic. Segment B is about one role: "maria is the
  baker." follows from A (entailment), "the baker is called tom." contradicts it, and "the
  cashier is called tom." is about a role A never names (neutral). Roles and names in B are
  drawn the same way whatever the label, and A is drawn before the label, so neither segment
  alone tells the label: :func:`bag_of_words_accuracy` measures that (it stays near 1/3).
* :func:`tagging_task`, one tag per word: the word's role in the sentence (NAME, ROLE, THING,
  ACTION, PLACE, a POSITIVE or NEGATIVE polarity word, NOT; everything else O). A word's tag goes
  on its first WordPiece (`data.finetuning.TokenClassificationDataset`).

Both hold words out of the test split, as the sentiment task does: the test split uses the
names and polarity words that training never labels (the pretraining corpus has all of them),
so a model that learned only from the labelled examples has to read the context.

Taught in chapter 08 (`chapters/08_finetuning.ipynb`).
"""

from __future__ import annotations

import random

import torch

from .corpus import (
    DAYS,
    HELD_OUT_POLARITY_WORDS,
    INTENSIFIERS,
    NAMES,
    NUMBERS,
    POLARITY_WORDS,
    PREPOSITIONS,
    SEEN_POLARITY_WORDS,
    TOPICS,
    Topic,
)
from .finetuning import Task

NLI_LABELS = ["entailment", "neutral", "contradiction"]  # MNLI's order
TAGS = ["O", "NAME", "ROLE", "THING", "ACTION", "PLACE", "POSITIVE", "NEGATIVE", "NOT"]
SEEN_NAMES: tuple[str, ...] = tuple(NAMES[0::2])
HELD_OUT_NAMES: tuple[str, ...] = tuple(NAMES[1::2])
SIZES = {"train": 4000, "validation": 500, "test": 1000}


# ---------------------------------------------------------------------------------------------
# Sentence pairs: does B follow from A, contradict it, or say nothing A knows about?
# ---------------------------------------------------------------------------------------------


def _premise(rng: random.Random, topic: Topic, role: str, name: str, other: str) -> str:
    """A: the fact, then a sentence on the topic that may mention another person."""
    action, place = rng.choice(topic.actions), rng.choice(topic.places)
    filler = rng.choice(
        (
            f"{other} {action[0]} the {rng.choice(action[3])} in the {place}.",
            f"{other} thinks that the {place} is {rng.choice(topic.adjectives)}.",
            f"there are {rng.choice(NUMBERS)} {rng.choice(topic.things)[1]} on {rng.choice(DAYS)}.",
        )
    )
    fact = f"the {role} is called {name}."
    return f"{fact} {filler}" if rng.random() < 0.5 else f"{filler} {fact}"


def _hypothesis(rng: random.Random, role: str, name: str) -> str:
    """B: one claim about who holds a role, in one of three wordings."""
    return rng.choice(
        (
            f"the {role} is called {name}.",
            f"{name} is the {role}.",
            f"in the end, the {role}, {name}, went home.",
        )
    )


def _nli_example(rng: random.Random, label: int, names: tuple[str, ...]) -> tuple[str, str]:
    topic = rng.choice(TOPICS)
    role, other_role = (pair[0] for pair in rng.sample(topic.roles, 2))
    name, other, fresh = rng.sample(names, 3)
    premise = _premise(rng, topic, role, name, other)
    if label == 0:  # entailment: the role with its name
        return premise, _hypothesis(rng, role, name)
    # Contradiction: the role with another name; neutral: another role, any name. The names in
    # B come from the same draw for both, so B's words alone cannot tell them apart.
    claimed = rng.choice((name, other, fresh)) if label == 1 else rng.choice((other, fresh))
    return premise, _hypothesis(rng, other_role if label == 1 else role, claimed)


def nli_task(seed: int = 0, sizes: dict[str, int] | None = None) -> Task:
    """Sentence pairs (A, B) labelled entailment / neutral / contradiction, balanced.

    Train and validation use `SEEN_NAMES`, test uses `HELD_OUT_NAMES`. No pair repeats.
    """
    sizes = {**SIZES, **(sizes or {})}
    rng = random.Random(f"nli-{seed}")
    taken: set[tuple[str, str]] = set()
    splits = {}
    for split, size in sizes.items():
        names = HELD_OUT_NAMES if split == "test" else SEEN_NAMES
        rows = [(*_distinct(rng, taken, _nli_example, i % 3, names), i % 3) for i in range(size)]
        rng.shuffle(rows)
        splits[split] = {
            "text": [a for a, _, _ in rows],
            "text_pair": [b for _, b, _ in rows],
            "label": [label for _, _, label in rows],
        }
    return Task("embedded-nli", splits, NLI_LABELS, source={"task": "embedded-nli"})


def _distinct(rng: random.Random, taken: set, make, *args):
    """A new example from `make(rng, *args)`, different from every one in `taken`."""
    for _ in range(1000):
        example = make(rng, *args)
        key = example if isinstance(example, tuple) and isinstance(example[0], str) else None
        key = key or tuple(example[0])
        if key not in taken:
            taken.add(key)
            return example
    raise ValueError("cannot make that many distinct examples; ask for fewer")


# ---------------------------------------------------------------------------------------------
# Tagging: each word's role
# ---------------------------------------------------------------------------------------------


def _tagged_sentence(
    rng: random.Random, names: tuple[str, ...], polarity_words: tuple[str, ...]
) -> tuple[list[str], list[int]]:
    """One sentence as (words, tags); punctuation is a word of its own, tagged O."""
    topic = rng.choice(TOPICS)
    action = rng.choice(topic.actions)
    name = ("NAME", rng.choice(names))
    thing, place = ("THING", rng.choice(topic.things)[0]), ("PLACE", rng.choice(topic.places))
    role = ("ROLE", rng.choice(topic.roles)[0])
    form = rng.randrange(6)
    if form == 0:
        words = [("O", "the"), role, ("O", "is"), ("O", "called"), name]
    elif form == 1:
        obj = ("THING", rng.choice(action[3]))
        words = [name, ("ACTION", action[0]), ("O", "the"), obj, ("O", "in"), ("O", "the"), place]
    elif form == 2:
        attractor = ("THING", rng.choice(topic.things)[1])
        move = ("ACTION", rng.choice(topic.moves)[0])
        words = [
            ("O", "the"),
            thing,
            ("O", rng.choice(PREPOSITIONS)),
            ("O", "the"),
            attractor,
            move,
        ]
    elif form == 3:
        words = [name, ("O", "thinks"), ("O", "that"), ("O", "the"), place, ("O", "is")]
        words.append(("O", rng.choice(topic.adjectives)))
    else:  # a review clause, a quarter of them negated, some with "but"
        words = _review_clause(rng, thing, polarity_words)
        if form == 5:
            other = ("THING", rng.choice(topic.things)[0])
            words += [("O", "but")] + _review_clause(rng, other, polarity_words)
    words.append(("O", "."))
    return [word for _, word in words], [TAGS.index(tag) for tag, _ in words]


def _review_clause(rng: random.Random, thing: tuple[str, str], polarity_words) -> list:
    word = rng.choice(polarity_words)
    polarity = ("POSITIVE" if POLARITY_WORDS[word][0] == 1 else "NEGATIVE", word)
    middle = [("NOT", "not")] if rng.random() < 0.25 else []
    intensifier = rng.choice(("", "") + INTENSIFIERS[POLARITY_WORDS[word][1]]).strip()
    if intensifier and not middle:
        middle = [("O", intensifier)]
    return [("O", "the"), thing, ("O", "was"), *middle, polarity]


def tagging_task(seed: int = 0, sizes: dict[str, int] | None = None) -> Task:
    """Sentences with one role tag per word (`TAGS`; tag 0, "O", is everything else).

    Train and validation use `SEEN_NAMES` and `SEEN_POLARITY_WORDS`; test uses the held-out
    ones. No sentence repeats.
    """
    sizes = {**SIZES, **(sizes or {})}
    rng = random.Random(f"tagging-{seed}")
    taken: set = set()
    splits = {}
    for split, size in sizes.items():
        held_out = split == "test"
        names = HELD_OUT_NAMES if held_out else SEEN_NAMES
        polarity = HELD_OUT_POLARITY_WORDS if held_out else SEEN_POLARITY_WORDS
        rows = [_distinct(rng, taken, _tagged_sentence, names, polarity) for _ in range(size)]
        splits[split] = {"words": [w for w, _ in rows], "tags": [t for _, t in rows]}
    return Task("embedded-tagging", splits, TAGS, kind="token", source={"task": "embedded-tagging"})


EMBEDDED_TASKS = {"embedded-nli": nli_task, "embedded-tagging": tagging_task}


# ---------------------------------------------------------------------------------------------
# How far do the words of one segment get? A bag-of-words baseline
# ---------------------------------------------------------------------------------------------


def bag_of_words_accuracy(
    task: Task, columns: tuple[str, ...], split: str = "test", steps: int = 300
) -> float:
    """Accuracy on `split` of a logistic regression on word counts of `columns` (trained on
    "train"). Each column's words are separate features, so ("text", "text_pair") sees which
    segment a word is in, but not how the segments' words line up."""
    vocabulary: dict[tuple[str, str], int] = {}
    for column in columns:
        for text in task.splits["train"][column]:
            for word in text.replace(".", " .").replace(",", " ,").split():
                vocabulary.setdefault((column, word), len(vocabulary))

    def features(split_name: str) -> torch.Tensor:
        rows = task.splits[split_name]
        counts = torch.zeros(len(rows["label"]), len(vocabulary))
        for column in columns:
            for i, text in enumerate(rows[column]):
                for word in text.replace(".", " .").replace(",", " ,").split():
                    if (column, word) in vocabulary:
                        counts[i, vocabulary[(column, word)]] += 1
        return counts

    x_train, y_train = features("train"), torch.tensor(task.splits["train"]["label"])
    generator = torch.Generator().manual_seed(0)
    weights = torch.zeros(len(vocabulary), task.num_labels).normal_(0, 0.01, generator=generator)
    weights.requires_grad_(True)
    bias = torch.zeros(task.num_labels, requires_grad=True)
    optimizer = torch.optim.Adam([weights, bias], lr=0.05)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(x_train @ weights + bias, y_train)
        optimizer.zero_grad()
        (loss + 1e-4 * weights.pow(2).sum()).backward()
        optimizer.step()
    with torch.no_grad():
        predicted = (features(split) @ weights + bias).argmax(-1)
    return (predicted == torch.tensor(task.splits[split]["label"])).float().mean().item()
