"""Translation quality and word-alignment metrics.

Sentences are strings of word tokens separated by single spaces (already
tokenized and lower-cased, e.g. ``"je t' aime"``). Word alignments are sets of
``(source_word_index, target_word_index)`` links, 0-based.

Quality metrics:
  * :func:`bleu` -- corpus BLEU (0-100) computed by sacrebleu on the given tokens.
  * :func:`exact_match` -- fraction of hypotheses identical to their reference.
  * :func:`token_accuracy` -- teacher-forced accuracy over non-pad positions.
  * :func:`by_length` -- BLEU and exact match per source-length bucket.

Alignment metrics:
  * :func:`alignment_error_rate` -- AER of Och & Ney (2003).
  * :func:`attention_to_links` -- hard links from one sentence's attention weights.
  * :func:`pieces_to_words` -- subword attention aggregated to word level.
  * :func:`word_index_of_pieces` -- word index of each sentencepiece piece.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sacrebleu.metrics import BLEU

ATTENTION_TO_LINKS_METHODS = ("argmax", "threshold")

# A link is (source_word_index, target_word_index).
Link = tuple[int, int]


def _check_same_length(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(
            f"hypotheses and references must have the same length, got "
            f"{len(hypotheses)} hypotheses and {len(references)} references"
        )


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU of space-tokenized hypotheses against one reference each.

    The text is scored as given (sacrebleu ``tokenize="none"``), so the score
    is over the same word tokens the model produces. sacrebleu's warning about
    already tokenized input is suppressed because tokenized input is intended.

    Args:
      hypotheses: N system outputs, space-separated tokens.
      references: N reference translations, aligned with ``hypotheses``.

    Returns:
      BLEU in [0, 100]. An empty corpus (N = 0) scores 0.0 since there is
      nothing to have got right.

    Raises:
      ValueError: if the two sequences have different lengths.
    """
    _check_same_length(hypotheses, references)
    if not hypotheses:
        return 0.0
    scorer = BLEU(tokenize="none", force=True)
    score = scorer.corpus_score(list(hypotheses), [list(references)]).score
    # Floating-point rounding can overshoot 100 slightly for identical corpora.
    return float(min(max(score, 0.0), 100.0))


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of hypotheses whose token sequence equals their reference.

    Tokens are compared after splitting on whitespace, so stray double or
    trailing spaces do not count as errors.

    Args:
      hypotheses: N system outputs, space-separated tokens.
      references: N reference translations.

    Returns:
      A fraction in [0, 1]; 0.0 for an empty corpus.

    Raises:
      ValueError: if the two sequences have different lengths.
    """
    _check_same_length(hypotheses, references)
    if not hypotheses:
        return 0.0
    matches = sum(h.split() == r.split() for h, r in zip(hypotheses, references))
    return matches / len(hypotheses)


def token_accuracy(predicted_ids: np.ndarray, target_ids: np.ndarray, *, pad_id: int = 0) -> float:
    """Teacher-forced token accuracy over the non-pad target positions.

    Args:
      predicted_ids: int array [batch, T], the argmax prediction at each step.
      target_ids: int array [batch, T], the reference tokens; positions equal
        to ``pad_id`` are ignored whatever was predicted there.
      pad_id: the padding token id.

    Returns:
      Correct predictions divided by the number of non-pad target positions,
      in [0, 1]; 0.0 when every target position is padding.

    Raises:
      ValueError: if the arrays are not 2-D or their shapes differ.
    """
    predicted = np.asarray(predicted_ids)
    target = np.asarray(target_ids)
    if predicted.ndim != 2 or predicted.shape != target.shape:
        raise ValueError(
            f"predicted_ids and target_ids must both be [batch, T] arrays of the same shape, "
            f"got {predicted.shape} and {target.shape}"
        )
    counted = target != pad_id
    total = int(counted.sum())
    if total == 0:
        return 0.0
    correct = int(((predicted == target) & counted).sum())
    return correct / total


def _bucket_label(low: int, high: int | None) -> str:
    if high is None:
        return f"{low}+"
    if high == low:
        return str(low)
    return f"{low}-{high}"


def by_length(
    source_lengths: Sequence[int],
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    bucket_edges: Sequence[int],
) -> list[dict]:
    """BLEU and exact match per source-sentence length bucket.

    Bucket i holds lengths in ``[bucket_edges[i], bucket_edges[i + 1])``; the
    last edge opens a final unbounded bucket. Edges ``[1, 6, 11, 41]`` give
    buckets labelled ``"1-5"``, ``"6-10"``, ``"11-40"`` and ``"41+"`` (a bucket
    one length wide is labelled by that length alone, e.g. ``"7"``).

    Args:
      source_lengths: N source lengths in words.
      hypotheses: N system outputs.
      references: N reference translations.
      bucket_edges: strictly increasing lower bounds of the buckets.

    Returns:
      One dict per non-empty bucket, in increasing length order, with keys
      ``"bucket"`` (label), ``"count"`` (sentences), ``"bleu"`` (corpus BLEU
      of the bucket) and ``"exact_match"``. Buckets no sentence falls into are
      omitted, so a plot or table shows only measured points.

    Raises:
      ValueError: on mismatched lengths, edges that are empty or not strictly
        increasing, or a source length below the first edge.
    """
    _check_same_length(hypotheses, references)
    if len(source_lengths) != len(hypotheses):
        raise ValueError(
            f"source_lengths must have one entry per hypothesis, got "
            f"{len(source_lengths)} source lengths and {len(hypotheses)} hypotheses"
        )
    edges = [int(edge) for edge in bucket_edges]
    if not edges or any(a >= b for a, b in zip(edges, edges[1:])):
        raise ValueError(
            f"bucket_edges must be non-empty and strictly increasing, got {list(bucket_edges)}"
        )
    lengths = np.asarray(source_lengths, dtype=np.int64)
    if lengths.size and lengths.min() < edges[0]:
        raise ValueError(
            f"source length {int(lengths.min())} is below the first bucket edge {edges[0]}; "
            f"bucket_edges were {edges}"
        )
    # searchsorted(side="right") - 1 maps a length to the last edge <= it.
    bucket_of_sentence = np.searchsorted(edges, lengths, side="right") - 1

    rows = []
    for bucket, low in enumerate(edges):
        members = np.flatnonzero(bucket_of_sentence == bucket)
        if members.size == 0:
            continue
        high = edges[bucket + 1] - 1 if bucket + 1 < len(edges) else None
        bucket_hypotheses = [hypotheses[i] for i in members]
        bucket_references = [references[i] for i in members]
        rows.append(
            {
                "bucket": _bucket_label(low, high),
                "count": int(members.size),
                "bleu": bleu(bucket_hypotheses, bucket_references),
                "exact_match": exact_match(bucket_hypotheses, bucket_references),
            }
        )
    return rows


def alignment_error_rate(
    predicted: Sequence[set[Link]],
    sure: Sequence[set[Link]],
    possible: Sequence[set[Link]] | None = None,
) -> float:
    """Corpus-level alignment error rate (Och & Ney, 2003).

    AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|), with the counts summed over
    all sentences, where A are the predicted links, S the sure links and P
    the possible links. P must contain S; to tolerate annotations that list
    sure links only once, P is taken as ``possible ∪ sure``. Without
    ``possible``, P = S and AER reduces to 1 - F1 of A against S.

    Args:
      predicted: per sentence, a set of (source_index, target_index) links.
      sure: per sentence, the sure gold links.
      possible: per sentence, the possible gold links, or None.

    Returns:
      AER in [0, 1], lower is better. 0.0 when there are no predicted and no
      sure links at all (nothing to find, nothing wrongly found).

    Raises:
      ValueError: if the per-sentence sequences have different lengths.
    """
    if possible is None:
        possible = sure
    if not len(predicted) == len(sure) == len(possible):
        raise ValueError(
            f"predicted, sure and possible must have one entry per sentence, got "
            f"{len(predicted)}, {len(sure)} and {len(possible)} sentences"
        )
    predicted_total = sure_total = hits_sure = hits_possible = 0
    for links, sure_links, possible_links in zip(predicted, sure, possible):
        links = set(links)
        sure_links = set(sure_links)
        possible_links = set(possible_links) | sure_links
        predicted_total += len(links)
        sure_total += len(sure_links)
        hits_sure += len(links & sure_links)
        hits_possible += len(links & possible_links)
    if predicted_total + sure_total == 0:
        return 0.0
    return 1.0 - (hits_sure + hits_possible) / (predicted_total + sure_total)


def attention_to_links(
    weights: np.ndarray, *, method: str = "argmax", threshold: float | None = None
) -> set[Link]:
    """Hard word links read off one sentence's attention weights.

    Args:
      weights: float array [target_len, source_len]; row t is the attention
        of target word t over the source words. The caller strips EOS and
        padding rows/columns first so indices are word positions.
      method: ``"argmax"`` links each target word to its highest-weighted
        source word (ties go to the first); ``"threshold"`` links every cell
        whose weight is >= ``threshold``.
      threshold: required for ``"threshold"``, must be None for ``"argmax"``.

    Returns:
      A set of (source_index, target_index) links. Empty for empty weights.

    Raises:
      ValueError: for an unknown method, a missing or superfluous threshold,
        or weights that are not 2-D.
    """
    if method not in ATTENTION_TO_LINKS_METHODS:
        raise ValueError(
            f"unknown method {method!r}; valid methods are {ATTENTION_TO_LINKS_METHODS}"
        )
    weights = np.asarray(weights)
    if weights.ndim != 2:
        raise ValueError(
            f"weights must be a [target_len, source_len] array, got shape {weights.shape}"
        )
    if method == "threshold" and threshold is None:
        raise ValueError("method 'threshold' needs a threshold value, got threshold=None")
    if method == "argmax" and threshold is not None:
        raise ValueError(f"method 'argmax' takes no threshold, got threshold={threshold}")
    if weights.size == 0:
        return set()
    if method == "argmax":
        best_source = np.argmax(weights, axis=1)
        return {(int(source), target) for target, source in enumerate(best_source)}
    target_indices, source_indices = np.nonzero(weights >= threshold)
    return {(int(s), int(t)) for t, s in zip(target_indices, source_indices)}


def _piece_to_word_matrix(word_of_piece: Sequence[int], name: str) -> np.ndarray:
    """One-hot float matrix [num_pieces, num_words] mapping pieces to words."""
    word_ids = np.asarray(word_of_piece, dtype=np.int64)
    if word_ids.ndim != 1:
        raise ValueError(
            f"{name} must be a flat sequence of word indices, got shape {word_ids.shape}"
        )
    if word_ids.size == 0:
        return np.zeros((0, 0))
    if word_ids.min() < 0:
        raise ValueError(f"{name} holds negative word index {int(word_ids.min())}")
    num_words = int(word_ids.max()) + 1
    missing = sorted(set(range(num_words)) - set(word_ids.tolist()))
    if missing:
        raise ValueError(
            f"{name} gives no piece to words {missing}; every word index up to {num_words - 1} needs one"
        )
    one_hot = np.zeros((word_ids.size, num_words))
    one_hot[np.arange(word_ids.size), word_ids] = 1.0
    return one_hot


def pieces_to_words(
    weights: np.ndarray,
    source_word_of_piece: Sequence[int],
    target_word_of_piece: Sequence[int],
) -> np.ndarray:
    """Aggregates subword attention to word-level attention.

    Source pieces of a word are summed (the attention a word receives is the
    total its pieces receive, so rows that summed to 1 still do); target
    pieces of a word are averaged (each piece is one attention distribution
    and the word's is their mean, which again sums to 1).

    Args:
      weights: float array [T_pieces, S_pieces].
      source_word_of_piece: S_pieces word indices, e.g. ``[0, 0, 1]`` when the
        first word was split into two pieces. Every word index from 0 to the
        largest must occur.
      target_word_of_piece: T_pieces word indices, same convention.

    Returns:
      Float array [T_words, S_words].

    Raises:
      ValueError: if the index sequences do not match the weight shape or
        skip a word.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2:
        raise ValueError(f"weights must be a [T_pieces, S_pieces] array, got shape {weights.shape}")
    if (len(target_word_of_piece), len(source_word_of_piece)) != weights.shape:
        raise ValueError(
            f"weights have shape {weights.shape} but got {len(target_word_of_piece)} target and "
            f"{len(source_word_of_piece)} source piece indices"
        )
    source_map = _piece_to_word_matrix(source_word_of_piece, "source_word_of_piece")
    target_map = _piece_to_word_matrix(target_word_of_piece, "target_word_of_piece")
    summed_over_source = weights @ source_map
    pieces_per_target_word = target_map.sum(axis=0)
    return (target_map.T @ summed_over_source) / pieces_per_target_word[:, None]


def word_index_of_pieces(pieces: Sequence[str], *, word_start: str = "\u2581") -> list[int]:
    """Word index of each sentencepiece piece, for :func:`pieces_to_words`.

    A piece that begins with ``word_start`` (sentencepiece's "▁") starts a new
    word; other pieces continue the current word. A leading piece without the
    marker still belongs to word 0.

    Args:
      pieces: the pieces of one sentence, e.g. ``["▁le", "▁chat", "on"]``.
      word_start: the marker that opens a word.

    Returns:
      One word index per piece, e.g. ``[0, 1, 1]``.
    """
    word_indices = []
    current_word = -1
    for position, piece in enumerate(pieces):
        if position == 0 or piece.startswith(word_start):
            current_word += 1
        word_indices.append(current_word)
    return word_indices
