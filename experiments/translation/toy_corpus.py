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
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import random
import types
from collections.abc import Iterator, Sequence
from typing import NamedTuple

# ---------------------------------------------------------------------------
# Public data types.


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

# ---------------------------------------------------------------------------
# Lexicon. Noun categories: P person, A animal, F food, D drink, T thing,
# X text, M music, L place. Verbs, adjectives and prepositions name the
# categories they combine with, which keeps the sentences sensible.

TENSES = ("present", "past", "future")
_PERSONS = ("i", "you", "he", "she", "we", "they")
_ANYTHING = "PAFDTXML"  # every noun category


def _lookup(table, key, what):
    """Returns table[key], or raises ValueError naming the key and the valid ones."""
    try:
        return table[key]
    except (KeyError, TypeError):
        valid = ", ".join(sorted(map(repr, table)))
        raise ValueError(f"unknown {what} {key!r}; valid values: {valid}") from None


class _Noun(NamedTuple):
    english: str
    english_plural: str
    french: str
    french_plural: str
    gender: str  # "m" or "f"
    category: str


def _english_plural(word: str) -> str:
    if word.endswith(("s", "sh", "ch", "x")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _french_plural(word: str) -> str:
    if word.endswith(("s", "x", "z")):
        return word
    if word.endswith("eau"):
        return word + "x"
    if word.endswith("al"):
        return word[:-2] + "aux"
    return word + "s"


_NOUN_SPECS = {
    "P": (
        "man/men homme m",
        "woman/women femme f",
        "boy garçon m",
        "girl fille f",
        "child/children enfant m",
        "baby bébé m",
        "teacher professeur m",
        "doctor médecin m",
        "student étudiant m",
        "friend ami m",
        "brother frère m",
        "sister sœur f",
        "father père m",
        "mother mère f",
        "son fils m",
        "daughter fille f",
        "king roi m",
        "queen reine f",
        "neighbor voisin m",
        "baker boulanger m",
        "actor acteur m",
        "actress actrice f",
        "uncle oncle m",
        "aunt tante f",
        "grandfather grand-père/grands-pères m",
        "grandmother grand-mère/grands-mères f",
        "singer chanteur m",
        "waiter serveur m",
        "farmer fermier m",
        "writer écrivain m",
        "lawyer avocat m",
        "pilot pilote m",
        "artist artiste m",
        "soldier soldat m",
        "prince prince m",
        "princess princesse f",
        "guest invité m",
    ),
    "A": (
        "dog chien m",
        "cat chat m",
        "bird oiseau m",
        "horse cheval m",
        "cow vache f",
        "mouse/mice souris f",
        "rabbit lapin m",
        "duck canard m",
        "elephant éléphant m",
        "lion lion m",
        "pig cochon m",
        "hen poule f",
        "frog grenouille f",
        "bear ours m",
        "wolf/wolves loup m",
        "fox renard m",
        "monkey singe m",
        "snake serpent m",
        "spider araignée f",
        "bee abeille f",
        "tiger tigre m",
        "goat chèvre f",
        "turtle tortue f",
        "whale baleine f",
        "butterfly papillon m",
    ),
    "F": (
        "apple pomme f",
        "bread pain m",
        "cake gâteau m",
        "cheese fromage m",
        "egg œuf m",
        "orange orange f",
        "banana banane f",
        "soup soupe f",
        "tomato/tomatoes tomate f",
        "carrot carotte f",
        "strawberry fraise f",
        "lemon citron m",
        "pear poire f",
        "sandwich sandwich/sandwichs m",
        "pizza pizza f",
        "cookie biscuit m",
        "salad salade f",
    ),
    "D": (
        "coffee café m",
        "tea thé m",
        "juice jus m",
        "wine vin m",
        "beer bière f",
        "lemonade limonade f",
    ),
    "T": (
        "car voiture f",
        "table table f",
        "chair chaise f",
        "door porte f",
        "window fenêtre f",
        "key clé f",
        "bag sac m",
        "box boîte f",
        "phone téléphone m",
        "computer ordinateur m",
        "pen stylo m",
        "cup tasse f",
        "glass verre m",
        "plate assiette f",
        "bottle bouteille f",
        "hat chapeau m",
        "shirt chemise f",
        "dress robe f",
        "shoe chaussure f",
        "coat manteau m",
        "bicycle vélo m",
        "boat bateau m",
        "ball ballon m",
        "photo photo f",
        "flower fleur f",
        "tree arbre m",
        "umbrella parapluie m",
        "lamp lampe f",
        "clock horloge f",
        "mirror miroir m",
        "knife/knives couteau m",
        "spoon cuillère f",
        "fork fourchette f",
        "gift cadeau m",
        "guitar guitare f",
        "piano piano m",
        "train train m",
        "bus bus m",
        "plane avion m",
        "ticket billet m",
        "toy jouet m",
        "bed lit m",
        "ring bague f",
        "candle bougie f",
    ),
    "X": (
        "book livre m",
        "letter lettre f",
        "newspaper journal m",
        "story histoire f",
        "poem poème m",
        "magazine magazine m",
        "map carte f",
    ),
    "M": ("song chanson f", "melody mélodie f"),
    "L": (
        "house maison f",
        "garden jardin m",
        "park parc m",
        "school école f",
        "city ville f",
        "village village m",
        "market marché m",
        "store magasin m",
        "street rue f",
        "forest forêt f",
        "beach plage f",
        "church église f",
        "hospital hôpital m",
        "hotel hôtel m",
        "station gare f",
        "kitchen cuisine f",
        "bedroom chambre f",
        "office bureau m",
        "library bibliothèque f",
        "museum musée m",
        "restaurant restaurant m",
        "river rivière f",
        "lake lac m",
        "mountain montagne f",
        "bridge pont m",
        "island île f",
        "farm ferme f",
        "castle château m",
        "apartment appartement m",
        "university université f",
        "bank banque f",
        "airport aéroport m",
        "theater théâtre m",
        "bakery boulangerie f",
        "zoo zoo m",
    ),
}


def _parse_nouns() -> dict[str, _Noun]:
    nouns = {}
    for category, specs in _NOUN_SPECS.items():
        for spec in specs:
            english, french, gender = spec.split()
            en_singular, _, en_plural = english.partition("/")
            fr_singular, _, fr_plural = french.partition("/")
            nouns[en_singular] = _Noun(
                en_singular,
                en_plural or _english_plural(en_singular),
                fr_singular,
                fr_plural or _french_plural(fr_singular),
                gender,
                category,
            )
    return nouns


_NOUNS = types.MappingProxyType(_parse_nouns())


class _Adjective(NamedTuple):
    english: str
    forms: tuple[str, str, str, str]  # masculine, feminine, masculine plural, feminine plural
    before_vowel: str | None  # masculine singular form before a vowel ("vieil")
    preposed: bool  # French puts it before the noun
    categories: str


def _adjective(english: str, french: str, categories: str, preposed: bool = False) -> _Adjective:
    """Builds an adjective; `french` is the masculine form, or all forms spelled out."""
    words = french.split()
    if len(words) == 1:
        masculine = words[0]
        feminine = masculine if masculine.endswith("e") else masculine + "e"
        words = [masculine, feminine, _french_plural(masculine), feminine + "s"]
    before_vowel = words[4] if len(words) == 5 else None
    return _Adjective(english, tuple(words[:4]), before_vowel, preposed, categories)


_ADJECTIVE_LIST = (
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
_ADJECTIVES = types.MappingProxyType({a.english: a for a in _ADJECTIVE_LIST})

_FUTURE_ENDINGS = ("ai", "as", "a", "ons", "ont")


class _Verb(NamedTuple):
    english: tuple[str, ...]  # base form words; the first one inflects ("wait", "for")
    third: str  # third person singular present of the first word
    past: str  # simple past of the first word
    present: tuple[str, ...]  # French present for persons i, you, he/she, we, they
    future: tuple[str, ...]
    participle: str
    auxiliary: str  # "avoir" or "être"
    subjects: str  # noun categories of the subject
    objects: str  # noun categories of the direct object; "" when intransitive
    object_optional: bool
    stative: bool  # no manner adverbs ("quickly") with it
    tenses: tuple[str, ...]
    clause_prepositions: tuple[str, ...]
    destination: bool  # needs a "to" phrase: "il est allé" alone is not French


_STATIC_PREPOSITIONS = (
    "in",
    "on",
    "under",
    "near",
    "behind",
    "in front of",
    "at",
    "with",
    "without",
    "for",
)


def _verb(
    english: str,
    french: str,
    subjects: str,
    objects: str = "",
    *,
    past: str | None = None,
    present: str | None = None,
    future: str | None = None,
    participle: str | None = None,
    auxiliary: str = "avoir",
    optional: bool = False,
    stative: bool = False,
    tenses: tuple[str, ...] = TENSES,
    prepositions: tuple[str, ...] = _STATIC_PREPOSITIONS,
    destination: bool = False,
) -> _Verb:
    """Builds a verb; regular English and French forms are derived, the rest is given."""
    words = tuple(english.split())
    first = words[0]
    if first.endswith(("s", "sh", "ch", "x", "o")):
        third = first + "es"
    elif first.endswith("y") and first[-2] not in "aeiou":
        third = first[:-1] + "ies"
    else:
        third = first + "s"
    if past is None:
        if first.endswith("e"):
            past = first + "d"
        elif first.endswith("y") and first[-2] not in "aeiou":
            past = first[:-1] + "ied"
        else:
            past = first + "ed"
    stem, ending = french[:-2], french[-2:]
    if ending == "er":
        regular = ([stem + e for e in ("e", "es", "e", "ons", "ent")], french, stem + "é")
    elif ending == "ir":  # the "finir" conjugation; irregular -ir verbs spell out their forms
        regular = ([stem + e for e in ("is", "is", "it", "issons", "issent")], french, stem + "i")
    else:  # "vendre"
        regular = ([stem + e for e in ("s", "s", "", "ons", "ent")], french[:-1], stem + "u")
    present_forms = tuple(present.split()) if present else tuple(regular[0])
    future_stem = future or regular[1]
    return _Verb(
        english=words,
        third=third,
        past=past,
        present=present_forms,
        future=tuple(future_stem + e for e in _FUTURE_ENDINGS),
        participle=participle or regular[2],
        auxiliary=auxiliary,
        subjects=subjects,
        objects=objects,
        object_optional=optional,
        stative=stative,
        tenses=tenses,
        clause_prepositions=prepositions,
        destination=destination,
    )


_VERB_LIST = (
    # Transitive verbs.
    _verb("love", "aimer", "P", _ANYTHING, stative=True),
    _verb("hate", "détester", "P", _ANYTHING, stative=True),
    _verb(
        "see",
        "voir",
        "PA",
        _ANYTHING,
        past="saw",
        present="vois vois voit voyons voient",
        future="verr",
        participle="vu",
        stative=True,
    ),
    _verb("watch", "regarder", "PA", "PATL"),
    _verb(
        "eat",
        "manger",
        "PA",
        "F",
        past="ate",
        present="mange manges mange mangeons mangent",
        optional=True,
    ),
    _verb(
        "drink",
        "boire",
        "PA",
        "D",
        past="drank",
        present="bois bois boit buvons boivent",
        future="boir",
        participle="bu",
        optional=True,
    ),
    # "read" has the same present and past form, so it has no past tense here.
    _verb(
        "read",
        "lire",
        "P",
        "X",
        past="read",
        present="lis lis lit lisons lisent",
        future="lir",
        participle="lu",
        optional=True,
        tenses=("present", "future"),
    ),
    _verb(
        "write",
        "écrire",
        "P",
        "XM",
        past="wrote",
        present="écris écris écrit écrivons écrivent",
        future="écrir",
        participle="écrit",
        optional=True,
    ),
    _verb(
        "buy",
        "acheter",
        "P",
        "AFDTX",
        past="bought",
        present="achète achètes achète achetons achètent",
        future="achèter",
    ),
    _verb("sell", "vendre", "P", "AFDTXL", past="sold"),
    _verb("find", "trouver", "PA", "PAFTXL", past="found"),
    _verb("lose", "perdre", "P", "TX", past="lost"),
    _verb(
        "take",
        "prendre",
        "P",
        "FDTX",
        past="took",
        present="prends prends prend prenons prennent",
        future="prendr",
        participle="pris",
    ),
    _verb(
        "open",
        "ouvrir",
        "P",
        "TX",
        present="ouvre ouvres ouvre ouvrons ouvrent",
        participle="ouvert",
    ),
    _verb("close", "fermer", "P", "TX"),
    _verb("wash", "laver", "P", "TAF"),
    _verb(
        "paint",
        "peindre",
        "P",
        "TL",
        present="peins peins peint peignons peignent",
        future="peindr",
        participle="peint",
        optional=True,
    ),
    _verb(
        "build",
        "construire",
        "P",
        "TL",
        past="built",
        present="construis construis construit construisons construisent",
        future="construir",
        participle="construit",
    ),
    _verb("visit", "visiter", "P", "L"),
    _verb(
        "call",
        "appeler",
        "P",
        "PA",
        present="appelle appelles appelle appelons appellent",
        future="appeller",
    ),
    _verb("help", "aider", "PA", "P"),
    _verb(
        "know",
        "connaître",
        "P",
        "PL",
        past="knew",
        present="connais connais connaît connaissons connaissent",
        future="connaîtr",
        participle="connu",
        stative=True,
    ),
    _verb("meet", "rencontrer", "P", "P", past="met"),
    _verb("wait for", "attendre", "PA", "PAT"),
    _verb("look for", "chercher", "PA", "PAFTXL"),
    _verb("listen to", "écouter", "PA", "PAM"),
    _verb("hear", "entendre", "PA", "PAM", past="heard", stative=True),
    _verb(
        "follow",
        "suivre",
        "PA",
        "PA",
        present="suis suis suit suivons suivent",
        future="suivr",
        participle="suivi",
    ),
    _verb(
        "understand",
        "comprendre",
        "P",
        "PX",
        past="understood",
        present="comprends comprends comprend comprenons comprennent",
        future="comprendr",
        participle="compris",
        stative=True,
    ),
    _verb("forget", "oublier", "P", "PTX", past="forgot"),
    _verb("carry", "porter", "P", "FDTX"),
    _verb("kiss", "embrasser", "P", "PA"),
    _verb("draw", "dessiner", "P", "PATLF", past="drew", optional=True),
    _verb("bring", "apporter", "P", "FDTX", past="brought"),
    _verb("use", "utiliser", "P", "T"),
    _verb("repair", "réparer", "P", "T"),
    _verb("break", "casser", "PA", "T", past="broke"),
    _verb("choose", "choisir", "P", _ANYTHING, past="chose"),
    _verb("catch", "attraper", "PA", "AT", past="caught"),
    _verb("cook", "cuisiner", "P", "F", optional=True),
    _verb(
        "prefer",
        "préférer",
        "P",
        _ANYTHING,
        past="preferred",
        present="préfère préfères préfère préférons préfèrent",
        stative=True,
    ),
    _verb(
        "want",
        "vouloir",
        "PA",
        "AFDTXL",
        present="veux veux veut voulons veulent",
        future="voudr",
        participle="voulu",
        stative=True,
    ),
    _verb(
        "clean",
        "nettoyer",
        "P",
        "TL",
        present="nettoie nettoies nettoie nettoyons nettoient",
        future="nettoier",
    ),
    _verb("sing", "chanter", "P", "M", past="sang", optional=True),
    _verb("push", "pousser", "P", "PT"),
    _verb("fill", "remplir", "P", "T"),
    _verb("finish", "finir", "P", "FDX"),
    _verb("study", "étudier", "P", "X", optional=True),
    # Intransitive verbs conjugated with "avoir".
    _verb(
        "sleep",
        "dormir",
        "PA",
        past="slept",
        present="dors dors dort dormons dorment",
        participle="dormi",
    ),
    _verb("work", "travailler", "P"),
    _verb(
        "run",
        "courir",
        "PA",
        past="ran",
        present="cours cours court courons courent",
        future="courr",
        participle="couru",
    ),
    _verb("walk", "marcher", "PA"),
    _verb("swim", "nager", "PA", past="swam", present="nage nages nage nageons nagent"),
    _verb("dance", "danser", "P"),
    _verb("laugh", "rire", "P", present="ris ris rit rions rient", future="rir", participle="ri"),
    _verb("cry", "pleurer", "PA"),
    _verb("play", "jouer", "PA"),
    _verb("speak", "parler", "P", past="spoke"),
    _verb(
        "smile",
        "sourire",
        "P",
        present="souris souris sourit sourions sourient",
        future="sourir",
        participle="souri",
    ),
    _verb("travel", "voyager", "P", present="voyage voyages voyage voyageons voyagent"),
    # Intransitive verbs conjugated with "être": the participle agrees with the subject.
    _verb(
        "go",
        "aller",
        "PA",
        past="went",
        present="vais vas va allons vont",
        future="ir",
        participle="allé",
        auxiliary="être",
        prepositions=("to", "with"),
        destination=True,
    ),
    _verb(
        "come",
        "venir",
        "PA",
        past="came",
        present="viens viens vient venons viennent",
        future="viendr",
        participle="venu",
        auxiliary="être",
        prepositions=("to", "from", "with"),
    ),
    _verb(
        "return",
        "revenir",
        "PA",
        present="reviens reviens revient revenons reviennent",
        future="reviendr",
        participle="revenu",
        auxiliary="être",
        prepositions=("to", "from", "with"),
    ),
    _verb("arrive", "arriver", "PA", auxiliary="être", prepositions=("at", "from", "with")),
    _verb(
        "leave",
        "partir",
        "PA",
        past="left",
        present="pars pars part partons partent",
        participle="parti",
        auxiliary="être",
        prepositions=("from", "with", "without"),
    ),
    _verb("stay", "rester", "PA", auxiliary="être"),
    _verb("fall", "tomber", "PA", past="fell", auxiliary="être"),
)
_VERBS = types.MappingProxyType({" ".join(v.english): v for v in _VERB_LIST})

_AVOIR = ("ai", "as", "a", "avons", "ont")
_ETRE = ("suis", "es", "est", "sommes", "sont")
_ETRE_IMPERFECT = ("étais", "étais", "était", "étions", "étaient")
_ETRE_FUTURE = ("serai", "seras", "sera", "serons", "seront")
_ENGLISH_BE_PRESENT = ("am", "are", "is", "are", "are")
_ENGLISH_BE_PAST = ("was", "were", "was", "were", "were")


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


_PREPOSITIONS = types.MappingProxyType(
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
_NOUN_MODIFIER_PREPOSITIONS = ("in", "on", "under", "near", "behind", "in front of", "with", "of")
_COMPLEMENT_PREPOSITIONS = ("in", "on", "under", "near", "behind", "in front of", "at", "with")
_BE_MODIFIER_PREPOSITIONS = ("in", "at", "near")


class _PronounForms(NamedTuple):
    english_object: str
    person: int  # index into conjugation tables: i, you, he/she, we, they
    gender: str
    plural: bool
    french_subject: str
    clitic: str  # direct object before the verb
    disjunctive: str  # after a preposition


_PRONOUNS = types.MappingProxyType(
    {
        "i": _PronounForms("me", 0, "m", False, "je", "me", "moi"),
        "you": _PronounForms("you", 1, "m", False, "tu", "te", "toi"),
        "he": _PronounForms("him", 2, "m", False, "il", "le", "lui"),
        "she": _PronounForms("her", 2, "f", False, "elle", "la", "elle"),
        "we": _PronounForms("us", 3, "m", True, "nous", "nous", "nous"),
        "they": _PronounForms("them", 4, "m", True, "ils", "les", "eux"),
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


_DETERMINERS = types.MappingProxyType(
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


class _Adverb(NamedTuple):
    english: tuple[str, ...]
    french: tuple[str, ...]
    tenses: tuple[str, ...]
    manner: bool  # only with action verbs


_FREQUENCY_ADVERBS = types.MappingProxyType(
    {"often": "souvent", "always": "toujours", "sometimes": "parfois"}
)
_ADVERBS = types.MappingProxyType(
    {
        " ".join(english): _Adverb(english, french, tenses, manner)
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

_CONJUNCTIONS = types.MappingProxyType(
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

# ---------------------------------------------------------------------------
# Rendering: descriptions -> SentencePair.
#
# English words are appended, in order, to one list; French words are built as
# items (text, English indices it links to, form before a vowel, is_article)
# and arranged in French order. Elision and contractions run over the finished
# French item list, since they depend on the neighbouring word.


class _Agreement(NamedTuple):
    person: int
    gender: str
    plural: bool


class _Antecedent(NamedTuple):
    agreement: _Agreement
    is_person: bool


_VOWEL_INITIALS = frozenset("aeiouàâäéèêëîïôöùûüœh")
# English words spelled with a vowel but sounding with a consonant ("a university").
_ENGLISH_CONSONANT_SOUND = frozenset({"university"})
_MASCULINE_SINGULAR = _Agreement(2, "m", False)


def _render_pronoun(pronoun: Pronoun, en: list[str], position: str) -> tuple[list, _PronounForms]:
    """Renders a pronoun as "subject", "clitic" (object before the verb) or after a preposition."""
    forms = _lookup(_PRONOUNS, pronoun.person, "pronoun")
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


def _split_adjectives(noun_phrase: NounPhrase) -> tuple[_Adjective | None, _Adjective | None]:
    if not noun_phrase.adjectives:
        return None, None
    entries = [_lookup(_ADJECTIVES, word, "adjective") for word in noun_phrase.adjectives]
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


def _render_noun_phrase(noun_phrase: NounPhrase, en: list[str]) -> tuple[list, _Agreement, bool]:
    """Returns the French items, the agreement features and whether the noun is a person."""
    noun = _lookup(_NOUNS, noun_phrase.noun, "noun")
    determiner = _lookup(_DETERMINERS, noun_phrase.determiner, "determiner")
    plural = noun_phrase.plural
    if determiner.english is None and not plural:
        raise ValueError(f"determiner {noun_phrase.determiner!r} needs plural=True")
    before, after = _split_adjectives(noun_phrase)
    feminine = noun.gender == "f"
    noun_word = noun.english_plural if plural else noun.english
    english_det = determiner.english_plural if plural else determiner.english
    first_word = noun_phrase.adjectives[0] if noun_phrase.adjectives else noun_word
    if (
        english_det == "a"
        and first_word[0] in "aeiou"
        and first_word not in _ENGLISH_CONSONANT_SOUND
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

    agreement = _Agreement(4 if plural else 2, noun.gender, plural)
    is_person = noun.category == "P"
    if noun_phrase.modifier is not None:
        items += _render_prep_phrase(noun_phrase.modifier, en)
    if noun_phrase.relative is not None:
        relative = noun_phrase.relative
        if relative.gap not in ("subject", "object"):
            raise ValueError(
                f"relative clause gap {relative.gap!r}; valid values: 'object', 'subject'"
            )
        items += _render_clause(
            relative.clause, en, relative.gap, _Antecedent(agreement, is_person)
        )
    return items, agreement, is_person


def _render_prep_phrase(phrase: PrepPhrase, en: list[str]) -> list:
    preposition = _lookup(_PREPOSITIONS, phrase.preposition, "preposition")
    if phrase.preposition == "without" and getattr(phrase.object, "determiner", None) == "a":
        raise ValueError(
            "'without' with 'a'/'some' is outside the grammar (French drops the article after 'sans')"
        )
    start = len(en)
    en.extend(preposition.english)
    links = tuple(range(start, len(en)))
    items = [(word, links, alt, False) for word, alt in preposition.french]
    if isinstance(phrase.object, Pronoun):
        items += _render_pronoun(phrase.object, en, "disjunctive")[0]
    else:
        items += _render_noun_phrase(phrase.object, en)[0]
    return items


def _agree(participle: str, agreement: _Agreement) -> str:
    if agreement.gender == "f":
        participle += "e"
    if agreement.plural and not participle.endswith("s"):
        participle += "s"
    return participle


def _render_clause(
    clause: Clause, en: list[str], gap: str | None = None, antecedent: _Antecedent | None = None
) -> list:
    """Renders one clause; `gap` and `antecedent` are set for relative clauses."""
    if clause.tense not in TENSES:
        raise ValueError(f"tense {clause.tense!r}; valid values: {', '.join(TENSES)}")
    items, agreement = _render_clause_subject(clause, en, gap, antecedent)
    if clause.verb == "be":
        items += _render_be(clause, en, agreement)
    else:
        items += _render_verb(clause, en, agreement, gap, antecedent)
    items += _render_clause_end(clause, en, agreement)
    return items


def _render_clause_subject(
    clause: Clause, en: list[str], gap: str | None, antecedent: _Antecedent | None
) -> tuple[list, _Agreement]:
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
        subject_items, forms = _render_pronoun(subject, en, "subject")
        return items + subject_items, _Agreement(forms.person, forms.gender, forms.plural)
    if not isinstance(subject, NounPhrase):
        raise ValueError(
            f"clause subject {subject!r}; valid values: a Pronoun or a NounPhrase "
            f"(None only in a relative clause with gap='subject')"
        )
    subject_items, agreement, _ = _render_noun_phrase(subject, en)
    return items + subject_items, agreement


class _Auxiliary(NamedTuple):
    """English indices of the auxiliary, "not" and the frequency adverb; None when absent."""

    auxiliary: int | None
    negation: int | None
    frequency: int | None


def _english_auxiliary(en: list[str], auxiliary: str | None, clause: Clause) -> _Auxiliary:
    """Appends "[auxiliary] [not] [frequency adverb]", e.g. "does not often", "is often"."""
    indices = [None, None, None]
    for slot, word in enumerate((auxiliary, "not" if clause.negated else None, clause.frequency)):
        if word is not None:
            indices[slot] = len(en)
            en.append(word)
    return _Auxiliary(*indices)


def _french_verb_group(
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
        french = _lookup(_FREQUENCY_ADVERBS, clause.frequency, "frequency adverb")
        items.append((french, (english.frequency,), None, False))
    if participle is not None:
        items.append(participle)
    return items


def _render_be(clause: Clause, en: list[str], agreement: _Agreement) -> list:
    """Renders "is [not] [often]" / "will [not] [often] be"; the complement comes later."""
    if clause.object is not None or clause.complement is None:
        raise ValueError("a clause with verb 'be' takes a complement and no object")
    person = agreement.person
    if clause.tense == "future":
        english = _english_auxiliary(en, "will", clause)
        en.append("be")
        finite = (_ETRE_FUTURE[person], (english.auxiliary, len(en) - 1), None, False)
    else:
        past = clause.tense == "past"
        english = _english_auxiliary(
            en, (_ENGLISH_BE_PAST if past else _ENGLISH_BE_PRESENT)[person], clause
        )
        finite = ((_ETRE_IMPERFECT if past else _ETRE)[person], (english.auxiliary,), None, False)
    return _french_verb_group(clause, english, finite)


def _render_verb(
    clause: Clause,
    en: list[str],
    agreement: _Agreement,
    gap: str | None,
    antecedent: _Antecedent | None,
) -> list:
    """Renders the verb group and the direct object of a clause whose verb is not "be"."""
    verb = _lookup(_VERBS, clause.verb, "verb")
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
        english = _english_auxiliary(en, auxiliary, clause)
        first_word = verb.english[0]
    else:
        english = _english_auxiliary(en, None, clause)  # only "often", before the verb
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
            (_AVOIR if verb.auxiliary == "avoir" else _ETRE)[person],
            finite_links,
            None,
            False,
        )
        # With "être" the participle agrees with the subject; with "avoir", with a
        # direct object placed before it ("je l' ai vue", "la voiture qu' il a achetée").
        target = agreement if verb.auxiliary == "être" else preceding_object or _MASCULINE_SINGULAR
        participle = (_agree(verb.participle, target), verb_indices, None, False)
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
    return _french_verb_group(clause, english, finite, clitic_items, participle) + object_items


def _render_object(
    clause: Clause, verb: _Verb, en: list[str], gap: str | None, antecedent: _Antecedent | None
) -> tuple[list, list, _Agreement | None]:
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
        clitic_items, forms = _render_pronoun(obj, en, "clitic")
        return clitic_items, [], _Agreement(forms.person, forms.gender, forms.plural)
    if clause.negated and obj.determiner == "a":
        raise ValueError(
            "a negated verb with an indefinite object ('a'/'some') is outside the grammar "
            "(French would need 'pas de'); use another determiner"
        )
    return [], _render_noun_phrase(obj, en)[0], None


def _render_clause_end(clause: Clause, en: list[str], agreement: _Agreement) -> list:
    """Renders the complement of "be", the adverb and the prepositional phrases."""
    items = []
    complement = clause.complement
    if isinstance(complement, PrepPhrase):
        items += _render_prep_phrase(complement, en)
    elif complement is not None:
        adjective = _lookup(_ADJECTIVES, complement, "adjective")
        en.append(adjective.english)
        form = adjective.forms[(agreement.gender == "f") + 2 * agreement.plural]
        items.append((form, (len(en) - 1,), None, False))
    # Manner adverbs follow the verb and its object ("ate the apple quickly in the
    # garden"); time and place adverbs close the clause ("... in the garden today").
    adverb = None if clause.adverb is None else _lookup(_ADVERBS, clause.adverb, "adverb")
    if adverb is not None and adverb.manner:
        items += _render_adverb(adverb, en)
    for modifier in clause.modifiers:
        items += _render_prep_phrase(modifier, en)
    if adverb is not None and not adverb.manner:
        items += _render_adverb(adverb, en)
    return items


def _render_adverb(adverb: _Adverb, en: list[str]) -> list:
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


def _apply_elision_and_contractions(items: list) -> list[tuple[str, tuple[int, ...]]]:
    """Returns (word, links) after elision ("je aime" -> "j' aime") and contraction ("à le" -> "au")."""
    words = []
    for i, (text, links, before_vowel, is_article) in enumerate(items):
        if before_vowel is not None and i + 1 < len(items):
            following = items[i + 1][0]
            # "si" only elides before "il"/"ils": "s' il" but "si elle".
            if following[0] in _VOWEL_INITIALS and (text != "si" or following in ("il", "ils")):
                text = before_vowel
        merged = _CONTRACTIONS.get((words[-1][0], text)) if is_article and words else None
        if merged is not None:
            words[-1] = (merged, words[-1][1] + links)
        else:
            words.append((text, links))
    return words


def _conjunction_items(conjunction: str, en: list[str]) -> list:
    french = _lookup(_CONJUNCTIONS, conjunction, "conjunction")
    en.append(conjunction)
    links = (len(en) - 1,)
    alternatives = {"que": "qu'", "si": "s'"}
    return [(word, links, alternatives.get(word), False) for word in french]


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
        items += _conjunction_items(conjunction, en)
        items += _render_clause(clause, en)
    words = _apply_elision_and_contractions(items)
    targets_of = [[] for _ in en]
    for target, (_, links) in enumerate(words):
        for source in links:
            targets_of[source].append(target)
    # Visiting sources, then targets, in increasing order yields the links sorted.
    alignment = tuple(
        (source, target) for source, targets in enumerate(targets_of) for target in targets
    )
    return SentencePair(" ".join(en), " ".join(word for word, _ in words), alignment)


# ---------------------------------------------------------------------------
# English length of descriptions, used to grow sentences to an exact length.


def _argument_length(argument: Argument) -> int:
    return 1 if isinstance(argument, Pronoun) else _noun_phrase_length(argument)


def _noun_phrase_length(noun_phrase: NounPhrase) -> int:
    length = 2 + len(noun_phrase.adjectives)
    if noun_phrase.modifier is not None:
        length += _prep_phrase_length(noun_phrase.modifier)
    if noun_phrase.relative is not None:
        length += 1 + _clause_length(noun_phrase.relative.clause)
    return length


def _prep_phrase_length(phrase: PrepPhrase) -> int:
    return len(_PREPOSITIONS[phrase.preposition].english) + _argument_length(phrase.object)


def _clause_length(clause: Clause) -> int:
    """Number of English words of a clause (without the "who/that" of a relative clause)."""
    length = 0 if clause.subject is None else _argument_length(clause.subject)
    future = clause.tense == "future"
    if clause.verb == "be":
        length += 1 + future + clause.negated
        complement = clause.complement
        length += 1 if isinstance(complement, str) else _prep_phrase_length(complement)
    else:
        length += len(_VERBS[clause.verb].english) + future
        if clause.negated:
            length += 1 if future else 2  # "will not" versus "does not"
        if clause.object is not None:
            length += _argument_length(clause.object)
    length += clause.frequency is not None
    for modifier in clause.modifiers:
        length += _prep_phrase_length(modifier)
    if clause.adverb is not None:
        length += len(_ADVERBS[clause.adverb].english)
    return length


# ---------------------------------------------------------------------------
# Random generation. A sentence starts as one short clause and grows by random
# expansions (an adjective, a negation, a prepositional phrase, a relative
# clause, another clause, ...) that fit in the words left, until it has exactly
# the drawn number of English words.


def _pick(rng: random.Random, options: Sequence):
    """Same as rng.choice, but several times faster; generation draws many times per sentence."""
    return options[int(rng.random() * len(options))]


def _nouns_of(categories: str) -> tuple[_Noun, ...]:
    return tuple(noun for noun in _NOUNS.values() if noun.category in categories)


def _index_lexicon():
    """Precomputes the choices generation draws from; all tables are immutable."""
    by_categories = {}

    def nouns_for(categories):
        if categories not in by_categories:
            by_categories[categories] = _nouns_of(categories)
        return by_categories[categories]

    verb_subject_nouns = {v.english: nouns_for(v.subjects) for v in _VERB_LIST}
    verb_object_nouns = {v.english: nouns_for(v.objects) for v in _VERB_LIST}
    adjective_nouns = {a.english: nouns_for(a.categories) for a in _ADJECTIVE_LIST}
    preposition_nouns = {k: nouns_for(p.categories) for k, p in _PREPOSITIONS.items()}
    adjectives_by_category = {
        c: (
            tuple(a for a in _ADJECTIVE_LIST if c in a.categories and a.preposed),
            tuple(a for a in _ADJECTIVE_LIST if c in a.categories and not a.preposed),
        )
        for c in _ANYTHING
    }
    verbs_by_subject = {c: tuple(v for v in _VERB_LIST if c in v.subjects) for c in _ANYTHING}
    verbs_by_object = {c: tuple(v for v in _VERB_LIST if c in v.objects) for c in _ANYTHING}
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
    ) + (nouns_for(_ANYTHING),)


(
    _VERB_SUBJECT_NOUNS,
    _VERB_OBJECT_NOUNS,
    _ADJECTIVE_NOUNS,
    _PREPOSITION_NOUNS,
    _ADJECTIVES_BY_CATEGORY,
    _VERBS_BY_SUBJECT,
    _VERBS_BY_OBJECT,
    _ALL_NOUNS,
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
# Adverbs that fit a clause, by (tense, whether the verb is an action: "quickly" needs one).
_ADVERBS_FOR = types.MappingProxyType(
    {
        (tense, action): tuple(
            k for k, a in _ADVERBS.items() if tense in a.tenses and (action or not a.manner)
        )
        for tense in TENSES
        for action in (False, True)
    }
)
_CONJUNCTION_KEYS = tuple(_CONJUNCTIONS)
_MAX_CLAUSE_MODIFIERS = 2


class _Slot(NamedTuple):
    """A pronoun that may be replaced by a noun phrase: holder.<field> is the pronoun."""

    holder: Clause | PrepPhrase
    field: str
    nouns: tuple[_Noun, ...]
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
            nouns = _VERB_OBJECT_NOUNS[_VERBS[clause.verb].english]
            self.pronoun_slots.append(_Slot(clause, "object", nouns, depth))
        elif clause.object is not None:
            self.add_noun_phrase(clause.object, depth)
        if isinstance(clause.complement, PrepPhrase):
            self.add_prep_phrase(clause.complement, depth)
        for modifier in clause.modifiers:
            self.add_prep_phrase(modifier, depth)

    def add_prep_phrase(self, phrase: PrepPhrase, depth: int) -> None:
        if isinstance(phrase.object, Pronoun):
            nouns = _PREPOSITION_NOUNS[phrase.preposition]
            self.pronoun_slots.append(_Slot(phrase, "object", nouns, depth))
        else:
            self.add_noun_phrase(phrase.object, depth)

    def add_noun_phrase(self, noun_phrase: NounPhrase, depth: int) -> None:
        self.noun_phrases.append((noun_phrase, depth))
        if noun_phrase.modifier is not None:
            self.add_prep_phrase(noun_phrase.modifier, depth + 1)
        if noun_phrase.relative is not None:
            self.add_clause(noun_phrase.relative.clause, depth + 1)


def _subject_nouns(clause: Clause) -> tuple[_Noun, ...]:
    if clause.verb != "be":
        return _VERB_SUBJECT_NOUNS[_VERBS[clause.verb].english]
    if isinstance(clause.complement, str):
        return _ADJECTIVE_NOUNS[clause.complement]
    return _ALL_NOUNS


def _new_noun_phrase(
    rng: random.Random, nouns: Sequence[_Noun], *, indefinite: bool = True
) -> NounPhrase:
    noun = _pick(rng, nouns)
    determiner = _pick(rng, _DETERMINER_DRAWS)
    while determiner == "a" and not indefinite:
        determiner = _pick(rng, _DETERMINER_DRAWS)
    if determiner == "number":
        return NounPhrase(noun.english, _pick(rng, _NUMBERS), plural=True)
    return NounPhrase(noun.english, determiner, plural=rng.random() < 0.3)


def _new_pronoun(rng: random.Random, subject: Argument | None) -> Pronoun:
    # "i see me" is not what the corpus wants; third persons are fine ("he sees him").
    avoid = (
        subject.person
        if isinstance(subject, Pronoun) and subject.person in ("i", "you", "we")
        else None
    )
    person = _pick(rng, _PERSONS)
    while person == avoid:
        person = _pick(rng, _PERSONS)
    return Pronoun(person)


def _new_argument(
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
    return _new_noun_phrase(rng, nouns, indefinite=indefinite)


def _draw_clause(
    rng: random.Random, tenses: Sequence[str], gap: str | None, antecedent: _Noun | None
) -> Clause | None:
    """Draws a short clause; for relative clauses, one whose gap fits the antecedent noun."""
    if gap == "object":
        verb = _pick(rng, _VERBS_BY_OBJECT[antecedent.category])
    elif rng.random() < 0.15:
        return _draw_be_clause(rng, tenses, gap, antecedent)
    elif gap == "subject":
        verbs = _VERBS_BY_SUBJECT[antecedent.category]
        if not verbs:
            return _draw_be_clause(rng, tenses, gap, antecedent)
        verb = _pick(rng, verbs)
    else:
        verb = _pick(rng, _VERB_LIST)
    allowed = [t for t in verb.tenses if t in tenses]
    if not allowed:
        return None
    subject = None
    if gap != "subject":
        subject = _new_argument(rng, _VERB_SUBJECT_NOUNS[verb.english], verb.subjects, 0.6)
    obj = None
    if verb.objects and gap != "object" and not (verb.object_optional and rng.random() < 0.3):
        obj = _new_argument(rng, _VERB_OBJECT_NOUNS[verb.english], verb.objects, 0.35, subject)
    modifiers = []
    if verb.destination:
        modifiers.append(PrepPhrase("to", _new_noun_phrase(rng, _PREPOSITION_NOUNS["to"])))
    return Clause(
        subject, " ".join(verb.english), obj, tense=_pick(rng, allowed), modifiers=modifiers
    )


def _draw_be_clause(
    rng: random.Random, tenses: Sequence[str], gap: str | None, antecedent: _Noun | None
) -> Clause:
    tense = _pick(rng, tenses)
    subject = None
    if rng.random() < 0.7:
        if antecedent is None:
            adjective = _pick(rng, _ADJECTIVE_LIST)
        else:
            preposed, postposed = _ADJECTIVES_BY_CATEGORY[antecedent.category]
            adjective = _pick(rng, preposed + postposed)
        if gap != "subject":
            subject = _new_argument(
                rng, _ADJECTIVE_NOUNS[adjective.english], adjective.categories, 0.6
            )
        return Clause(subject, "be", complement=adjective.english, tense=tense)
    if gap != "subject":
        subject = _new_argument(rng, _ALL_NOUNS, _ANYTHING, 0.6)
    preposition = _pick(rng, _COMPLEMENT_PREPOSITIONS)
    target = _PREPOSITIONS[preposition]
    categories = target.categories if target.takes_pronoun else ""
    argument = _new_argument(rng, _PREPOSITION_NOUNS[preposition], categories, 0.3, subject)
    return Clause(subject, "be", complement=PrepPhrase(preposition, argument), tense=tense)


def _new_clause(
    rng: random.Random,
    budget: int,
    tenses: Sequence[str] = TENSES,
    gap: str | None = None,
    antecedent: _Noun | None = None,
) -> tuple[Clause | None, int]:
    """A short clause and its English length (with "who/that" for a relative clause).

    Returns (None, 0) when no clause of at most `budget` words came up.
    """
    for _ in range(6):
        clause = _draw_clause(rng, tenses, gap, antecedent)
        if clause is not None:
            length = _clause_length(clause) + (gap is not None)
            if length <= budget:
                return clause, length
    return None, 0


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
    noun_phrase = _new_noun_phrase(rng, slot.nouns, indefinite=indefinite)
    setattr(slot.holder, slot.field, noun_phrase)
    draft.pronoun_slots[index] = draft.pronoun_slots[-1]
    draft.pronoun_slots.pop()
    draft.add_noun_phrase(noun_phrase, slot.depth)
    return 1


def _add_adjective(draft: _Draft, rng: random.Random, budget: int) -> int:
    if not draft.noun_phrases:
        return 0
    noun_phrase, _ = _pick(rng, draft.noun_phrases)
    if len(noun_phrase.adjectives) == 2:
        return 0
    preposed, postposed = _ADJECTIVES_BY_CATEGORY[_NOUNS[noun_phrase.noun].category]
    if not noun_phrase.adjectives:
        candidates = preposed + postposed
    elif _ADJECTIVES[noun_phrase.adjectives[0]].preposed:
        candidates = postposed
    else:
        candidates = preposed
    if not candidates:
        return 0
    adjective = _pick(rng, candidates)
    if adjective.preposed:
        noun_phrase.adjectives = (adjective.english,) + noun_phrase.adjectives
    else:
        noun_phrase.adjectives += (adjective.english,)
    return 1


def _negate(draft: _Draft, rng: random.Random, budget: int) -> int:
    clause = _pick(rng, draft.clauses)
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
    clause = _pick(rng, draft.clauses)
    if clause.frequency is not None:
        return 0
    clause.frequency = _pick(
        rng, ("often", "always") if clause.negated else ("often", "always", "sometimes")
    )
    return 1


def _add_adverb(draft: _Draft, rng: random.Random, budget: int) -> int:
    clause = _pick(rng, draft.clauses)
    if clause.adverb is not None:
        return 0
    action = clause.verb != "be" and not _VERBS[clause.verb].stative
    key = _pick(rng, _ADVERBS_FOR[clause.tense, action])
    added = len(_ADVERBS[key].english)
    if added > budget:
        return 0
    clause.adverb = key
    return added


def _new_prep_phrase(rng, prepositions, subject, budget, *, pronouns: bool) -> PrepPhrase | None:
    preposition = _pick(rng, prepositions)
    target = _PREPOSITIONS[preposition]
    categories = target.categories if pronouns and target.takes_pronoun else ""
    argument = _new_argument(
        rng,
        _PREPOSITION_NOUNS[preposition],
        categories,
        0.3,
        subject,
        indefinite=preposition != "without",
    )
    phrase = PrepPhrase(preposition, argument)
    return phrase if _prep_phrase_length(phrase) <= budget else None


def _add_clause_modifier(draft: _Draft, rng: random.Random, budget: int) -> int:
    clause = _pick(rng, draft.clauses)
    limit = 1 if isinstance(clause.complement, PrepPhrase) else _MAX_CLAUSE_MODIFIERS
    if len(clause.modifiers) >= limit:
        return 0
    if clause.verb == "be":
        prepositions = _BE_MODIFIER_PREPOSITIONS
    else:
        prepositions = _VERBS[clause.verb].clause_prepositions
    phrase = _new_prep_phrase(rng, prepositions, clause.subject, budget, pronouns=True)
    used = {m.preposition for m in clause.modifiers}
    if isinstance(clause.complement, PrepPhrase):
        used.add(clause.complement.preposition)
    if phrase is None or phrase.preposition in used:
        return 0
    clause.modifiers.append(phrase)
    draft.add_prep_phrase(phrase, _clause_depth(draft, clause))
    return _prep_phrase_length(phrase)


def _clause_depth(draft: _Draft, clause: Clause) -> int:
    return 0 if any(clause is main for main in draft.sentence.clauses) else 1


def _pick_top_noun_phrase(draft: _Draft, rng: random.Random) -> NounPhrase | None:
    # Only noun phrases of main clauses take modifiers and relative clauses, and only
    # one of the two: "the man with the dog who sleeps" would leave "who" ambiguous.
    if not draft.noun_phrases:
        return None
    noun_phrase, depth = _pick(rng, draft.noun_phrases)
    if depth or noun_phrase.modifier is not None or noun_phrase.relative is not None:
        return None
    return noun_phrase


def _add_noun_modifier(draft: _Draft, rng: random.Random, budget: int) -> int:
    noun_phrase = _pick_top_noun_phrase(draft, rng)
    if noun_phrase is None:
        return 0
    phrase = _new_prep_phrase(rng, _NOUN_MODIFIER_PREPOSITIONS, None, budget, pronouns=False)
    if phrase is None:
        return 0
    noun_phrase.modifier = phrase
    draft.add_prep_phrase(phrase, 1)
    return _prep_phrase_length(phrase)


def _add_relative(draft: _Draft, rng: random.Random, budget: int) -> int:
    noun_phrase = _pick_top_noun_phrase(draft, rng)
    if noun_phrase is None:
        return 0
    noun = _NOUNS[noun_phrase.noun]
    gap = "object" if rng.random() < 0.4 and _VERBS_BY_OBJECT[noun.category] else "subject"
    clause, length = _new_clause(rng, budget, gap=gap, antecedent=noun)
    if clause is None:
        return 0
    noun_phrase.relative = RelativeClause(gap, clause)
    draft.add_clause(clause, 1)
    return length


def _add_clause(draft: _Draft, rng: random.Random, budget: int) -> int:
    if budget < 3:
        return 0
    conjunction = _pick(rng, _CONJUNCTION_KEYS)
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
    clause, length = _new_clause(rng, budget - 1, tenses)
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


def _sentence_of_length(rng: random.Random, length: int) -> Sentence:
    """Draws a sentence with exactly `length` English words."""
    while True:
        draft = _Draft()
        clause, current = _new_clause(rng, length)
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


def _pairs(rng: random.Random, min_words: int, max_words: int) -> Iterator[SentencePair]:
    while True:
        yield render(_sentence_of_length(rng, rng.randint(min_words, max_words)))


def _check_lengths(min_words: int, max_words: int) -> None:
    if min_words < 3:
        raise ValueError(f"min_words={min_words}; valid values: min_words >= 3")
    if max_words < min_words:
        raise ValueError(f"max_words={max_words}; valid values: max_words >= min_words={min_words}")


def generate(
    num_pairs: int, *, seed: int, min_words: int = 3, max_words: int = 40
) -> list[SentencePair]:
    """Generates aligned English/French pairs.

    Each English sentence length is drawn uniformly from [min_words, max_words],
    so long sentences are as frequent as short ones. The result depends only on
    the arguments.

    Raises:
      ValueError: if num_pairs < 0, min_words < 3 or max_words < min_words.
    """
    if num_pairs < 0:
        raise ValueError(f"num_pairs={num_pairs}; valid values: num_pairs >= 0")
    _check_lengths(min_words, max_words)
    return list(itertools.islice(_pairs(random.Random(seed), min_words, max_words), num_pairs))


def _unique_pairs(
    rng: random.Random, size: int, min_words: int, max_words: int, seen: set[str]
) -> list[SentencePair]:
    """`size` pairs whose sources are not in `seen`; adds their sources to `seen`."""
    pairs = []
    draws = 0
    limit = 50 * size + 1000
    for pair in _pairs(rng, min_words, max_words):
        if len(pairs) == size:
            break
        draws += 1
        if draws > limit:
            raise ValueError(
                f"could not find {size} distinct sentences of {min_words}..{max_words} words "
                f"(found {len(pairs)}); ask for fewer pairs or allow longer sentences"
            )
        if pair.source not in seen:
            seen.add(pair.source)
            pairs.append(pair)
    return pairs


def make_splits(
    *,
    seed: int = 0,
    train_size: int = 20000,
    validation_size: int = 1000,
    test_size: int = 1000,
    test_long_size: int = 500,
    train_max_words: int = 20,
    long_max_words: int = 40,
) -> dict[str, list[SentencePair]]:
    """Builds the "train", "validation", "test" and "test_long" splits.

    train, validation and test have 3..train_max_words English words;
    test_long has train_max_words + 1..long_max_words, longer than anything in
    train. Every source sentence occurs once across all splits, so evaluation
    sentences are never seen in training. Each split draws from its own random
    stream derived from `seed`.

    Raises:
      ValueError: for negative sizes, train_max_words < 3, long_max_words <=
        train_max_words, or when too few distinct sentences exist for the sizes.
    """
    sizes = {
        "train": train_size,
        "validation": validation_size,
        "test": test_size,
        "test_long": test_long_size,
    }
    for name, size in sizes.items():
        if size < 0:
            raise ValueError(f"{name}_size={size}; valid values: >= 0")
    _check_lengths(3, train_max_words)
    if long_max_words <= train_max_words:
        raise ValueError(
            f"long_max_words={long_max_words}; valid values: "
            f"long_max_words > train_max_words={train_max_words}"
        )
    seen: set[str] = set()
    splits = {}
    for name, size in sizes.items():
        lengths = (
            (train_max_words + 1, long_max_words) if name == "test_long" else (3, train_max_words)
        )
        rng = random.Random(f"toy-corpus/{seed}/{name}")
        splits[name] = _unique_pairs(rng, size, *lengths, seen)
    return splits


# ---------------------------------------------------------------------------
# Vocabulary and display.


def vocabulary() -> tuple[set[str], set[str]]:
    """Returns (English words, French words): every token the grammar can produce."""
    english = {"do", "does", "did", "will", "not", "be", "who", "that", "an", "some", "these"}
    english.update(_ENGLISH_BE_PRESENT + _ENGLISH_BE_PAST + _PERSONS)
    english.update(forms.english_object for forms in _PRONOUNS.values())
    english.update(d.english for d in _DETERMINERS.values() if d.english)
    english.update(d.english_plural for d in _DETERMINERS.values())
    english.update(_ADJECTIVES, _FREQUENCY_ADVERBS, _CONJUNCTIONS)
    for noun in _NOUNS.values():
        english.update((noun.english, noun.english_plural))
    for verb in _VERB_LIST:
        english.update(verb.english + (verb.third, verb.past))
    for preposition in _PREPOSITIONS.values():
        english.update(preposition.english)
    for adverb in _ADVERBS.values():
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
    french.update(_AVOIR + _ETRE + _ETRE_IMPERFECT + _ETRE_FUTURE)
    french.update(_FREQUENCY_ADVERBS.values())
    for forms in _PRONOUNS.values():
        french.update((forms.french_subject, forms.clitic, forms.disjunctive))
    french.update(("m'", "t'", "l'"))
    for determiner in _DETERMINERS.values():
        french.update(determiner.french)
        french.update(form for form in determiner.before_vowel if form)
    for noun in _NOUNS.values():
        french.update((noun.french, noun.french_plural))
    for adjective in _ADJECTIVE_LIST:
        french.update(adjective.forms)
        if adjective.before_vowel:
            french.add(adjective.before_vowel)
    agreements = [_Agreement(2, g, p) for g in "mf" for p in (False, True)]
    for verb in _VERB_LIST:
        french.update(verb.present + verb.future)
        if "past" not in verb.tenses:
            continue
        if verb.objects or verb.auxiliary == "être":  # only these participles ever agree
            french.update(_agree(verb.participle, a) for a in agreements)
        else:
            french.add(verb.participle)
    for preposition in _PREPOSITIONS.values():
        french.update(word for word, _ in preposition.french)
    for adverb in _ADVERBS.values():
        french.update(adverb.french)
    for words in _CONJUNCTIONS.values():
        french.update(words)
    return english, french


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
