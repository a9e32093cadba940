"""Tests for experiments.translation.metrics."""

import logging

import numpy as np
import pytest
import sacrebleu

from experiments.translation import metrics

# --- BLEU -------------------------------------------------------------------


def test_bleu_is_100_for_identical_corpora():
    corpus = ["je t' aime", "le chat est noir", "nous sommes ici ce soir"]
    assert metrics.bleu(corpus, corpus) == pytest.approx(100.0)


def test_bleu_never_exceeds_100_where_sacrebleu_rounds_above_it():
    # sacrebleu scores this corpus against itself as 100.00000000000004.
    corpus = [
        "w24 w48 w26 w2 w16 w32 w31 w25 w19 w30 w22 w37 w13 w32 w8 w18 w8 w48 w6 w39 w16 w34 "
        "w45 w38 w9 w19 w6 w46"
    ]
    raw = sacrebleu.metrics.BLEU(tokenize="none", force=True).corpus_score(corpus, [corpus])
    assert raw.score > 100.0
    assert metrics.bleu(corpus, corpus) == 100.0


def test_bleu_matches_an_independent_sacrebleu_call():
    hypotheses = ["le chat est noir", "je t' aime bien", "il fait froid ce matin"]
    references = ["le chat est noir", "je t' aime", "il fait très froid ce matin"]
    expected = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none").score
    score = metrics.bleu(hypotheses, references)
    assert 0.0 < score < 100.0
    assert score == pytest.approx(expected)


@pytest.mark.parametrize(
    "hypotheses, references, expected",
    [
        # n-gram precisions 4/5, 3/4, 2/3, 1/2; same length, no brevity penalty.
        (["a b c d e"], ["a b c d f"], 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25),
        # Every n-gram matches, but 4 words for 6: brevity penalty exp(1 - 6/4).
        (["a b c d"], ["a b c d e f"], 100 * np.exp(1 - 6 / 4)),
        # Counts add up over the corpus before the precisions are taken:
        # 7/8, 4/6, 2/4, 1/2 (the second sentence alone has no 3-gram match).
        (
            ["a b c d", "e f g h"],
            ["a b c d", "e f x h"],
            100 * (7 / 8 * 4 / 6 * 2 / 4 * 1 / 2) ** 0.25,
        ),
        # Longer than its reference: no penalty; the repeated "a" is clipped to
        # the reference's one: 4/6, 3/5, 2/4, 1/3.
        (["x a b c y a"], ["a b c y"], 100 * (4 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25),
    ],
    ids=["precisions", "brevity", "corpus_counts", "longer"],
)
def test_bleu_matches_hand_computed_values(hypotheses, references, expected):
    assert metrics.bleu(hypotheses, references) == pytest.approx(expected, rel=1e-9)


def test_bleu_scores_the_given_tokens_without_retokenizing():
    # "noir." is one token in the reference; the default 13a tokenizer would
    # split off the period and score these pairs higher.
    hypotheses = ["le chat est noir .", "il a dit : « non » ."]
    references = ["le chat est noir.", "il a dit : «non» ."]
    none_score = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none").score
    retokenized_score = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="13a").score
    assert none_score != pytest.approx(retokenized_score)
    assert metrics.bleu(hypotheses, references) == pytest.approx(none_score)


def test_bleu_of_empty_corpus_is_zero():
    assert metrics.bleu([], []) == 0.0


def test_bleu_disjoint_corpus_is_zero():
    assert metrics.bleu(["a b c d"], ["e f g h"]) == pytest.approx(0.0)


def test_bleu_logs_no_warning_for_tokenized_periods(caplog):
    corpus = ["il pleut ."] * 120
    with caplog.at_level(logging.WARNING):
        metrics.bleu(corpus, corpus)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_bleu_mismatched_lengths_names_both():
    with pytest.raises(ValueError, match=r"2 hypotheses and 1 references"):
        metrics.bleu(["a", "b"], ["a"])


# --- exact match and token accuracy -----------------------------------------


def test_exact_match_counts_identical_token_sequences():
    hypotheses = ["je t' aime", "le chat", "il  pleut ", "bonjour"]
    references = ["je t' aime", "le chien", "il pleut", "bonsoir"]
    # 1st identical, 3rd identical up to spacing, 2nd and 4th differ.
    assert metrics.exact_match(hypotheses, references) == pytest.approx(0.5)


def test_exact_match_empty_and_mismatch():
    assert metrics.exact_match([], []) == 0.0
    with pytest.raises(ValueError, match="1 hypotheses and 2 references"):
        metrics.exact_match(["a"], ["a", "b"])


def test_token_accuracy_ignores_padding():
    target = np.array([[5, 6, 7, 0], [8, 9, 0, 0]])
    predicted = np.array([[5, 1, 7, 3], [8, 8, 4, 0]])
    # Non-pad positions: 5,6,7 | 8,9 -> correct: 5,7 | 8 -> 3 of 5.
    # Wrong guesses at padded positions (3, 4) must not count.
    assert metrics.token_accuracy(predicted, target) == pytest.approx(3 / 5)


