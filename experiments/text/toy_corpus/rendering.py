"""Rendering descriptions into aligned English/French pairs: `render`.

English words are appended, in order, to one list; French words are built as
items (text, English indices it links to, form before a vowel, is_article)
and arranged in French order: object pronouns before the verb, adjectives
around the noun, "ne ... pas" around the verb, with articles, adjectives and
participles agreeing. Elision and contractions run over the finished French
item list, since they depend on the neighbouring word.
"""

from __future__ import annotations

from experiments.text.toy_corpus.description import (
    Clause,
    NounPhrase,
    PrepPhrase,
    Pronoun,
    Sentence,
    SentencePair,
)
from experiments.text.toy_corpus.lexicon import (
    ADJECTIVES,
    ADVERBS,
    DETERMINERS,
    PREPOSITIONS,
    TENSES,
)
from experiments.text.toy_corpus.nouns import NOUNS
from experiments.text.toy_corpus.verbs import (
    AVOIR,
    ETRE,
    VERBS,
    Verb,
)
from experiments.text.toy_corpus.word_forms import (
    ENGLISH_CONSONANT_SOUND,
    MASCULINE_SINGULAR,
    Agreement,
    Antecedent,
    agree,
    apply_elision_and_contractions,
    conjunction_items,
    english_auxiliary,
    french_verb_group,
    lookup,
    render_adverb,
    render_be,
    render_pronoun,
    split_adjectives,
)


def _render_noun_phrase(noun_phrase: NounPhrase, en: list[str]) -> tuple[list, Agreement, bool]:
    """Returns the French items, the agreement features and whether the noun is a person."""
    noun = lookup(NOUNS, noun_phrase.noun, "noun")
    determiner = lookup(DETERMINERS, noun_phrase.determiner, "determiner")
    plural = noun_phrase.plural
    if determiner.english is None and not plural:
        raise ValueError(f"determiner {noun_phrase.determiner!r} needs plural=True")
    before, after = split_adjectives(noun_phrase)
    feminine = noun.gender == "f"
    noun_word = noun.english_plural if plural else noun.english
    english_det = determiner.english_plural if plural else determiner.english
    first_word = noun_phrase.adjectives[0] if noun_phrase.adjectives else noun_word
    if (
        english_det == "a"
        and first_word[0] in "aeiou"
        and first_word not in ENGLISH_CONSONANT_SOUND
    ):
        english_det = "an"

    det_index = len(en)
    en.append(english_det)
    items = []
    if plural:
        french_det = determiner.french[2]
        if french_det == "des" and before is not None:
            french_det = "de"  # "de petites maisons"
        det_alt = "d'" if french_det == "de" else None
    else:
        french_det = determiner.french[feminine]
        det_alt = determiner.before_vowel[feminine]
    items.append((french_det, (det_index,), det_alt, determiner.is_article))

    form_index = feminine + 2 * plural
    post_item = None
    for adjective in (before, after):
        if adjective is None:
            continue
        index = len(en)
        en.append(adjective.english)
        alt = adjective.before_vowel if form_index == 0 else None
        item = (adjective.forms[form_index], (index,), alt, False)
        if adjective is before:
            items.append(item)
        else:
            post_item = item
    noun_index = len(en)
    en.append(noun_word)
    items.append((noun.french_plural if plural else noun.french, (noun_index,), None, False))
    if post_item is not None:
        items.append(post_item)

    agreement = Agreement(4 if plural else 2, noun.gender, plural)
    is_person = noun.category == "P"
    if noun_phrase.modifier is not None:
        items += _render_prep_phrase(noun_phrase.modifier, en)
    if noun_phrase.relative is not None:
        relative = noun_phrase.relative
        if relative.gap not in ("subject", "object"):
            raise ValueError(
                f"relative clause gap {relative.gap!r}; valid values: 'object', 'subject'"
            )
        items += _render_clause(relative.clause, en, relative.gap, Antecedent(agreement, is_person))
    return items, agreement, is_person


