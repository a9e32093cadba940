"""Growing a random sentence to an exact number of English words.

A sentence starts as one short clause and grows by random expansions (an
adjective, a negation, a prepositional phrase, a relative clause, another
clause, ...) that fit in the words left, until it has exactly the drawn number
of English words: `sentence_of_length`.
"""

from __future__ import annotations

import bisect
import itertools
import random
import types
from typing import NamedTuple

from experiments.text.toy_corpus.description import (
    Clause,
    NounPhrase,
    PrepPhrase,
    Pronoun,
    RelativeClause,
    Sentence,
)
from experiments.text.toy_corpus.drawing import (
    ADJECTIVE_NOUNS,
    ADJECTIVES_BY_CATEGORY,
    ALL_NOUNS,
    PREPOSITION_NOUNS,
    VERB_OBJECT_NOUNS,
    VERB_SUBJECT_NOUNS,
    VERBS_BY_OBJECT,
    new_argument,
    new_clause,
    new_noun_phrase,
    pick,
)
from experiments.text.toy_corpus.lengths import prep_phrase_length
from experiments.text.toy_corpus.lexicon import (
    ADJECTIVES,
    ADVERBS,
    BE_MODIFIER_PREPOSITIONS,
    CONJUNCTIONS,
    NOUN_MODIFIER_PREPOSITIONS,
    PREPOSITIONS,
    TENSES,
)
from experiments.text.toy_corpus.nouns import NOUNS, Noun
from experiments.text.toy_corpus.verbs import VERBS

# Adverbs that fit a clause, by (tense, whether the verb is an action: "quickly" needs one).
_ADVERBS_FOR = types.MappingProxyType(
    {
        (tense, action): tuple(
            k for k, a in ADVERBS.items() if tense in a.tenses and (action or not a.manner)
        )
        for tense in TENSES
        for action in (False, True)
    }
)
_CONJUNCTION_KEYS = tuple(CONJUNCTIONS)
_MAX_CLAUSE_MODIFIERS = 2


class _Slot(NamedTuple):
    """A pronoun that may be replaced by a noun phrase: holder.<field> is the pronoun."""

    holder: Clause | PrepPhrase
    field: str
    nouns: tuple[Noun, ...]
    depth: int


class _Draft:
    """A sentence being grown, with indexes of the places expansions can act on."""

    def __init__(self):
        self.sentence = Sentence([], [])
        self.clauses: list[Clause] = []  # main and relative clauses
        self.noun_phrases: list[tuple[NounPhrase, int]] = []  # with their nesting depth
        self.pronoun_slots: list[_Slot] = []

    def add_clause(self, clause: Clause, depth: int) -> None:
        self.clauses.append(clause)
        if isinstance(clause.subject, Pronoun):
            self.pronoun_slots.append(_Slot(clause, "subject", _subject_nouns(clause), depth))
        elif clause.subject is not None:
            self.add_noun_phrase(clause.subject, depth)
        if isinstance(clause.object, Pronoun):
            nouns = VERB_OBJECT_NOUNS[VERBS[clause.verb].english]
            self.pronoun_slots.append(_Slot(clause, "object", nouns, depth))
        elif clause.object is not None:
            self.add_noun_phrase(clause.object, depth)
        if isinstance(clause.complement, PrepPhrase):
            self.add_prep_phrase(clause.complement, depth)
        for modifier in clause.modifiers:
            self.add_prep_phrase(modifier, depth)

    def add_prep_phrase(self, phrase: PrepPhrase, depth: int) -> None:
        if isinstance(phrase.object, Pronoun):
            nouns = PREPOSITION_NOUNS[phrase.preposition]
            self.pronoun_slots.append(_Slot(phrase, "object", nouns, depth))
        else:
            self.add_noun_phrase(phrase.object, depth)

    def add_noun_phrase(self, noun_phrase: NounPhrase, depth: int) -> None:
        self.noun_phrases.append((noun_phrase, depth))
        if noun_phrase.modifier is not None:
            self.add_prep_phrase(noun_phrase.modifier, depth + 1)
        if noun_phrase.relative is not None:
            self.add_clause(noun_phrase.relative.clause, depth + 1)


def _subject_nouns(clause: Clause) -> tuple[Noun, ...]:
    if clause.verb != "be":
        return VERB_SUBJECT_NOUNS[VERBS[clause.verb].english]
    if isinstance(clause.complement, str):
        return ADJECTIVE_NOUNS[clause.complement]
    return ALL_NOUNS


