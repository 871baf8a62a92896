"""Detectors of phones, IBANs, addresses, cards and IP addresses in text, for `privacy.scrub`."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass

PHONE = "[PHONE]"
IBAN = "[IBAN]"
ADDRESS = "[ADDRESS]"
CARD = "[CARD]"
IP = "[IP]"


@dataclass(frozen=True)
class Span:
    """A stretch of text to replace: text[start:end] -> replacement."""

    start: int
    end: int
    replacement: str


# --- phone numbers ---------------------------------------------------------------------------
_EXTENSION = r"(?:[ ]?(?:x|ext\.?|extension)[ ]?\d{1,6})?"
_PHONE_INTL = re.compile(
    rf"(?<![\w)+])\+[1-9]\d{{0,3}}(?:[ .-]?\(?\d{{1,5}}\)?){{2,6}}{_EXTENSION}(?![\w-]|\.\d)"
)
_PHONE_US = re.compile(
    rf"""(?x)(?<![\w.+-])(?<!\d[ ])(?:1[ .-]?|001-)?  # not inside a row of numbers (a matrix)
    (?:\(\d{{3}}\)[ ]?\d{{3}}[ .-]?\d{{4}}
      | \d{{3}}(?P<sep>[.-])\d{{3}}(?P=sep)\d{{4}}
      | [2-9]\d{{2}}[ ][2-9]\d{{2}}[ ]\d{{4}}(?![ ]\d))  # spaces only: NANP area and exchange
    {_EXTENSION}(?![\w-]|\.\d)"""
)
# National formats with the trunk prefix 0: "020 7019 9577", "030 8135635", "(0161) 4960066",
# "06 12 34 56 78", "0448-304-011". Separated groups only: a bare run of digits is an id
# more often than a phone, unless the words before it say otherwise (below).
_PHONE_NATIONAL = re.compile(
    r"(?<![\w+.\-/:,])(?:\(0\d{1,4}\)[ -]?\d{2,8}|0\d{1,4}(?=[ -]\d))(?:[ -]\d{2,8}){0,4}"
    r"(?![\w-]|[.,:/]\d)"
)
# After "call me on", "phone:", "my number is", any run of 7-15 digits is a phone number.
_PHONE_CUE = re.compile(
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|call|ring|text|sms|whats-?app|fax|number|contact"
    r"|reach)\b[^\n\d]{0,24}$"
)
_DIGIT_RUN = re.compile(r"(?<![\w+.\-/])\(?\d[\d ()-]{5,20}\d(?![\w-]|[.,]\d)")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def phone_spans(text: str) -> Iterator[Span]:
    """International ("+44 ..."), US ("(415) 555-0123") and national ("020 7019 9577") phones.

    A national number must start with the trunk prefix 0 and be written in groups (9 to 12
    digits, not only 0s and 1s: "0000 1111 0101" is binary); a bare run of 7 to 15 digits
    counts only after a word such as "phone", "call" or "number".
    """
    for m in _PHONE_INTL.finditer(text):
        if 8 <= len(_digits(m.group().split("x")[0])) <= 15:
            yield Span(m.start(), m.end(), PHONE)
    for m in _PHONE_US.finditer(text):
        yield Span(m.start(), m.end(), PHONE)
    if "0" in text:
        for m in _PHONE_NATIONAL.finditer(text):
            digits = _digits(m.group())
            if 9 <= len(digits) <= 12 and set(digits) - {"0", "1"}:
                yield Span(m.start(), m.end(), PHONE)
    for m in _DIGIT_RUN.finditer(text):
        if 7 <= len(_digits(m.group())) <= 15 and _PHONE_CUE.search(
            text, max(0, m.start() - 48), m.start()
        ):
            yield Span(m.start(), m.end(), PHONE)


# --- IBANs -----------------------------------------------------------------------------------
_IBAN = re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?(?!\w)")


def iban_ok(candidate: str) -> bool:
    """Whether an IBAN (spaces allowed) passes ISO 13616's mod-97 check, at 15-34 characters."""
    iban = candidate.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def iban_spans(text: str) -> Iterator[Span]:
    """IBANs, compact or in groups of four, that pass the mod-97 checksum.

    When a grouped match runs on into a following capitalised word ("... 06 THE"), the
    longest prefix ending at a group boundary that passes the checksum is taken.
    """
    for m in _IBAN.finditer(text):
        raw = m.group()
        while raw:
            if iban_ok(raw):
                yield Span(m.start(), m.start() + len(raw), IBAN)
                break
            cut = raw.rfind(" ")
            raw = raw[:cut] if cut > 4 else ""