def test_token_accuracy_custom_pad_id():
    target = np.array([[1, 2, -1]])
    predicted = np.array([[1, 3, 9]])
    assert metrics.token_accuracy(predicted, target, pad_id=-1) == pytest.approx(1 / 2)


def test_token_accuracy_all_padding_is_zero():
    target = np.zeros((2, 3), dtype=np.int32)
    assert metrics.token_accuracy(target, target) == 0.0


def test_token_accuracy_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 4\)"):
        metrics.token_accuracy(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        metrics.token_accuracy(np.zeros(3), np.zeros(3))


# --- by_length --------------------------------------------------------------


def test_by_length_buckets_hand_case():
    edges = [1, 6, 11, 16, 21, 31, 41]
    source_lengths = [3, 5, 7, 45, 12]
    references = ["a b c", "d e f", "g h i j", "k l m n", "o p q r"]
    hypotheses = ["a b c", "x y z", "g h i j", "k l m n", "o p q s"]
    rows = metrics.by_length(source_lengths, hypotheses, references, bucket_edges=edges)
    # Lengths 3,5 -> "1-5"; 7 -> "6-10"; 12 -> "11-15"; 45 -> "41+".
    # Buckets 16-20, 21-30 and 31-40 are empty and omitted.
    assert [row["bucket"] for row in rows] == ["1-5", "6-10", "11-15", "41+"]
    assert [row["count"] for row in rows] == [2, 1, 1, 1]
    assert [row["exact_match"] for row in rows] == [0.5, 1.0, 0.0, 1.0]
    assert rows[0]["bleu"] == pytest.approx(metrics.bleu(["a b c", "x y z"], ["a b c", "d e f"]))
    assert rows[1]["bleu"] == pytest.approx(100.0)
    assert rows[3]["bleu"] == pytest.approx(100.0)
    assert set(rows[0]) == {"bucket", "count", "bleu", "exact_match"}


def test_by_length_edge_values_fall_in_upper_bucket():
    rows = metrics.by_length([5, 6, 10, 11, 99], ["a"] * 5, ["a"] * 5, bucket_edges=[1, 6, 11])
    assert [(row["bucket"], row["count"]) for row in rows] == [("1-5", 1), ("6-10", 2), ("11+", 2)]


def test_by_length_single_width_bucket_label():
    rows = metrics.by_length([7], ["a"], ["a"], bucket_edges=[7, 8])
    assert rows[0]["bucket"] == "7"


def test_by_length_rejects_bad_input():
    with pytest.raises(ValueError, match="strictly increasing"):
        metrics.by_length([1], ["a"], ["a"], bucket_edges=[1, 1])
    with pytest.raises(ValueError, match="strictly increasing"):
        metrics.by_length([1], ["a"], ["a"], bucket_edges=[])
    with pytest.raises(ValueError, match="source length 0 is below the first bucket edge 1"):
        metrics.by_length([0], ["a"], ["a"], bucket_edges=[1, 6])
    with pytest.raises(ValueError, match="2 source lengths and 1 hypotheses"):
        metrics.by_length([1, 2], ["a"], ["a"], bucket_edges=[1])


# --- alignment error rate ---------------------------------------------------


def test_aer_perfect_is_zero_and_disjoint_is_one():
    sure = [{(0, 0), (1, 1)}, {(0, 1)}]
    assert metrics.alignment_error_rate(sure, sure) == 0.0
    disjoint = [{(1, 0), (0, 1)}, {(0, 0)}]
    assert metrics.alignment_error_rate(disjoint, sure) == 1.0


def test_aer_partial_hand_computed():
    predicted = [{(0, 0), (1, 2), (2, 1)}, {(0, 0)}]
    sure = [{(0, 0), (1, 1)}, {(0, 0), (1, 1)}]
    possible = [{(0, 0), (1, 1), (1, 2)}, {(0, 0), (1, 1)}]
    # Sentence 1: A∩S = {(0,0)} -> 1, A∩P = {(0,0),(1,2)} -> 2, |A| = 3, |S| = 2.
    # Sentence 2: A∩S = 1, A∩P = 1, |A| = 1, |S| = 2.
    # Corpus: 1 - (2 + 3) / (4 + 4) = 3/8.
    assert metrics.alignment_error_rate(predicted, sure, possible) == pytest.approx(3 / 8)
    # Without possible links, P = S: 1 - (2 + 2) / 8 = 1/2.
    assert metrics.alignment_error_rate(predicted, sure) == pytest.approx(1 / 2)


def test_aer_possible_is_completed_with_sure_links():
    predicted = [{(0, 0), (1, 1)}]
    sure = [{(0, 0)}]
    # Possible lists only (1, 1); (0, 0) is sure so it is possible too.
    # 1 - (1 + 2) / (2 + 1) = 0.
    assert metrics.alignment_error_rate(predicted, sure, [{(1, 1)}]) == pytest.approx(0.0)


def test_aer_no_links_at_all_is_zero_and_length_mismatch_raises():
    assert metrics.alignment_error_rate([set()], [set()]) == 0.0
    with pytest.raises(ValueError, match="2, 1 and 1 sentences"):
        metrics.alignment_error_rate([set(), set()], [set()])


# --- attention_to_links -----------------------------------------------------


WEIGHTS = np.array(
    [
        [0.7, 0.2, 0.1],  # target 0 -> source 0
        [0.1, 0.3, 0.6],  # target 1 -> source 2
        [0.05, 0.5, 0.45],  # target 2 -> source 1
    ]
)


def test_attention_to_links_argmax():
    assert metrics.attention_to_links(WEIGHTS) == {(0, 0), (2, 1), (1, 2)}


def test_attention_to_links_threshold():
    links = metrics.attention_to_links(WEIGHTS, method="threshold", threshold=0.45)
    assert links == {(0, 0), (2, 1), (1, 2), (2, 2)}


def test_attention_to_links_rectangular_uses_source_target_order():
    weights = np.array([[0.1, 0.9]])  # one target word, two source words
    assert metrics.attention_to_links(weights) == {(1, 0)}


def test_attention_to_links_of_no_source_and_of_one_word():
    assert metrics.attention_to_links(np.zeros((3, 0))) == set()
    assert metrics.attention_to_links(np.zeros((0, 3))) == set()
    assert metrics.attention_to_links(np.ones((1, 1))) == {(0, 0)}


def test_attention_to_links_bad_arguments():
    with pytest.raises(ValueError, match=r"'bogus'.*\('argmax', 'threshold'\)"):
        metrics.attention_to_links(WEIGHTS, method="bogus")
    with pytest.raises(ValueError, match="threshold=None"):
        metrics.attention_to_links(WEIGHTS, method="threshold")
    with pytest.raises(ValueError, match="takes no threshold"):
        metrics.attention_to_links(WEIGHTS, threshold=0.5)
    with pytest.raises(ValueError, match=r"\(3,\)"):
        metrics.attention_to_links(np.ones(3))


# --- subword aggregation ----------------------------------------------------


def test_pieces_to_words_hand_case():
    # Source "▁le ▁chat on" = words [le, chaton]; target "▁the ▁kit ten" = [the, kitten].
    weights = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.2, 0.5, 0.3],
            [0.0, 0.6, 0.4],
        ]
    )
    words = metrics.pieces_to_words(weights, [0, 1, 1], [0, 1, 1])
    # Row "the": [0.8, 0.1 + 0.1]; row "kitten": mean of [0.2, 0.8] and [0.0, 1.0].
    expected = np.array([[0.8, 0.2], [0.1, 0.9]])
    np.testing.assert_allclose(words, expected)
    np.testing.assert_allclose(words.sum(axis=1), 1.0)


