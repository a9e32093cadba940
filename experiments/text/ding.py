"""The full sentences of the ding German-English dictionary (Debian's trans-de-en).

A ding line is "German :: English". Each side lists the same number of
sub-entries separated by " | " (headword, inflections, usage examples), so
the i-th German sub-entry translates the i-th English one. Usage examples
are often full sentences; those are what `read_ding` extracts, as
`SentencePair`s in the sentence convention of `experiments.text.corpora`.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Iterator

from experiments.text.corpora import (
    DEFAULT_DING_PATH,
    ReadStats,
    check_max_pairs,
    decoded_lines,
    fail_if_no_pairs,
    tokenize_words,
)
from experiments.text.toy_corpus import SentencePair

# --- ding dictionary ---------------------------------------------------------
#
# A ding line is "German :: English". Each side lists the same number of
# sub-entries separated by " | " (headword, inflections, usage examples), so
# the i-th German sub-entry translates the i-th English one. Usage examples
# are often full sentences; those are what `read_ding` extracts.

_DING_ANNOTATIONS = (
    re.compile(r"\{[^{}]*\}"),  # grammar: {m}, {vt}, {+Dat.}
    re.compile(r"\[[^\[\]]*\]"),  # labels: [ugs.], [Am.], [übtr.]
    re.compile(r"\([^()]*\)"),  # optional words and explanations
    re.compile(r"(?:^|\s)/[^/\s](?:[^/]*[^/\s])?/(?=\s|$)"),  # abbreviations: /WTHDTM/, /d. J./
)
# Several translations of one example, each a full sentence: "A.; B."
_DING_VARIANT_SEPARATOR = re.compile(r"(?<=[.!?])\s*;\s*")
_OPENING_QUOTES = "\"'„“‚‘«»¿¡"
_SENTENCE_END = re.compile(r"[.!?][\"'“”‘’«»]*$")
_SENTENCE_END_ANYWHERE = re.compile(r"[!?]|\.(?!\w)")
# Slashes give alternatives whose extent is ambiguous ("in Briefkontakt/
# brieflichem Kontakt"); ellipses and placeholders mark templates, not
# sentences.
_NOT_A_SENTENCE = re.compile(
    r"/|\.\.\.|…|\b(?:etw|jd|jdm|jdn|jds|sb|sth)\.|\bsb[’']s\b|\bsth[’']s\b", re.IGNORECASE
)


def _clean_ding_text(text: str) -> str:
    for annotation in _DING_ANNOTATIONS:
        # Repeated to remove nested brackets from the inside out.
        previous = None
        while previous != text:
            previous, text = text, annotation.sub(" ", text)
    text = re.sub(r"\s+([.!?,;:])", r"\1", text)  # "Jungfrau ." left by a removed "(...)"
    return " ".join(text.split())


def _starts_like_a_sentence(text: str) -> bool:
    first = text.lstrip(_OPENING_QUOTES)[:1]
    return first.isupper() or first.isdigit()


def _is_sentence(text: str, min_words: int) -> bool:
    return (
        len(text.split()) >= min_words
        and _starts_like_a_sentence(text)
        and _SENTENCE_END.search(text) is not None
        and _NOT_A_SENTENCE.search(text) is None
    )


def _ding_sentence_pairs(german: str, english: str, min_words: int) -> Iterator[tuple[str, str]]:
    """Yields the (German, English) full-sentence pairs of one pair of sub-entries."""
    if not _SENTENCE_END_ANYWHERE.search(german) or not _SENTENCE_END_ANYWHERE.search(english):
        return  # Most sub-entries are words or phrases; skipping them early saves most of the time.
    german_variants = _DING_VARIANT_SEPARATOR.split(_clean_ding_text(german))
    english_variants = _DING_VARIANT_SEPARATOR.split(_clean_ding_text(english))
    if len(german_variants) != len(english_variants):
        # Unequal lists do not say which translates which; the first of each
        # is the main translation.
        german_variants, english_variants = german_variants[:1], english_variants[:1]
    for german_sentence, english_sentence in zip(german_variants, english_variants):
        if _is_sentence(german_sentence, min_words) and _is_sentence(english_sentence, min_words):
            yield german_sentence, english_sentence


def read_ding(
    path: str | os.PathLike = DEFAULT_DING_PATH,
    *,
    max_pairs: int | None = None,
    reverse: bool = False,
    min_words: int = 3,
) -> tuple[list[SentencePair], ReadStats]:
    """Extracts the full-sentence pairs of the ding German-English dictionary.

    A pair is kept when both sides, after removing annotations ({m},
    [ugs.], (...)), start with a capital letter, end in . ! or ?, have at
    least `min_words` words, and contain no slash alternatives, ellipses or
    placeholders (etw., jdm., sb., sth.). Repeated pairs are kept once.

    Args:
      path: str | PathLike, a ding-format file; the default is where Debian's
        trans-de-en package installs it.
      max_pairs: int | None, stop after this many pairs.
      reverse: bool, False gives German source and English target, True the
        opposite.
      min_words: int >= 1, fewest words on each side.

    Returns:
      (pairs, stats): list[SentencePair] in file order with tokenized sides
      and `alignment=()`, and ReadStats where `empty` counts blank and
      comment lines and `malformed` lines that are not "German :: English"
      with as many " | " sub-entries on each side.

    Raises:
      FileNotFoundError: if `path` does not exist (with the install hint).
      ValueError: for bad arguments, or if the file holds no sentence pair.
    """
    check_max_pairs(max_pairs)
    if min_words < 1:
        raise ValueError(f"min_words must be at least 1, got {min_words}")
    path = pathlib.Path(path)
    stats = ReadStats()
    pairs: list[SentencePair] = []
    seen: set[tuple[str, str]] = set()
    lines = decoded_lines(
        path, stats, missing_hint=" (install the dictionary with: apt-get install trans-de-en)"
    )
    for line_number, line in lines:
        if not line.strip() or line.startswith("#"):
            stats.empty += 1
            continue
        sides = line.split(" :: ")
        if len(sides) != 2:
            stats.note_malformed(
                line_number, f"expected one ' :: ' separator, found {len(sides) - 1}"
            )
            continue
        german_entries, english_entries = sides[0].split(" | "), sides[1].split(" | ")
        if len(german_entries) != len(english_entries):
            stats.note_malformed(
                line_number,
                f"{len(german_entries)} German sub-entries but {len(english_entries)} English ones",
            )
            continue
        for german_entry, english_entry in zip(german_entries, english_entries):
            for german, english in _ding_sentence_pairs(german_entry, english_entry, min_words):
                german, english = (
                    tokenize_words(german, language="de"),
                    tokenize_words(english, language="en"),
                )
                if (german, english) in seen:
                    stats.duplicates += 1
                    continue
                seen.add((german, english))
                source, target = (english, german) if reverse else (german, english)
                pairs.append(SentencePair(source=source, target=target, alignment=()))
                if len(pairs) == max_pairs:
                    break
            if len(pairs) == max_pairs:
                break
        if len(pairs) == max_pairs:
            break
    stats.pairs = len(pairs)
    fail_if_no_pairs(path, pairs, stats)
    return pairs, stats


# --- TensorFlow Datasets -------------------------------------------------------