# --- street addresses ------------------------------------------------------------------------
_SUFFIXES = (
    "Street|St|Road|Rd|Avenue|Ave|Av|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Place|Pl|Way"
    "|Terrace|Close|Crescent|Cres|Square|Sq|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Trl|Row"
    "|Mews|Gardens|Grove|Hill|Walk|Plaza|Glens?|Heights|Park|Point|Ridge|Run|View|Estates?"
    "|Loop|Alley|Path|Pike|Crossing|Green|Gate|Wharf|Quay|Parade|Esplanade|Embankment|Rise"
    "|Vale|Wynd|Broadway|Turnpike|Expressway|Freeway|Motorway|Junction|Mall|Station|Village"
    "|Springs?|Meadows?|Shores?|Harbou?r|Haven|Manor|Mountains?|Valleys?|Creek|Brook|Falls"
    "|Forest|Fields?|Fort|Island|Lakes?|Mills?|Oaks?|Pines|Port|Ranch|Summit|Villas?|Wells?"
)
STREET_TYPES = frozenset(
    form.casefold()
    for alt in _SUFFIXES.split("|")
    for form in ([alt[:-2], alt[:-1]] if alt.endswith("?") else [alt])
)
"""The street types above in lower case: "street", "lane", "glen", "glens", ..."""
_CAPWORD = r"[A-ZÀ-Ý][\w'\u2019.-]*"
_NUMBER = r"\d{1,5}[A-Za-z]?(?:[/-]\d{1,4})?"
_UNIT = r"(?:(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Studio|Floor|Fl\.?)[ ]?#?\w{1,5})"
_STREET_EN = (
    rf"(?:{_UNIT},?[ ]+)?{_NUMBER},?[ ]+(?:{_CAPWORD}[ ]+){{1,3}}(?:{_SUFFIXES})\b\.?"
    rf"(?:,?[ ]+{_UNIT})?"
)
_STREET_DE_NL = (
    r"(?:[A-ZÀ-Ý][\w'\u2019-]*[ -])?[A-ZÀ-Ý][\w'\u2019-]*"
    r"(?i:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|chaussee|steig|pfad"
    r"|straat|laan|plein|gracht|dreef|singel|kade|steeg|pad|hof|markt|dijk|baan|boulevard)"
    rf"[ ]+{_NUMBER}\b"
)
_STREET_DE_NL_LOWER = (
    r"[A-ZÀ-Ý][\w'\u2019-]*[ ][a-zß-ÿ][\w'\u2019-]*"
    r"(?:straße|strasse|weg|gasse|platz|allee|ring|damm|straat|laan|plein|gracht|kade)"
    rf"[ ]+{_NUMBER}\b"
)
"""The same with the street word in lower case ("Dussen vanweg 9"): only before a postcode."""
_STREET_FR_BARE = (
    r"(?:rue|avenue|boulevard|chemin|place|allée|impasse|quai|route)[ ]+"
    rf"(?:(?:de|du|des|de la|d'|l')[ ]?)?{_CAPWORD}(?:[ ]+{_CAPWORD}){{0,2}},?"
    rf"[ ]+\d{{5}}[ ]+{_CAPWORD}"
)
"""A French street with no number, only before a postcode and town: "rue Ferrand, 87152 Brun"."""
_MILITARY = (
    rf"(?:(?:Unit|PSC)[ ]\d{{1,5}},?[ ]Box[ ]\d{{1,5}}|(?:USNS|USS|USCGC)[ ]{_CAPWORD})"
    r",?[ ](?:APO|FPO|DPO)[ ]A[AEP][ ]\d{5}"
)
"""US military mail: "Unit 5244 Box 7395, DPO AA 53333", "USS Scott, FPO AP 05393"."""
_STREET_FR = (
    rf"{_NUMBER}(?:[ ]?(?:bis|ter))?,?[ ]+(?:rue|avenue|av\.|boulevard|bd|chemin|place|allée"
    rf"|impasse|quai|route|cours|passage)[ ]+(?:(?:de|du|des|de la|d'|l')[ ]?)?"
    rf"{_CAPWORD}(?:[ ]+{_CAPWORD}){{0,3}}"
)
_POSTCODE = (
    r"(?:[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}"  # UK: SW1A 1AA
    r"|[A-Z]\d[A-Z][ ]?\d[A-Z]\d"  # Canada: K1A 0B1
    r"|\d{4}[ ]?[A-Z]{2}"  # Netherlands: 1012 TX
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
_ADDRESS = re.compile(
    rf"(?<![\w/.-])(?:{_STREET_TOWN}|(?:{_STREET_EN}|{_STREET_DE_NL}|{_STREET_FR}){_PLACE_TAIL}"
    rf"|{_STREET_DE_NL_LOWER},?[ ]+{_POSTCODE}[ ]+{_CAPWORD}|{_STREET_FR_BARE}|{_MILITARY})"
    r"(?![\w-])"
)
_HAS_DIGIT = re.compile(r"\d")


def address_spans(text: str) -> Iterator[Span]:
    """Street addresses: "221B Baker Street", "Hauptstraße 5", "12, rue de Rivoli".

    A house number and one to three capitalised words before a street type (English), a
    street word ending in a street type and a number (German, Dutch), or a number before a
    street type (French); a unit ("Apt. 4") and the town with its postcode or ZIP that follow
    are taken with it.
    """
    if not _HAS_DIGIT.search(text):
        return
    for m in _ADDRESS.finditer(text):
        yield Span(m.start(), m.end(), ADDRESS)


# --- payment cards and IP addresses ----------------------------------------------------------
_CARD = re.compile(r"(?<![\d.,+-])\d(?:[ -]?\d){11,18}(?![\d-]|[.,]\d)")
# Issuer prefixes and lengths (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, and
# Maestro: 50, 56-69 and the old 0604, the one network with 12-digit numbers).
_CARD_NETWORKS = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"
    r"|3[47]\d{13}|(?:2131|1800)\d{11}|(?:5[06-9]|6\d)\d{10,17}|0604\d{8,15}"
    r"|6(?:011|5\d\d|4[4-9]\d)\d{12,15}|3(?:0[0-5]|[68]\d)\d{11}|35\d{14,17}|62\d{14,17})$"
)
_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?![\w]|\.\d)"
)
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?"
    r"(?![\w:]|\.\d)"
)
_VERSION_BEFORE = re.compile(
    r"(?i)(?:\bv|version|ver\.?|rev\.?|release|clause|section|§)(?:\s+is)?[\s\"'>=~(:]*$"
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_spans(text: str) -> Iterator[Span]:
    """Card numbers of a known network (issuer prefix and length) that pass the Luhn check."""
    for m in _CARD.finditer(text):
        raw = m.group()
        digits = re.sub(r"[ -]", "", raw)
        seps = set(re.findall(r"[ -]", raw))
        if len(seps) > 1:  # "1234-5678 9012..." mixes separators: not a card as people write it
            continue
        if seps and min(len(g) for g in re.split(r"[ -]", raw)) < 3:
            continue  # cards are written in groups of 4-6 digits, not "4 5 6 7 ..."
        if _CARD_NETWORKS.match(digits) and _luhn_ok(digits):
            yield Span(m.start(), m.end(), CARD)


def is_public_ip(value: str) -> bool:
    """Whether an address can name one host: keep the ones that name no one readable.

    Kept: loopback, unspecified, multicast, netmasks (255.x), IPv4 network addresses
    (x.y.z.0), broadcast addresses of private ranges (192.168.1.255; a public x.y.z.255
    may be a host), and IPv4 quads of single digits, which in text are far more often
    versions or section numbers ("6.1.4.1", "1.1.1.2") than a person's address.
    """
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return False
    if addr.is_loopback or addr.is_unspecified or addr.is_multicast:
        return False
    if addr.version == 4:
        octets = value.split(".")
        if octets[0] == "255" or octets[3] == "0" or all(len(o) == 1 for o in octets):
            return False
        if addr.is_private and octets[3] == "255":
            return False
    return True


def ip_spans(text: str) -> Iterator[Span]:
    """Public IPv4 and IPv6 addresses (see `is_public_ip`); not "v1.2.3.4"-style versions."""
    # IPv6 first, so "::ffff:203.0.113.7" is taken whole rather than its IPv4 tail.
    for m in _IPV6.finditer(text):
        value = m.group()
        groups = [g for g in value.split(":") if g]
        size = len(groups) + (1 if "." in value else 0)  # a dotted quad is two groups
        if size < 3 or not any(ch.isdigit() for ch in value):
            continue  # "a::b" in C++ or Rust paths; real addresses have at least three groups
        if is_public_ip(value):
            yield Span(m.start(), m.end(), IP)
    for m in _IPV4.finditer(text):
        if _VERSION_BEFORE.search(text[max(0, m.start() - 24) : m.start()]):
            continue  # "v1.2.3.4", "version 1.0.0.0"
        if is_public_ip(m.group()):
            yield Span(m.start(), m.end(), IP)
