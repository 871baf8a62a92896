"""Round 2 of the name and card detectors: particles, accents, sign-offs, roles, lower case."""

from __future__ import annotations

import pytest

from kura_stream.privacy import scrub
from kura_stream.stages.name_privacy import name_lists


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Surname particles join the name.
        ("Regards,\nLisanne van der Sande", "Regards,\n[NAME]"),
        ("Please ask Luc van den Broek.", "Please ask [NAME]."),
        ("Write to Dr. van der Berg today.", "Write to Dr. van der [NAME] today."),
        # Irish and Italian prefixes.
        ("Sign it from Luke O'Brien, please.", "Sign it from [NAME], please."),
        ("A reminder to Dr. O'Casey about it.", "A reminder to Dr. [NAME] about it."),
        # Accented first names (looked up with and without the accents).
        ("My colleague Émilie Chauveau called.", "My colleague [NAME] called."),
        ("Thanks, Günter Stey", "Thanks, [NAME]"),
        # After a role, a capitalised word that is no English word is a name.
        ("My colleague Arnaude Adam keeps asking.", "My colleague [NAME] keeps asking."),
        ("My colleague Victoire Bigot keeps asking.", "My colleague [NAME] keeps asking."),
        # A signature line after a sign-off.
        ("Regards,\nIndy van der Heyden", "Regards,\n[NAME]"),
        ("Regards,\nMohammed The Elder", "Regards,\n[NAME]"),
        # First name + any surname; a surname that is a stop word at a phrase's end.
        ("Sign it from Debra Birch, phone me.", "Sign it from [NAME], phone me."),
        ("Sign it from Joel May, phone me.", "Sign it from [NAME], phone me."),
        ("I met Edward Davis yesterday.", "I met [NAME] yesterday."),
        ("Sign it from Jordan Lane, phone me.", "Sign it from [NAME], phone me."),
        # Lower case after "my name is".
        ("hi my name is john smith and i need help", "hi my name is [NAME] and i need help"),
    ],
)
def test_more_names_are_scrubbed(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "They lived deep in the heart of Stanley Park, in a clearing.",
        "I transferred to UT Austin last year.",
        "Self-employed in Dallas, Texas since 2018.",
        "We met at Houston Community College, and then left.",
        'Try the "Esther\'s Crown" roast beef.',
        "Thank you, Coach.",
        "with our BOSS Model without the overhead",
        "my name is not important",
        "Best,\nThe Team",
    ],
)
def test_places_and_words_are_kept(text: str) -> None:
    assert scrub(text) == text


def test_umlaut_names_are_read_from_the_first_name_list() -> None:
    first = name_lists().first
    assert {"günter", "gönül", "jürgen"} <= first


@pytest.mark.parametrize("number", ["572003230453", "630452946647", "502077245889", "060470759923"])
def test_twelve_digit_maestro_cards_are_scrubbed(number: str) -> None:
    assert scrub(f"cancel the card {number} please") == "cancel the card [CARD] please"


@pytest.mark.parametrize("number", ["572003230454", "412345678903", "100000000008"])
def test_twelve_digit_numbers_off_luhn_or_network_are_kept(number: str) -> None:
    assert scrub(f"order {number} shipped") == f"order {number} shipped"


@pytest.mark.parametrize(
    "address",
    [
        "Stenboulevard 34",
        "Dussen vanweg 9/7, 54344 Potsdam",
        "rue Ferrand, 87152 BrunBourg",
        "Unit 5244 Box 7395, DPO AA 53333",
        "USS Scott, FPO AP 05393",
    ],
)
def test_more_address_shapes_are_scrubbed(address: str) -> None:
    assert scrub(f"I live at {address} now.") == "I live at [ADDRESS] now."


def test_a_public_address_ending_in_255_is_scrubbed_a_lan_broadcast_kept() -> None:
    assert scrub("login from 220.8.237.255 failed") == "login from [IP] failed"
    assert scrub("broadcast 192.168.1.255") == "broadcast 192.168.1.255"


def test_a_street_of_any_type_with_a_unit_before_the_town_is_one_address() -> None:
    text = "the hotel is at 80284 Miller Lights Suite 486, Beckerport, ME 33075, and"
    assert scrub(text) == "the hotel is at [ADDRESS], and"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Letters outside Latin-1 (Polish) and capitalised Belgian particles.
        ("My colleague Bianka Strzępek keeps", "My colleague [NAME] keeps"),
        ("Hi, my name is Adrian Gałęza. I", "Hi, my name is [NAME]. I"),
        ("Thanks, Jędrzej Lubera", "Thanks, [NAME]"),
        ("Thanks, Jacek Żal", "Thanks, [NAME]"),
        ("Hi, my name is Mustapha De Coninck. I", "Hi, my name is [NAME]. I"),
        ("Sign it from Jan De Ridder, phone", "Sign it from [NAME], phone"),
    ],
)
def test_names_in_wider_alphabets_and_capitalised_particles(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_greek_capitals_in_mathematics_are_no_name() -> None:
    assert scrub("Max Σt=0 β^t u(Ct)") == "Max Σt=0 β^t u(Ct)"


@pytest.mark.parametrize(
    "address",
    [
        "Borgo Etta, 85, 00158, Roma (RM)",
        "Viale Paola, 51 Piano 9, 09077, Solarussa (OR)",
        "pl. Popiełuszki 03/92, 25-429 Ostrowiec Świętokrzyski",
        "ulica Widok 68, 91-854 Warszawa",
        "rue Maire 534, 9611 Marty-sur-Cosandey",
        "avenue de Comte, 9660 Deshusses-les-Bains",
        "boulevard de Deladoëy 23, 2198 Bovet am Albis",
        "Callejón Encarnación Batlle 352, Zamora, 21993",
        "Calle Dorita Valero 6 Puerta 8 , Ceuta, 30291",
        "Alainlei 038, 5991 Alsemberg",
        "Matthias-Eisner-Ring 05, 2148 Spittal an der Drau",
        "Storgatan 12, 114 55 Stockholm",
        "ulica Robotnicza 79",
    ],
)
def test_european_street_shapes_are_scrubbed(address: str) -> None:
    assert scrub(f"I live at {address} and") == "I live at [ADDRESS] and"


@pytest.mark.parametrize(
    "text",
    [
        "Volume 7, Issue 2, February 2016.",
        "On May 18, 2022 Plotkin announced it.",
        "I installed it via Python 3 last week.",
        "Smith et al. Nature 2019 showed it.",
        "Ring 020 has no street.",
    ],
)
def test_street_like_words_that_are_no_address_are_kept(text: str) -> None:
    assert scrub(text) == text


def test_the_type_trie_matches_the_same_words_as_an_alternation() -> None:
    import re

    from kura_stream.pii_addresses import _trie

    words = ["via", "viale", "vicolo", "al.", "aleja", "c.", "calle", "callejón"]
    trie = re.compile(rf"(?:{_trie(words)})\Z")
    assert all(trie.match(w) for w in words)
    assert not any(trie.match(w) for w in ["vi", "vial", "ale", "call", "c"])
