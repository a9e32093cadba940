"""The words of the grammar other than verbs: nouns, adjectives and function words.

Noun categories: P person, A animal, F food, D drink, T thing, X text, M
music, L place. Verbs, adjectives and prepositions name the categories they
combine with, which keeps the sentences sensible. The function words are the
prepositions, personal pronouns, determiners, adverbs and conjunctions, each
with its French forms.
"""

from __future__ import annotations

import types
from typing import NamedTuple

TENSES = ("present", "past", "future")
PERSONS = ("i", "you", "he", "she", "we", "they")
ANYTHING = "PAFDTXML"  # every noun category


class Noun(NamedTuple):
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


def _parse_nouns() -> dict[str, Noun]:
    nouns = {}
    for category, specs in _NOUN_SPECS.items():
        for spec in specs:
            english, french, gender = spec.split()
            en_singular, _, en_plural = english.partition("/")
            fr_singular, _, fr_plural = french.partition("/")
            nouns[en_singular] = Noun(
                en_singular,
                en_plural or _english_plural(en_singular),
                fr_singular,
                fr_plural or _french_plural(fr_singular),
                gender,
                category,
            )
    return nouns


NOUNS = types.MappingProxyType(_parse_nouns())


class Adjective(NamedTuple):
    english: str
    forms: tuple[str, str, str, str]  # masculine, feminine, masculine plural, feminine plural
    before_vowel: str | None  # masculine singular form before a vowel ("vieil")
    preposed: bool  # French puts it before the noun
    categories: str


def _adjective(english: str, french: str, categories: str, preposed: bool = False) -> Adjective:
    """Builds an adjective; `french` is the masculine form, or all forms spelled out."""
    words = french.split()
    if len(words) == 1:
        masculine = words[0]
        feminine = masculine if masculine.endswith("e") else masculine + "e"
        words = [masculine, feminine, _french_plural(masculine), feminine + "s"]
    before_vowel = words[4] if len(words) == 5 else None
    return Adjective(english, tuple(words[:4]), before_vowel, preposed, categories)


ADJECTIVE_LIST = (
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
ADJECTIVES = types.MappingProxyType({a.english: a for a in ADJECTIVE_LIST})


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


PREPOSITIONS = types.MappingProxyType(
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
NOUN_MODIFIER_PREPOSITIONS = ("in", "on", "under", "near", "behind", "in front of", "with", "of")
COMPLEMENT_PREPOSITIONS = ("in", "on", "under", "near", "behind", "in front of", "at", "with")
BE_MODIFIER_PREPOSITIONS = ("in", "at", "near")


class PronounForms(NamedTuple):
    english_object: str
    person: int  # index into conjugation tables: i, you, he/she, we, they
    gender: str
    plural: bool
    french_subject: str
    clitic: str  # direct object before the verb
    disjunctive: str  # after a preposition


PRONOUNS = types.MappingProxyType(
    {
        "i": PronounForms("me", 0, "m", False, "je", "me", "moi"),
        "you": PronounForms("you", 1, "m", False, "tu", "te", "toi"),
        "he": PronounForms("him", 2, "m", False, "il", "le", "lui"),
        "she": PronounForms("her", 2, "f", False, "elle", "la", "elle"),
        "we": PronounForms("us", 3, "m", True, "nous", "nous", "nous"),
        "they": PronounForms("them", 4, "m", True, "ils", "les", "eux"),
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


DETERMINERS = types.MappingProxyType(
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


class Adverb(NamedTuple):
    english: tuple[str, ...]
    french: tuple[str, ...]
    tenses: tuple[str, ...]
    manner: bool  # only with action verbs


FREQUENCY_ADVERBS = types.MappingProxyType(
    {"often": "souvent", "always": "toujours", "sometimes": "parfois"}
)
ADVERBS = types.MappingProxyType(
    {
        " ".join(english): Adverb(english, french, tenses, manner)
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

CONJUNCTIONS = types.MappingProxyType(
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