# Expansions: each takes (draft, rng, budget) and returns the number of English
# words it added, 0 when the place it drew cannot take it.


def _expand_pronoun(draft: _Draft, rng: random.Random, budget: int) -> int:
    if not draft.pronoun_slots:
        return 0
    index = rng.randrange(len(draft.pronoun_slots))
    slot = draft.pronoun_slots[index]
    # French drops the indefinite article after a negated verb ("pas de") and
    # after "sans"; the grammar avoids both cases.
    if isinstance(slot.holder, Clause):
        indefinite = not (slot.field == "object" and slot.holder.negated)
    else:
        indefinite = slot.holder.preposition != "without"
    noun_phrase = new_noun_phrase(rng, slot.nouns, indefinite=indefinite)
    setattr(slot.holder, slot.field, noun_phrase)
    draft.pronoun_slots[index] = draft.pronoun_slots[-1]
    draft.pronoun_slots.pop()
    draft.add_noun_phrase(noun_phrase, slot.depth)
    return 1


def _add_adjective(draft: _Draft, rng: random.Random, budget: int) -> int:
    if not draft.noun_phrases:
        return 0
    noun_phrase, _ = pick(rng, draft.noun_phrases)
    if len(noun_phrase.adjectives) == 2:
        return 0
    preposed, postposed = ADJECTIVES_BY_CATEGORY[NOUNS[noun_phrase.noun].category]
    if not noun_phrase.adjectives:
        candidates = preposed + postposed
    elif ADJECTIVES[noun_phrase.adjectives[0]].preposed:
        candidates = postposed
    else:
        candidates = preposed
    if not candidates:
        return 0
    adjective = pick(rng, candidates)
    if adjective.preposed:
        noun_phrase.adjectives = (adjective.english,) + noun_phrase.adjectives
    else:
        noun_phrase.adjectives += (adjective.english,)
    return 1


def _negate(draft: _Draft, rng: random.Random, budget: int) -> int:
    clause = pick(rng, draft.clauses)
    if clause.negated or clause.frequency == "sometimes":
        return 0
    if isinstance(clause.object, NounPhrase) and clause.object.determiner == "a":
        return 0
    added = 1 if clause.verb == "be" or clause.tense == "future" else 2
    if added > budget:
        return 0
    clause.negated = True
    return added


def _add_frequency(draft: _Draft, rng: random.Random, budget: int) -> int:
    clause = pick(rng, draft.clauses)
    if clause.frequency is not None:
        return 0
    clause.frequency = pick(
        rng, ("often", "always") if clause.negated else ("often", "always", "sometimes")
    )
    return 1


def _add_adverb(draft: _Draft, rng: random.Random, budget: int) -> int:
    clause = pick(rng, draft.clauses)
    if clause.adverb is not None:
        return 0
    action = clause.verb != "be" and not VERBS[clause.verb].stative
    key = pick(rng, _ADVERBS_FOR[clause.tense, action])
    added = len(ADVERBS[key].english)
    if added > budget:
        return 0
    clause.adverb = key
    return added


def _new_prep_phrase(rng, prepositions, subject, budget, *, pronouns: bool) -> PrepPhrase | None:
    preposition = pick(rng, prepositions)
    target = PREPOSITIONS[preposition]
    categories = target.categories if pronouns and target.takes_pronoun else ""
    argument = new_argument(
        rng,
        PREPOSITION_NOUNS[preposition],
        categories,
        0.3,
        subject,
        indefinite=preposition != "without",
    )
    phrase = PrepPhrase(preposition, argument)
    return phrase if prep_phrase_length(phrase) <= budget else None


def _add_clause_modifier(draft: _Draft, rng: random.Random, budget: int) -> int:
    clause = pick(rng, draft.clauses)
    limit = 1 if isinstance(clause.complement, PrepPhrase) else _MAX_CLAUSE_MODIFIERS
    if len(clause.modifiers) >= limit:
        return 0
    if clause.verb == "be":
        prepositions = BE_MODIFIER_PREPOSITIONS
    else:
        prepositions = VERBS[clause.verb].clause_prepositions
    phrase = _new_prep_phrase(rng, prepositions, clause.subject, budget, pronouns=True)
    used = {m.preposition for m in clause.modifiers}
    if isinstance(clause.complement, PrepPhrase):
        used.add(clause.complement.preposition)
    if phrase is None or phrase.preposition in used:
        return 0
    clause.modifiers.append(phrase)
    draft.add_prep_phrase(phrase, _clause_depth(draft, clause))
    return prep_phrase_length(phrase)


