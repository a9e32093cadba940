"""Hand-checked sentences of the English->French toy corpus: word order, agreement, links."""

import pytest

from experiments.text import toy_corpus
from experiments.text.toy_corpus import (
    Clause,
    NounPhrase,
    PrepPhrase,
    Pronoun,
    RelativeClause,
    Sentence,
    SentencePair,
    render,
)


def links(pair: SentencePair) -> set[tuple[str, str]]:
    """The alignment as (English word, French word) pairs, easier to read than indices."""
    source, target = pair.source.split(), pair.target.split()
    return {(source[s], target[t]) for s, t in pair.alignment}


# --- Hand-checked sentences ------------------------------------------------


def test_i_love_you_puts_the_object_pronoun_before_the_verb():
    pair = render(Clause(Pronoun("i"), "love", Pronoun("you")))
    assert pair == SentencePair("i love you", "je t' aime", ((0, 0), (1, 2), (2, 1)))


def test_third_person_plural_object_pronoun():
    pair = render(Clause(Pronoun("she"), "see", Pronoun("they")))
    assert pair == SentencePair("she sees them", "elle les voit", ((0, 0), (1, 2), (2, 1)))


def test_adjective_follows_the_noun_and_the_links_cross():
    pair = render(Clause(Pronoun("i"), "see", NounPhrase("car", adjectives=("red",))))
    assert pair.source == "i see the red car"
    assert pair.target == "je vois la voiture rouge"
    # "red" (3) -> "rouge" (4) and "car" (4) -> "voiture" (3).
    assert pair.alignment == ((0, 0), (1, 1), (2, 2), (3, 4), (4, 3))


def test_bags_adjective_stays_before_the_noun():
    pair = render(Clause(NounPhrase("house", adjectives=("small", "red")), "be", complement="old"))
    assert pair.source == "the small red house is old"
    assert pair.target == "la petite maison rouge est vieille"
    assert pair.alignment == ((0, 0), (1, 1), (2, 3), (3, 2), (4, 4), (5, 5))


@pytest.mark.parametrize(
    "noun, plural, adjective, english, french",
    [
        ("car", True, "red", "the cars are red", "les voitures sont rouges"),
        ("girl", False, "happy", "the girl is happy", "la fille est heureuse"),
        ("girl", True, "happy", "the girls are happy", "les filles sont heureuses"),
        ("boy", True, "happy", "the boys are happy", "les garçons sont heureux"),
        ("woman", True, "old", "the women are old", "les femmes sont vieilles"),
        ("horse", True, "white", "the horses are white", "les chevaux sont blancs"),
    ],
)
def test_predicate_adjective_agrees_in_gender_and_number(noun, plural, adjective, english, french):
    pair = render(Clause(NounPhrase(noun, plural=plural), "be", complement=adjective))
    assert (pair.source, pair.target) == (english, french)


def test_attributive_adjective_agrees_with_a_plural_feminine_noun():
    pair = render(
        Clause(Pronoun("we"), "love", NounPhrase("car", plural=True, adjectives=("new", "red")))
    )
    assert pair.source == "we love the new red cars"
    assert pair.target == "nous aimons les nouvelles voitures rouges"


def test_negation_links_not_to_both_ne_and_pas():
    pair = render(Clause(Pronoun("i"), "love", Pronoun("you"), negated=True))
    assert pair.source == "i do not love you"
    assert pair.target == "je ne t' aime pas"
    # "do" carries the tense, so it links to the verb that carries it in French.
    assert pair.alignment == ((0, 0), (1, 3), (2, 1), (2, 4), (3, 3), (4, 2))


def test_negated_past_puts_pas_after_the_auxiliary_and_agrees_the_participle():
    pair = render(Clause(Pronoun("we"), "see", Pronoun("they"), tense="past", negated=True))
    assert pair.source == "we did not see them"
    assert pair.target == "nous ne les avons pas vus"
    assert links(pair) == {
        ("we", "nous"),
        ("did", "avons"),
        ("not", "ne"),
        ("not", "pas"),
        ("see", "vus"),
        ("them", "les"),
    }


