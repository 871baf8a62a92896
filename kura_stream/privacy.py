"""Scrub personal data and secrets from text, and hide the names of clusters too small to show."""

from __future__ import annotations

import bisect
import functools
import ipaddress
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus

from kura_stream.types import Cluster, Conversation, Message, MetadataValue

logger = logging.getLogger(__name__)

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
IP = "[IP]"
SECRET = "[SECRET]"

# --- secrets with a recognisable shape -------------------------------------------------------
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z]+ )*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
_KEY_SHAPES = re.compile(
    r"""(?<![\w-])(?:
        sk-(?=[\w-]{0,199}\d)(?=[\w-]{0,199}[a-z])(?=[\w-]{0,199}[A-Z])[\w-]{20,200}  # OpenAI
      | (?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}        # AWS access key id
      | gh[pousr]_[A-Za-z0-9]{36,}                                    # GitHub tokens
      | github_pat_[A-Za-z0-9_]{22,}
      | xox[abprs]-[A-Za-z0-9-]{10,}                                  # Slack
      | AIza[0-9A-Za-z_-]{35}                                         # Google API key
      | (?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}                   # Stripe
      | eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}  # JWT
    )(?![\w-])""",
    re.VERBOSE,
)
# "Bearer <token>" anywhere; "Basic <base64>" only in an Authorization header.
_BEARER = re.compile(
    r"(?<![\w-])([Bb]earer\s+)(?=[\w\-.~+/]{0,2047}\d)([A-Za-z0-9\-._~+/]{16,2048}=*)"
)
_BASIC = re.compile(r"(?i)(Authorization:\s*Basic\s+)([A-Za-z0-9+/]{12,}={0,2})")
# A secret-named variable set to a literal: quoted anything, or an unquoted token with a digit
# (so `password = input()` and `token: Optional[str]` in code are left alone).
_SECRET_NAME = (
    r"(?:api[_-]?key|apikey|access[_-]?key(?:[_-]?id)?|secret(?:[_-]?access)?(?:[_-]?key)?"
    r"|client[_-]?secret|auth[_-]?token|access[_-]?token|refresh[_-]?token|password|passwd"
    r"|pwd|token|private[_-]?key)"
)
_ASSIGNED_SECRET = re.compile(
    rf"""(?ix)
    (?<!\w)(\w*{_SECRET_NAME}["']?\s*[:=]\s*)
    (?:"([^"\s]{{4,}})"|'([^'\s]{{4,}})'|(?=[\w\-+/=]{{0,511}}\d)([\w\-+/=]{{8,512}})(?![\w(\[.\-+/=]))
    """
)

# --- URLs ------------------------------------------------------------------------------------
_URL = re.compile(r"(?i)(?<![\w+.-])[a-z][a-z0-9+.-]{1,20}://[^\s<>\"'`]+")
_URL_TRAILING = ".,;:!?)]}'\""
_SECRET_PARAM = re.compile(
    r"(?i)^(?:code|sig|sid|pass|auth|jwt)$"
    r"|(?:^|[-_.])(?:key|pwd|passwd|session|sessionid|credentials?)(?:$|[-_.])"
    r"|token|secret|apikey|api_key|accesskey|access_key|password|signature|credential"
)

