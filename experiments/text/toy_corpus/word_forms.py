"""Word forms of the toy corpus's renderer: agreement, pronouns, verb groups, elision.

The pieces of `experiments.text.toy_corpus.rendering` that do not recurse
into clauses: French items are `(text, English indices it links to, form
before a vowel, is_article)` tuples, English words are appended to `en`.
"""

from __future__ import annotations

import types
from typing import NamedTuple

from experiments.text.toy_corpus.description import Clause, NounPhrase, Pronoun
from experiments.text.toy_corpus.lexicon import (
    ADJECTIVES,
    CONJUNCTIONS,
    FREQUENCY_ADVERBS,
    PRONOUNS,
    Adjective,
    Adverb,
    PronounForms,
)
from experiments.text.toy_corpus.verbs import (
    ENGLISH_BE_PAST,
    ENGLISH_BE_PRESENT,
    ETRE,
    ETRE_FUTURE,
    ETRE_IMPERFECT,
)


def lookup(table, key, what):
    """Returns table[key], or raises ValueError naming the key and the valid ones."""
    try:
        return table[key]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(map(repr, table)))
        raise ValueError(f"unknown {what} {key!r}; valid values: {valid}") from None


class Agreement(NamedTuple):
    person: int
    gender: str
    plural: bool


class Antecedent(NamedTuple):
    agreement: Agreement
    is_person: bool


VOWEL_INITIALS = frozenset("aeiouàâäéèêëîïôöùûüœh")
# English words spelled with a vowel but sounding with a consonant ("a university").
ENGLISH_CONSONANT_SOUND = frozenset({"university"})
MASCULINE_SINGULAR = Agreement(2, "m", False)


def render_pronoun(pronoun: Pronoun, en: list[str], position: str) -> tuple[list, PronounForms]:
    """Renders a pronoun as "subject", "clitic" (object before the verb) or after a preposition."""
    forms = lookup(PRONOUNS, pronoun.person, "pronoun")
    index = len(en)
    if position == "subject":
        en.append(pronoun.person)
        return [
            (forms.french_subject, (index,), "j'" if pronoun.person == "i" else None, False)
        ], forms
    en.append(forms.english_object)
    if position == "clitic":
        elided = forms.clitic[0] + "'" if forms.clitic in ("me", "te", "le", "la") else None
        return [(forms.clitic, (index,), elided, False)], forms
    return [(forms.disjunctive, (index,), None, False)], forms


def split_adjectives(noun_phrase: NounPhrase) -> tuple[Adjective | None, Adjective | None]:
    if not noun_phrase.adjectives:
        return None, None
    entries = [lookup(ADJECTIVES, word, "adjective") for word in noun_phrase.adjectives]
    preposed = [a for a in entries if a.preposed]
    postposed = [a for a in entries if not a.preposed]
    if (
        len(preposed) > 1
        or len(postposed) > 1
        or (entries and len(entries) == 2 and not entries[0].preposed)
    ):
        raise ValueError(
            f"adjectives {noun_phrase.adjectives!r}: at most one adjective French places before the "
            f"noun, then at most one it places after it"
        )
    return (preposed[0] if preposed else None), (postposed[0] if postposed else None)


def agree(participle: str, agreement: Agreement) -> str:
    if agreement.gender == "f":
        participle += "e"
    if agreement.plural and not participle.endswith("s"):
        participle += "s"
    return participle


class _Auxiliary(NamedTuple):
    """English indices of the auxiliary, "not" and the frequency adverb; None when absent."""

    auxiliary: int | None
    negation: int | None
    frequency: int | None


def english_auxiliary(en: list[str], auxiliary: str | None, clause: Clause) -> _Auxiliary:
    """Appends "[auxiliary] [not] [frequency adverb]", e.g. "does not often", "is often"."""
    indices = [None, None, None]
    for slot, word in enumerate((auxiliary, "not" if clause.negated else None, clause.frequency)):
        if word is not None:
            indices[slot] = len(en)
            en.append(word)
    return _Auxiliary(*indices)


def french_verb_group(
    clause: Clause,
    english: _Auxiliary,
    finite: tuple,
    clitic_items: list = (),
    participle: tuple | None = None,
) -> list:
    """Arranges "[ne] [object pronoun] finite-verb [pas] [frequency adverb] [participle]"."""
    items = []
    if english.negation is not None:
        items.append(("ne", (english.negation,), "n'", False))
    items += clitic_items
    items.append(finite)
    if english.negation is not None:
        items.append(("pas", (english.negation,), None, False))
    if english.frequency is not None:
        french = lookup(FREQUENCY_ADVERBS, clause.frequency, "frequency adverb")
        items.append((french, (english.frequency,), None, False))
    if participle is not None:
        items.append(participle)
    return items


def render_be(clause: Clause, en: list[str], agreement: Agreement) -> list:
    """Renders "is [not] [often]" / "will [not] [often] be"; the complement comes later."""
    if clause.object is not None or clause.complement is None:
        raise ValueError("a clause with verb 'be' takes a complement and no object")
    person = agreement.person
    if clause.tense == "future":
        english = english_auxiliary(en, "will", clause)
        en.append("be")
        finite = (ETRE_FUTURE[person], (english.auxiliary, len(en) - 1), None, False)
    else:
        past = clause.tense == "past"
        english = english_auxiliary(
            en, (ENGLISH_BE_PAST if past else ENGLISH_BE_PRESENT)[person], clause
        )
        finite = ((ETRE_IMPERFECT if past else ETRE)[person], (english.auxiliary,), None, False)
    return french_verb_group(clause, english, finite)


def render_adverb(adverb: Adverb, en: list[str]) -> list:
    start = len(en)
    en.extend(adverb.english)
    links = tuple(range(start, len(en)))
    return [(word, links, None, False) for word in adverb.french]


_CONTRACTIONS = types.MappingProxyType(
    {
        ("à", "le"): "au",
        ("à", "les"): "aux",
        ("de", "le"): "du",
        ("de", "les"): "des",
        # "de" + indefinite plural drops the article: "près de maisons", "près de petites maisons".
        ("de", "des"): "de",
        ("de", "de"): "de",
    }
)


def apply_elision_and_contractions(items: list) -> list[tuple[str, tuple[int, ...]]]:
    """Returns (word, links) after elision ("je aime" -> "j' aime") and contraction ("à le" -> "au")."""
    words = []
    for i, (text, links, before_vowel, is_article) in enumerate(items):
        if before_vowel is not None and i + 1 < len(items):
            following = items[i + 1][0]
            # "si" only elides before "il"/"ils": "s' il" but "si elle".
            if following[0] in VOWEL_INITIALS and (text != "si" or following in ("il", "ils")):
                text = before_vowel
        merged = _CONTRACTIONS.get((words[-1][0], text)) if is_article and words else None
        if merged is not None:
            words[-1] = (merged, words[-1][1] + links)
        else:
            words.append((text, links))
    return words


def conjunction_items(conjunction: str, en: list[str]) -> list:
    french = lookup(CONJUNCTIONS, conjunction, "conjunction")
    en.append(conjunction)
    links = (len(en) - 1,)
    alternatives = {"que": "qu'", "si": "s'"}
    return [(word, links, alternatives.get(word), False) for word in french]
