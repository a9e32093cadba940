"""Tests for experiments.text.corpora (all data is written by the tests)."""

import sys
import types

import hypothesis
import pytest
from hypothesis import strategies as st

from experiments.text import corpora
from experiments.text.corpora import (
    ReadStats,
    load_tfds,
    read_tsv,
    tokenize_words,
)
from experiments.text.ding import read_ding
from experiments.text.toy_corpus import SentencePair


def sides(pairs):
    return [(pair.source, pair.target) for pair in pairs]


# --- tokenize_words ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Je t'aime.", "fr", "je t' aime ."),
        ("L’homme qu’il a vu", "fr", "l' homme qu' il a vu"),
        ("Jusqu'à aujourd'hui, c'est-à-dire", "fr", "jusqu' à aujourd'hui , c' est-à-dire"),
        ("« Bonjour », dit-il !", "fr", "« bonjour » , dit-il !"),
        ("Il coûte 3,5 euros?!", "fr", "il coûte 3,5 euros ? !"),
        ("I don't know, it's John's.", "en", "i don't know , it's john's ."),
        ("Who’s   there?", "en", "who's there ?"),
        ("The students' 'best' book", "en", "the students ' ' best ' book"),
        ("Wie geht's? Am 17. Mai um 10:30.", "de", "wie geht's ? am 17 . mai um 10:30 ."),
        ("\ufeffÜBER\u00adALL\u200b", "de", "überall"),
        ("   ", "en", ""),
    ],
)
def test_tokenize_words(text, language, expected):
    assert tokenize_words(text, language=language) == expected


def test_tokenize_words_splits_french_elision_only_in_french():
    assert tokenize_words("t'aime", language="fr") == "t' aime"
    assert tokenize_words("t'aime", language="en") == "t'aime"


def test_tokenize_words_composes_decomposed_accents():
    decomposed = "e\u0301te\u0301"  # "été" typed as letters plus combining accents
    assert tokenize_words(decomposed, language="fr") == "\u00e9t\u00e9"


def test_tokenize_words_rejects_unknown_language():
    with pytest.raises(ValueError, match=r"'es'.*'de', 'en', 'fr'"):
        tokenize_words("hola", language="es")


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(text=st.text(max_size=60), language=st.sampled_from(corpora.SUPPORTED_LANGUAGES))
def test_tokenize_words_is_idempotent_and_single_spaced(text, language):
    once = tokenize_words(text, language=language)
    assert tokenize_words(once, language=language) == once
    assert once == " ".join(once.split())
    assert once == once.lower()


# --- read_tsv ---------------------------------------------------------------

TSV_LINES = [
    b"Hello!\tBonjour !\tCC-BY 2.0 (France) Attribution: tatoeba.org #1 (ann)",  # 1 good
    b"I love you.\tJe t'aime.\tCC-BY 2.0",  # 2 good
    b"only one column",  # 3 malformed: too few columns
    b"",  # 4 empty: blank
    b"\tVide.",  # 5 empty: no source text
    b"Bad \xff bytes\tMauvais",  # 6 malformed: invalid UTF-8
    b"Go.\tVa !",  # 7 good, no attribution column
    b"   ",  # 8 empty: only spaces
    "Who\u2019s there?\tQui est l\u00e0 ?\t".encode(),  # 9 good
    b"Thank you.\t  \t",  # 10 empty: no target text
    b"Thank you.\tMerci.\r",  # 11 good, Windows line ending
]


@pytest.fixture
def tsv_path(tmp_path):
    path = tmp_path / "fra.txt"
    path.write_bytes(b"\n".join(TSV_LINES) + b"\n")
    return path


def test_read_tsv_keeps_good_lines_and_counts_the_rest(tsv_path):
    pairs, stats = read_tsv(tsv_path)
    assert sides(pairs) == [
        ("hello !", "bonjour !"),
        ("i love you .", "je t' aime ."),
        ("go .", "va !"),
        ("who's there ?", "qui est là ?"),
        ("thank you .", "merci ."),
    ]
    assert all(isinstance(pair, SentencePair) and pair.alignment == () for pair in pairs)
    assert (stats.lines, stats.pairs, stats.malformed, stats.empty) == (11, 5, 2, 4)
    assert stats.lines == stats.pairs + stats.malformed + stats.empty
    assert stats.examples_of_malformed == [
        "line 3: expected at least 2 tab-separated columns, found 1",
        "line 6: invalid UTF-8 at byte 4",
    ]
    assert "11 lines -> 5 pairs, 2 malformed, 4 empty" in str(stats)