# --- personal data ---------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
_CARD = re.compile(r"(?<![\d.,+-])\d(?:[ -]?\d){12,18}(?![\d-]|[.,]\d)")
# Issuer prefixes and lengths (Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay).
_CARD_NETWORKS = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"
    r"|3[47]\d{13}|6(?:011|5\d\d|4[4-9]\d)\d{12,15}|3(?:0[0-5]|[68]\d)\d{11}|35\d{14,17}"
    r"|62\d{14,17})$"
)
_PHONE_INTL = re.compile(r"(?<![\w)+])\+[1-9]\d{0,3}(?:[ .-]?\(?\d{1,5}\)?){2,6}(?![\w-]|\.\d)")
_PHONE_US = re.compile(
    r"""(?x)(?<![\w.+-])(?<!\d[ ])(?:1[ .-]?)?  # not inside a row of numbers (a matrix)
    (?:\(\d{3}\)[ ]?\d{3}[ .-]\d{4}
      | \d{3}(?P<sep>[.-])\d{3}(?P=sep)\d{4}
      | [2-9]\d{2}[ ][2-9]\d{2}[ ]\d{4}(?![ ]\d))  # spaces only: NANP area and exchange
    (?![\w-]|\.\d)"""
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


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    replacement: str


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_spans(text: str) -> Iterator[_Span]:
    for m in _CARD.finditer(text):
        raw = m.group()
        digits = re.sub(r"[ -]", "", raw)
        seps = set(re.findall(r"[ -]", raw))
        if len(seps) > 1:  # "1234-5678 9012..." mixes separators: not a card as people write it
            continue
        if seps and min(len(g) for g in re.split(r"[ -]", raw)) < 3:
            continue  # cards are written in groups of 4-6 digits, not "4 5 6 7 ..."
        if _CARD_NETWORKS.match(digits) and _luhn_ok(digits):
            yield _Span(m.start(), m.end(), CARD)


def _phone_spans(text: str) -> Iterator[_Span]:
    for m in _PHONE_INTL.finditer(text):
        digits = sum(ch.isdigit() for ch in m.group())
        if 8 <= digits <= 15:
            yield _Span(m.start(), m.end(), PHONE)
    for m in _PHONE_US.finditer(text):
        yield _Span(m.start(), m.end(), PHONE)


def _is_public_ip(value: str) -> bool:
    """Whether an address can name one host: keep the ones that name no one readable.

    Kept: loopback, unspecified, multicast, netmasks (255.x), IPv4 network and broadcast
    addresses (x.y.z.0, x.y.z.255), and IPv4 quads of single digits, which in text are far
    more often versions or section numbers ("6.1.4.1", "1.1.1.2") than a person's address.
    """
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return False
    if addr.is_loopback or addr.is_unspecified or addr.is_multicast:
        return False
    if addr.version == 4:
        octets = value.split(".")
        if octets[0] == "255" or octets[3] in ("0", "255") or all(len(o) == 1 for o in octets):
            return False
    return True


def _ip_spans(text: str) -> Iterator[_Span]:
    # IPv6 first, so "::ffff:203.0.113.7" is taken whole rather than its IPv4 tail.
    for m in _IPV6.finditer(text):
        value = m.group()
        groups = [g for g in value.split(":") if g]
        size = len(groups) + (1 if "." in value else 0)  # a dotted quad is two groups
        if size < 3 or not any(ch.isdigit() for ch in value):
            continue  # "a::b" in C++ or Rust paths; real addresses have at least three groups
        if _is_public_ip(value):
            yield _Span(m.start(), m.end(), IP)
    for m in _IPV4.finditer(text):
        if _VERSION_BEFORE.search(text[max(0, m.start() - 24) : m.start()]):
            continue  # "v1.2.3.4", "version 1.0.0.0"
        if _is_public_ip(m.group()):
            yield _Span(m.start(), m.end(), IP)


def _scrub_netloc(netloc: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal: "[2001:db8::1]:8080"
        host, _, rest = hostport[1:].partition("]")
        if _is_public_ip(host):
            hostport = IP + rest
    else:
        host, colon, port = hostport.partition(":")
        if _is_public_ip(host):
            hostport = IP + colon + port
    if at:
        user, colon, password = userinfo.partition(":")
        if colon and password:
            userinfo = f"{user}:{SECRET}"
        elif _SECRET_PARAM.search(user) or _KEY_SHAPES.fullmatch(user) or len(user) >= 20:
            userinfo = SECRET  # a token as the whole userinfo: https://<token>@host
    return f"{userinfo}{at}{hostport}"


def _scrub_params(query: str) -> str:
    """Redact secret-named parameters, scrub the others; untouched pairs keep their bytes."""
    out = []
    for pair in query.split("&"):
        key, eq, value = pair.partition("=")
        if not eq:
            out.append(pair)
        elif value and _SECRET_PARAM.search(unquote_plus(key)):
            out.append(f"{key}={SECRET}")
        else:
            decoded = unquote_plus(value)
            new = _scrub(decoded, _INNER_DETECTORS)
            out.append(pair if new == decoded else f"{key}={quote(new, safe='[]@:/,')}")
    return "&".join(out)


def _scrub_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    netloc_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    netloc, tail = rest[:netloc_end], rest[netloc_end:]
    tail, hash_, fragment = tail.partition("#")
    path, qmark, query = tail.partition("?")
    if "=" in fragment:  # OAuth implicit flow: #access_token=...
        fragment = _scrub_params(fragment)
    return (
        f"{scheme}{sep}{_scrub_netloc(netloc)}{_scrub(path, _INNER_DETECTORS)}{qmark}"
        f"{_scrub_params(query)}"
        f"{hash_}{fragment}"
    )


def _url_spans(text: str) -> Iterator[_Span]:
    for m in _URL.finditer(text):
        url = m.group()
        while url and url[-1] in _URL_TRAILING:
            # Keep a closing bracket the URL opened: "wiki/Foo_(bar)", "?token=[SECRET]".
            opener = {")": "(", "]": "["}.get(url[-1])
            if opener and url.count(opener) >= url.count(url[-1]):
                break
            url = url[:-1]
        new = _scrub_url(url)
        if new != url:
            yield _Span(m.start(), m.start() + len(url), new)
        else:  # nothing to hide: claim the span so the email or IP rules leave it whole
            yield _Span(m.start(), m.start() + len(url), url)


def _regex_spans(pattern: re.Pattern[str], replacement: str) -> Callable[[str], Iterator[_Span]]:
    def spans(text: str) -> Iterator[_Span]:
        for m in pattern.finditer(text):
            yield _Span(m.start(), m.end(), replacement)

    return spans


def _grouped_secret_spans(pattern: re.Pattern[str]) -> Callable[[str], Iterator[_Span]]:
    """Keep group 1 (the label, e.g. "Bearer "), redact the rest."""

    def spans(text: str) -> Iterator[_Span]:
        for m in pattern.finditer(text):
            yield _Span(m.start(), m.end(), m.group(1) + SECRET)

    return spans


_NOT_TLDS = frozenset(
    {"png", "jpg", "jpeg", "gif", "svg", "webp", "css", "js", "ts", "py"}  # icon@2x.png
    | {"service", "socket", "timer", "target", "mount"}  # systemd units: getty@tty1.service
)


def _email_spans(text: str) -> Iterator[_Span]:
    for m in _EMAIL.finditer(text):
        tld = m.group().rsplit(".", 1)[1]
        if tld.lower() in _NOT_TLDS or (tld[0].isupper() and not tld.isupper()):
            continue  # "cache@v3.When ..." is a version ref ending a sentence, not an address
        yield _Span(m.start(), m.end(), EMAIL)


def _assigned_secret_spans(text: str) -> Iterator[_Span]:
    for m in _ASSIGNED_SECRET.finditer(text):
        for group in (2, 3, 4):
            if m.group(group) is not None:
                value = m.group(group)
                if value.startswith("[") and value.endswith("]"):
                    break  # already a placeholder
                yield _Span(m.start(group), m.end(group), SECRET)
                break


# Earlier detectors win where spans overlap: a URL is handled whole, a card before a phone.
_DETECTORS: tuple[Callable[[str], Iterator[_Span]], ...] = (
    _regex_spans(_PRIVATE_KEY, SECRET),
    _url_spans,
    _regex_spans(_KEY_SHAPES, SECRET),
    _grouped_secret_spans(_BEARER),
    _grouped_secret_spans(_BASIC),
    _assigned_secret_spans,
    _email_spans,
    _card_spans,
    _ip_spans,
    _phone_spans,
)
# Inside a URL (its path and query values) URLs are not looked for again: no recursion.
_INNER_DETECTORS = tuple(d for d in _DETECTORS if d is not _url_spans)


def scrub(text: str) -> str:
    """Replace personal data and secrets in text with typed placeholders.

    Emails become [EMAIL]; phone numbers (international "+..." and US formats) [PHONE]; payment
    card numbers that pass the Luhn check and match a card network [CARD]; public IPv4/IPv6
    addresses [IP] (loopback such as 127.0.0.1 is kept); API keys, tokens, private keys and
    secrets assigned to secret-named variables [SECRET]. In URLs the host is kept and only
    passwords, secret query parameters and personal data in the path or query are replaced.

    Args:
        text: Any text.

    Returns:
        The text with every detected item replaced; unchanged when nothing was found.
    """
    if len(text) <= MEMO_MAX_CHARS:
        return _scrub_memo(text)
    return _scrub(text, _DETECTORS)


MEMO_MAX_CHARS = 2048
"""Texts up to this long are remembered: with MEMO_SIZE, inputs and outputs together hold
at most 16M characters (about 16 MB of ASCII, up to 4x that for wider characters)."""
MEMO_SIZE = 4096
"""Recently scrubbed short texts remembered. The service scrubs each message twice (before
any summariser sees it, and inside the summariser), and replies like "Sure, let me check."
recur: a pure function's remembered answer saves the second pass, 8% of its main thread."""


@functools.lru_cache(maxsize=MEMO_SIZE)
def _scrub_memo(text: str) -> str:
    return _scrub(text, _DETECTORS)


def _scrub(text: str, detectors: tuple[Callable[[str], Iterator[_Span]], ...]) -> str:
    if not text:
        return text
    starts: list[int] = []  # claimed spans, kept sorted and disjoint: overlap is two lookups
    claimed: list[_Span] = []
    for detector in detectors:
        for span in detector(text):
            i = bisect.bisect_right(starts, span.start)
            if i > 0 and claimed[i - 1].end > span.start:
                continue
            if i < len(claimed) and claimed[i].start < span.end:
                continue
            starts.insert(i, span.start)
            claimed.insert(i, span)
    if not claimed:
        return text
    out: list[str] = []
    pos = 0
    for span in claimed:
        out.append(text[pos : span.start])
        out.append(span.replacement)
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def _scrub_value(value: MetadataValue) -> MetadataValue:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [scrub(str(v)) for v in value]
    return value


def scrub_conversation(conv: Conversation) -> Conversation:
    """A copy of a conversation with every message and string metadata value scrubbed.

    The chat_id and timestamps are kept: they are identifiers the pipeline needs, not content.

    Args:
        conv: The conversation.

    Returns:
        A new Conversation (the input is frozen and left as it is).
    """
    messages = tuple(
        Message(created_at=m.created_at, role=m.role, content=scrub(m.content))
        for m in conv.messages
    )
    metadata = {k: _scrub_value(v) for k, v in conv.metadata.items()}
    return conv.model_copy(update={"messages": messages, "metadata": metadata})


def is_shown(cluster: Cluster, min_size: int) -> bool:
    """Whether a cluster is large enough for its name to be shown (Clio's privacy floor)."""
    return cluster.count >= min_size


def visible_name(cluster: Cluster, min_size: int) -> str:
    """The name to show for a cluster: its own name, or a placeholder when it is too small.

    Args:
        cluster: The cluster.
        min_size: Clusters with fewer conversations than this are not shown by name.

    Returns:
        The cluster's name, or e.g. "(small cluster: 3 conversations, name hidden)".
    """
    if is_shown(cluster, min_size):
        return cluster.name
    noun = "conversation" if cluster.count == 1 else "conversations"
    return f"(small cluster: {cluster.count} {noun}, name hidden)"
