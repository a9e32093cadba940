"""The nouns of the toy grammar, with their categories and French gender and plural.

Noun categories: P person, A animal, F food, D drink, T thing, X text, M
music, L place. `experiments.text.toy_corpus.lexicon` holds the other words.
"""

from __future__ import annotations

import types
from typing import NamedTuple


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


def french_plural(word: str) -> str:
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
                fr_plural or french_plural(fr_singular),
                gender,
                category,
            )
    return nouns


NOUNS = types.MappingProxyType(_parse_nouns())
