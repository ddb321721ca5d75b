"""The embedded corpus: deterministic, cleanly split, small vocabulary, right by construction."""

import math
import re
import time
from collections import Counter

import pytest

from bertmini.data.corpus import (
    HELD_OUT_POLARITY_WORDS,
    MASK,
    NAMES,
    POLARITY_WORDS,
    SEEN_POLARITY_WORDS,
    STANCE_VERBS,
    TOPICS,
    generate_corpus,
    polarity_words_in,
    probes,
    sentiment_task,
)

SMALL = 2000  # documents: enough for every template and topic to appear, fast to generate


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(seed=0, num_documents=SMALL)


@pytest.fixture(scope="module")
def task():
    return sentiment_task(seed=0)


@pytest.fixture(scope="module")
def probe_sets():
    return probes(seed=0, num_items=150)


def test_same_seed_same_corpus_and_different_seed_differs(corpus):
    again = generate_corpus(seed=0, num_documents=SMALL)
    assert (again.train, again.validation, again.test) == (
        corpus.train,
        corpus.validation,
        corpus.test,
    )
    other = generate_corpus(seed=1, num_documents=SMALL)
    assert other.train != corpus.train
    assert sentiment_task(seed=0) == sentiment_task(seed=0)
    assert sentiment_task(seed=1)["train"] != sentiment_task(seed=0)["train"]
    assert probes(seed=0, num_items=20) == probes(seed=0, num_items=20)


def test_splits_are_disjoint_and_sized(corpus):
    splits = [set(map(tuple, corpus.split(name))) for name in ("train", "validation", "test")]
    assert sum(len(s) for s in splits) == SMALL  # no duplicate documents anywhere
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])
    assert len(corpus.validation) == len(corpus.test) == SMALL // 20


def test_documents_are_multi_sentence_and_lower_case(corpus):
    for document in corpus.train[:300]:
        assert 4 <= len(document) <= 12
        for sentence in document:
            assert sentence == sentence.lower() and sentence.endswith(".")
            assert re.fullmatch(r"[a-z ,.]+", sentence), sentence


def test_texts_helper(corpus):
    sentences = corpus.texts("validation")
    assert len(sentences) == sum(len(d) for d in corpus.validation)
    documents = corpus.texts("validation", unit="document")
    assert documents[0] == " ".join(corpus.validation[0])
    with pytest.raises(ValueError, match="unit"):
        corpus.texts("train", unit="paragraph")
    with pytest.raises(ValueError, match="split"):
        corpus.texts("dev")


def test_word_vocabulary_is_small(corpus):
    # <= 1,500 words: a 4,096-token WordPiece vocabulary (the demo's) keeps every word whole, so
    # probes score single tokens, and the MLM head stays a small part of a mini BERT.
    words = corpus.word_counts()
    assert 600 <= len(words) <= 1500
    # every polarity word and every name occurs, so pretraining sees the held-out words
    assert set(POLARITY_WORDS) <= set(words)
    assert set(NAMES) <= set(words)


def test_default_generation_is_fast():
    start = time.perf_counter()
    corpus = generate_corpus()
    elapsed = time.perf_counter() - start
    assert elapsed < 15, f"default corpus took {elapsed:.1f} s"  # ~0.5 s when the machine is idle
    size = sum(len(t) for name in ("train", "validation", "test") for t in corpus.texts(name))
    assert 1e6 < size < 5e6  # a few MB


def test_topics_are_distinct():
    # NSP is easy when another document is on another topic: topics share few content words.
    def content(topic):
        nouns = [w for pair in topic.roles + topic.things + topic.moves for w in pair]
        return set(nouns) | {a[0] for a in topic.actions} | set(topic.places)

    assert len(TOPICS) >= 20
    for i, a in enumerate(TOPICS):
        for b in TOPICS[i + 1 :]:
            assert len(content(a) & content(b)) <= 3, (a.name, b.name, content(a) & content(b))


def test_reviews_keep_their_stance(corpus):
    # The stars and the verdict of a review agree with each other.
    reviews = [d for d in corpus.train if any("star" in s for s in d)]
    assert 0.2 < len(reviews) / len(corpus.train) < 0.4
    for review in reviews:
        stars = next(s for s in review if "star" in s)
        positive_stars = "five" in stars or "four" in stars
        verdict = review[-1] if "star" in review[-2] else review[-2]
        assert (
            "not" in verdict or "never" in verdict or "waste" in verdict or "avoid" in verdict
        ) != positive_stars


