"""Tokenizers that turn space-separated sentences into integer ids and back.

Two kinds share one interface (`Tokenizer`):

* `WordVocabulary`: one id per word, built from word frequencies.
* `SentencePieceTokenizer`: subword pieces trained in memory with the
  sentencepiece package (unigram or BPE).

Every tokenizer reserves the same special ids: PAD=0, BOS=1, EOS=2, UNK=3.
`encode` returns ids without BOS/EOS; the input pipeline adds them.

Both kinds save to a single JSON file whose "kind" field lets
`load_tokenizer` restore either, so a model's workdir can hold the
tokenizers it was trained with.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import io
import json
import os
import pathlib
import re
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import sentencepiece

from experiments.text.token_ids import (
    BOS_ID,
    BOS_TOKEN,
    EOS_ID,
    EOS_TOKEN,
    PAD_ID,
    PAD_TOKEN,
    UNK_ID,
    UNK_TOKEN,
)

SPECIAL_TOKENS: tuple[str, ...] = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)

TOKENIZER_KINDS: tuple[str, ...] = ("word", "sentencepiece")
SENTENCEPIECE_MODEL_TYPES: tuple[str, ...] = ("unigram", "bpe")

# Bumped whenever the JSON layout written by `save` changes incompatibly.
_FILE_FORMAT_VERSION = 1
_SENTENCEPIECE_WORD_START = "\u2581"  # "▁", marks a piece that begins a word


@runtime_checkable
class Tokenizer(Protocol):
    """What the input pipeline, the model and the plots need from a tokenizer.

    Attributes:
      vocab_size: int, number of ids; valid ids are 0 .. vocab_size - 1.
    """

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str, *, max_length: int | None = None) -> tuple[list[int], bool]:
        """Maps a sentence to ids without BOS/EOS.

        Returns:
          (ids, truncated): list[int] of at most `max_length` ids, and a bool
          that is True when the sentence was longer and had to be cut.
        """
        ...

    def decode(self, ids: Iterable[int]) -> str:
        """Maps ids back to a sentence; stops at EOS, skips PAD and BOS."""
        ...

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """Returns the surface string of each id (special ids included)."""
        ...

    def word_of_token(self, ids: Iterable[int]) -> list[int]:
        """Returns, for each id, the index of the space-separated word it is part of."""
        ...

    def save(self, path: str | os.PathLike) -> None:
        """Writes the tokenizer to one JSON file readable by `load_tokenizer`."""
        ...


def _checked_ids(ids: Iterable[int], vocab_size: int) -> list[int]:
    """Converts ids (list, numpy or jax array) to Python ints and checks their range."""
    checked = [int(token_id) for token_id in ids]
    for token_id in checked:
        if not 0 <= token_id < vocab_size:
            raise ValueError(
                f"token id {token_id} is out of range; valid ids are 0..{vocab_size - 1}"
            )
    return checked


def _content_ids(ids: Iterable[int], vocab_size: int) -> list[int]:
    """The ids that `decode` renders: everything before the first EOS except PAD and BOS."""
    content = []
    for token_id in _checked_ids(ids, vocab_size):
        if token_id == EOS_ID:
            break
        if token_id not in (PAD_ID, BOS_ID):
            content.append(token_id)
    return content


def _truncate(ids: list[int], max_length: int | None) -> tuple[list[int], bool]:
    if max_length is None:
        return ids, False
    if max_length < 1:
        raise ValueError(f"max_length must be a positive int or None, got {max_length!r}")
    return ids[:max_length], len(ids) > max_length


def _write_json(path: str | os.PathLike, payload: dict) -> None:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")


@dataclasses.dataclass(frozen=True, eq=True)
class WordVocabulary:
    """One id per word; words outside the vocabulary map to UNK.

    Attributes:
      words: tuple[str, ...], the word of each id; the first four are the
        special tokens "<pad>", "<s>", "</s>", "<unk>".
    """

    words: tuple[str, ...]
    _id_of_word: dict[str, int] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if tuple(self.words[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(
                f"a word vocabulary must start with the special tokens {SPECIAL_TOKENS}, "
                f"got {tuple(self.words[: len(SPECIAL_TOKENS)])}"
            )
        regular_words = self.words[len(SPECIAL_TOKENS) :]
        # Special-token strings occurring in text are ordinary unknown words,
        # so they are deliberately absent from the lookup table.
        id_of_word = {
            word: index for index, word in enumerate(regular_words, start=len(SPECIAL_TOKENS))
        }
        if len(id_of_word) != len(regular_words) or set(regular_words) & set(SPECIAL_TOKENS):
            raise ValueError("a word vocabulary must not repeat a word or a special token")
        if any(not word or word != word.strip() or " " in word for word in regular_words):
            raise ValueError("vocabulary words must be non-empty and contain no whitespace")
        object.__setattr__(self, "_id_of_word", id_of_word)

    @classmethod
    def build(
        cls, texts: Iterable[str], *, max_size: int = 10000, min_count: int = 1
    ) -> WordVocabulary:
        """Builds a vocabulary of the most frequent words.

        Args:
          texts: Iterable[str], space-separated sentences.
          max_size: int, vocabulary size including the 4 special tokens; must be at least 5.
          min_count: int >= 1, words seen fewer times are left out (they become UNK).

        Returns:
          WordVocabulary whose words after the special tokens are ordered by
          decreasing count, ties broken alphabetically, so the same texts
          always give the same ids.
        """
        minimum_size = len(SPECIAL_TOKENS) + 1
        if max_size < minimum_size:
            raise ValueError(
                f"max_size={max_size} is too small: it counts the {len(SPECIAL_TOKENS)} special tokens, "
                f"so the minimum is {minimum_size}"
            )
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        counts = collections.Counter()
        for text in texts:
            counts.update(text.split())
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        frequent = [(word, count) for word, count in counts.items() if count >= min_count]
        if not frequent:
            raise ValueError(
                f"no word occurs at least min_count={min_count} times in the texts "
                f"({len(counts)} distinct words seen)"
            )
        frequent.sort(key=lambda word_count: (-word_count[1], word_count[0]))
        kept = [word for word, _ in frequent[: max_size - len(SPECIAL_TOKENS)]]
        return cls(words=SPECIAL_TOKENS + tuple(kept))

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode(self, text: str, *, max_length: int | None = None) -> tuple[list[int], bool]:
        """Maps each space-separated word to its id (UNK if unknown); see `Tokenizer.encode`."""
        lookup = self._id_of_word.get
        return _truncate([lookup(word, UNK_ID) for word in text.split()], max_length)

    def decode(self, ids: Iterable[int]) -> str:
        """Joins the words of the ids with spaces; stops at EOS, skips PAD and BOS."""
        return " ".join(self.words[token_id] for token_id in _content_ids(ids, self.vocab_size))

    def tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.words[token_id] for token_id in _checked_ids(ids, self.vocab_size)]

    def word_of_token(self, ids: Iterable[int]) -> list[int]:
        """Each id is a whole word, so token i belongs to word i."""
        return list(range(len(_checked_ids(ids, self.vocab_size))))

    def save(self, path: str | os.PathLike) -> None:
        _write_json(
            path,
            {"kind": "word", "format_version": _FILE_FORMAT_VERSION, "words": list(self.words)},
        )


class SentencePieceTokenizer:
    """Subword tokenizer backed by a sentencepiece model held in memory.

    Pieces never cross the spaces between words, and a piece that starts a
    word begins with "▁"; `word_of_token` relies on both.
    """

    def __init__(self, model_proto: bytes):
        """Wraps a serialized sentencepiece model (bytes of its ModelProto)."""
        processor = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
        expected = {
            PAD_ID: processor.pad_id(),
            BOS_ID: processor.bos_id(),
            EOS_ID: processor.eos_id(),
            UNK_ID: processor.unk_id(),
        }
        if any(expected_id != actual_id for expected_id, actual_id in expected.items()):
            raise ValueError(
                f"sentencepiece model has special ids pad/bos/eos/unk = {list(expected.values())}, "
                f"expected {[PAD_ID, BOS_ID, EOS_ID, UNK_ID]}"
            )
        self._model_proto = bytes(model_proto)
        self._processor = processor
        self._pieces = [processor.id_to_piece(index) for index in range(processor.get_piece_size())]

    @classmethod
    def train(
        cls, texts: Iterable[str], *, vocab_size: int, model_type: str = "unigram"
    ) -> SentencePieceTokenizer:
        """Trains a sentencepiece model on `texts` in memory.

        Args:
          texts: Iterable[str], space-separated training sentences.
          vocab_size: int, number of pieces including the 4 special tokens.
          model_type: "unigram" or "bpe".

        Returns:
          SentencePieceTokenizer. Training is deterministic: the same texts
          and arguments give the same model bytes.

        Raises:
          ValueError: for an unknown model_type, or a vocab_size that the
            texts cannot fill (too large) or that cannot hold every character
            (too small).
        """
        if model_type not in SENTENCEPIECE_MODEL_TYPES:
            raise ValueError(
                f"unknown model_type {model_type!r}; valid types are {SENTENCEPIECE_MODEL_TYPES}"
            )
        if vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(
                f"vocab_size={vocab_size} leaves no room besides the {len(SPECIAL_TOKENS)} special tokens"
            )
        model_writer = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(texts),
                model_writer=model_writer,
                vocab_size=vocab_size,
                model_type=model_type,
                pad_id=PAD_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                unk_id=UNK_ID,
                pad_piece=PAD_TOKEN,
                bos_piece=BOS_TOKEN,
                eos_piece=EOS_TOKEN,
                unk_piece=UNK_TOKEN,
                # Texts are already normalized by corpora.tokenize_words; the
                # identity rule keeps decode(encode(text)) == text.
                normalization_rule_name="identity",
                # Every character of a small corpus matters; the default 0.9995
                # would turn rare accented letters into UNK.
                character_coverage=1.0,
                # One thread fixes the order of floating-point sums in EM.
                num_threads=1,
                minloglevel=2,
            )
        except RuntimeError as error:
            largest = re.search(r"value <= (\d+)", str(error))
            hint = f"; the largest size these texts allow is {largest.group(1)}" if largest else ""
            raise ValueError(
                f"sentencepiece cannot train a {model_type} model with vocab_size={vocab_size} "
                f"on these texts{hint} ({error})"
            ) from error
        return cls(model_writer.getvalue())

    @property
    def model_proto(self) -> bytes:
        """The serialized sentencepiece model, usable with other sentencepiece tools."""
        return self._model_proto

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SentencePieceTokenizer):
            return NotImplemented
        return self._model_proto == other._model_proto

    def __hash__(self) -> int:
        return hash(self._model_proto)

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer(vocab_size={self.vocab_size})"

    def encode(self, text: str, *, max_length: int | None = None) -> tuple[list[int], bool]:
        """Splits the sentence into pieces; see `Tokenizer.encode`."""
        return _truncate(self._processor.encode(text, out_type=int), max_length)

    def decode(self, ids: Iterable[int]) -> str:
        """Joins pieces back into a sentence; stops at EOS, skips PAD and BOS."""
        return self._processor.decode(_content_ids(ids, self.vocab_size))

    def tokens(self, ids: Iterable[int]) -> list[str]:
        """The pieces of the ids, with "▁" marking a piece that starts a word."""
        return [self._pieces[token_id] for token_id in _checked_ids(ids, self.vocab_size)]

    def word_of_token(self, ids: Iterable[int]) -> list[int]:
        """A new word starts at every "▁" piece; PAD, BOS and EOS count as words of their own."""
        word_indices: list[int] = []
        current_word = -1
        continues_word = False
        for token_id in _checked_ids(ids, self.vocab_size):
            if token_id in (PAD_ID, BOS_ID, EOS_ID):
                current_word += 1
                continues_word = False
            elif not continues_word or self._pieces[token_id].startswith(_SENTENCEPIECE_WORD_START):
                current_word += 1
                continues_word = True
            word_indices.append(current_word)
        return word_indices

    def save(self, path: str | os.PathLike) -> None:
        _write_json(
            path,
            {
                "kind": "sentencepiece",
                "format_version": _FILE_FORMAT_VERSION,
                "model_proto_base64": base64.b64encode(self._model_proto).decode("ascii"),
            },
        )


def load_tokenizer(path: str | os.PathLike) -> WordVocabulary | SentencePieceTokenizer:
    """Restores a tokenizer written by `WordVocabulary.save` or `SentencePieceTokenizer.save`.

    Raises:
      FileNotFoundError: if `path` does not exist.
      ValueError: if the file is not a tokenizer file of a known kind and version.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a tokenizer JSON file: {error}") from error
    if not isinstance(payload, dict):
        raise ValueError(f"{path} is not a tokenizer JSON file: expected an object")
    kind = payload.get("kind")
    version = payload.get("format_version")
    if version != _FILE_FORMAT_VERSION:
        raise ValueError(
            f"{path} has tokenizer format_version {version!r}; this code reads version {_FILE_FORMAT_VERSION}"
        )
    if kind == "word":
        return WordVocabulary(words=tuple(payload["words"]))
    if kind == "sentencepiece":
        return SentencePieceTokenizer(base64.b64decode(payload["model_proto_base64"]))
    raise ValueError(
        f"{path} holds a tokenizer of unknown kind {kind!r}; valid kinds are {TOKENIZER_KINDS}"
    )


def make_tokenizer(
    kind: str, texts: Iterable[str], *, vocab_size: int
) -> WordVocabulary | SentencePieceTokenizer:
    """Builds a tokenizer of the given kind from training texts.

    Args:
      kind: "word" (a `WordVocabulary` of at most `vocab_size` words) or
        "sentencepiece" (a unigram `SentencePieceTokenizer` of exactly `vocab_size` pieces).
      texts: Iterable[str], space-separated training sentences.
      vocab_size: int, vocabulary size including the 4 special tokens.
    """
    if kind == "word":
        return WordVocabulary.build(texts, max_size=vocab_size)
    if kind == "sentencepiece":
        return SentencePieceTokenizer.train(texts, vocab_size=vocab_size)
    raise ValueError(f"unknown tokenizer kind {kind!r}; valid kinds are {TOKENIZER_KINDS}")
