"""Random draws of sentence pieces: noun phrases, pronouns and short clauses.

Pieces only combine words whose noun categories fit (a verb's subjects and
objects, an adjective's nouns, a preposition's objects); the indexes of the
lexicon below precompute those choices.
"""

from __future__ import annotations

import random
import types
from collections.abc import Sequence

from experiments.text.toy_corpus.description import (
    Argument,
    Clause,
    NounPhrase,
    PrepPhrase,
    Pronoun,
)
from experiments.text.toy_corpus.lengths import clause_length
from experiments.text.toy_corpus.lexicon import (
    ADJECTIVE_LIST,
    ANYTHING,
    COMPLEMENT_PREPOSITIONS,
    PERSONS,
    PREPOSITIONS,
    TENSES,
)
from experiments.text.toy_corpus.nouns import NOUNS, Noun
from experiments.text.toy_corpus.verbs import VERB_LIST


def pick(rng: random.Random, options: Sequence):
    """Same as rng.choice, but several times faster; generation draws many times per sentence."""
    return options[int(rng.random() * len(options))]


def _nouns_of(categories: str) -> tuple[Noun, ...]:
    return tuple(noun for noun in NOUNS.values() if noun.category in categories)


def _index_lexicon():
    """Precomputes the choices generation draws from; all tables are immutable."""
    by_categories = {}

    def nouns_for(categories):
        if categories not in by_categories:
            by_categories[categories] = _nouns_of(categories)
        return by_categories[categories]

    verb_subject_nouns = {v.english: nouns_for(v.subjects) for v in VERB_LIST}
    verb_object_nouns = {v.english: nouns_for(v.objects) for v in VERB_LIST}
    adjective_nouns = {a.english: nouns_for(a.categories) for a in ADJECTIVE_LIST}
    preposition_nouns = {k: nouns_for(p.categories) for k, p in PREPOSITIONS.items()}
    adjectives_by_category = {
        c: (
            tuple(a for a in ADJECTIVE_LIST if c in a.categories and a.preposed),
            tuple(a for a in ADJECTIVE_LIST if c in a.categories and not a.preposed),
        )
        for c in ANYTHING
    }
    verbs_by_subject = {c: tuple(v for v in VERB_LIST if c in v.subjects) for c in ANYTHING}
    verbs_by_object = {c: tuple(v for v in VERB_LIST if c in v.objects) for c in ANYTHING}
    return tuple(
        types.MappingProxyType(table)
        for table in (
            verb_subject_nouns,
            verb_object_nouns,
            adjective_nouns,
            preposition_nouns,
            adjectives_by_category,
            verbs_by_subject,
            verbs_by_object,
        )
    ) + (nouns_for(ANYTHING),)


(
    VERB_SUBJECT_NOUNS,
    VERB_OBJECT_NOUNS,
    ADJECTIVE_NOUNS,
    PREPOSITION_NOUNS,
    ADJECTIVES_BY_CATEGORY,
    VERBS_BY_SUBJECT,
    VERBS_BY_OBJECT,
    ALL_NOUNS,
) = _index_lexicon()

# Determiner draws: "the" is the most common, numbers share one share.
_DETERMINER_DRAWS = (
    ("the",) * 10
    + ("a",) * 5
    + ("my", "your", "his", "her", "our", "their")
    + ("this",) * 2
    + ("number",)
)
_NUMBERS = ("two", "three", "four", "five")


def new_noun_phrase(
    rng: random.Random, nouns: Sequence[Noun], *, indefinite: bool = True
) -> NounPhrase:
    noun = pick(rng, nouns)
    determiner = pick(rng, _DETERMINER_DRAWS)
    while determiner == "a" and not indefinite:
        determiner = pick(rng, _DETERMINER_DRAWS)
    if determiner == "number":
        return NounPhrase(noun.english, pick(rng, _NUMBERS), plural=True)
    return NounPhrase(noun.english, determiner, plural=rng.random() < 0.3)


