"""Scrub personal data and secrets from text, and hide the names of clusters too small to show."""

from __future__ import annotations

import bisect
import functools
import logging
import re
from collections.abc import Callable, Collection, Iterator
from urllib.parse import quote, unquote_plus

from kura_stream.pii_addresses import address_spans
from kura_stream.pii_detectors import (
    ADDRESS,
    CARD,
    IBAN,
    IP,
    PHONE,
    Span,
    card_spans,
    iban_spans,
    ip_spans,
    is_public_ip,
    phone_spans,
)
from kura_stream.pii_names import NAME, name_spans
from kura_stream.types import Cluster, Conversation, Message, MetadataValue

logger = logging.getLogger(__name__)

__all__ = ["ADDRESS", "CARD", "EMAIL", "IBAN", "IP", "NAME", "PHONE", "SECRET", "scrub"]

EMAIL = "[EMAIL]"
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
    ({_SECRET_NAME}["']?\s*[:=]\s*)  # "my_api_key = ...": no `\w*` before, which backtracked
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


def _scrub_netloc(netloc: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal: "[2001:db8::1]:8080"
        host, _, rest = hostport[1:].partition("]")
        if is_public_ip(host):
            hostport = IP + rest
    else:
        host, colon, port = hostport.partition(":")
        if is_public_ip(host):
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


def _url_spans(text: str) -> Iterator[Span]:
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
            yield Span(m.start(), m.start() + len(url), new)
        else:  # nothing to hide: claim the span so the email or IP rules leave it whole
            yield Span(m.start(), m.start() + len(url), url)


def _regex_spans(pattern: re.Pattern[str], replacement: str) -> Callable[[str], Iterator[Span]]:
    def spans(text: str) -> Iterator[Span]:
        for m in pattern.finditer(text):
            yield Span(m.start(), m.end(), replacement)

    return spans


def _grouped_secret_spans(pattern: re.Pattern[str]) -> Callable[[str], Iterator[Span]]:
    """Keep group 1 (the label, e.g. "Bearer "), redact the rest."""

    def spans(text: str) -> Iterator[Span]:
        for m in pattern.finditer(text):
            yield Span(m.start(), m.end(), m.group(1) + SECRET)

    return spans


_NOT_TLDS = frozenset(
    {"png", "jpg", "jpeg", "gif", "svg", "webp", "css", "js", "ts", "py"}  # icon@2x.png
    | {"service", "socket", "timer", "target", "mount"}  # systemd units: getty@tty1.service
)


def _email_spans(text: str) -> Iterator[Span]:
    for m in _EMAIL.finditer(text):
        tld = m.group().rsplit(".", 1)[1]
        if tld.lower() in _NOT_TLDS or (tld[0].isupper() and not tld.isupper()):
            continue  # "cache@v3.When ..." is a version ref ending a sentence, not an address
        yield Span(m.start(), m.end(), EMAIL)


_SECRET_NAME_PARTS = ("key", "secret", "token", "passw", "pwd")
"""Every secret name holds one of these: a text without any is not searched."""


def _assigned_secret_spans(text: str) -> Iterator[Span]:
    lowered = text.lower()
    if not any(part in lowered for part in _SECRET_NAME_PARTS):
        return
    for m in _ASSIGNED_SECRET.finditer(text):
        for group in (2, 3, 4):
            if m.group(group) is not None:
                value = m.group(group)
                if value.startswith("[") and value.endswith("]"):
                    break  # already a placeholder
                yield Span(m.start(group), m.end(group), SECRET)
                break


# Earlier detectors win where spans overlap: a URL is handled whole, a card before a phone.
_DETECTORS: tuple[Callable[[str], Iterator[Span]], ...] = (
    _regex_spans(_PRIVATE_KEY, SECRET),
    _url_spans,
    _regex_spans(_KEY_SHAPES, SECRET),
    _grouped_secret_spans(_BEARER),
    _grouped_secret_spans(_BASIC),
    _assigned_secret_spans,
    _email_spans,
    iban_spans,
    card_spans,
    ip_spans,
    address_spans,
    phone_spans,
    name_spans,
)
# Inside a URL (its path and query values) URLs are not looked for again: no recursion.
_INNER_DETECTORS = tuple(d for d in _DETECTORS if d is not _url_spans)


def warm_up() -> None:
    """Load the name lists and compile the detectors now (about a second on first use).

    The service calls it before it consumes, so the first batch does not wait for it.
    """
    _scrub(
        "Dear Anna Smith, my name is john; 12 High Street, 020 7019 9577, a@b.com, "
        "GB82 WEST 1234 5698 7654 32, 8.8.8.8, password=hunter2",
        _DETECTORS,
    )


def scrub(text: str) -> str:
    """Replace personal data and secrets in text with typed placeholders.

    Emails become [EMAIL]; phone numbers (international "+...", US and national formats such as
    "020 7019 9577") [PHONE]; IBANs that pass the mod-97 check [IBAN]; payment card numbers
    that pass the Luhn check and match a card network [CARD]; public IPv4/IPv6 addresses [IP]
    (loopback such as 127.0.0.1 is kept); street addresses [ADDRESS]; personal names, from
    name lists and the words around them (`pii_names`), [NAME]; API keys, tokens, private keys and
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
"""Recently scrubbed short texts remembered: replies like "Sure, let me check." recur, and a
conversation sent again is scrubbed again (a scrubbed copy is marked and never re-scrubbed)."""


@functools.lru_cache(maxsize=MEMO_SIZE)
def _scrub_memo(text: str) -> str:
    return _scrub(text, _DETECTORS)


def _scrub(text: str, detectors: tuple[Callable[[str], Iterator[Span]], ...]) -> str:
    if not text:
        return text
    starts: list[int] = []  # claimed spans, kept sorted and disjoint: overlap is two lookups
    claimed: list[Span] = []
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


def scrub_conversation(
    conv: Conversation, *, metadata_keys: Collection[str] | None = None
) -> Conversation:
    """A copy of a conversation with every message and string metadata value scrubbed.

    The chat_id and timestamps are kept: they are identifiers the pipeline needs, not content.

    Args:
        conv: The conversation.
        metadata_keys: The metadata keys kept (the service and batch pass
            `PrivacySettings.metadata_keys`, by default none); None keeps every key.

    Returns:
        A new Conversation (the input is frozen and left as it is), marked scrubbed: a
        conversation scrubbed already is not scrubbed again (the ingest scrubs it, then the
        summariser would have: 10 us to 3 ms a conversation), only its metadata keys kept.
    """
    if conv.scrubbed:
        return conv if metadata_keys is None else keep_metadata(conv, metadata_keys)
    messages = tuple(
        Message(created_at=m.created_at, role=m.role, content=scrub(m.content))
        for m in conv.messages
    )
    metadata = {
        k: _scrub_value(v)
        for k, v in conv.metadata.items()
        if metadata_keys is None or k in metadata_keys
    }
    clean = conv.model_copy(update={"messages": messages, "metadata": metadata})
    clean.mark_scrubbed()
    return clean


def keep_metadata(conv: Conversation, keys: Collection[str]) -> Conversation:
    """The conversation with only the metadata keys in `keys` (its text as it was)."""
    if all(k in keys for k in conv.metadata):
        return conv
    return conv.model_copy(
        update={"metadata": {k: v for k, v in conv.metadata.items() if k in keys}}
    )


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
