"""Tests for the translation input pipeline: splits, tokenizers and batches."""

import json

import ml_collections
import numpy as np
import pytest

from experiments.text import tokenizers
from experiments.text.toy_corpus import SentencePair
from experiments.translation import batching, input_pipeline

PAD, BOS, EOS = tokenizers.PAD_ID, tokenizers.BOS_ID, tokenizers.EOS_ID

WORDS_EN = "i you we see love like the a cat dog house big small red green old new".split()
WORDS_FR = (
    "je tu nous vois aime le la un une chat chien maison grand petit rouge vert vieux".split()
)


def _make_pairs(count, seed=0):
    """Sentence pairs of 1 to 12 words over a small vocabulary; like real
    translations, a target is about as long as its source."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(count):
        source_length = int(rng.integers(1, 13))
        target_length = max(1, source_length + int(rng.integers(-1, 2)))
        source = " ".join(rng.choice(WORDS_EN, size=source_length))
        target = " ".join(rng.choice(WORDS_FR, size=target_length))
        pairs.append(SentencePair(source=source, target=target, alignment=()))
    return pairs


PAIRS = _make_pairs(37)
SOURCE_TOKENIZER = tokenizers.make_tokenizer("word", [p.source for p in PAIRS], vocab_size=100)
TARGET_TOKENIZER = tokenizers.make_tokenizer("word", [p.target for p in PAIRS], vocab_size=100)


def _train(pairs=PAIRS, **kwargs):
    options = dict(batch_size=8, max_length=None, seed=0)
    options.update(kwargs)
    return batching.train_iterator(pairs, SOURCE_TOKENIZER, TARGET_TOKENIZER, **options)


def _eval(pairs=PAIRS, **kwargs):
    options = dict(batch_size=8, max_length=None)
    options.update(kwargs)
    return batching.eval_batches(pairs, SOURCE_TOKENIZER, TARGET_TOKENIZER, **options)


def _assert_batches_equal(first, second):
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


# --- batch layout ----------------------------------------------------------


def test_eval_batches_have_documented_layout():
    batches, _ = _eval(length_multiple=8)
    for batch in batches:
        assert set(batch) == {"source", "target_input", "target_output", "index"}
        assert all(array.dtype == np.int32 for array in batch.values())
        assert (
            batch["source"].shape[0]
            == batch["target_input"].shape[0]
            == batch["index"].shape[0]
            == 8
        )
        assert batch["source"].shape[1] % 8 == 0 and batch["target_input"].shape[1] % 8 == 0
        assert batch["target_input"].shape == batch["target_output"].shape
        for row, example_index in enumerate(batch["index"]):
            if example_index < 0:
                continue
            pair = PAIRS[example_index]
            source_ids, _ = SOURCE_TOKENIZER.encode(pair.source)
            target_ids, _ = TARGET_TOKENIZER.encode(pair.target)
            source_row = batch["source"][row]
            assert list(source_row[: len(source_ids) + 1]) == source_ids + [EOS]
            assert not source_row[len(source_ids) + 1 :].any()
            input_row, output_row = batch["target_input"][row], batch["target_output"][row]
            assert list(input_row[: len(target_ids) + 1]) == [BOS] + target_ids
            assert list(output_row[: len(target_ids) + 1]) == target_ids + [EOS]
            assert not input_row[len(target_ids) + 1 :].any()
            assert not output_row[len(target_ids) + 1 :].any()


def test_width_is_longest_rounded_up_to_the_multiple():
    pairs = [SentencePair("i see the cat", "je vois le chat", ()), SentencePair("i", "je", ())]
    batches, _ = _eval(pairs, batch_size=2, length_multiple=3)
    # Longest source: 4 ids + EOS = 5 -> 6; longest target: BOS + 4 ids = 5 -> 6.
    assert batches[0]["source"].shape == (2, 6)
    assert batches[0]["target_input"].shape == (2, 6)
    batches, _ = _eval(pairs, batch_size=2, length_multiple=1)
    assert batches[0]["source"].shape == (2, 5)
    assert list(batches[0]["source"][1]) == [SOURCE_TOKENIZER.encode("i")[0][0], EOS, PAD, PAD, PAD]


def test_truncation_is_applied_and_counted():
    max_length = 5
    batches, stats = _eval(max_length=max_length, length_multiple=1)
    long_sources = sum(len(p.source.split()) > max_length for p in PAIRS)
    long_targets = sum(len(p.target.split()) > max_length for p in PAIRS)
    assert long_sources > 0 and long_targets > 0
    assert stats == batching.TruncationStats(
        examples=len(PAIRS), source_truncated=long_sources, target_truncated=long_targets
    )
    for batch in batches:
        assert batch["source"].shape[1] <= max_length + 1
        assert batch["target_output"].shape[1] <= max_length + 1
        # A truncated source still ends with EOS.
        real = batch["index"] >= 0
        assert ((batch["source"][real] == EOS).sum(axis=1) == 1).all()
    _, train_stats = _train(max_length=max_length)
    assert train_stats == stats


# --- eval batches ----------------------------------------------------------


def test_eval_batches_cover_every_example_exactly_once_in_order():
    batches, stats = _eval(batch_size=8)
    assert len(batches) == 5  # ceil(37 / 8)
    indices = np.concatenate([b["index"] for b in batches])
    assert list(indices[:37]) == list(range(37))
    assert list(indices[37:]) == [-1, -1, -1]
    last = batches[-1]
    for key in ("source", "target_input", "target_output"):
        assert not last[key][5:].any()
    assert stats.examples == 37 and stats.source_truncated == 0


def test_eval_of_empty_split_gives_no_batches():
    batches, stats = _eval([])
    assert batches == [] and stats.examples == 0


# --- train iterator --------------------------------------------------------


def _take(iterator, count):
    return [next(iterator) for _ in range(count)]


def test_train_epochs_cover_the_split_and_reshuffle():
    pairs = PAIRS[:32]
    iterator, _ = _train(pairs, batch_size=8)
    batches = _take(iterator, 8)
    for batch in batches:
        assert batch["source"].shape[0] == 8 and (batch["index"] >= 0).all()
    first_epoch = np.concatenate([b["index"] for b in batches[:4]])
    second_epoch = np.concatenate([b["index"] for b in batches[4:]])
    assert sorted(first_epoch) == list(range(32))
    assert sorted(second_epoch) == list(range(32))
    assert list(first_epoch) != list(second_epoch)
    assert list(first_epoch) != list(range(32))


def test_different_seeds_shuffle_differently_and_same_seed_repeats():
    order = lambda seed: np.concatenate([b["index"] for b in _take(_train(seed=seed)[0], 4)])
    np.testing.assert_array_equal(order(1), order(1))
    assert list(order(1)) != list(order(2))


@pytest.mark.parametrize("bucket_window_batches", [0, 3])
def test_restoring_iterator_state_continues_identically(bucket_window_batches):
    iterator, _ = _train(bucket_window_batches=bucket_window_batches)
    _take(iterator, 7)  # Past an epoch boundary (37 examples, 8 per batch).
    state = iterator.get_state()
    json.dumps(state)  # Must be storable in a checkpoint.
    expected = _take(iterator, 6)

    restored, _ = _train(bucket_window_batches=bucket_window_batches)
    restored.set_state(state)
    for want, got in zip(expected, _take(restored, 6)):
        _assert_batches_equal(want, got)


def test_length_bucketing_cuts_padding_and_keeps_every_example():
    iterator, _ = _train(PAIRS[:32], batch_size=4, length_multiple=1, seed=3)
    bucketed, _ = _train(
        PAIRS[:32], batch_size=4, length_multiple=1, seed=3, bucket_window_batches=8
    )
    plain_batches, bucketed_batches = _take(iterator, 8), _take(bucketed, 8)
    padding = lambda batches: sum(
        int((b["source"] == PAD).sum() + (b["target_output"] == PAD).sum()) for b in batches
    )
    assert padding(bucketed_batches) < padding(plain_batches)
    assert sorted(np.concatenate([b["index"] for b in bucketed_batches])) == list(range(32))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"length_multiple": 0}, "length_multiple"),
        ({"seed": -1}, "seed"),
        ({"max_length": 0}, "max_length"),
        ({"bucket_window_batches": -2}, "bucket_window_batches"),
    ],
)
def test_train_iterator_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _train(**kwargs)


def test_train_iterator_rejects_empty_split():
    with pytest.raises(ValueError, match="empty"):
        _train([])


# --- splits and tokenizers -------------------------------------------------


def _write_tsv(path, pairs):
    path.write_text("".join(f"{p.source}\t{p.target}\n" for p in pairs), encoding="utf-8")


def _tsv_config(path, **overrides):
    values = dict(
        name="tsv", path=str(path), seed=0, validation_size=3, test_size=2, train_size=None
    )
    values.update(overrides)
    return ml_collections.ConfigDict(values)


def test_load_splits_from_tsv_is_a_seeded_partition(tmp_path):
    pairs = _make_pairs(20, seed=9)
    tsv_path = tmp_path / "pairs.tsv"
    _write_tsv(tsv_path, pairs)
    splits, stats = input_pipeline.load_splits(_tsv_config(tsv_path))
    assert {k: len(v) for k, v in splits.items()} == {"train": 15, "validation": 3, "test": 2}
    assert stats["split_sizes"] == {"train": 15, "validation": 3, "test": 2}
    assert stats["dataset"] == "tsv" and stats["read"]["pairs"] == 20
    as_text = lambda split: [(p.source, p.target) for p in splits[split]]
    everything = as_text("train") + as_text("validation") + as_text("test")
    assert sorted(everything) == sorted((p.source, p.target) for p in pairs)
    assert as_text("train") != [(p.source, p.target) for p in pairs[5:]]  # shuffled

    again, _ = input_pipeline.load_splits(_tsv_config(tsv_path))
    assert again == splits
    other_seed, _ = input_pipeline.load_splits(_tsv_config(tsv_path, seed=1))
    assert other_seed["validation"] != splits["validation"]
    capped, _ = input_pipeline.load_splits(_tsv_config(tsv_path, train_size=4))
    assert capped["train"] == splits["train"][:4]


def test_load_splits_from_ding_file(tmp_path):
    ding_path = tmp_path / "de-en"
    numbers = ["eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun", "zehn"]
    english = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    lines = ["# comment"] + [
        f"Ich habe {de} Katzen. :: I have {en} cats." for de, en in zip(numbers, english)
    ]
    ding_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = ml_collections.ConfigDict(
        dict(name="ding", path=str(ding_path), reverse=True, seed=0, validation_size=2, test_size=1)
    )
    splits, stats = input_pipeline.load_splits(config)
    assert stats["split_sizes"] == {"train": 7, "validation": 2, "test": 1}
    assert stats["read"]["pairs"] == 10
    sources = sorted(p.source for split in splits.values() for p in split)
    assert all(source.startswith("i have") for source in sources)  # reverse: English source
    assert len(set(sources)) == 10


def test_load_splits_tfds_reads_three_splits_with_limits(monkeypatch):
    calls = []

    def fake_load_tfds(name, split, **kwargs):
        calls.append((name, split, kwargs))
        return _make_pairs(2, seed=len(calls))

    monkeypatch.setattr(input_pipeline.corpora, "load_tfds", fake_load_tfds)
    config = ml_collections.ConfigDict(
        dict(
            name="tfds",
            tfds_name="wmt14_translate/fr-en",
            data_dir="/data",
            train_size=100,
            validation_size=10,
            test_size=0,
        )
    )
    splits, stats = input_pipeline.load_splits(config)
    assert [(name, split, kwargs["max_pairs"]) for name, split, kwargs in calls] == [
        ("wmt14_translate/fr-en", "train", 100),
        ("wmt14_translate/fr-en", "validation", 10),
        ("wmt14_translate/fr-en", "test", None),
    ]
    assert all(kwargs["data_dir"] == "/data" for _, _, kwargs in calls)
    assert stats["split_sizes"] == {"train": 2, "validation": 2, "test": 2}
    assert splits["train"] != splits["validation"]


def test_load_splits_rejects_held_out_sizes_that_leave_no_training_data(tmp_path):
    tsv_path = tmp_path / "pairs.tsv"
    _write_tsv(tsv_path, _make_pairs(5))
    with pytest.raises(ValueError, match="no training"):
        input_pipeline.load_splits(_tsv_config(tsv_path, validation_size=3, test_size=2))


def test_load_splits_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="wmt.*toy_translation, tsv, ding, tfds"):
        input_pipeline.load_splits(ml_collections.ConfigDict({"name": "wmt"}))


def test_load_splits_toy_translation_prepares_then_reuses(tmp_path):
    config = ml_collections.ConfigDict(
        dict(
            name="toy_translation",
            data_dir=str(tmp_path),
            seed=2,
            train_size=10,
            validation_size=3,
            test_size=3,
            test_long_size=2,
            train_max_words=6,
            long_max_words=9,
        )
    )
    splits, stats = input_pipeline.load_splits(config)
    sizes = {"train": 10, "validation": 3, "test": 3, "test_long": 2}
    assert {k: len(v) for k, v in splits.items()} == sizes == stats["split_sizes"]
    assert stats["reused_prepared"] is False
    assert max(len(p.source.split()) for p in splits["train"]) <= 6
    again, stats_again = input_pipeline.load_splits(config)
    assert stats_again["reused_prepared"] is True and again == splits


def test_toy_translation_requires_data_dir():
    with pytest.raises(ValueError, match="data_dir"):
        input_pipeline.load_splits(
            ml_collections.ConfigDict({"name": "toy_translation", "data_dir": None})
        )


def test_build_tokenizers_uses_the_training_split_only():
    train = [SentencePair("i see the cat", "je vois le chat", ())]
    config = ml_collections.ConfigDict(
        dict(tokenizer="word", source_vocab_size=50, target_vocab_size=40)
    )
    source_tokenizer, target_tokenizer = input_pipeline.build_tokenizers(train, config)
    assert tokenizers.UNK_ID not in source_tokenizer.encode("the cat")[0]
    assert tokenizers.UNK_ID in source_tokenizer.encode("dog")[0]
    assert tokenizers.UNK_ID in target_tokenizer.encode("chien")[0]
    assert tokenizers.UNK_ID not in target_tokenizer.encode("je vois le chat")[0]
    with pytest.raises(ValueError, match="empty"):
        input_pipeline.build_tokenizers([], config)
