"""Street addresses in free text: English, German/Dutch/Nordic, French and other European shapes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from kura_stream.pii_detectors import ADDRESS, LOWER, UPPER, Span

_Node = dict[str, "_Node"]


def _trie(words: Iterable[str]) -> str:
    """One alternation of words that branches letter by letter: "v(?:ia(?:le)?|icolo)".

    `re` tries an alternation's branches one after the other at every place it looks; a trie
    fails at the first letter that no word has there, and prefers the longer word.
    """
    root: _Node = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: _Node) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = "|".join(branches)
        if "" in node:
            return f"(?:{body})?"
        return body if len(branches) == 1 else f"(?:{body})"

    return emit(root)


def _either_case(words: list[str]) -> list[str]:
    """The words and their capitalised forms ("via", "Via").

    A case-blind `(?i:...)` alternation costs twice as much at every word start of a text.
    """
    return [*words, *(w[0].upper() + w[1:] for w in words)]


def _ends_with(words: Iterable[str], flags: str = "") -> str:
    r"""Lookbehinds (one per word length: `re` needs a fixed width) for a word's ending.

    Written after a possessive word (`[\w]*+`) it checks the ending without the letter by
    letter backtracking that `[\w]*(?:straße|weg|...)` costs on every capitalised word.
    """
    by_length: dict[int, list[str]] = {}
    for word in words:
        by_length.setdefault(len(word), []).append(re.escape(word))
    group = f"(?{flags}:" if flags else "(?:"
    # One letter more before the ending: "Hauptstraße", never the type alone ("Ring 020 ...").
    behind = (f"(?<=[\\w'\u2019-]{group}{'|'.join(w)}))" for w in by_length.values())
    return "(?:" + "|".join(behind) + ")"


def _words(text: str) -> list[str]:
    return text.split()


_EN_TYPES = _words("""
Street St Road Rd Avenue Ave Av Lane Ln Drive Dr Boulevard Blvd Court Ct Place Pl Way Terrace
Close Crescent Cres Square Sq Parkway Pkwy Highway Hwy Circle Cir Trail Trl Row Mews Gardens
Grove Hill Walk Plaza Glen Glens Heights Park Point Ridge Run View Estate Estates Loop Alley Path
Pike Crossing Green Gate Wharf Quay Parade Esplanade Embankment Rise Vale Wynd Broadway Turnpike
Expressway Freeway Motorway Junction Mall Station Village Spring Springs Meadow Meadows Shore
Shores Harbor Harbour Haven Manor Mountain Mountains Valley Valleys Creek Brook Falls Forest
Field Fields Fort Island Lake Lakes Mill Mills Oak Oaks Pines Port Ranch Summit Villa Villas
Well Wells
""")
STREET_TYPES = frozenset(t.casefold() for t in _EN_TYPES)
"""English street types in lower case: "street", "lane", "glen", "glens", ..."""
_SUFFIXES = _trie(_EN_TYPES)
_CAPWORD = rf"[{UPPER}][\w'\u2019.-]*"
_NUMBER = r"\d{1,5}[A-Za-z]?(?:[/-]\d{1,4})?"
_UNIT = r"(?:(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Studio|Floor|Fl\.?)[ ]?#?\w{1,5})"
_STREET_EN = (
    rf"(?:{_UNIT},?[ ]+)?{_NUMBER},?[ ]+(?:{_CAPWORD}[ ]+){{1,3}}{_SUFFIXES}\b\.?"
    rf"(?:,?[ ]+{_UNIT})?"
)
_WORD = rf"[{UPPER}][\w'\u2019-]*+"
"""A capitalised word, taken whole: `re` never backs into it ("Hauptstraße", "Marty-sur-X")."""
_DE_TYPES = _words("""
straße strasse weg gasse platz allee ring damm ufer chaussee steig pfad straat laan plein gracht
dreef singel kade steeg pad hof markt dijk baan boulevard lei kaai gatan gata vägen väg gränd
torget vej gade stræde torv plads allé
""")
_STREET_DE_NL = (
    rf"(?:{_WORD}[ ])?{_WORD}(?:(?<=(?i:str))\.|{_ends_with(_DE_TYPES, 'i')})[ ]+{_NUMBER}\b"
)
"""German, Dutch, Flemish and Nordic streets: "Hauptstraße 5", "Alainlei 038", "Storgatan 4"."""
_DE_LOWER = _words("straße strasse weg gasse platz allee ring damm straat laan plein gracht kade")
_STREET_DE_NL_LOWER = rf"{_WORD}[ ][{LOWER}][\w'\u2019-]*+{_ends_with(_DE_LOWER)}[ ]+{_NUMBER}\b"
"""The same with the street word in lower case ("Dussen vanweg 9"): only before a postcode."""
_MILITARY = (
    rf"(?:(?:Unit|PSC)[ ]\d{{1,5}},?[ ]Box[ ]\d{{1,5}}|(?:USNS|USS|USCGC)[ ]{_CAPWORD})"
    r",?[ ](?:APO|FPO|DPO)[ ]A[AEP][ ]\d{5}"
)
"""US military mail: "Unit 5244 Box 7395, DPO AA 53333", "USS Scott, FPO AP 05393"."""
_FR_TYPES = _words("rue avenue boulevard chemin place allée impasse quai route")
_STREET_FR = (
    rf"{_NUMBER}(?:[ ]?(?:bis|ter))?,?[ ]+{_trie([*_FR_TYPES, 'av.', 'bd', 'cours', 'passage'])}"
    rf"[ ]+(?:(?:de|du|des|de la|d'|l')[ ]?)?{_CAPWORD}(?:[ ]+{_CAPWORD}){{0,3}}"
)
_POSTCODE = (
    r"(?:[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}"  # UK: SW1A 1AA
    r"|[A-Z]\d[A-Z][ ]?\d[A-Z]\d"  # Canada: K1A 0B1
    r"|\d{4}[ ]?[A-Z]{2}"  # Netherlands: 1012 TX
    r"|\d{2}-\d{3}|\d{4}-\d{3}|\d{3}[ ]\d{2}"  # Poland 00-950, Portugal 1100-148, SE/CZ 114 55
    r"|\d{4,5}(?:-\d{4})?)"  # US ZIP, DE/FR/AU postcodes
)
_TOWN_POSTCODE = (
    rf"(?:,[ ]*|[ ]*\n[ ]*){_CAPWORD}(?:[ ]+{_CAPWORD}){{0,2}},?[ ]+(?:[A-Z]{{2,3}},?[ ]+)?"
    rf"{_POSTCODE}(?![\w-])"
)
_STREET_TOWN = (
    rf"(?:{_UNIT},?[ ]+(?:{_NUMBER},?[ ]+)?|{_NUMBER},?[ ]+)"
    rf"{_CAPWORD}(?:[ ]+{_CAPWORD}){{0,2}}(?:,?[ ]+{_UNIT})?{_TOWN_POSTCODE}"
)
"""A street of any type when a town and postcode follow: "2 Cooper Ports, Lakeside, HX0 3BZ",
"80284 Miller Lights Suite 486, Beckerport, ME 33075"."""
_PLACE_TAIL = (
    r"(?:(?:,[ ]*|[ ]*\n[ ]*|[ ]+)"
    rf"(?:{_POSTCODE}[ ]+{_CAPWORD}(?:[ ]+{_CAPWORD}){{0,2}}"  # 48337 Lichtenfels
    # City, ST 12345
    rf"|{_CAPWORD}(?:[ ]+{_CAPWORD}){{0,2}},?[ ]+(?:[A-Z]{{2,3}},?[ ]+)?{_POSTCODE}"
    rf"|{_POSTCODE})"
    r"(?![\w-]))?"
)
_EU_ONLY = _words("""
viale piazza piazzale borgo vicolo calle callejón avenida avda. paseo ul. ulica aleja plac
osiedle rue chemin allée impasse rua travessa praça estrada alameda ulice náměstí třída
""")
"""Street types written before the name that are no English word ("ulica Widok 68")."""
_EU_OTHER = _words("""
via piazzetta corso strada stretto rotonda canale contrada largo lungomare av. plaza camino
carrera ronda travesía glorieta pasaje rambla al. pl. os. avenue boulevard bd place quai route
cours passage sentier beco nám. nábřeží c. pasadizo vial
""")
"""Those that are words or abbreviations elsewhere too ("via", "al.", "place")."""
_JOINS = _words("""
de del della dei degli des du di da do dos das la le los las am an im der den dem bei ob sur
sous les en nad pod y e
""")
_JOIN = rf"(?:(?:{_trie(_JOINS)}[ ]+){{1,2}}|[dl]['\u2019])"
"""Lower-case words inside a street's or town's name: "Avenida de Ainoa Molina", "Bovet am
Albis" ("Marty-sur-Cosandey" is one word)."""
_EU_NAME = rf"{_WORD}(?:[ ]+{_JOIN}?{_WORD}){{0,3}}"
_EU_UNIT = (
    r"(?:,?[ ]+(?:Appartamento|Piano|Interno|Scala|Piso|Puerta|Apartamento|Bloque|Escalera"
    r"|Apt\.?|lok\.|m\.)[ ]?\w{1,5})?"
)
_EU_TOWN = rf"{_JOIN}?{_EU_NAME}(?:[ ]\([A-Z]{{2}}\))?"
_NOT_YEAR = r"(?!(?:1[89]|20)\d\d(?!\d))"