def test_polarity_split_is_disjoint_and_graded():
    assert not set(SEEN_POLARITY_WORDS) & set(HELD_OUT_POLARITY_WORDS)
    assert set(SEEN_POLARITY_WORDS) | set(HELD_OUT_POLARITY_WORDS) == set(POLARITY_WORDS)
    for half in (SEEN_POLARITY_WORDS, HELD_OUT_POLARITY_WORDS):
        groups = {POLARITY_WORDS[word] for word in half}
        assert groups == {(p, s) for p in (0, 1) for s in (1, 2, 3)}  # both signs, all strengths


def test_sentiment_task_holds_out_polarity_words(task):
    assert [len(task[s]) for s in ("train", "validation", "test")] == [4000, 500, 1000]
    for split, allowed in (
        ("train", SEEN_POLARITY_WORDS),
        ("validation", SEEN_POLARITY_WORDS),
        ("test", HELD_OUT_POLARITY_WORDS),
    ):
        for text, label in task[split]:
            words = polarity_words_in(text)
            assert words and set(words) <= set(allowed), (split, text)
            assert label in (0, 1)
    held_out_seen = {w for text, _ in task["test"] for w in polarity_words_in(text)}
    assert held_out_seen == set(HELD_OUT_POLARITY_WORDS)  # the test set uses all of them


def test_sentiment_labels_balanced_and_unique(task):
    for split in ("train", "validation", "test"):
        labels = [label for _, label in task[split]]
        assert abs(sum(labels) - len(labels) / 2) <= 1
    texts = [text for split in task.values() for text, _ in split]
    assert len(texts) == len(set(texts))


def _clause_polarity(clause: str) -> int:
    (word,) = polarity_words_in(clause)
    polarity = POLARITY_WORDS[word][0]
    return 1 - polarity if " not " in f" {clause} " else polarity


def test_sentiment_labels_follow_negation_and_contrast(task):
    # Re-derive every label from the rules: "not" flips, after "but" / in the main clause of
    # "although" the last clause decides, "and" joins clauses of the same polarity.
    forms = set()
    for text, label in task["train"] + task["test"]:
        sentence = text.split(". ")[-1].rstrip(".")  # drop a neutral opener
        if " but " in sentence:
            first, last = sentence.split(" but ")
            assert _clause_polarity(first) != _clause_polarity(last)
            forms.add("but")
        elif sentence.startswith("although"):
            first, last = sentence.split(", ")
            assert _clause_polarity(first) != _clause_polarity(last)
            forms.add("although")
        elif " and " in sentence:
            first, last = sentence.split(" and ")
            assert _clause_polarity(first) == _clause_polarity(last)
            forms.add("and")
        else:
            last = sentence
            forms.add("not" if " not " in sentence else "plain")
        assert _clause_polarity(last) == label, text
    assert forms == {"but", "although", "and", "not", "plain"}


def test_agreement_probe_answers_agree_with_the_subject(probe_sets):
    plural_nouns = {pair[1] for t in TOPICS for pair in t.roles + t.things}
    singular_nouns = {pair[0] for t in TOPICS for pair in t.roles + t.things}
    verb_number = {"is": 0, "are": 1}
    for t in TOPICS:
        for sg, pl, *_ in t.actions + t.moves:
            verb_number[sg], verb_number[pl] = 0, 1
    attractors_differ = 0
    for item in probe_sets["agreement"]:
        words = item.text.split()
        assert words.count(MASK) == 1 and words[0] == "the"
        subject, attractor = words[1], words[4]
        assert subject in plural_nouns ^ singular_nouns  # a noun with one number only
        subject_plural = subject in plural_nouns
        assert verb_number[item.correct] == int(subject_plural), item
        assert verb_number[item.incorrect] == 1 - int(subject_plural), item
        attractors_differ += (attractor in plural_nouns) != subject_plural
    assert attractors_differ > len(probe_sets["agreement"]) / 2  # mostly opposite-number attractors


def test_fact_recall_probe_answer_is_stated_earlier(probe_sets):
    for item in probe_sets["fact_recall"]:
        before, after = item.text.split(MASK)
        role = re.search(r"the (\w+), $", before).group(1)
        assert f"the {role} is called {item.correct}." in before  # the fact, stated early
        assert f"is called {item.incorrect}." in before  # the distractor is in the context too
        assert item.correct != item.incorrect and item.correct not in after


def test_sentiment_words_probe_matches_the_review(probe_sets):
    for item in probe_sets["sentiment_words"]:
        assert item.text.count(MASK) == 1
        correct, incorrect = POLARITY_WORDS[item.correct], POLARITY_WORDS[item.incorrect]
        assert {item.correct, item.incorrect} <= set(HELD_OUT_POLARITY_WORDS)
        assert correct[0] != incorrect[0] and correct[1] == incorrect[1]
        positive_stars = "five star" in item.text or "four star" in item.text
        assert correct[0] == int(positive_stars), item.text