def test_pieces_to_words_identity_when_one_piece_per_word():
    rng = np.random.default_rng(0)
    weights = rng.dirichlet(np.ones(4), size=3)
    np.testing.assert_allclose(metrics.pieces_to_words(weights, range(4), range(3)), weights)


def test_pieces_to_words_rejects_bad_maps():
    weights = np.full((2, 2), 0.5)
    with pytest.raises(ValueError, match=r"\(2, 2\).*2 target and 3 source"):
        metrics.pieces_to_words(weights, [0, 0, 1], [0, 1])
    with pytest.raises(ValueError, match=r"no piece to words \[1\]"):
        metrics.pieces_to_words(weights, [0, 2], [0, 1])
    with pytest.raises(ValueError, match="negative word index -1"):
        metrics.pieces_to_words(weights, [0, 1], [-1, 0])


def test_pieces_to_words_names_the_last_word_index_that_needs_a_piece():
    weights = np.full((2, 2), 0.5)
    with pytest.raises(ValueError) as error:
        metrics.pieces_to_words(weights, [0, 2], [0, 1])
    assert str(error.value) == (
        "source_word_of_piece gives no piece to words [1]; every word index up to 2 needs one"
    )


def test_pieces_to_words_of_no_pieces_and_of_one_piece():
    assert metrics.pieces_to_words(np.zeros((0, 0)), [], []).shape == (0, 0)
    np.testing.assert_array_equal(metrics.pieces_to_words([[1.0]], [0], [0]), [[1.0]])


def test_word_index_of_pieces_feeds_aer_on_words():
    source_pieces = ["\u2581le", "\u2581chat", "on"]
    target_pieces = ["\u2581the", "\u2581kit", "ten"]
    source_words = metrics.word_index_of_pieces(source_pieces)
    target_words = metrics.word_index_of_pieces(target_pieces)
    assert source_words == [0, 1, 1]
    assert target_words == [0, 1, 1]
    weights = np.array([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3], [0.0, 0.6, 0.4]])
    links = metrics.attention_to_links(metrics.pieces_to_words(weights, source_words, target_words))
    assert metrics.alignment_error_rate([links], [{(0, 0), (1, 1)}]) == 0.0


def test_word_index_of_pieces_without_leading_marker():
    assert metrics.word_index_of_pieces(["ab", "c", "\u2581d"]) == [0, 0, 1]
    assert metrics.word_index_of_pieces([]) == []
