"""Which sentences a translation run draws attention pictures of.

A user's list wins; otherwise the toy corpus shows its classic English
sentences and any other corpus sentences of its own test split that the
source vocabulary holds, so a German-source model is never drawn on English
words it cannot read.
"""

import json
import os

import ml_collections
import pytest

from experiments.common.errors import ConfigError
from experiments.configs import translation
from experiments.text import tokenizers
from experiments.text.toy_corpus import SHOWCASE_SENTENCES, SentencePair, generate
from experiments.translation import checks, evaluation, input_pipeline, train


def pairs(*sources):
    return [SentencePair(source, "x", ()) for source in sources]


@pytest.fixture(scope="module")
def words():
    return tokenizers.make_tokenizer("word", ["a b c d e f g h i j k l m n o p"], vocab_size=100)


def test_sentences_with_unknown_words_are_never_picked(words):
    split = pairs("a b c d zz", "a b c", "q r s t u")  # zz and the whole last one are unknown
    assert evaluation.pick_attention_sentences(split, words, count=4) == ["a b c"]


def test_lengths_spread_nearest_to_5_8_11_14_first_in_corpus_order(words):
    split = pairs(
        "a b c",  # 3 words
        "a b c d e f g",  # 7
        "b c d e f",  # 5: nearest to 5
        "c d e f g",  # 5 too, but later in the corpus
        "a b c d e f g h i j",  # 10
        "a b c d e f g h",  # 8
    )
    assert evaluation.pick_attention_sentences(split, words, count=3) == [
        "b c d e f",
        "a b c d e f g h",
        "a b c d e f g h i j",
    ]
    # Each sentence once: the fourth (nearest 14) is the longest left, 7 words.
    assert evaluation.pick_attention_sentences(split, words, count=4)[3] == "a b c d e f g"
    assert evaluation.pick_attention_sentences(split, words, count=0) == []


def eval_config(**values):
    return ml_collections.ConfigDict(
        dict(dict(attention_sentences=(), attention_sentence_count=4), **values)
    )


def test_a_users_list_wins_over_every_corpus(words):
    config = eval_config(attention_sentences=("zz yy",))
    for name in ("toy_translation", "ding", "tsv"):
        assert evaluation.attention_sentences(config, name, {}, words) == ["zz yy"]


def test_the_toy_corpus_shows_its_classic_sentences_others_their_test_split(words):
    splits = {"test": pairs("a b c d e"), "validation": pairs("f g h i j"), "train": pairs("k")}
    assert evaluation.attention_sentences(eval_config(), "toy_translation", splits, words) == list(
        SHOWCASE_SENTENCES
    )
    assert evaluation.attention_sentences(
        eval_config(attention_sentence_count=1), "toy_translation", splits, words
    ) == [SHOWCASE_SENTENCES[0]]
    assert evaluation.attention_sentences(eval_config(), "ding", splits, words) == ["a b c d e"]
    del splits["test"]  # no test split: validation's
    assert evaluation.attention_sentences(eval_config(), "tsv", splits, words) == ["f g h i j"]
    assert (
        evaluation.attention_sentences(
            eval_config(attention_sentence_count=0), "tsv", splits, words
        )
        == []
    )


def test_a_negative_count_is_a_config_error():
    config = translation.get_config("additive,tiny")
    config.eval.attention_sentence_count = -1
    with pytest.raises(ConfigError, match="eval.attention_sentence_count must be >= 0"):
        checks.validate_config(config)


@pytest.mark.slow  # a whole run; make test checks the choice itself above
def test_a_users_tsv_corpus_with_the_real_preset_draws_its_own_test_sentences(tmp_path):
    # A French-to-English TSV file: the English classics would be all <unk> here.
    corpus = tmp_path / "fr-en.tsv"
    toy = generate(150, seed=3, max_words=14)
    corpus.write_text("".join(f"{p.target}\t{p.source}\n" for p in toy))
    config = translation.get_config("additive,real")
    config.data.update(
        name="tsv",
        path=str(corpus),
        data_dir=str(tmp_path / "data"),
        validation_size=10,
        test_size=20,
        source_vocab_size=120,
        target_vocab_size=120,
    )
    config.model.update(
        embedding_size=8, encoder_size=16, decoder_sizes=(16, 12), attention_features=8
    )
    config.train.update(steps=2, batch_size=8, warmup_steps=1, log_every_steps=1)
    config.eval.update(every_steps=2, batch_size=16, max_examples=0)
    config.checkpoint.every_steps = 2
    workdir = tmp_path / "run"
    final = train.train_and_evaluate(config, str(workdir))

    test_sources = [p.source for p in input_pipeline.load_splits(config.data)[0]["test"]]
    drawn = final["attention_sentences"]
    assert len(drawn) == 4 and set(drawn) <= set(test_sources)
    assert not set(drawn) & set(SHOWCASE_SENTENCES)
    source_tok = tokenizers.load_tokenizer(os.path.join(workdir, "tokenizers", "source"))
    assert source_tok.__class__.__name__ == "SentencePieceTokenizer"
    assert drawn == evaluation.pick_attention_sentences(
        input_pipeline.load_splits(config.data)[0]["test"], source_tok, count=4
    )
    pictures = sorted(os.listdir(workdir / "attention" / "final"))
    assert len(pictures) == 4 and all(p.endswith(".png") for p in pictures)
    assert json.loads((workdir / "eval.json").read_text())["attention_sentences"] == drawn


def test_picture_names_keep_the_letters_of_other_languages():
    assert evaluation.picture_name("Fische und Gäste stinken nach drei Tagen.") == (
        "fische_und_gaste_stinken_nach_drei_tagen"
    )
    assert evaluation.picture_name("Die Straße ist für alle da!") == "die_strasse_ist_fur_alle_da"
    assert evaluation.picture_name("i love you") == "i_love_you"
    assert evaluation.picture_name("?!") == "sentence"
    assert len(evaluation.picture_name("word " * 30)) == 60


def test_the_six_lengths_are_5_8_11_14_17_20_words(words):
    # Each length next to one a word longer, which comes first in the corpus.
    lengths = [6, 5, 9, 8, 12, 11, 15, 14, 18, 17, 21, 20]
    split = pairs(*(" ".join(["a"] * n) for n in lengths))
    chosen = evaluation.pick_attention_sentences(split, words, count=6)
    assert [len(s.split()) for s in chosen] == [5, 8, 11, 14, 17, 20]
