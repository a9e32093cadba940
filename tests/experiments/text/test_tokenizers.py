"""Tests for experiments.text.tokenizers."""

import json

import numpy as np
import pytest

from experiments.text import tokenizers
from experiments.text.tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SentencePieceTokenizer,
    WordVocabulary,
    load_tokenizer,
    make_tokenizer,
)

FRENCH_TEXTS = [
    "je t' aime",
    "il mange une pomme rouge",
    "elle mange la pomme",
    "nous aimons les chats noirs",
    "le chat noir dort",
    "les enfants mangent des pommes",
    "j' aime le chat",
    "tu aimes la pomme rouge",
    "l' homme dort",
    "elle ne mange pas",
] * 4


@pytest.fixture(scope="module")
def unigram():
    return SentencePieceTokenizer.train(FRENCH_TEXTS, vocab_size=40)


def test_special_ids_are_shared():
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    assert tokenizers.SPECIAL_TOKENS == ("<pad>", "<s>", "</s>", "<unk>")


# --- WordVocabulary -------------------------------------------------------


def test_word_vocabulary_orders_by_frequency_then_alphabetically():
    vocabulary = WordVocabulary.build(["b a c a", "c a d", "e"], max_size=100)
    # a:3, c:2, then b, d, e with one occurrence each in alphabetical order.
    assert vocabulary.words == ("<pad>", "<s>", "</s>", "<unk>", "a", "c", "b", "d", "e")
    assert vocabulary.vocab_size == 9


def test_word_vocabulary_keeps_max_size_including_special_tokens():
    vocabulary = WordVocabulary.build(["b a c a", "c a d", "e"], max_size=6)
    assert vocabulary.words == ("<pad>", "<s>", "</s>", "<unk>", "a", "c")
    assert vocabulary.encode("a b c e") == ([4, UNK_ID, 5, UNK_ID], False)


def test_word_vocabulary_min_count_drops_rare_words():
    vocabulary = WordVocabulary.build(["b a c a", "c a d"], min_count=2)
    assert vocabulary.words[4:] == ("a", "c")


@pytest.mark.parametrize("max_size", [-1, 0, 4])
def test_word_vocabulary_rejects_max_size_without_room_for_words(max_size):
    with pytest.raises(ValueError, match=rf"max_size={max_size}.*minimum is 5"):
        WordVocabulary.build(["a b"], max_size=max_size)


def test_word_vocabulary_rejects_texts_without_frequent_words():
    with pytest.raises(ValueError, match="min_count=3"):
        WordVocabulary.build(["a b", "a"], min_count=3)
    with pytest.raises(ValueError, match="min_count=1"):
        WordVocabulary.build(["", "  "])


def test_word_vocabulary_does_not_treat_special_token_text_as_special():
    vocabulary = WordVocabulary.build(["a <s> </s> <pad>"])
    assert vocabulary.words == ("<pad>", "<s>", "</s>", "<unk>", "a")
    assert vocabulary.encode("<s> a </s>") == ([UNK_ID, 4, UNK_ID], False)


def test_word_vocabulary_round_trip_and_decode_rules():
    vocabulary = WordVocabulary.build(FRENCH_TEXTS)
    for text in FRENCH_TEXTS[:10]:
        ids, truncated = vocabulary.encode(text)
        assert not truncated
        assert len(ids) == len(text.split())
        assert vocabulary.decode(ids) == text
        # BOS and PAD are skipped, decoding stops at the first EOS.
        assert vocabulary.decode([BOS_ID, *ids, EOS_ID, *ids, PAD_ID]) == text
    assert vocabulary.decode(np.array([BOS_ID, EOS_ID])) == ""


def test_word_vocabulary_truncation_flag():
    vocabulary = WordVocabulary.build(FRENCH_TEXTS)
    full, _ = vocabulary.encode("il mange une pomme rouge")
    assert vocabulary.encode("il mange une pomme rouge", max_length=5) == (full, False)
    assert vocabulary.encode("il mange une pomme rouge", max_length=3) == (full[:3], True)
    with pytest.raises(ValueError, match="max_length"):
        vocabulary.encode("il mange", max_length=0)


def test_word_vocabulary_tokens_and_word_of_token():
    vocabulary = WordVocabulary.build(FRENCH_TEXTS)
    ids, _ = vocabulary.encode("je t' aime zzz")
    assert vocabulary.tokens([BOS_ID, *ids, EOS_ID]) == ["<s>", "je", "t'", "aime", "<unk>", "</s>"]
    assert vocabulary.word_of_token(ids) == [0, 1, 2, 3]


def test_word_vocabulary_rejects_out_of_range_ids():
    vocabulary = WordVocabulary.build(["a b"])
    with pytest.raises(ValueError, match=r"token id 6 .*0\.\.5"):
        vocabulary.decode([4, 6])
    with pytest.raises(ValueError, match="token id -1"):
        vocabulary.tokens([-1])


def test_word_vocabulary_save_and_load(tmp_path):
    vocabulary = WordVocabulary.build(FRENCH_TEXTS, max_size=12)
    path = tmp_path / "workdir" / "target_tokenizer.json"
    vocabulary.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["kind"] == "word"
    restored = load_tokenizer(path)
    assert isinstance(restored, WordVocabulary)
    assert restored == vocabulary
    assert restored.encode("je t' aime la pomme") == vocabulary.encode("je t' aime la pomme")


