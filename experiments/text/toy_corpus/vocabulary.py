"""`vocabulary`: every English and French token the grammar can produce."""

from __future__ import annotations

from experiments.text.toy_corpus.lexicon import (
    ADJECTIVE_LIST,
    ADJECTIVES,
    ADVERBS,
    CONJUNCTIONS,
    DETERMINERS,
    FREQUENCY_ADVERBS,
    PERSONS,
    PREPOSITIONS,
    PRONOUNS,
)
from experiments.text.toy_corpus.nouns import NOUNS
from experiments.text.toy_corpus.verbs import (
    AVOIR,
    ENGLISH_BE_PAST,
    ENGLISH_BE_PRESENT,
    ETRE,
    ETRE_FUTURE,
    ETRE_IMPERFECT,
    VERB_LIST,
)
from experiments.text.toy_corpus.word_forms import Agreement, agree


def vocabulary() -> tuple[set[str], set[str]]:
    """Returns (English words, French words): every token the grammar can produce."""
    english = {"do", "does", "did", "will", "not", "be", "who", "that", "an", "some", "these"}
    english.update(ENGLISH_BE_PRESENT + ENGLISH_BE_PAST + PERSONS)
    english.update(forms.english_object for forms in PRONOUNS.values())
    english.update(d.english for d in DETERMINERS.values() if d.english)
    english.update(d.english_plural for d in DETERMINERS.values())
    english.update(ADJECTIVES, FREQUENCY_ADVERBS, CONJUNCTIONS)
    for noun in NOUNS.values():
        english.update((noun.english, noun.english_plural))
    for verb in VERB_LIST:
        english.update(verb.english + (verb.third, verb.past))
    for preposition in PREPOSITIONS.values():
        english.update(preposition.english)
    for adverb in ADVERBS.values():
        english.update(adverb.english)

    french = {
        "ne",
        "n'",
        "pas",
        "qui",
        "que",
        "qu'",
        "s'",
        "de",
        "d'",
        "au",
        "aux",
        "du",
        "des",
        "j'",
    }
    french.update(AVOIR + ETRE + ETRE_IMPERFECT + ETRE_FUTURE)
    french.update(FREQUENCY_ADVERBS.values())
    for forms in PRONOUNS.values():
        french.update((forms.french_subject, forms.clitic, forms.disjunctive))
    french.update(("m'", "t'", "l'"))
    for determiner in DETERMINERS.values():
        french.update(determiner.french)
        french.update(form for form in determiner.before_vowel if form)
    for noun in NOUNS.values():
        french.update((noun.french, noun.french_plural))
    for adjective in ADJECTIVE_LIST:
        french.update(adjective.forms)
        if adjective.before_vowel:
            french.add(adjective.before_vowel)
    agreements = [Agreement(2, g, p) for g in "mf" for p in (False, True)]
    for verb in VERB_LIST:
        french.update(verb.present + verb.future)
        if "past" not in verb.tenses:
            continue
        if verb.objects or verb.auxiliary == "être":  # only these participles ever agree
            french.update(agree(verb.participle, a) for a in agreements)
        else:
            french.add(verb.participle)
    for preposition in PREPOSITIONS.values():
        french.update(word for word, _ in preposition.french)
    for adverb in ADVERBS.values():
        french.update(adverb.french)
    for words in CONJUNCTIONS.values():
        french.update(words)
    return english, french