def _eu_tail(postcode: str) -> str:
    """A postcode and town after the number: ", 00158, Roma (RM)", ", Zamora, 21993"."""
    return (
        rf"(?:(?:[ ]?,?[ ]+|[ ]*\n[ ]*){postcode},?[ ]+{_EU_TOWN}"
        rf"|[ ]?,[ ]*{_EU_TOWN},?[ ]+{postcode})"
    )


_STREET_EU = (
    rf"(?:(?:(?P<only>{_trie(_either_case(_EU_ONLY))})|{_trie(_either_case(_EU_OTHER))})[ ]+"
    rf"{_JOIN}?{_EU_NAME},?[ ]+"
    rf"{_NUMBER}{_EU_UNIT}(?:{_eu_tail(_POSTCODE)}|(?(only)|(?!)))"
    rf"|{_EU_NAME},?[ ]+{_NUMBER}{_EU_UNIT}{_eu_tail(_NOT_YEAR + _POSTCODE)})"
)
"""A street with its name before its number: after a street type ("Borgo Etta, 85", "al.
Staffa 69/82", "rue Maire 534") with the postcode and town after it, or without them when
the type is no English word ("ulica Widok 68"); with no type, only before a postcode that
reads as no year, and a town: "Korunní 810/104, 120 00 Praha", not "Issue 2, February 2016"."""
_STREET_FR_BARE = (
    rf"{_trie(_FR_TYPES)}[ ]+(?:(?:de|du|des|de la|d'|l')[ ]?)?{_CAPWORD}(?:[ ]+{_CAPWORD}){{0,2}}"
    rf",?[ ]+\d{{4,5}}[ ]+{_EU_TOWN}"
)
"""A French street with no number, only before a postcode and town: "rue Ferrand, 87152 Brun"."""
_ADDRESS = re.compile(
    rf"(?<![\w/.-])(?:{_STREET_FR_BARE}|{_STREET_EU}|{_STREET_TOWN}"
    rf"|(?:{_STREET_EN}|{_STREET_DE_NL}|{_STREET_FR}){_PLACE_TAIL}"
    rf"|{_STREET_DE_NL_LOWER},?[ ]+{_POSTCODE}[ ]+{_CAPWORD}|{_MILITARY})"
    r"(?![\w-])"
)
_HAS_DIGIT = re.compile(r"\d")


def address_spans(text: str) -> Iterator[Span]:
    """Street addresses: "221B Baker Street", "Hauptstraße 5", "12, rue de Rivoli", "Via Roma, 5".

    A house number and one to three capitalised words before a street type (English), a
    street word ending in a street type and a number (German, Dutch, Nordic), a number before
    a street type (French), a street type before the name and its number (Italian, Spanish,
    Polish, Swiss French, Portuguese, Czech); a unit ("Apt. 4", "Piano 9") and the town with
    its postcode that follow are taken with it.
    """
    if not _HAS_DIGIT.search(text):
        return
    for m in _ADDRESS.finditer(text):
        yield Span(m.start(), m.end(), ADDRESS)
