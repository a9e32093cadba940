"""The verbs of the grammar and their conjugations.

Each verb lists its English and French forms (regular forms are derived), the
noun categories of its subject and object, its tenses and the prepositions its
clauses take. The conjugations of "be", "avoir" and "être" close the module.
"""

from __future__ import annotations

import types
from typing import NamedTuple

from experiments.text.toy_corpus.lexicon import ANYTHING, TENSES

_FUTURE_ENDINGS = ("ai", "as", "a", "ons", "ont")


class Verb(NamedTuple):
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
) -> Verb:
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
    return Verb(
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


VERB_LIST = (
    # Transitive verbs.
    _verb("love", "aimer", "P", ANYTHING, stative=True),
    _verb("hate", "détester", "P", ANYTHING, stative=True),
    _verb(
        "see",
        "voir",
        "PA",
        ANYTHING,
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
    _verb("choose", "choisir", "P", ANYTHING, past="chose"),
    _verb("catch", "attraper", "PA", "AT", past="caught"),
    _verb("cook", "cuisiner", "P", "F", optional=True),
    _verb(
        "prefer",
        "préférer",
        "P",
        ANYTHING,
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
VERBS = types.MappingProxyType({" ".join(v.english): v for v in VERB_LIST})

AVOIR = ("ai", "as", "a", "avons", "ont")
ETRE = ("suis", "es", "est", "sommes", "sont")
ETRE_IMPERFECT = ("étais", "étais", "était", "étions", "étaient")
ETRE_FUTURE = ("serai", "seras", "sera", "serons", "seront")
ENGLISH_BE_PRESENT = ("am", "are", "is", "are", "are")
ENGLISH_BE_PAST = ("was", "were", "was", "were", "were")
