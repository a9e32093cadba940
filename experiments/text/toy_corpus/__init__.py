"""A grammar-based English->French toy corpus with true word alignments.

Sentences are built as small descriptions (clauses with noun phrases,
pronouns, prepositional phrases and relative clauses) and rendered into both
languages at once, so every French word knows which English words it
translates. The French follows the rules French really applies:

* object pronouns go before the verb ("i love you" -> "je t' aime");
* most adjectives follow the noun ("the red car" -> "la voiture rouge"), the
  BAGS ones (beauty, age, goodness, size) precede it ("la petite maison");
* articles, adjectives and past participles agree in gender and number;
* negation wraps the verb ("je ne t' aime pas");
* elision and contraction ("j' aime", "l' homme", "qu' il", "d' un", "au parc",
  "du professeur", "mon école", "cet homme", "le vieil homme").

The grammar is kept regular so that a small sequence-to-sequence model can learn
it: every English word has one translation given its English context.
Conventions where English gives no cue: "you" is the singular informal
"tu/te/toi", "they/them" are masculine ("ils/les/eux"), and "i", "you", "we",
"they", "me", "us" and "them" take masculine agreement. Every word starting
with "h" in the vocabulary has a mute h, so it elides like a vowel.

Links follow the words that carry the meaning: "not" links to both "ne" and
"pas", the auxiliaries "do/does/did/will" link to the French verb that carries
the tense, multi-word units ("in front of" -> "devant", "because" -> "parce que")
link every word to every word, and a contraction ("au") keeps the links of the
words it merges ("to the").

Public entry points: `generate`, `make_splits`, `render` (for hand-built
descriptions), `vocabulary` and `pretty`.

Modules: `description` (the description dataclasses and `SentencePair`),
`lexicon` and `verbs` (the words), `rendering` (`render`), `lengths`,
`drawing` and `expansions` (random sentences of a given length), `sampling`
(`generate`, `make_splits`) and `vocabulary`.
"""

from experiments.text.toy_corpus.description import (
    Argument,
    Clause,
    NounPhrase,
    PrepPhrase,
    Pronoun,
    RelativeClause,
    Sentence,
    SentencePair,
    pretty,
)
from experiments.text.toy_corpus.lexicon import TENSES
from experiments.text.toy_corpus.rendering import render
from experiments.text.toy_corpus.sampling import generate, make_splits
from experiments.text.toy_corpus.vocabulary import vocabulary

# The sentences whose attention pictures show what the corpus teaches: the
# object pronoun moving before the verb, adjectives after the noun, negation
# around the verb, a subordinate clause.
SHOWCASE_SENTENCES = (
    "i love you",
    "the red car is small",
    "i do not see the white dogs",
    "she eats the green apple because she is hungry",
)

__all__ = [
    "SHOWCASE_SENTENCES",
    "TENSES",
    "Argument",
    "Clause",
    "NounPhrase",
    "PrepPhrase",
    "Pronoun",
    "RelativeClause",
    "Sentence",
    "SentencePair",
    "generate",
    "make_splits",
    "pretty",
    "render",
    "vocabulary",
]