def _render_prep_phrase(phrase: PrepPhrase, en: list[str]) -> list:
    preposition = lookup(PREPOSITIONS, phrase.preposition, "preposition")
    if phrase.preposition == "without" and getattr(phrase.object, "determiner", None) == "a":
        raise ValueError(
            "'without' with 'a'/'some' is outside the grammar (French drops the article after 'sans')"
        )
    start = len(en)
    en.extend(preposition.english)
    links = tuple(range(start, len(en)))
    items = [(word, links, alt, False) for word, alt in preposition.french]
    if isinstance(phrase.object, Pronoun):
        items += render_pronoun(phrase.object, en, "disjunctive")[0]
    else:
        items += _render_noun_phrase(phrase.object, en)[0]
    return items


def _render_clause(
    clause: Clause, en: list[str], gap: str | None = None, antecedent: Antecedent | None = None
) -> list:
    """Renders one clause; `gap` and `antecedent` are set for relative clauses."""
    if clause.tense not in TENSES:
        raise ValueError(f"tense {clause.tense!r}; valid values: {', '.join(TENSES)}")
    items, agreement = _render_clause_subject(clause, en, gap, antecedent)
    if clause.verb == "be":
        items += render_be(clause, en, agreement)
    else:
        items += _render_verb(clause, en, agreement, gap, antecedent)
    items += _render_clause_end(clause, en, agreement)
    return items


def _render_clause_subject(
    clause: Clause, en: list[str], gap: str | None, antecedent: Antecedent | None
) -> tuple[list, Agreement]:
    """Renders the subject, or the relative pronoun, and returns what the verb agrees with."""
    if gap == "subject":
        if clause.subject is not None:
            raise ValueError("a relative clause with a subject gap must have subject=None")
        en.append("who" if antecedent.is_person else "that")
        return [("qui", (len(en) - 1,), None, False)], antecedent.agreement
    items = []
    if gap == "object":
        en.append("that")
        items.append(("que", (len(en) - 1,), "qu'", False))
    subject = clause.subject
    if isinstance(subject, Pronoun):
        subject_items, forms = render_pronoun(subject, en, "subject")
        return items + subject_items, Agreement(forms.person, forms.gender, forms.plural)
    if not isinstance(subject, NounPhrase):
        raise ValueError(
            f"clause subject {subject!r}; valid values: a Pronoun or a NounPhrase "
            f"(None only in a relative clause with gap='subject')"
        )
    subject_items, agreement, _ = _render_noun_phrase(subject, en)
    return items + subject_items, agreement


def _render_verb(
    clause: Clause,
    en: list[str],
    agreement: Agreement,
    gap: str | None,
    antecedent: Antecedent | None,
) -> list:
    """Renders the verb group and the direct object of a clause whose verb is not "be"."""
    verb = lookup(VERBS, clause.verb, "verb")
    tense, person = clause.tense, agreement.person
    if tense not in verb.tenses:
        raise ValueError(
            f"tense {tense!r} for verb {clause.verb!r}; valid values: {', '.join(verb.tenses)}"
        )
    if clause.complement is not None:
        raise ValueError(f"verb {clause.verb!r} takes no complement; only 'be' does")
    if verb.destination and not any(m.preposition == "to" for m in clause.modifiers):
        raise ValueError(f"verb {clause.verb!r} needs a modifier PrepPhrase('to', ...)")

    if clause.negated or tense == "future":
        if tense == "future":
            auxiliary = "will"
        else:
            auxiliary = "did" if tense == "past" else "does" if person == 2 else "do"
        english = english_auxiliary(en, auxiliary, clause)
        first_word = verb.english[0]
    else:
        english = english_auxiliary(en, None, clause)  # only "often", before the verb
        first_word = (
            verb.past if tense == "past" else verb.third if person == 2 else verb.english[0]
        )
    verb_start = len(en)
    en.append(first_word)
    en.extend(verb.english[1:])
    verb_indices = tuple(range(verb_start, len(en)))
    clitic_items, object_items, preceding_object = _render_object(clause, verb, en, gap, antecedent)

    if tense == "past":
        # "saw" carries both the tense and the meaning; "did" only the tense.
        finite_links = verb_indices[:1] if english.auxiliary is None else (english.auxiliary,)
        finite = (
            (AVOIR if verb.auxiliary == "avoir" else ETRE)[person],
            finite_links,
            None,
            False,
        )
        # With "être" the participle agrees with the subject; with "avoir", with a
        # direct object placed before it ("je l' ai vue", "la voiture qu' il a achetée").
        target = agreement if verb.auxiliary == "être" else preceding_object or MASCULINE_SINGULAR
        participle = (agree(verb.participle, target), verb_indices, None, False)
    else:
        finite_links = (
            verb_indices if english.auxiliary is None else verb_indices + (english.auxiliary,)
        )
        finite = (
            (verb.future if tense == "future" else verb.present)[person],
            finite_links,
            None,
            False,
        )
        participle = None
    return french_verb_group(clause, english, finite, clitic_items, participle) + object_items