def _clause_depth(draft: _Draft, clause: Clause) -> int:
    return 0 if any(clause is main for main in draft.sentence.clauses) else 1


def _pick_top_noun_phrase(draft: _Draft, rng: random.Random) -> NounPhrase | None:
    # Only noun phrases of main clauses take modifiers and relative clauses, and only
    # one of the two: "the man with the dog who sleeps" would leave "who" ambiguous.
    if not draft.noun_phrases:
        return None
    noun_phrase, depth = pick(rng, draft.noun_phrases)
    if depth or noun_phrase.modifier is not None or noun_phrase.relative is not None:
        return None
    return noun_phrase


def _add_noun_modifier(draft: _Draft, rng: random.Random, budget: int) -> int:
    noun_phrase = _pick_top_noun_phrase(draft, rng)
    if noun_phrase is None:
        return 0
    phrase = _new_prep_phrase(rng, NOUN_MODIFIER_PREPOSITIONS, None, budget, pronouns=False)
    if phrase is None:
        return 0
    noun_phrase.modifier = phrase
    draft.add_prep_phrase(phrase, 1)
    return prep_phrase_length(phrase)


def _add_relative(draft: _Draft, rng: random.Random, budget: int) -> int:
    noun_phrase = _pick_top_noun_phrase(draft, rng)
    if noun_phrase is None:
        return 0
    noun = NOUNS[noun_phrase.noun]
    gap = "object" if rng.random() < 0.4 and VERBS_BY_OBJECT[noun.category] else "subject"
    clause, length = new_clause(rng, budget, gap=gap, antecedent=noun)
    if clause is None:
        return 0
    noun_phrase.relative = RelativeClause(gap, clause)
    draft.add_clause(clause, 1)
    return length


def _add_clause(draft: _Draft, rng: random.Random, budget: int) -> int:
    if budget < 3:
        return 0
    conjunction = pick(rng, _CONJUNCTION_KEYS)
    previous_tense = draft.sentence.clauses[-1].tense
    # Keep tenses where English and French agree: "if" takes the present, and
    # "when/while" clauses avoid the future (French would use it where English does not).
    if conjunction == "if":
        if previous_tense == "past":
            return 0
        tenses = ("present",)
    elif conjunction in ("when", "while"):
        if previous_tense == "future":
            return 0
        tenses = ("present", "past")
    else:
        tenses = TENSES
    clause, length = new_clause(rng, budget - 1, tenses)
    if clause is None:
        return 0
    draft.sentence.clauses.append(clause)
    draft.sentence.conjunctions.append(conjunction)
    draft.add_clause(clause, 0)
    return 1 + length


_EXPANSIONS = (
    _expand_pronoun,
    _add_adjective,
    _negate,
    _add_frequency,
    _add_adverb,
    _add_clause_modifier,
    _add_noun_modifier,
    _add_relative,
    _add_clause,
)
# Weights while many words are left, and near the end (when small steps fit best).
_WEIGHTS_EARLY = tuple(itertools.accumulate((3, 3, 1.5, 1, 1.5, 2.5, 1.5, 2, 3)))
_WEIGHTS_LATE = tuple(itertools.accumulate((3, 3, 1.5, 1, 1.5, 1, 0.5, 0.5, 0.5)))
_MAX_FAILED_EXPANSIONS = 40


def sentence_of_length(rng: random.Random, length: int) -> Sentence:
    """Draws a sentence with exactly `length` English words."""
    while True:
        draft = _Draft()
        clause, current = new_clause(rng, length)
        if clause is None:
            continue
        draft.sentence.clauses.append(clause)
        draft.add_clause(clause, 0)
        failures = 0
        while current < length and failures < _MAX_FAILED_EXPANSIONS:
            budget = length - current
            weights = _WEIGHTS_EARLY if budget > 5 else _WEIGHTS_LATE
            expansion = _EXPANSIONS[bisect.bisect(weights, rng.random() * weights[-1])]
            added = expansion(draft, rng, budget)
            if added:
                current += added
            else:
                failures += 1
        if current == length:
            return draft.sentence
        # A dead end (nothing small enough fits): start again from a fresh clause.
