"""English length of descriptions, used to grow sentences to an exact length."""

from __future__ import annotations

from experiments.text.toy_corpus.description import (
    Argument,
    Clause,
    NounPhrase,
    PrepPhrase,
    Pronoun,
)
from experiments.text.toy_corpus.lexicon import ADVERBS, PREPOSITIONS
from experiments.text.toy_corpus.verbs import VERBS


def _argument_length(argument: Argument) -> int:
    return 1 if isinstance(argument, Pronoun) else _noun_phrase_length(argument)


def _noun_phrase_length(noun_phrase: NounPhrase) -> int:
    length = 2 + len(noun_phrase.adjectives)
    if noun_phrase.modifier is not None:
        length += prep_phrase_length(noun_phrase.modifier)
    if noun_phrase.relative is not None:
        length += 1 + clause_length(noun_phrase.relative.clause)
    return length


def prep_phrase_length(phrase: PrepPhrase) -> int:
    return len(PREPOSITIONS[phrase.preposition].english) + _argument_length(phrase.object)


def clause_length(clause: Clause) -> int:
    """Number of English words of a clause (without the "who/that" of a relative clause)."""
    length = 0 if clause.subject is None else _argument_length(clause.subject)
    future = clause.tense == "future"
    if clause.verb == "be":
        length += 1 + future + clause.negated
        complement = clause.complement
        length += 1 if isinstance(complement, str) else prep_phrase_length(complement)
    else:
        length += len(VERBS[clause.verb].english) + future
        if clause.negated:
            length += 1 if future else 2  # "will not" versus "does not"
        if clause.object is not None:
            length += _argument_length(clause.object)
    length += clause.frequency is not None
    for modifier in clause.modifiers:
        length += prep_phrase_length(modifier)
    if clause.adverb is not None:
        length += len(ADVERBS[clause.adverb].english)
    return length