# --- SentencePieceTokenizer ----------------------------------------------


def test_sentencepiece_has_requested_size_and_special_ids(unigram):
    assert unigram.vocab_size == 40
    assert unigram.tokens([PAD_ID, BOS_ID, EOS_ID, UNK_ID]) == ["<pad>", "<s>", "</s>", "<unk>"]


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_round_trip(model_type, unigram):
    tokenizer = (
        unigram
        if model_type == "unigram"
        else SentencePieceTokenizer.train(FRENCH_TEXTS, vocab_size=40, model_type="bpe")
    )
    for text in [*FRENCH_TEXTS[:10], "les chats mangent la pomme noire"]:
        ids, truncated = tokenizer.encode(text)
        assert not truncated
        assert all(4 <= token_id < tokenizer.vocab_size for token_id in ids)
        assert tokenizer.decode(ids) == text
        assert tokenizer.decode([BOS_ID, *ids, EOS_ID, UNK_ID, PAD_ID]) == text


def test_sentencepiece_unknown_characters_become_unk(unigram):
    ids, _ = unigram.encode("le chat xyz")
    assert UNK_ID in ids


def test_sentencepiece_truncation_flag(unigram):
    full, _ = unigram.encode("nous aimons les chats noirs")
    assert len(full) > 3
    assert unigram.encode("nous aimons les chats noirs", max_length=3) == (full[:3], True)
    assert unigram.encode("nous aimons les chats noirs", max_length=len(full)) == (full, False)


def test_sentencepiece_word_of_token_follows_word_boundaries(unigram):
    text = "les enfants mangent des pommes"
    ids, _ = unigram.encode(text)
    pieces = unigram.tokens(ids)
    word_indices = unigram.word_of_token(ids)
    words = text.split()
    assert word_indices[0] == 0 and word_indices[-1] == len(words) - 1
    assert word_indices == sorted(word_indices)
    # Gluing the pieces of each word index back together gives that word.
    for word_index, word in enumerate(words):
        glued = "".join(piece for piece, index in zip(pieces, word_indices) if index == word_index)
        assert glued.lstrip("\u2581") == word
    # Special tokens are words of their own.
    with_specials = unigram.word_of_token([BOS_ID, *ids, EOS_ID])
    assert with_specials == [0, *(index + 1 for index in word_indices), len(words) + 1]


def test_sentencepiece_training_is_deterministic(unigram):
    again = SentencePieceTokenizer.train(list(FRENCH_TEXTS), vocab_size=40)
    assert again.model_proto == unigram.model_proto
    assert again == unigram


def test_sentencepiece_training_is_quiet(capfd):
    SentencePieceTokenizer.train(iter(FRENCH_TEXTS), vocab_size=30, model_type="bpe")
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_sentencepiece_vocab_size_errors():
    with pytest.raises(
        ValueError, match=r"vocab_size=5000.*the largest size these texts allow is \d+"
    ):
        SentencePieceTokenizer.train(FRENCH_TEXTS, vocab_size=5000)
    with pytest.raises(ValueError, match="vocab_size=10"):
        SentencePieceTokenizer.train(FRENCH_TEXTS, vocab_size=10)
    with pytest.raises(ValueError, match="model_type 'wordpiece'.*unigram"):
        SentencePieceTokenizer.train(FRENCH_TEXTS, vocab_size=40, model_type="wordpiece")


def test_sentencepiece_save_and_load(tmp_path, unigram):
    path = tmp_path / "source_tokenizer.json"
    unigram.save(path)
    restored = load_tokenizer(path)
    assert isinstance(restored, SentencePieceTokenizer)
    assert restored == unigram
    text = "tu aimes les chats"
    assert restored.encode(text) == unigram.encode(text)
    assert restored.tokens(restored.encode(text)[0]) == unigram.tokens(unigram.encode(text)[0])


# --- factory and loader ---------------------------------------------------


def test_make_tokenizer_builds_each_kind():
    word = make_tokenizer("word", FRENCH_TEXTS, vocab_size=10)
    assert isinstance(word, WordVocabulary) and word.vocab_size == 10
    pieces = make_tokenizer("sentencepiece", FRENCH_TEXTS, vocab_size=40)
    assert isinstance(pieces, SentencePieceTokenizer) and pieces.vocab_size == 40
    for tokenizer in (word, pieces):
        assert isinstance(tokenizer, tokenizers.Tokenizer)


def test_make_tokenizer_rejects_unknown_kind():
    with pytest.raises(ValueError, match=r"'bytes'.*'word', 'sentencepiece'"):
        make_tokenizer("bytes", FRENCH_TEXTS, vocab_size=40)


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_tokenizer(tmp_path / "missing.json")
    not_json = tmp_path / "not_json.json"
    not_json.write_text("<html>", encoding="utf-8")
    with pytest.raises(ValueError, match="not a tokenizer JSON file"):
        load_tokenizer(not_json)
    unknown_kind = tmp_path / "unknown.json"
    unknown_kind.write_text(json.dumps({"kind": "bytes", "format_version": 1}), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown kind 'bytes'"):
        load_tokenizer(unknown_kind)
