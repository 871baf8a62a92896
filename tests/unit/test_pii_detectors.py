"""Names, addresses, IBANs and national phone numbers in privacy.scrub; the metadata allow-list."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kura_stream.pii_detectors import iban_ok
from kura_stream.privacy import keep_metadata, scrub, scrub_conversation
from kura_stream.types import Conversation, Message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My name is Fatima Khan.", "My name is [NAME]."),
        ("I asked Bartholomew about it.", "I asked [NAME] about it."),
        ("Write to Dr. Okafor today.", "Write to Dr. [NAME] today."),
        ("Thanks, Frank Wells", "Thanks, [NAME]"),
        ("Regards,\nSilke Chevresson", "Regards,\n[NAME]"),
        ("My colleague Yves Guillou called.", "My colleague [NAME] called."),
    ],
)
def test_names_are_scrubbed(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I learn Python in March while in Paris. Will it rain on Monday?",
        "A trip to Georgia and Jordan, then San Francisco and Los Angeles.",
        "The Apache Kafka setup on Linux.",
        "Dates: Jan 5, 2024 and Sept 3.",
    ],
)
def test_ordinary_capitalised_words_are_kept(text: str) -> None:
    assert scrub(text) == text


@pytest.mark.parametrize(
    "address",
    [
        "221B Baker Street",
        "254 Gary Glens, Lake Joshua, VT 39100",
        "2 Cooper Ports, Lake Cliffordstad, HX0 3BZ",
        "Schleichstraße 19, 48337 Lichtenfels",
        "Hans-Gerhard-Stey-Gasse 28/67, 62762 Germersheim",
        "12, rue de Rivoli",
        "Flat 10, Angela Stravenue, West Terry, B0 9NN",
    ],
)
def test_street_addresses_are_scrubbed(address: str) -> None:
    assert scrub(f"I live at {address} now.") == "I live at [ADDRESS] now."


@pytest.mark.parametrize(
    "text", ["Top 10 Best Places to visit", "Windows 10 Home edition", "HTTP 404 Not Found"]
)
def test_numbers_before_capitals_are_no_address(text: str) -> None:
    assert scrub(text) == text


def test_iban_checksum() -> None:
    assert iban_ok("GB82 WEST 1234 5698 7654 32")
    assert iban_ok("DE89370400440532013000")
    assert not iban_ok("GB83 WEST 1234 5698 7654 32")  # one digit off
    assert scrub("Pay GB82 WEST 1234 5698 7654 32 now.") == "Pay [IBAN] now."
    assert scrub("Code DE89370400440532013001 fails.") == "Code DE89370400440532013001 fails."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ring 020 7019 9577 today", "Ring [PHONE] today"),
        ("Berlin office: 030 8135635", "Berlin office: [PHONE]"),
        ("(0161) 4960066 is the desk", "[PHONE] is the desk"),
        ("Mobile 06 12 34 56 78", "Mobile [PHONE]"),
        ("call me at 4155550123", "call me at [PHONE]"),
        ("206.269.0743x9150 works", "[PHONE] works"),
    ],
)
def test_national_phone_numbers(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    ["order 4155550123 shipped", "bits 0000 1111 0101 1010", "2019 2020 2021", "v0.12.3"],
)
def test_digit_runs_without_phone_shape_or_cue_are_kept(text: str) -> None:
    assert scrub(text) == text


def _conv(metadata: dict[str, str | int]) -> Conversation:
    when = datetime(2025, 1, 1, tzinfo=UTC)
    return Conversation(
        chat_id="c1",
        created_at=when,
        messages=(Message(created_at=when, role="user", content="hello"),),
        metadata=metadata,
    )


def test_metadata_allow_list() -> None:
    conv = _conv({"customer_name": "Fatima Khan", "source": "web", "n": 3})
    assert scrub_conversation(conv, metadata_keys=()).metadata == {}
    assert scrub_conversation(conv, metadata_keys=("source",)).metadata == {"source": "web"}
    assert set(scrub_conversation(conv).metadata) == {"customer_name", "source", "n"}
    assert keep_metadata(conv, ("n",)).metadata == {"n": 3}
    assert keep_metadata(conv, ()).metadata == {}


@pytest.mark.parametrize(
    "phone",
    ["0512/42163111", "02961/38730375", "04/ 787 37 12", "02.9318.3747", "(07).3566.5936"],
)
def test_national_phones_with_slashes_and_dots(phone: str) -> None:
    assert scrub(f"Reach me at {phone}. Thanks") == "Reach me at [PHONE]. Thanks"


@pytest.mark.parametrize(
    "text",
    [
        "(folio: 01-4139-001-2700)",  # 13 digits in hyphens: a parcel, not a phone
        "on 01/02/2023 10:30 and 01.02.2023",
        "version 0.12.3456 of it",
    ],
)
def test_dates_and_ids_in_phone_like_groups_are_kept(text: str) -> None:
    assert scrub(text) == text
