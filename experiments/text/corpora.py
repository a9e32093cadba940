"""Readers for real parallel corpora and the word tokenization they share.

Every reader returns `SentencePair`s whose sides follow the project's
sentence convention: lower-case word tokens joined by single spaces, with
punctuation and French elided forms ("l'", "qu'") as tokens of their own.
Real corpora carry no word alignment, so `alignment` is always `()`.

Sources:

* `read_tsv`: tab-separated files such as Tatoeba's English-French export.
* `experiments.text.ding.read_ding`: the full sentences inside the ding
  German-English dictionary that Debian's package trans-de-en installs.
* `load_tfds`: any TensorFlow Datasets translation corpus by name.

Readers skip bad lines instead of failing on them and report what they
skipped in a `ReadStats`.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import unicodedata
from collections.abc import Iterator

from experiments.text.toy_corpus import SentencePair

SUPPORTED_LANGUAGES: tuple[str, ...] = ("de", "en", "fr")
DEFAULT_DING_PATH = "/usr/share/trans/de-en"
# How many malformed lines `ReadStats.examples_of_malformed` describes.
MAX_MALFORMED_EXAMPLES = 5

# French words that drop their final vowel before a vowel ("le homme" ->
# "l'homme"). Only these are split off, so that words with an inner
# apostrophe such as "aujourd'hui" stay whole.
FRENCH_ELIDED_WORDS: tuple[str, ...] = (
    "jusqu",
    "lorsqu",
    "puisqu",
    "quoiqu",
    "quelqu",
    "qu",
    "c",
    "d",
    "j",
    "l",
    "m",
    "n",
    "s",
    "t",
)

_APOSTROPHE_VARIANTS = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'", "`": "'"}
)
# Characters that print as nothing: controls, soft hyphen, zero-width
# spaces and joiners, direction marks, byte order mark.
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1f\x7f\u00ad\u200b-\u200f\u2060\ufeff]")
_NUMBER = r"\d+(?:[.,:]\d+)+"  # 3.5, 1,000, 10:30 stay one token
_WORD = r"\w+(?:['-]\w+)*"  # inner apostrophes and hyphens stay: don't, geht's, peut-être
_PUNCTUATION = r"[^\w\s]"  # any other visible character is a token by itself
_ELIDED = r"(?<![\w'-])(?:" + "|".join(FRENCH_ELIDED_WORDS) + r")'"
_TOKEN_PATTERNS = {
    "de": re.compile("|".join((_NUMBER, _WORD, _PUNCTUATION))),
    "en": re.compile("|".join((_NUMBER, _WORD, _PUNCTUATION))),
    "fr": re.compile("|".join((_ELIDED, _NUMBER, _WORD, _PUNCTUATION))),
}


def _check_language(language: str) -> None:
    if language not in SUPPORTED_LANGUAGES:
        raise ValueError(
            f"unsupported language {language!r}; supported languages are {SUPPORTED_LANGUAGES}"
        )


def tokenize_words(text: str, *, language: str) -> str:
    """Splits raw text into lower-case word tokens joined by single spaces.

    Rules, the same for every corpus so that vocabularies agree:

    * Unicode NFC, lower case, invisible characters removed; typographic
      apostrophes (’ ‘ ʼ ´ `) become "'".
    * Punctuation marks are tokens of their own, one character each
      ("?!" -> "? !"); numbers keep inner separators ("3.5", "10:30").
    * Apostrophes and hyphens between letters stay inside the word. So
      English and German contractions are single tokens ("don't", "i'm",
      "geht's"); an apostrophe elsewhere (quotes, "students'") is punctuation.
    * French only: an elided word is split after its apostrophe ("t'aime" ->
      "t' aime", "qu'il" -> "qu' il", "jusqu'à" -> "jusqu' à"); other inner
      apostrophes stay ("aujourd'hui").

    Tokenizing an already tokenized sentence returns it unchanged.

    Args:
      text: str, raw sentence.
      language: str, one of SUPPORTED_LANGUAGES ("de", "en", "fr").

    Returns:
      str, the tokens joined by single spaces ("" when there are none).
    """
    _check_language(language)
    normalized = unicodedata.normalize("NFC", text).lower()
    normalized = _INVISIBLE.sub("", normalized).translate(_APOSTROPHE_VARIANTS)
    return " ".join(_TOKEN_PATTERNS[language].findall(normalized))


@dataclasses.dataclass
class ReadStats:
    """What a reader saw; the caller decides how to report it.

    Attributes:
      lines: int, lines read from the file.
      pairs: int, sentence pairs returned.
      malformed: int, lines that could not be parsed (undecodable bytes, too
        few columns, missing separator).
      empty: int, lines with nothing to use: blank lines, comment lines, or
        a side that is empty after tokenization.
      examples_of_malformed: list[str], the first MAX_MALFORMED_EXAMPLES
        malformed lines as "line N: reason".
      duplicates: int, pairs dropped because the same pair was returned
        already (only `read_ding` removes duplicates).
    """

    lines: int = 0
    pairs: int = 0
    malformed: int = 0
    empty: int = 0
    examples_of_malformed: list[str] = dataclasses.field(default_factory=list)
    duplicates: int = 0

    def note_malformed(self, line_number: int, reason: str) -> None:
        """Counts one malformed line and keeps its description if there is room."""
        self.malformed += 1
        if len(self.examples_of_malformed) < MAX_MALFORMED_EXAMPLES:
            self.examples_of_malformed.append(f"line {line_number}: {reason}")

    def __str__(self) -> str:
        text = f"{self.lines} lines -> {self.pairs} pairs, {self.malformed} malformed, {self.empty} empty"
        if self.duplicates:
            text += f", {self.duplicates} duplicates"
        if self.examples_of_malformed:
            text += " (" + "; ".join(self.examples_of_malformed) + ")"
        return text


def check_max_pairs(max_pairs: int | None) -> None:
    if max_pairs is not None and max_pairs < 1:
        raise ValueError(f"max_pairs must be a positive int or None, got {max_pairs!r}")


def decoded_lines(
    path: pathlib.Path, stats: ReadStats, missing_hint: str = ""
) -> Iterator[tuple[int, str]]:
    """Yields (line_number, text) for each UTF-8 line; counts every line and the undecodable ones."""
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}{missing_hint}")
    with path.open("rb") as lines:
        for line_number, raw_line in enumerate(lines, start=1):
            stats.lines += 1
            try:
                # utf-8-sig drops a byte order mark, which editors put on line 1.
                text = raw_line.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                stats.note_malformed(line_number, f"invalid UTF-8 at byte {error.start}")
                continue
            yield line_number, text.rstrip("\r\n")


def fail_if_no_pairs(path: pathlib.Path, pairs: list[SentencePair], stats: ReadStats) -> None:
    if not pairs:
        raise ValueError(f"no usable sentence pairs in {path}: {stats}")


def read_tsv(
    path: str | os.PathLike,
    *,
    source_column: int = 0,
    target_column: int = 1,
    source_language: str = "en",
    target_language: str = "fr",
    max_pairs: int | None = None,
) -> tuple[list[SentencePair], ReadStats]:
    """Reads a tab-separated parallel corpus, one sentence pair per line.

    Tatoeba's English-French export has the columns English, French,
    attribution, which the defaults match. Extra columns are ignored.

    Args:
      path: str | PathLike, UTF-8 text file.
      source_column, target_column: int >= 0, distinct column indices.
      source_language, target_language: str, languages for `tokenize_words`.
      max_pairs: int | None, stop after this many pairs.

    Returns:
      (pairs, stats): list[SentencePair] in file order with tokenized sides
      and `alignment=()`, and the ReadStats of the lines read.

    Raises:
      FileNotFoundError: naming `path` if it does not exist.
      ValueError: for bad arguments, or if no line gives a usable pair.
    """
    _check_language(source_language)
    _check_language(target_language)
    check_max_pairs(max_pairs)
    if min(source_column, target_column) < 0 or source_column == target_column:
        raise ValueError(
            f"source_column={source_column} and target_column={target_column} must be distinct and non-negative"
        )
    path = pathlib.Path(path)
    needed_columns = max(source_column, target_column) + 1
    stats = ReadStats()
    pairs: list[SentencePair] = []
    for line_number, line in decoded_lines(path, stats):
        if not line.strip():
            stats.empty += 1
            continue
        columns = line.split("\t")
        if len(columns) < needed_columns:
            stats.note_malformed(
                line_number,
                f"expected at least {needed_columns} tab-separated columns, found {len(columns)}",
            )
            continue
        source = tokenize_words(columns[source_column], language=source_language)
        target = tokenize_words(columns[target_column], language=target_language)
        if not source or not target:
            stats.empty += 1
            continue
        pairs.append(SentencePair(source=source, target=target, alignment=()))
        if len(pairs) == max_pairs:
            break
    stats.pairs = len(pairs)
    fail_if_no_pairs(path, pairs, stats)
    return pairs, stats


def _text(value) -> str:
    """TFDS text features arrive as bytes (numpy or Python); other sources as str."""
    if hasattr(value, "item"):
        value = value.item()
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def load_tfds(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    source_key: str | None = None,
    target_key: str | None = None,
    max_pairs: int | None = None,
) -> list[SentencePair]:
    """Loads a translation corpus from TensorFlow Datasets by name.

    Uses `tfds.data_source` (array_record files, no TensorFlow needed) and
    falls back to `tfds.load` for datasets stored in another format. The
    data must already be prepared in `data_dir` or be downloadable.

    Args:
      name: str, e.g. "wmt14_translate/fr-en" (examples with keys "en", "fr").
      split: str, e.g. "train", "validation[:1000]".
      data_dir: str | PathLike | None, TFDS data directory.
      source_key, target_key: str | None, feature names of each side; by
        default the dataset's supervised keys (for wmt14_translate/fr-en
        that is French -> English, so pass source_key="en", target_key="fr"
        for English -> French). Each key is also the language passed to
        `tokenize_words`, so it must be one of SUPPORTED_LANGUAGES.
      max_pairs: int | None, stop after this many pairs.

    Returns:
      list[SentencePair] with tokenized sides and `alignment=()`; examples
      with an empty side are skipped.
    """
    import tensorflow_datasets as tfds  # Imported here: slow, and only this reader needs it.

    check_max_pairs(max_pairs)
    if source_key is None or target_key is None:
        supervised_keys = tfds.builder(name, data_dir=data_dir).info.supervised_keys
        if not supervised_keys or len(supervised_keys) != 2:
            raise ValueError(
                f"dataset {name!r} has no (source, target) supervised keys; pass source_key and target_key"
            )
        source_key = source_key or supervised_keys[0]
        target_key = target_key or supervised_keys[1]
    _check_language(source_key)
    _check_language(target_key)
    try:
        examples = tfds.data_source(name, split=split, data_dir=data_dir)
    except NotImplementedError:
        # Datasets prepared as TFRecord files cannot be read without TensorFlow.
        examples = tfds.as_numpy(tfds.load(name, split=split, data_dir=data_dir))
    pairs: list[SentencePair] = []
    for example in examples:
        if source_key not in example or target_key not in example:
            raise ValueError(
                f"dataset {name!r} examples have keys {sorted(example)}, not {source_key!r} and {target_key!r}"
            )
        source = tokenize_words(_text(example[source_key]), language=source_key)
        target = tokenize_words(_text(example[target_key]), language=target_key)
        if source and target:
            pairs.append(SentencePair(source=source, target=target, alignment=()))
            if len(pairs) == max_pairs:
                break
    return pairs