def test_future_tense_is_one_french_word_linked_to_will_and_the_verb():
    pair = render(Clause(Pronoun("she"), "love", Pronoun("he"), tense="future", negated=True))
    assert pair.source == "she will not love him"
    assert pair.target == "elle ne l' aimera pas"
    assert ("will", "aimera") in links(pair) and ("love", "aimera") in links(pair)


@pytest.mark.parametrize(
    "description, english, french",
    [
        (Clause(Pronoun("i"), "love", NounPhrase("man")), "i love the man", "j' aime l' homme"),
        (
            Clause(Pronoun("he"), "love", NounPhrase("school"), negated=True),
            "he does not love the school",
            "il n' aime pas l' école",
        ),
        (Clause(Pronoun("she"), "love", Pronoun("i")), "she loves me", "elle m' aime"),
        (
            Clause(
                Pronoun("i"),
                "love",
                NounPhrase(
                    "book", relative=RelativeClause("object", Clause(Pronoun("he"), "write"))
                ),
            ),
            "i love the book that he writes",
            "j' aime le livre qu' il écrit",
        ),
        (
            Clause(
                Pronoun("i"), "work", modifiers=[PrepPhrase("near", NounPhrase("hospital", "a"))]
            ),
            "i work near a hospital",
            "je travaille près d' un hôpital",
        ),
        (
            Sentence([Clause(Pronoun("i"), "sleep"), Clause(Pronoun("he"), "work")], ["if"]),
            "i sleep if he works",
            "je dors s' il travaille",
        ),
        (
            Sentence([Clause(Pronoun("i"), "sleep"), Clause(Pronoun("she"), "work")], ["if"]),
            "i sleep if she works",
            "je dors si elle travaille",
        ),
        (
            Sentence([Clause(Pronoun("i"), "sleep"), Clause(Pronoun("she"), "work")], ["because"]),
            "i sleep because she works",
            "je dors parce qu' elle travaille",
        ),
        (
            Clause(Pronoun("i"), "love", NounPhrase("school", "my")),
            "i love my school",
            "j' aime mon école",
        ),
        (
            Clause(Pronoun("i"), "see", NounPhrase("man", "this")),
            "i see this man",
            "je vois cet homme",
        ),
        (
            Clause(Pronoun("i"), "see", NounPhrase("man", adjectives=("old",))),
            "i see the old man",
            "je vois le vieil homme",
        ),
        (
            Clause(Pronoun("i"), "eat", NounPhrase("apple", "a")),
            "i eat an apple",
            "je mange une pomme",
        ),
        (
            Clause(
                Pronoun("i"), "see", NounPhrase("house", "a", plural=True, adjectives=("small",))
            ),
            "i see some small houses",
            "je vois de petites maisons",
        ),
    ],
)
def test_elision_and_related_forms(description, english, french):
    pair = render(description)
    assert (pair.source, pair.target) == (english, french)


@pytest.mark.parametrize(
    "description, english, french",
    [
        (
            Clause(Pronoun("we"), "go", modifiers=[PrepPhrase("to", NounPhrase("park"))]),
            "we go to the park",
            "nous allons au parc",
        ),
        (
            Clause(
                Pronoun("we"), "go", modifiers=[PrepPhrase("to", NounPhrase("park", plural=True))]
            ),
            "we go to the parks",
            "nous allons aux parcs",
        ),
        (
            Clause(Pronoun("we"), "go", modifiers=[PrepPhrase("to", NounPhrase("school"))]),
            "we go to the school",
            "nous allons à l' école",
        ),
        (
            Clause(
                Pronoun("they"),
                "come",
                modifiers=[PrepPhrase("from", NounPhrase("market", plural=True))],
            ),
            "they come from the markets",
            "ils viennent des marchés",
        ),
    ],
)
def test_contractions(description, english, french):
    pair = render(description)
    assert (pair.source, pair.target) == (english, french)