def _stance(line):
    """(polarity of the stance verb, the word two on) of "i loved the superb food."."""
    words = line.rstrip(".").split()
    polarity = next(p for p, verbs in STANCE_VERBS.items() if words[1] in verbs)
    return polarity, words[3]


def test_comment_threads_put_the_stance_next_to_the_word(corpus):
    assert not any(d[0].split()[1] in STANCE_VERBS[0] + STANCE_VERBS[1] for d in corpus.train)
    mixed = generate_corpus(seed=0, num_documents=SMALL, comment_share=0.4)
    assert mixed.comment_share == 0.4 and "comment threads (40%)" in mixed.describe()
    threads = [
        d
        for d in mixed.train
        if d[0].split()[0] in ("i", "we")
        and len(d[0]) < 60
        and d[0].split()[1] in STANCE_VERBS[0] + STANCE_VERBS[1]
    ]
    assert 0.33 < len(threads) / len(mixed.train) < 0.47
    stances = set()
    for thread in threads:
        assert 3 <= len(thread) <= 6
        for line in thread:
            polarity, word = _stance(line)
            assert POLARITY_WORDS[word][0] == polarity, line
            stances.add(polarity)
    assert stances == {0, 1}
    only = generate_corpus(seed=0, num_documents=200, review_share=0.0, comment_share=1.0)
    assert all(_stance(line) for d in only.train for line in d)


def test_short_documents_have_one_stance_throughout():
    """Phase 2's documents: every polarity word (and stance verb) agrees with every other."""
    short = generate_corpus(seed=0, num_documents=SMALL, review_share=0.0, short_share=1.0)
    assert "short one-stance documents (100%)" in short.describe()
    plain = 0
    for document in short.train:
        polarities = {POLARITY_WORDS[w][0] for w in polarity_words_in(" ".join(document))}
        if document[0].startswith("the "):  # "the room was superb. the bed was lovely."
            plain += 1
            assert 2 <= len(document) <= 4
            assert not any(w in " ".join(document).split() for w in ("not", "but", "stars."))
        else:
            assert 3 <= len(document) <= 6
            polarities |= {_stance(line)[0] for line in document}
        assert len(polarities) == 1, document
    assert 0.4 < plain / len(short.train) < 0.6
    mixed = generate_corpus(seed=0, num_documents=SMALL, short_share=0.3)
    plain_share = sum(d[0].startswith("the ") and len(d) <= 4 for d in mixed.train) / SMALL
    assert 0.1 < plain_share < 0.2  # half of the 30%


def test_stance_words_probe_masks_the_word_after_the_verb(probe_sets):
    for item in probe_sets["stance_words"]:
        line = next(s for s in item.text.split(". ") if MASK in s)
        polarity, masked = _stance(line)
        assert masked == MASK
        correct, incorrect = POLARITY_WORDS[item.correct], POLARITY_WORDS[item.incorrect]
        assert {item.correct, item.incorrect} <= set(HELD_OUT_POLARITY_WORDS)
        assert correct == (polarity, incorrect[1]) and incorrect[0] == 1 - polarity


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="comment_share"):
        generate_corpus(review_share=0.7, comment_share=0.4)
    with pytest.raises(ValueError, match="short_share"):
        generate_corpus(review_share=0.5, short_share=-0.1)
    with pytest.raises(TypeError, match="seed"):
        generate_corpus(seed="zero")
    with pytest.raises(ValueError, match="num_documents"):
        generate_corpus(num_documents=0)
    with pytest.raises(ValueError, match="fraction"):
        generate_corpus(validation_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError, match="num_train"):
        sentiment_task(num_train=0)
    with pytest.raises(ValueError, match="num_items"):
        probes(num_items=0)


def test_labels_need_the_polarity_words(task):
    # With every polarity word hidden, a unigram+bigram naive Bayes fit on train is at chance on
    # test: nothing but the held-out words (and how "not"/"but" act on them) decides the label.
    hidden = re.compile(r"\b(" + "|".join(POLARITY_WORDS) + r")\b")

    def features(text):
        words = hidden.sub("X", text).split()
        return words + [f"{a}_{b}" for a, b in zip(words, words[1:], strict=False)]

    counts = {0: Counter(), 1: Counter()}
    for text, label in task["train"]:
        counts[label].update(features(text))
    vocabulary_size = len(set(counts[0]) | set(counts[1]))
    totals = {label: sum(c.values()) + vocabulary_size for label, c in counts.items()}

    def predict(text):
        score = {
            label: sum(math.log((counts[label][f] + 1) / totals[label]) for f in features(text))
            for label in (0, 1)
        }
        return int(score[1] > score[0])

    accuracy = sum(predict(t) == label for t, label in task["test"]) / len(task["test"])
    assert abs(accuracy - 0.5) < 0.06, accuracy