def _render_object(
    clause: Clause, verb: Verb, en: list[str], gap: str | None, antecedent: Antecedent | None
) -> tuple[list, list, Agreement | None]:
    """Returns (object pronoun items, object noun phrase items, agreement of an object before the verb)."""
    obj = clause.object
    if gap == "object":
        if obj is not None:
            raise ValueError("a relative clause with an object gap must have object=None")
        if not verb.objects:
            raise ValueError(
                f"verb {clause.verb!r} takes no object, so it cannot have an object gap"
            )
        return [], [], antecedent.agreement
    if obj is None:
        if verb.objects and not verb.object_optional:
            raise ValueError(f"verb {clause.verb!r} needs an object")
        return [], [], None
    if not verb.objects:
        raise ValueError(f"verb {clause.verb!r} takes no object")
    if isinstance(obj, Pronoun):
        clitic_items, forms = render_pronoun(obj, en, "clitic")
        return clitic_items, [], Agreement(forms.person, forms.gender, forms.plural)
    if clause.negated and obj.determiner == "a":
        raise ValueError(
            "a negated verb with an indefinite object ('a'/'some') is outside the grammar "
            "(French would need 'pas de'); use another determiner"
        )
    return [], _render_noun_phrase(obj, en)[0], None


def _render_clause_end(clause: Clause, en: list[str], agreement: Agreement) -> list:
    """Renders the complement of "be", the adverb and the prepositional phrases."""
    items = []
    complement = clause.complement
    if isinstance(complement, PrepPhrase):
        items += _render_prep_phrase(complement, en)
    elif complement is not None:
        adjective = lookup(ADJECTIVES, complement, "adjective")
        en.append(adjective.english)
        form = adjective.forms[(agreement.gender == "f") + 2 * agreement.plural]
        items.append((form, (len(en) - 1,), None, False))
    # Manner adverbs follow the verb and its object ("ate the apple quickly in the
    # garden"); time and place adverbs close the clause ("... in the garden today").
    adverb = None if clause.adverb is None else lookup(ADVERBS, clause.adverb, "adverb")
    if adverb is not None and adverb.manner:
        items += render_adverb(adverb, en)
    for modifier in clause.modifiers:
        items += _render_prep_phrase(modifier, en)
    if adverb is not None and not adverb.manner:
        items += render_adverb(adverb, en)
    return items


def render(description: Sentence | Clause) -> SentencePair:
    """Renders a sentence description into an aligned English/French pair.

    Example:
      >>> render(Clause(Pronoun("i"), "love", Pronoun("you")))
      SentencePair(source='i love you', target="je t' aime", alignment=((0, 0), (1, 2), (2, 1)))

    Raises:
      ValueError: for unknown words, or combinations outside the grammar.
    """
    if isinstance(description, Clause):
        description = Sentence([description])
    if not isinstance(description, Sentence):
        raise ValueError(f"cannot render {description!r}; valid values: a Sentence or a Clause")
    clauses, conjunctions = description.clauses, description.conjunctions
    if not clauses or len(conjunctions) != len(clauses) - 1:
        raise ValueError(
            f"a sentence needs at least one clause and one conjunction between each two clauses; "
            f"got {len(clauses)} clauses and {len(conjunctions)} conjunctions"
        )
    en: list[str] = []
    items = _render_clause(clauses[0], en)
    for conjunction, clause in zip(conjunctions, clauses[1:]):
        items += conjunction_items(conjunction, en)
        items += _render_clause(clause, en)
    words = apply_elision_and_contractions(items)
    targets_of = [[] for _ in en]
    for target, (_, links) in enumerate(words):
        for source in links:
            targets_of[source].append(target)
    # Visiting sources, then targets, in increasing order yields the links sorted.
    alignment = tuple(
        (source, target) for source, targets in enumerate(targets_of) for target in targets
    )
    return SentencePair(" ".join(en), " ".join(word for word, _ in words), alignment)