def test_contraction_keeps_the_links_of_both_words():
    car_of_the_teacher = NounPhrase("car", modifier=PrepPhrase("of", NounPhrase("teacher")))
    pair = render(Clause(car_of_the_teacher, "be", complement="red"))
    assert pair.source == "the car of the teacher is red"
    assert pair.target == "la voiture du professeur est rouge"
    assert ("of", "du") in links(pair) and ("the", "du") in links(pair)
    assert pair.alignment == ((0, 0), (1, 1), (2, 2), (3, 2), (4, 3), (5, 4), (6, 5))


def test_past_participle_agrees_with_a_preceding_object_pronoun():
    pair = render(Clause(Pronoun("i"), "see", Pronoun("she"), tense="past"))
    assert pair == SentencePair("i saw her", "je l' ai vue", ((0, 0), (1, 2), (1, 3), (2, 1)))


def test_past_participle_agrees_with_the_antecedent_of_que():
    relative = RelativeClause("object", Clause(Pronoun("she"), "buy", tense="past"))
    pair = render(Clause(Pronoun("i"), "love", NounPhrase("car", plural=True, relative=relative)))
    assert pair.source == "i love the cars that she bought"
    assert pair.target == "j' aime les voitures qu' elle a achetées"


def test_etre_verbs_agree_with_the_subject():
    assert render(Clause(Pronoun("she"), "arrive", tense="past")).target == "elle est arrivée"
    relative = RelativeClause("subject", Clause(None, "leave", tense="past"))
    pair = render(Clause(Pronoun("i"), "see", NounPhrase("girl", plural=True, relative=relative)))
    assert pair.source == "i see the girls who left"
    assert pair.target == "je vois les filles qui sont parties"


def test_frequency_adverb_follows_the_finite_verb_in_french():
    pair = render(Clause(Pronoun("she"), "see", Pronoun("he"), frequency="often"))
    assert (pair.source, pair.target) == ("she often sees him", "elle le voit souvent")
    pair = render(Clause(Pronoun("she"), "see", Pronoun("he"), tense="past", frequency="often"))
    assert (pair.source, pair.target) == ("she often saw him", "elle l' a souvent vu")


def test_multiword_units_link_every_word_to_every_word():
    pair = render(
        Clause(
            Pronoun("i"),
            "wait for",
            NounPhrase("bus"),
            modifiers=[PrepPhrase("in front of", NounPhrase("bank"))],
            adverb="every day",
        )
    )
    assert pair.source == "i wait for the bus in front of the bank every day"
    assert pair.target == "j' attends le bus devant la banque tous les jours"
    assert {
        ("wait", "attends"),
        ("for", "attends"),
        ("in", "devant"),
        ("front", "devant"),
        ("of", "devant"),
        ("every", "tous"),
        ("day", "jours"),
    } <= links(pair)


def test_invalid_descriptions_raise_value_errors_naming_the_value():
    with pytest.raises(ValueError, match="'flurb'.*'car'"):
        render(Clause(Pronoun("i"), "see", NounPhrase("flurb")))
    with pytest.raises(ValueError, match="'it'"):
        render(Clause(Pronoun("it"), "sleep"))
    with pytest.raises(ValueError, match="needs an object"):
        render(Clause(Pronoun("i"), "love"))
    with pytest.raises(ValueError, match="pas de"):
        render(Clause(Pronoun("i"), "see", NounPhrase("car", "a"), negated=True))
    with pytest.raises(ValueError, match="'to'"):
        render(Clause(Pronoun("i"), "go"))
    with pytest.raises(ValueError, match="'past'.*'read'"):
        render(Clause(Pronoun("i"), "read", tense="past"))


def test_pretty_shows_both_sentences_and_the_links():
    text = toy_corpus.pretty(render(Clause(Pronoun("i"), "love", Pronoun("you"))))
    assert text.splitlines() == [
        "EN: i love you",
        "FR: je t' aime",
        "  je   <- i",
        "  t'   <- you",
        "  aime <- love",
    ]
