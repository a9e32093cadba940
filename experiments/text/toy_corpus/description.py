"""The descriptions `render` turns into sentences, and the pairs it returns.

A description is a tree of dataclasses: a `Sentence` of `Clause`s whose
arguments are `NounPhrase`s or `Pronoun`s, with `PrepPhrase`s and
`RelativeClause`s attached. A `SentencePair` holds a rendered English/French
pair with its word alignment; `pretty` shows one.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SentencePair:
    """A source sentence, its translation and their word alignment.

    Attributes:
      source: space-separated English word tokens.
      target: space-separated French word tokens.
      alignment: sorted (source_word_index, target_word_index) links, 0-based.
    """

    source: str
    target: str
    alignment: tuple[tuple[int, int], ...]


@dataclasses.dataclass(slots=True)
class Pronoun:
    """A personal pronoun, named by its English subject form.

    The renderer picks the form its position needs: "i" is "i/je" as subject,
    "me/me" as object and "me/moi" after a preposition.

    Attributes:
      person: one of "i", "you", "he", "she", "we", "they".
    """

    person: str


@dataclasses.dataclass(slots=True)
class PrepPhrase:
    """A preposition and its object, e.g. PrepPhrase("in", NounPhrase("garden")).

    Attributes:
      preposition: an English preposition such as "in", "near", "in front of", "of".
      object: the noun phrase or pronoun it governs.
    """

    preposition: str
    object: NounPhrase | Pronoun


@dataclasses.dataclass(slots=True)
class NounPhrase:
    """A determiner, a noun, adjectives and an optional modifier or relative clause.

    Attributes:
      noun: English singular noun, e.g. "car".
      determiner: "the", "a" (plural: "some"), "this" (plural: "these"), a
        possessive ("my", "your", "his", "her", "our", "their") or a number
        from "two" to "five" (plural only).
      plural: whether the noun is plural.
      adjectives: English adjectives in English order, at most one that French
        puts before the noun and one that it puts after it, in that order.
      modifier: a prepositional phrase after the noun ("the book on the table").
      relative: a relative clause after the noun ("the man who sleeps").
    """

    noun: str
    determiner: str = "the"
    plural: bool = False
    adjectives: tuple[str, ...] = ()
    modifier: PrepPhrase | None = None
    relative: RelativeClause | None = None


@dataclasses.dataclass(slots=True)
class Clause:
    """One clause: subject, verb group, object or complement, and modifiers.

    Attributes:
      subject: noun phrase or pronoun; None only for the subject gap of a relative clause.
      verb: English base form, e.g. "love", "wait for", or "be".
      object: direct object of a transitive verb (None for intransitive verbs,
        optional objects, and the object gap of a relative clause).
      complement: for "be" only: a predicate adjective (e.g. "happy") or a
        prepositional phrase ("in the garden").
      tense: "present", "past" (French passé composé, imparfait for "be") or "future".
      negated: whether the verb is negated ("do not" -> "ne ... pas").
      frequency: "often", "always" or "sometimes", placed before the English verb.
      adverb: a clause-final adverb such as "today", "quickly" or "every day".
      modifiers: clause-final prepositional phrases ("in the park").
    """

    subject: NounPhrase | Pronoun | None
    verb: str
    object: NounPhrase | Pronoun | None = None
    complement: str | PrepPhrase | None = None
    tense: str = "present"
    negated: bool = False
    frequency: str | None = None
    adverb: str | None = None
    modifiers: list[PrepPhrase] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class RelativeClause:
    """A clause attached to a noun, with its subject or its object left out.

    Attributes:
      gap: "subject" ("the man who sleeps": clause.subject is None) or
        "object" ("the book that i read": clause.object is None).
      clause: the clause with the gapped slot set to None.
    """

    gap: str
    clause: Clause


@dataclasses.dataclass(slots=True)
class Sentence:
    """Clauses joined by conjunctions ("and", "but", "because", ...).

    Attributes:
      clauses: one or more clauses.
      conjunctions: len(clauses) - 1 English conjunctions; conjunction i joins
        clause i + 1 to the clause before it.
    """

    clauses: list[Clause]
    conjunctions: list[str] = dataclasses.field(default_factory=list)


Argument = NounPhrase | Pronoun


def pretty(pair: SentencePair) -> str:
    """A multi-line view of a pair: both sentences, then each French word with its English words."""
    source, target = pair.source.split(), pair.target.split()
    linked: dict[int, list[str]] = {}
    for s, t in pair.alignment:
        linked.setdefault(t, []).append(source[s])
    width = max((len(word) for word in target), default=0)
    lines = [f"EN: {pair.source}", f"FR: {pair.target}"]
    for t, word in enumerate(target):
        lines.append(f"  {word:<{width}} <- {' '.join(linked.get(t, ['(unaligned)']))}")
    return "\n".join(lines)
