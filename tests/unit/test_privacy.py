"""Privacy: personal data and secrets are replaced; ordinary text, numbers and code are not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kura_stream.privacy import is_shown, scrub, scrub_conversation, visible_name
from kura_stream.types import Cluster, Conversation, Message

# (input, expected output): every case must come out exactly so.
POSITIVE = [
    # emails
    ("mail john.doe+tag@example.co.uk now", "mail [EMAIL] now"),
    ("<Jane_D@sub.example.org>", "<[EMAIL]>"),
    ("mailto:info@example.com", "mailto:[EMAIL]"),
    # phones: international
    ("call +44 20 7946 0958 today", "call [PHONE] today"),
    ("+1 (555) 123-4567", "[PHONE]"),
    ("+49 151 12345678", "[PHONE]"),
    ("+33 1 23 45 67 89.", "[PHONE]."),
    ("+4915112345678", "[PHONE]"),
    ("+91-98765-43210", "[PHONE]"),
    # phones: US
    ("(415) 555-2671", "[PHONE]"),
    ("call 415-555-2671.", "call [PHONE]."),
    ("call 1 415 555 2671", "call [PHONE]"),
    ("415.555.2671", "[PHONE]"),
    ("1-800-555-1234", "[PHONE]"),
    ("415 555 2671", "[PHONE]"),
    # payment cards (Luhn-valid test numbers)
    ("card 4111 1111 1111 1111 exp", "card [CARD] exp"),
    ("4111-1111-1111-1111", "[CARD]"),
    ("5500005555555559", "[CARD]"),
    ("amex 3782 822463 10005", "amex [CARD]"),
    ("6011111111111117", "[CARD]"),
    # IP addresses
    ("from 203.0.113.7 at noon", "from [IP] at noon"),
    ("192.168.1.20:8080", "[IP]:8080"),
    ("addr 2001:db8:85a3::8a2e:370:7334 ok", "addr [IP] ok"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[IP]"),
    ("::ffff:203.0.113.7", "[IP]"),
    # URLs with secrets: host kept
    (
        "https://api.example.com/v1/items?api_key=abc123&page=2",
        "https://api.example.com/v1/items?api_key=[SECRET]&page=2",
    ),
    (
        "postgres://admin:s3cr3t@db.example.com:5432/app",
        "postgres://admin:[SECRET]@db.example.com:5432/app",
    ),
    (
        "https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r.git",
        "https://[SECRET]@github.com/o/r.git",
    ),
    (
        "https://b.s3.amazonaws.com/f?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff00&v=1",
        "https://b.s3.amazonaws.com/f?X-Amz-Credential=[SECRET]&X-Amz-Signature=[SECRET]&v=1",
    ),
    (
        "https://app.example.com/cb#access_token=xyz789&state=1",
        "https://app.example.com/cb#access_token=[SECRET]&state=1",
    ),
    ("https://example.com/u?email=jo%40example.com", "https://example.com/u?email=[EMAIL]"),
    ("http://10.1.2.3:9000/metrics", "http://[IP]:9000/metrics"),
    ("(see https://x.io/a?token=t0k3n).", "(see https://x.io/a?token=[SECRET])."),
    # API keys and tokens
    ("key sk-proj-AbCdEf1234567890GhIjKlMnOp", "key [SECRET]"),
    ("sk-ant-api03-AbCdEfGh12345678IjKlMnOp-QrSt", "[SECRET]"),
    ("AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "token [SECRET]"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "[SECRET]"),
    ("xoxb-123456789012-abcdefghijkl", "[SECRET]"),
    ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "[SECRET]"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[SECRET]"),
    ("Authorization: Bearer abc.def-ghi_jkl1234567", "Authorization: Bearer [SECRET]"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [SECRET]"),
    (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "[SECRET]",
    ),
    ("password = 'hunter22'", "password = '[SECRET]'"),
    ('{"api_key": "abcd1234"}', '{"api_key": "[SECRET]"}'),
    (
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SECRET_ACCESS_KEY=[SECRET]",
    ),
    ('self.password = "correct-horse"', 'self.password = "[SECRET]"'),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\nafter",
        "[SECRET]\nafter",
    ),
    # several kinds in one text
    (
        "I'm jo@ex.com, +1 415-555-2671, card 4242424242424242, IP 81.2.69.160.",
        "I'm [EMAIL], [PHONE], card [CARD], IP [IP].",
    ),
]

NEGATIVE = [
    "Python 3.11.7 and numpy 1.26.4 on Ubuntu 22.04",
    "version 1.0.0.0 of the assembly; v10.2.3.4",
    "Dates: 2024-01-15, 01/15/2024, 15.01.2024, 2024/01/15, 12:30:45, Jan 5, 2024",
    "In 2023 we sold 12345 units at $1,299.99 (€1.299,99) for a total of 1,234,567.",
    "Order #20240115123045, timestamp 1699999999999, ISBN 978-3-16-148410-0",
    "scores 100 200 3000 and 123 456 7890 are not phones",  # space-separated needs NANP rules
    "SSN-like 123-45-6789 and zip 94103-1234",
    "x = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]",
    "4111 1111 1111 1112 fails Luhn; 1234567812345678 has no card network",
    "std::vector<int> v; a[1::2]; Foo::Bar::baz(); MAC 00:1A:2B:3C:4D:5E",
    "bind 127.0.0.1:8000 or 0.0.0.0 or ::1; mask 255.255.255.0",
    "@property\ndef x(self): return a @ b.T  # decorators and matmul",
    "retina icon@2x.png and sprite@3x.webp",
    "password = input('Password: ')\ntoken: Optional[str] = None\nmax_tokens=4096",
    "Use Bearer token-based-authentication with scikit sk-learn-compatible-estimators-v2",
    "Our API key rotation policy; set api_key to your key.",
    "https://docs.python.org/3/library/re.html?highlight=search#re.search",
    "git clone ssh://git@github.com/org/repo.git",
    "See https://en.wikipedia.org/wiki/Foo_(bar) for details.",
    "1 + 2 = 3; UTC+1 2023; x+12345678",
    "Temperature 98.6, pi 3.14159265358979, e 2.718281828",
    "SELECT * FROM users WHERE id = 42 AND created_at > '2024-01-01';",
    "Phone numbers are written like +XX; call me maybe.",
    # seen in ShareGPT: versions, section numbers, networks, matrices, version refs, units
    "<version>0.7.7.0</version>; gem install rails -v 6.1.4.1; ruby version is 2.6.8.205.",
    "activesupport (= 7.0.4.2); clause 9.6.2.2 of AS 4733.2; 1.1.1.2 Relevant information",
    "subnets within 22.1.11.0/24 and 192.168.1.0/24; broadcast 192.168.1.255",
    "[[3138 1014 596 573 1915 486]\n [ 319 436 1393 540 372 577]\n [1035 1071 1203 802 1457]]",
    "uses: actions/cache@v3.When it runs; systemctl start openvpn@server.service",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVE)
def test_scrub_replaces(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize("text", NEGATIVE)
def test_scrub_leaves_ordinary_text(text: str) -> None:
    assert scrub(text) == text


def test_scrub_is_idempotent() -> None:
    for text, _ in POSITIVE:
        once = scrub(text)
        assert scrub(once) == once


def test_remembered_and_long_texts_are_scrubbed_alike() -> None:
    from kura_stream.privacy import MEMO_MAX_CHARS, _scrub_memo

    short = "write to jo@example.com"
    hits = _scrub_memo.cache_info().hits
    assert scrub(short) == scrub(short) == "write to [EMAIL]"
    assert _scrub_memo.cache_info().hits == hits + 1
    long = "x " * MEMO_MAX_CHARS + short
    size = _scrub_memo.cache_info().currsize
    assert scrub(long) == "x " * MEMO_MAX_CHARS + "write to [EMAIL]"
    assert _scrub_memo.cache_info().currsize == size  # not remembered: memory stays bounded


def test_scrub_empty() -> None:
    assert scrub("") == ""


def test_untouched_url_keeps_its_bytes() -> None:
    url = "https://Example.com/a%20b?q=hello+world&X=1#Frag"
    assert scrub(url) == url


def test_scrub_conversation() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    conv = Conversation(
        chat_id="c-jo@example.com",
        created_at=when,
        messages=(
            Message(created_at=when, role="user", content="I'm at jo@example.com"),
            Message(created_at=when, role="assistant", content="Noted, no reply needed."),
        ),
        metadata={"contact": "+44 20 7946 0958", "tags": ["ip 81.2.69.1", "x"], "n": 3, "u": None},
    )
    out = scrub_conversation(conv)
    assert out.chat_id == conv.chat_id  # an identifier, kept
    assert [m.content for m in out.messages] == ["I'm at [EMAIL]", "Noted, no reply needed."]
    assert out.metadata == {"contact": "[PHONE]", "tags": ["ip [IP]", "x"], "n": 3, "u": None}
    assert conv.messages[0].content == "I'm at jo@example.com"  # the input is untouched


def test_a_scrubbed_conversation_is_marked_and_not_scrubbed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kura_stream.privacy as privacy

    when = datetime(2024, 1, 1, tzinfo=UTC)
    conv = Conversation(
        chat_id="c1",
        created_at=when,
        messages=(Message(created_at=when, role="user", content="mail jo@example.com"),),
        metadata={"source": "web", "contact": "jo@example.com"},
    )
    assert not conv.scrubbed
    once = scrub_conversation(conv, metadata_keys=("source", "contact"))
    assert once.scrubbed
    assert not Conversation.model_validate_json(once.model_dump_json()).scrubbed  # never read
    monkeypatch.setattr(privacy, "scrub", lambda text: pytest.fail("scrubbed twice"))
    assert scrub_conversation(once) is once
    assert scrub_conversation(once, metadata_keys=("source",)).metadata == {"source": "web"}


@pytest.mark.parametrize(
    ("count", "min_size", "expected"),
    [
        (10, 5, "Debug Python imports"),
        (5, 5, "Debug Python imports"),
        (4, 5, "(small cluster: 4 conversations, name hidden)"),
        (1, 5, "(small cluster: 1 conversation, name hidden)"),
        (0, 1, "(small cluster: 0 conversations, name hidden)"),
    ],
)
def test_visible_name(count: int, min_size: int, expected: str) -> None:
    cluster = Cluster(id="c", name="Debug Python imports", count=count)
    assert visible_name(cluster, min_size) == expected
    assert is_shown(cluster, min_size) == (expected == cluster.name)


def test_warm_up_loads_the_name_and_place_lists_before_any_traffic() -> None:
    from kura_stream import pii_name_lists, privacy

    # As in a fresh service process: nothing looked up yet (earlier tests fill the caches).
    pii_name_lists.word.cache_clear()
    pii_name_lists.places.cache_clear()
    pii_name_lists.stop_words.cache_clear()
    privacy.warm_up()
    assert pii_name_lists.places.cache_info().currsize == 1
    assert pii_name_lists.stop_words.cache_info().currsize == 1
    assert privacy.scrub("Dear Anna Smith, call 020 7019 9577") == "Dear [NAME], call [PHONE]"