def test_read_tsv_max_pairs_stops_reading(tsv_path):
    pairs, stats = read_tsv(tsv_path, max_pairs=2)
    assert sides(pairs) == [("hello !", "bonjour !"), ("i love you .", "je t' aime .")]
    assert (stats.lines, stats.pairs, stats.malformed, stats.empty) == (2, 2, 0, 0)


def test_read_tsv_columns_and_languages_can_be_swapped(tsv_path):
    pairs, _ = read_tsv(
        tsv_path, source_column=1, target_column=0, source_language="fr", target_language="en"
    )
    assert sides(pairs)[1] == ("je t' aime .", "i love you .")


def test_read_tsv_needs_enough_columns_for_chosen_column(tsv_path):
    pairs, stats = read_tsv(tsv_path, target_column=2)
    # Only lines 1, 2 and 9 have a third column, and line 9's is empty.
    assert [pair.target for pair in pairs] == [
        "cc-by 2.0 ( france ) attribution : tatoeba . org # 1 ( ann )",
        "cc-by 2.0",
    ]
    assert (
        stats.examples_of_malformed[0]
        == "line 3: expected at least 3 tab-separated columns, found 1"
    )


def test_read_tsv_ignores_byte_order_mark(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufeffYes.\tOui.\n".encode())
    pairs, _ = read_tsv(path)
    assert sides(pairs) == [("yes .", "oui .")]


def test_read_tsv_missing_file_names_path(tmp_path):
    missing = tmp_path / "no_such_corpus.tsv"
    with pytest.raises(FileNotFoundError, match="no_such_corpus.tsv"):
        read_tsv(missing)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"one column\n\tonly target\n\xff\xfe\tbad\n"])
