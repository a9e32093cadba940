"""The words of the grammar other than verbs and nouns: adjectives and function words.

Noun categories (see `experiments.text.toy_corpus.nouns`): P person, A animal,
F food, D drink, T thing, X text, M music, L place. Verbs, adjectives and
prepositions name the categories they
combine with, which keeps the sentences sensible. The function words are the
prepositions, personal pronouns, determiners, adverbs and conjunctions, each
with its French forms.
"""

from __future__ import annotations

import types
from typing import NamedTuple

from experiments.text.toy_corpus.nouns import french_plural

TENSES = ("present", "past", "future")
PERSONS = ("i", "you", "he", "she", "we", "they")
ANYTHING = "PAFDTXML"  # every noun category


class Adjective(NamedTuple):
    english: str
    forms: tuple[str, str, str, str]  # masculine, feminine, masculine plural, feminine plural
    before_vowel: str | None  # masculine singular form before a vowel ("vieil")
    preposed: bool  # French puts it before the noun
    categories: str


def _adjective(english: str, french: str, categories: str, preposed: bool = False) -> Adjective:
    """Builds an adjective; `french` is the masculine form, or all forms spelled out."""
    words = french.split()
    if len(words) == 1:
        masculine = words[0]
        feminine = masculine if masculine.endswith("e") else masculine + "e"
        words = [masculine, feminine, french_plural(masculine), feminine + "s"]
    before_vowel = words[4] if len(words) == 5 else None
    return Adjective(english, tuple(words[:4]), before_vowel, preposed, categories)


ADJECTIVE_LIST = (
    _adjective("big", "grand", "ATL", preposed=True),
    _adjective("small", "petit", "PATLF", preposed=True),
    _adjective("good", "bon bonne bons bonnes", "PFDX", preposed=True),
    _adjective("bad", "mauvais mauvaise mauvais mauvaises", "FDX", preposed=True),
    _adjective("young", "jeune", "PA", preposed=True),
    _adjective("old", "vieux vieille vieux vieilles vieil", "PATLX", preposed=True),
    _adjective("new", "nouveau nouvelle nouveaux nouvelles nouvel", "PTLX", preposed=True),
    _adjective("beautiful", "beau belle beaux belles bel", "PATL", preposed=True),
    _adjective("pretty", "joli", "TL", preposed=True),
    _adjective("long", "long longue longs longues", "XL", preposed=True),
    _adjective("red", "rouge", "TF"),
    _adjective("blue", "bleu", "T"),
    _adjective("green", "vert", "TF"),
    _adjective("black", "noir", "TA"),
    _adjective("white", "blanc blanche blancs blanches", "TA"),
    _adjective("yellow", "jaune", "TF"),
    _adjective("gray", "gris", "TA"),
    _adjective("happy", "heureux heureuse heureux heureuses", "PA"),
    _adjective("sad", "triste", "PA"),
    _adjective("tired", "fatigué", "PA"),
    _adjective("angry", "fâché", "PA"),
    _adjective("sick", "malade", "PA"),
    _adjective("hungry", "affamé", "PA"),
    _adjective("busy", "occupé", "P"),
    _adjective("kind", "gentil gentille gentils gentilles", "PA"),
    _adjective("smart", "intelligent", "PA"),
    _adjective("lazy", "paresseux paresseuse paresseux paresseuses", "PA"),
    _adjective("funny", "drôle", "PAX"),
    _adjective("rich", "riche", "P"),
    _adjective("famous", "célèbre", "PLXM"),
    _adjective("strong", "fort", "PA"),
    _adjective("strange", "étrange", "PATLXM"),
    _adjective("interesting", "intéressant", "PXL"),
    _adjective("difficult", "difficile", "XM"),
    _adjective("easy", "facile", "XM"),
    _adjective("hot", "chaud", "FD"),
    _adjective("cold", "froid", "FDL"),
    _adjective("fresh", "frais fraîche frais fraîches", "F"),
    _adjective("delicious", "délicieux délicieuse délicieux délicieuses", "FD"),
    _adjective("sweet", "sucré", "FD"),
    _adjective("empty", "vide", "TL"),
    _adjective("full", "plein", "T"),
    _adjective("broken", "cassé", "T"),
    _adjective("dirty", "sale", "TL"),
    _adjective("heavy", "lourd", "T"),
    _adjective("expensive", "cher chère chers chères", "TLFDX"),
    _adjective("quiet", "calme", "PAL"),
    _adjective("noisy", "bruyant", "PAL"),
    _adjective("modern", "moderne", "TL"),
    _adjective("dark", "sombre", "L"),
)
ADJECTIVES = types.MappingProxyType({a.english: a for a in ADJECTIVE_LIST})


class _Preposition(NamedTuple):
    english: tuple[str, ...]
    french: tuple[tuple[str, str | None], ...]  # (word, form before a vowel)
    categories: str
    takes_pronoun: bool


def _preposition(
    english: str, french: str, categories: str, takes_pronoun: bool = False
) -> _Preposition:
    words = tuple((w, "d'" if w == "de" else None) for w in french.split())
    return _Preposition(tuple(english.split()), words, categories, takes_pronoun)


