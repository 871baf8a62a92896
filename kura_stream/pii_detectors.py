"""Detectors of phones, IBANs, cards and IP addresses in text, for `privacy.scrub`."""

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


def _letters(upper: bool) -> str:
    """A character class body of the upper (or lower) case letters of Latin and Cyrillic.

    Latin with its extensions and Cyrillic ("Ł", "ę", "Ж"): `re` knows no Unicode category,
    and Latin-1 alone missed Polish and Czech names ("Strzępek") and streets ("Śrem"). Greek
    is left out: in these texts its capitals are mathematics ("Max Σt").
    """
    latin_cyrillic = [*range(0xC0, 0x250), *range(0x400, 0x530)]
    points = [i for i in latin_cyrillic if chr(i).isalpha() and chr(i).isupper() == upper]
    points = [i for i in points if chr(i).islower() != upper]  # "ß" is lower, not upper
    runs: list[list[int]] = []
    for i in points:
        if runs and runs[-1][1] + 1 == i:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    body = "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in runs)
    return ("A-Z" if upper else "a-z") + body


UPPER = _letters(upper=True)
"""Upper-case letters for a regex class: `rf"[{UPPER}]"`."""
LOWER = _letters(upper=False)
"""Lower-case letters for a regex class (ß and the other letters without a capital too)."""


@dataclass(frozen=True)
class Span:
    """A stretch of text to replace: text[start:end] -> replacement."""

    start: int
    end: int
    replacement: str


_HAS_DIGIT = re.compile(r"\d")

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
# "06 12 34 56 78", "0448-304-011", and with dots or a slash after the area code:
# "02.9318.3747", "(07).3566.5936", "0512/42163111", "04/ 787 37 12". Separated groups only:
# a bare run of digits is an id more often than a phone, unless the words before it say so.
_PHONE_NATIONAL = re.compile(
    r"(?<![\w+.\-/:,])(?:\(0\d{1,4}\)[ ./-]?\d{2,8}|0\d{1,5}(?:[ .-]|/[ ]?)\d{2,8})"
    r"(?:[ .-]\d{2,8}){0,4}(?![\w-]|[.,:/]\d)"
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

    A national number must start with the trunk prefix 0 and be written in groups (spaces,
    dots, hyphens, or a slash after the area code; 9 to 12 digits, 13 with the slash as in
    "02961/38730375", and not only 0s and 1s: "0000 1111 0101" is binary); a bare run of 7
    to 15 digits counts only after a word such as "phone", "call" or "number".
    """
    if not _HAS_DIGIT.search(text):
        return  # most short turns have no digit
    for m in _PHONE_INTL.finditer(text):
        if 8 <= len(_digits(m.group().split("x")[0])) <= 15:
            yield Span(m.start(), m.end(), PHONE)
    for m in _PHONE_US.finditer(text):
        yield Span(m.start(), m.end(), PHONE)
    if "0" in text:
        for m in _PHONE_NATIONAL.finditer(text):
            digits = _digits(m.group())
            if 9 <= len(digits) <= (13 if "/" in m.group() else 12) and set(digits) - {"0", "1"}:
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
    if not _HAS_DIGIT.search(text):
        return  # one scan instead of the pattern's
    for m in _IBAN.finditer(text):
        raw = m.group()
        while raw:
            if iban_ok(raw):
                yield Span(m.start(), m.start() + len(raw), IBAN)
                break
            cut = raw.rfind(" ")
            raw = raw[:cut] if cut > 4 else ""


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
    if not _HAS_DIGIT.search(text):
        return  # one scan instead of the pattern's
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
    if "." not in text and ":" not in text:
        return  # an address has dots or colons
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
