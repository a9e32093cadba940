"""ListOps and MQAR generators: hand-verified examples, determinism, impossible settings."""

import numpy as np
import pytest

from experiments.long_range import listops, mqar


@pytest.mark.parametrize(
    "text, value",
    [
        ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),
        ("[MIN 3 [MAX 1 8 ] 5 ]", 3),
        ("[SM 5 [MED 1 8 3 2 ] 7 ]", 4),  # median of 1 2 3 8 is 2.5, down to 2; 5+2+7 = 14
        ("[MED 9 [SM 9 9 9 ] 1 ]", 7),  # 27 mod 10 = 7; median of 1 7 9
        ("[SM [SM 6 7 ] [MAX 0 0 ] ]", 3),
    ],
)
def test_hand_verified_expressions(text, value):
    tree = listops.parse(text)
    assert listops.value(tree) == value
    assert " ".join(listops.tokens(tree)) == text


def test_generated_expressions_are_within_their_settings_and_deterministic():
    settings = dict(min_length=30, max_length=80, max_depth=4, max_args=4)
    ids, lengths, labels = listops.generate(3, 200, **settings)
    again = listops.generate(3, 200, **settings)
    other = listops.generate(4, 200, **settings)
    for a, b in zip((ids, lengths, labels), again):
        np.testing.assert_array_equal(a, b)
    assert (ids != other[0]).any()
    assert ids.shape == (200, 80) and lengths.min() >= 30 and lengths.max() <= 80
    assert (ids[np.arange(80)[None, :] >= lengths[:, None]] == 0).all()  # padding after the end
    for row, length, label in zip(ids[:50], lengths[:50], labels[:50]):
        text = " ".join(listops.VOCABULARY[i] for i in row[:length])
        tree = listops.parse(text)  # balanced, and evaluates to its label
        assert listops.value(tree) == label

        def depth(t):
            return 0 if isinstance(t, int) else 1 + max(depth(a) for a in t[1:])

        def widest(t):
            return 0 if isinstance(t, int) else max(len(t) - 1, *(widest(a) for a in t[1:]))

        assert depth(tree) <= 4 and 2 <= widest(tree) <= 4
    assert len(set(labels.tolist())) == 10  # every class occurs


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(max_depth=0), "max_depth=0; valid: 1 or more"),
        (dict(max_args=1), "max_args=1; valid: 2 or more"),
        (dict(min_length=3), "min_length=3; valid: 5 or more"),
        (dict(min_length=60, max_length=50), "max_length=50; valid: at least min_length=60"),
        (dict(max_depth=1, max_args=3, min_length=10), "cannot be reached with max_depth=1"),
    ],
)
def test_impossible_listops_settings_are_one_line(settings, message):
    values = dict(min_length=10, max_length=60, max_depth=3, max_args=3) | settings
    with pytest.raises(ValueError, match=message) as error:
        listops.generate(0, 1, **values)
    assert "\n" not in str(error.value)


def test_mqar_sequence_and_its_answers():
    inputs, targets, queries = mqar.generate(0, 50, vocab_size=32, num_pairs=4, length=24)
    assert inputs.shape == targets.shape == queries.shape == (50, 24)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])  # targets: the next token
    for x, y, q in zip(inputs, targets, queries):
        keys, values = x[0:8:2], x[1:8:2]
        assert len(set(keys)) == 4 and len(set(values)) == 4
        assert (keys >= mqar.FIRST_KEY).all() and (keys < 16).all() and (values >= 16).all()
        answers = dict(zip(keys.tolist(), values.tolist()))
        assert q.sum() == 4 and not q[:8].any()
        assert sorted(x[q].tolist()) == sorted(keys.tolist())  # every key asked once
        for position in np.flatnonzero(q):
            assert y[position] == answers[x[position]]
        assert (x[8:][~q[8:] & ~np.isin(x[8:], values)] == mqar.FILLER).all()
    again = mqar.generate(0, 50, vocab_size=32, num_pairs=4, length=24)
    np.testing.assert_array_equal(again[0], inputs)


def test_mqar_mixed_pair_counts_answer_every_query_and_cover_the_range():
    inputs, targets, queries = mqar.generate(
        3, 400, vocab_size=32, num_pairs=6, length=24, min_pairs=2
    )
    counts = queries.sum(axis=1)
    assert set(counts.tolist()) == {2, 3, 4, 5, 6}  # uniform over 5 values: all appear in 400
    for x, y, q, n in zip(inputs, targets, queries, counts):
        keys, values = x[0 : 2 * n : 2], x[1 : 2 * n : 2]
        assert len(set(keys)) == n and (keys < 16).all() and (values >= 16).all()
        assert not q[: 2 * n].any()
        answers = dict(zip(keys.tolist(), values.tolist()))
        assert sorted(x[q].tolist()) == sorted(keys.tolist())
        assert all(y[p] == answers[x[p]] for p in np.flatnonzero(q))
    # min_pairs == num_pairs draws nothing extra: the fixed-count sequences exactly.
    fixed = mqar.generate(0, 50, vocab_size=32, num_pairs=4, length=24)
    same = mqar.generate(0, 50, vocab_size=32, num_pairs=4, length=24, min_pairs=4)
    np.testing.assert_array_equal(fixed[0], same[0])


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(num_pairs=0), "num_pairs=0; valid: 1 or more"),
        (dict(min_pairs=5), "min_pairs=5; valid: 1 to num_pairs=4"),
        (dict(min_pairs=0), "min_pairs=0; valid: 1 to num_pairs=4"),
        (dict(num_pairs=7, length=24), "num_pairs=7 do not fit length=24"),
        (dict(vocab_size=8), "vocab_size=8 holds too few keys"),
    ],
)
def test_impossible_mqar_settings_are_one_line(settings, message):
    values = dict(vocab_size=32, num_pairs=4, length=24) | settings
    with pytest.raises(ValueError, match=message):
        mqar.generate(0, 1, **values)