PREPOSITIONS = types.MappingProxyType(
    {
        " ".join(p.english): p
        for p in (
            _preposition("in", "dans", "L"),
            _preposition("on", "sur", "TL"),
            _preposition("under", "sous", "TL"),
            _preposition("near", "près de", "PATL", takes_pronoun=True),
            _preposition("behind", "derrière", "PATL", takes_pronoun=True),
            _preposition("in front of", "devant", "PATL", takes_pronoun=True),
            _preposition("at", "à", "L"),
            _preposition("with", "avec", "PA", takes_pronoun=True),
            _preposition("without", "sans", "PA", takes_pronoun=True),
            _preposition("for", "pour", "P", takes_pronoun=True),
            _preposition("to", "à", "L"),
            _preposition("from", "de", "L"),
            _preposition("of", "de", "P"),
        )
    }
)
NOUN_MODIFIER_PREPOSITIONS = ("in", "on", "under", "near", "behind", "in front of", "with", "of")
COMPLEMENT_PREPOSITIONS = ("in", "on", "under", "near", "behind", "in front of", "at", "with")
BE_MODIFIER_PREPOSITIONS = ("in", "at", "near")


class PronounForms(NamedTuple):
    english_object: str
    person: int  # index into conjugation tables: i, you, he/she, we, they
    gender: str
    plural: bool
    french_subject: str
    clitic: str  # direct object before the verb
    disjunctive: str  # after a preposition


PRONOUNS = types.MappingProxyType(
    {
        "i": PronounForms("me", 0, "m", False, "je", "me", "moi"),
        "you": PronounForms("you", 1, "m", False, "tu", "te", "toi"),
        "he": PronounForms("him", 2, "m", False, "il", "le", "lui"),
        "she": PronounForms("her", 2, "f", False, "elle", "la", "elle"),
        "we": PronounForms("us", 3, "m", True, "nous", "nous", "nous"),
        "they": PronounForms("them", 4, "m", True, "ils", "les", "eux"),
    }
)


class _Determiner(NamedTuple):
    english: str | None  # singular form; None when plural only
    english_plural: str
    french: tuple[str, str, str]  # masculine, feminine, plural
    before_vowel: tuple[str | None, str | None]  # masculine, feminine singular forms before a vowel
    is_article: bool  # merges with "à"/"de" ("au", "du")


def _possessive(english: str, masculine: str, feminine: str, plural: str) -> _Determiner:
    # "ma école" is "mon école": feminine possessives take the masculine form before a vowel.
    return _Determiner(english, english, (masculine, feminine, plural), (None, masculine), False)


DETERMINERS = types.MappingProxyType(
    {
        "the": _Determiner("the", "the", ("le", "la", "les"), ("l'", "l'"), True),
        "a": _Determiner("a", "some", ("un", "une", "des"), (None, None), True),
        "this": _Determiner("this", "these", ("ce", "cette", "ces"), ("cet", None), False),
        "my": _possessive("my", "mon", "ma", "mes"),
        "your": _possessive("your", "ton", "ta", "tes"),
        "his": _possessive("his", "son", "sa", "ses"),
        "her": _possessive("her", "son", "sa", "ses"),
        "our": _Determiner("our", "our", ("notre", "notre", "nos"), (None, None), False),
        "their": _Determiner("their", "their", ("leur", "leur", "leurs"), (None, None), False),
        "two": _Determiner(None, "two", ("deux",) * 3, (None, None), False),
        "three": _Determiner(None, "three", ("trois",) * 3, (None, None), False),
        "four": _Determiner(None, "four", ("quatre",) * 3, (None, None), False),
        "five": _Determiner(None, "five", ("cinq",) * 3, (None, None), False),
    }
)


class Adverb(NamedTuple):
    english: tuple[str, ...]
    french: tuple[str, ...]
    tenses: tuple[str, ...]
    manner: bool  # only with action verbs


FREQUENCY_ADVERBS = types.MappingProxyType(
    {"often": "souvent", "always": "toujours", "sometimes": "parfois"}
)
ADVERBS = types.MappingProxyType(
    {
        " ".join(english): Adverb(english, french, tenses, manner)
        for english, french, tenses, manner in (
            (("today",), ("aujourd'hui",), TENSES, False),
            (("yesterday",), ("hier",), ("past",), False),
            (("tomorrow",), ("demain",), ("future",), False),
            (("now",), ("maintenant",), ("present",), False),
            (("tonight",), ("ce", "soir"), ("present", "future"), False),
            (("every", "day"), ("tous", "les", "jours"), ("present", "past"), False),
            (("here",), ("ici",), TENSES, False),
            (("there",), ("là",), TENSES, False),
            (("quickly",), ("rapidement",), TENSES, True),
            (("slowly",), ("lentement",), TENSES, True),
            (("early",), ("tôt",), TENSES, True),
            (("late",), ("tard",), TENSES, True),
        )
    }
)

CONJUNCTIONS = types.MappingProxyType(
    {
        "and": ("et",),
        "but": ("mais",),
        "or": ("ou",),
        "so": ("donc",),
        "because": ("parce", "que"),
        "when": ("quand",),
        "while": ("pendant", "que"),
        "if": ("si",),
    }
)