def _new_pronoun(rng: random.Random, subject: Argument | None) -> Pronoun:
    # "i see me" is not what the corpus wants; third persons are fine ("he sees him").
    avoid = (
        subject.person
        if isinstance(subject, Pronoun) and subject.person in ("i", "you", "we")
        else None
    )
    person = pick(rng, PERSONS)
    while person == avoid:
        person = pick(rng, PERSONS)
    return Pronoun(person)


def new_argument(
    rng: random.Random,
    nouns,
    categories: str,
    pronoun_chance: float,
    subject: Argument | None = None,
    *,
    indefinite: bool = True,
) -> Argument:
    if "P" in categories and rng.random() < pronoun_chance:
        return _new_pronoun(rng, subject)
    return new_noun_phrase(rng, nouns, indefinite=indefinite)


def _draw_clause(
    rng: random.Random, tenses: Sequence[str], gap: str | None, antecedent: Noun | None
) -> Clause | None:
    """Draws a short clause; for relative clauses, one whose gap fits the antecedent noun."""
    if gap == "object":
        verb = pick(rng, VERBS_BY_OBJECT[antecedent.category])
    elif rng.random() < 0.15:
        return _draw_be_clause(rng, tenses, gap, antecedent)
    elif gap == "subject":
        verbs = VERBS_BY_SUBJECT[antecedent.category]
        if not verbs:
            return _draw_be_clause(rng, tenses, gap, antecedent)
        verb = pick(rng, verbs)
    else:
        verb = pick(rng, VERB_LIST)
    allowed = [t for t in verb.tenses if t in tenses]
    if not allowed:
        return None
    subject = None
    if gap != "subject":
        subject = new_argument(rng, VERB_SUBJECT_NOUNS[verb.english], verb.subjects, 0.6)
    obj = None
    if verb.objects and gap != "object" and not (verb.object_optional and rng.random() < 0.3):
        obj = new_argument(rng, VERB_OBJECT_NOUNS[verb.english], verb.objects, 0.35, subject)
    modifiers = []
    if verb.destination:
        modifiers.append(PrepPhrase("to", new_noun_phrase(rng, PREPOSITION_NOUNS["to"])))
    return Clause(
        subject, " ".join(verb.english), obj, tense=pick(rng, allowed), modifiers=modifiers
    )


def _draw_be_clause(
    rng: random.Random, tenses: Sequence[str], gap: str | None, antecedent: Noun | None
) -> Clause:
    tense = pick(rng, tenses)
    subject = None
    if rng.random() < 0.7:
        if antecedent is None:
            adjective = pick(rng, ADJECTIVE_LIST)
        else:
            preposed, postposed = ADJECTIVES_BY_CATEGORY[antecedent.category]
            adjective = pick(rng, preposed + postposed)
        if gap != "subject":
            subject = new_argument(
                rng, ADJECTIVE_NOUNS[adjective.english], adjective.categories, 0.6
            )
        return Clause(subject, "be", complement=adjective.english, tense=tense)
    if gap != "subject":
        subject = new_argument(rng, ALL_NOUNS, ANYTHING, 0.6)
    preposition = pick(rng, COMPLEMENT_PREPOSITIONS)
    target = PREPOSITIONS[preposition]
    categories = target.categories if target.takes_pronoun else ""
    argument = new_argument(rng, PREPOSITION_NOUNS[preposition], categories, 0.3, subject)
    return Clause(subject, "be", complement=PrepPhrase(preposition, argument), tense=tense)


def new_clause(
    rng: random.Random,
    budget: int,
    tenses: Sequence[str] = TENSES,
    gap: str | None = None,
    antecedent: Noun | None = None,
) -> tuple[Clause | None, int]:
    """A short clause and its English length (with "who/that" for a relative clause).

    Returns (None, 0) when no clause of at most `budget` words came up.
    """
    for _ in range(6):
        clause = _draw_clause(rng, tenses, gap, antecedent)
        if clause is not None:
            length = clause_length(clause) + (gap is not None)
            if length <= budget:
                return clause, length
    return None, 0
