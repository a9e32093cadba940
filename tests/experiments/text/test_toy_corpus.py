"""The generated English->French toy corpus: alignments, vocabulary, lengths, splits."""

import collections
import os
import pathlib
import subprocess
import sys

import pytest

from experiments.text import toy_corpus
from experiments.text.toy_corpus import (
    SentencePair,
    generate,
    make_splits,
)


@pytest.fixture(scope="module")
def sample() -> list[SentencePair]:
    return generate(600, seed=123)


# --- Generated corpora ---------------------------------------------------------


def test_alignments_are_sorted_in_range_and_cover_every_word(sample):
    for pair in sample:
        source, target = pair.source.split(), pair.target.split()
        assert list(pair.alignment) == sorted(set(pair.alignment)), pair
        assert all(0 <= s < len(source) and 0 <= t < len(target) for s, t in pair.alignment), pair
        # The grammar has no words without a counterpart on either side.
        assert {t for _, t in pair.alignment} == set(range(len(target))), toy_corpus.pretty(pair)
        assert {s for s, _ in pair.alignment} == set(range(len(source))), toy_corpus.pretty(pair)


def test_generated_words_are_in_the_vocabulary(sample):
    english, french = toy_corpus.vocabulary()
    assert 300 < len(english) < 1000 and 300 < len(french) < 2000
    for pair in sample:
        assert set(pair.source.split()) <= english, pair.source
        assert set(pair.target.split()) <= french, pair.target
    assert {"i", "love", "you", "not", "red", "car"} <= english
    assert {
        "je",
        "j'",
        "t'",
        "aime",
        "ne",
        "pas",
        "l'",
        "au",
        "du",
        "qu'",
        "d'",
        "s'",
        "m'",
        "n'",
    } <= french


def test_words_are_lower_case_and_elided_forms_are_separate_tokens(sample):
    for pair in sample:
        assert pair.source == pair.source.lower() and pair.target == pair.target.lower()
        assert "  " not in pair.source and "  " not in pair.target
        for word in pair.target.split():
            assert "'" not in word[:-1] or word == "aujourd'hui", word


def test_the_same_english_sentence_always_gets_the_same_translation():
    translations = collections.defaultdict(set)
    for pair in generate(6000, seed=9, max_words=5):
        translations[pair.source].add((pair.target, pair.alignment))
    repeated = [s for s in translations if len(translations[s]) > 1]
    assert repeated == []
    assert len(translations) < 6000  # short sentences repeat, so the check had something to compare


def test_the_generator_uses_the_whole_grammar(sample):
    targets = " ".join(pair.target for pair in sample).split()
    sources = " ".join(pair.source for pair in sample).split()
    for word in ("ne", "qui", "que", "qu'", "au", "du", "j'", "l'", "d'", "et", "mais", "parce"):
        assert word in targets, word
    for word in ("not", "who", "that", "will", "some", "an", "often"):
        assert word in sources, word
    # Adjectives after the noun show up as crossing links.
    assert any(
        s1 < s2 and t1 > t2
        for pair in sample
        for (s1, t1), (s2, t2) in zip(pair.alignment, pair.alignment[1:])
    )


def test_generation_is_deterministic_from_the_seed():
    assert generate(40, seed=3) == generate(40, seed=3)
    assert generate(40, seed=3) != generate(40, seed=4)
    assert generate(0, seed=3) == []


def test_output_does_not_depend_on_string_hashing():
    # Drawing from a set of strings would change the corpus from one process to the next.
    script = "from experiments.text import toy_corpus; print(toy_corpus.generate(100, seed=5))"
    repo_root = pathlib.Path(__file__).resolve().parents[3]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=repo_root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {f"{generate(100, seed=5)}\n"}


def test_lengths_stay_in_range_and_cover_it_evenly():
    pairs = generate(800, seed=1, min_words=5, max_words=12)
    counts = collections.Counter(len(pair.source.split()) for pair in pairs)
    assert set(counts) == set(range(5, 13))
    assert min(counts.values()) > 800 / 8 / 2  # roughly uniform: no length is rare


def test_long_sentences_on_request():
    pairs = generate(15, seed=0, min_words=41, max_words=60)
    lengths = [len(pair.source.split()) for pair in pairs]
    assert all(41 <= n <= 60 for n in lengths)
    assert max(lengths) >= 50
    # Long sentences are built from several clauses.
    conjunctions = {"and", "but", "or", "so", "because", "when", "while", "if"}
    assert all(conjunctions & set(pair.source.split()) for pair in pairs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_pairs=-1, seed=0), "num_pairs=-1"),
        (dict(num_pairs=1, seed=0, min_words=2), "min_words=2"),
        (dict(num_pairs=1, seed=0, min_words=10, max_words=9), "max_words=9"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(**kwargs)


SMALL_SPLITS = dict(
    seed=7,
    train_size=300,
    validation_size=40,
    test_size=40,
    test_long_size=20,
    train_max_words=8,
    long_max_words=14,
)


def test_make_splits_sizes_lengths_and_no_overlap():
    splits = make_splits(**SMALL_SPLITS)
    assert {name: len(pairs) for name, pairs in splits.items()} == {
        "train": 300,
        "validation": 40,
        "test": 40,
        "test_long": 20,
    }
    for name in ("train", "validation", "test"):
        assert all(3 <= len(p.source.split()) <= 8 for p in splits[name]), name
    assert all(9 <= len(p.source.split()) <= 14 for p in splits["test_long"])
    sources = [p.source for pairs in splits.values() for p in pairs]
    assert len(sources) == len(set(sources))  # no sentence twice, within or across splits


def test_make_splits_is_reproducible_and_depends_on_the_seed():
    assert make_splits(**SMALL_SPLITS) == make_splits(**SMALL_SPLITS)
    other = make_splits(**{**SMALL_SPLITS, "seed": 8})
    assert other["train"] != make_splits(**SMALL_SPLITS)["train"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(train_size=-1), "train_size=-1"),
        (dict(train_max_words=2), "max_words=2"),
        (dict(train_max_words=10, long_max_words=10), "long_max_words=10"),
    ],
)
def test_make_splits_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_splits(**kwargs)