def test_read_tsv_without_good_pairs_raises(tmp_path, content):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"no usable sentence pairs in .*bad\.tsv.*0 pairs"):
        read_tsv(path)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"source_column": 1, "target_column": 1}, "distinct"),
        ({"source_column": -1}, "non-negative"),
        ({"source_language": "xx"}, "'xx'"),
        ({"max_pairs": 0}, "max_pairs"),
    ],
)
def test_read_tsv_rejects_bad_arguments(tsv_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        read_tsv(tsv_path, **arguments)


# --- read_ding ----------------------------------------------------------------

# Made-up entries in the ding format: "German :: English", sub-entries
# separated by " | ", synonyms by "; ", annotations in {} [] () and /.../.
DING_LINES = [
    "# Version :: test",
    "# License :: written for these tests",
    "Haus {n} | Häuser {pl} | Das Haus ist sehr alt. :: house | houses | The house is very old.",
    "laufen {vi} | Ich laufe jeden Morgen. | Er läuft schneller als ich. [ugs.] "
    ":: to run | I run every morning. | He runs faster than me. [coll.]",
    "",
    "Uhrzeit {f} | Wie spät ist es?; Wieviel Uhr ist es? :: time | What time is it?; What is the time?",
    "Gruß {m} | Schöne Grüße an deine Mutter! :: greeting | Give my regards to your mother!; Say hi to your mother!",
    "kommen {vi} | Er/Sie kommt morgen. | Er hat etw. gesagt. :: to come | He/She is coming tomorrow. | He said sth.",
    "danken {vi} | Danke schön! :: to thank | Thank you!",
    "müde {adj} | Er ist (wirklich) müde. :: tired | He is (really) tired.",
    "alt {adj} | Das Haus ist sehr alt. :: old | The house is very old.",
    "eine Entry ohne Trenner",
    "Fehler {m} | Fehler {pl} :: mistake",
    "Bedeutung {f} | Was soll das bedeuten? /WSDB/ :: meaning | What does that mean? /WDTM/",
    "schlafen {vi} | schlafend | geschlafen :: to sleep | sleeping | slept",
]

DING_PAIRS = [
    ("das haus ist sehr alt .", "the house is very old ."),
    ("ich laufe jeden morgen .", "i run every morning ."),
    ("er läuft schneller als ich .", "he runs faster than me ."),
    ("wie spät ist es ?", "what time is it ?"),
    ("wieviel uhr ist es ?", "what is the time ?"),
    ("schöne grüße an deine mutter !", "give my regards to your mother !"),
    ("er ist müde .", "he is tired ."),
    ("was soll das bedeuten ?", "what does that mean ?"),
]


@pytest.fixture
def ding_path(tmp_path):
    path = tmp_path / "de-en"
    path.write_text("\n".join(DING_LINES) + "\n", encoding="utf-8")
    return path


def test_read_ding_extracts_sentence_pairs(ding_path):
    pairs, stats = read_ding(ding_path)
    assert sides(pairs) == DING_PAIRS
    assert all(pair.alignment == () for pair in pairs)
    assert (stats.lines, stats.pairs, stats.malformed, stats.empty, stats.duplicates) == (
        15,
        8,
        2,
        3,
        1,
    )
    assert stats.examples_of_malformed == [
        "line 12: expected one ' :: ' separator, found 0",
        "line 13: 2 German sub-entries but 1 English ones",
    ]


def test_read_ding_reverse_and_limits(ding_path):
    reversed_pairs, _ = read_ding(ding_path, reverse=True, max_pairs=3)
    assert sides(reversed_pairs) == [(english, german) for german, english in DING_PAIRS[:3]]
    short_pairs, _ = read_ding(ding_path, min_words=2)
    assert ("danke schön !", "thank you !") in sides(short_pairs)
    assert len(short_pairs) == len(DING_PAIRS) + 1


def test_read_ding_missing_file_suggests_package(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"de-en.*apt-get install trans-de-en"):
        read_ding(tmp_path / "de-en")


def test_read_ding_without_sentences_raises(tmp_path):
    path = tmp_path / "words-only"
    path.write_text("Haus {n} | Häuser {pl} :: house | houses\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no usable sentence pairs in .*words-only"):
        read_ding(path)


def test_read_stats_keeps_only_first_malformed_examples():
    stats = ReadStats()
    for line_number in range(1, 9):
        stats.note_malformed(line_number, "broken")
    assert stats.malformed == 8
    assert stats.examples_of_malformed == [
        f"line {n}: broken" for n in range(1, corpora.MAX_MALFORMED_EXAMPLES + 1)
    ]


# --- load_tfds (with a stand-in for tensorflow_datasets; nothing is downloaded) ---


def fake_tfds(examples, *, array_record=True):
    """A minimal tensorflow_datasets module serving `examples` for any name."""
    module = types.ModuleType("tensorflow_datasets")
    info = types.SimpleNamespace(supervised_keys=("fr", "en"))
    module.builder = lambda name, data_dir=None: types.SimpleNamespace(info=info)

    def data_source(name, split, data_dir=None):
        if not array_record:
            raise NotImplementedError("stored as tfrecord")
        return list(examples)

    module.data_source = data_source
    module.load = lambda name, split, data_dir=None: list(examples)
    module.as_numpy = lambda dataset: iter(dataset)
    return module


WMT_EXAMPLES = [
    {"en": b"I love you.", "fr": "Je t\u2019aime.".encode()},
    {"en": b"", "fr": b"Vide."},
    {"en": b"Good night!", "fr": b"Bonne nuit !"},
    {"en": b"Thank you.", "fr": b"Merci."},
]


def test_load_tfds_uses_supervised_keys_and_tokenizes(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake_tfds(WMT_EXAMPLES))
    pairs = load_tfds("wmt14_translate/fr-en", "validation")
    assert sides(pairs) == [
        ("je t' aime .", "i love you ."),
        ("bonne nuit !", "good night !"),
        ("merci .", "thank you ."),
    ]
    assert all(isinstance(pair, SentencePair) for pair in pairs)


def test_load_tfds_explicit_keys_fallback_and_max_pairs(monkeypatch):
    monkeypatch.setitem(
        sys.modules, "tensorflow_datasets", fake_tfds(WMT_EXAMPLES, array_record=False)
    )
    pairs = load_tfds(
        "wmt14_translate/fr-en", "train", source_key="en", target_key="fr", max_pairs=2
    )
    assert sides(pairs) == [("i love you .", "je t' aime ."), ("good night !", "bonne nuit !")]
    with pytest.raises(ValueError, match=r"keys \['en', 'fr'\], not 'de'"):
        load_tfds("wmt14_translate/fr-en", "train", source_key="de", target_key="en")
