"""Personal data against the offline pipeline: seeded values, where they leak, and the cost.

Generates N conversations (fixed seed) from request templates filled by Faker (names,
street addresses, IBANs, national phone numbers, emails, cards and IPs of six locales; lists
other than the detector's own) with `customer_name`-style metadata, runs them through
`kura-stream batch`'s path (offline summariser and namers, static embedder, export), and
prints: the detectors' recall and precision on the seeded text, leaks by kind and place
(summaries, cluster names, descriptions, export files, checkpoints, logs), the names
scrubbed from real ShareGPT text (each a false positive unless a person's name), and the
scrub's added cost per conversation.

    .venv/bin/python -m bench.bench_privacy [--n 300] [--seed 7] [--sharegpt 300]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import random
import re
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from faker import Faker

from kura_stream.batch import run_batch
from kura_stream.bootstrap import build_insight, limit_blas_threads
from kura_stream.datasets import load_sharegpt_conversations
from kura_stream.pii_names import name_spans
from kura_stream.privacy import _DETECTORS, _scrub, scrub
from kura_stream.settings import EmbedderSettings, Settings
from kura_stream.types import Conversation, Message

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "nl_NL", "en_IE")
KINDS = ("name", "address", "iban", "phone", "email", "card", "ip", "metadata")
DECOYS = ("Python", "March", "Paris", "Will", "Jordan", "Amazon", "Monday", "Georgia", "Excel")
"""Capitalised words in the templates that are no one's name: scrubbing one is a false positive."""

TEMPLATES = (
    "Hi, my name is {name}. I was charged twice for my Amazon order in March. Please refund "
    "it to my account {iban}; you can call me on {phone} or write to {email}.",
    "Can you help me write a letter to my landlord? I live at {address} and the heating has "
    "been broken since Monday. Sign it from {name}, phone {phone}.",
    "I'm moving house next month. My new address is {address}. Please update my delivery "
    "details for the Excel course, and send the invoice to {email}. Thanks, {name}",
    "My colleague {name} keeps getting a login error from IP {ip} when she opens the Python "
    "notebook. Will you check whether the account {email} is locked?",
    "Please cancel the card {card} that I used to book a trip to Paris, and transfer the "
    "deposit to {iban}. Reach me at {phone}. Regards,\n{name}",
    "Draft a reminder to Dr. {last} about the Jordan conference in Georgia: the hotel is at "
    "{address}, and his assistant's number is {phone}.",
)


@dataclass
class Seeded:
    """One generated conversation and the personal values planted in it."""

    conversation: Conversation
    values: dict[str, list[str]] = field(default_factory=dict)


def _phone(fake: Faker, rng: random.Random) -> str:
    """A national-format number (no "+"), the shapes the last probe found leaking."""
    for _ in range(20):
        number = str(fake.phone_number())
        if not number.startswith(("+", "00")) and "x" not in number:
            return number
    return "0" + "".join(str(rng.randint(0, 9)) for _ in range(10))


def generate(n: int, seed: int) -> list[Seeded]:
    """n conversations, each a template filled by one locale's Faker (seeded)."""
    rng = random.Random(seed)
    fakers = {loc: Faker(loc) for loc in LOCALES}
    for i, fake in enumerate(fakers.values()):
        fake.seed_instance(seed + i)
    out: list[Seeded] = []
    for i in range(n):
        fake = fakers[LOCALES[i % len(LOCALES)]]
        first, last = str(fake.first_name()), str(fake.last_name())
        values = {
            "name": f"{first} {last}",
            "last": last,
            "address": str(fake.address()).replace("\n", ", "),
            "iban": str(fake.iban()),
            "phone": _phone(fake, rng),
            "email": str(fake.email()),
            "card": str(fake.credit_card_number()),
            "ip": str(fake.ipv4_public()),
        }
        text = TEMPLATES[i % len(TEMPLATES)].format(**values)
        used = {k: [v] for k, v in values.items() if "{" + k + "}" in TEMPLATES[i % len(TEMPLATES)]}
        if "last" in used:
            used.setdefault("name", []).append(used.pop("last")[0])
        when = datetime(2025, 1, 1, tzinfo=UTC)
        conv = Conversation(
            chat_id=f"seeded-{i}",
            created_at=when,
            messages=(
                Message(created_at=when, role="user", content=text),
                Message(created_at=when, role="assistant", content="Of course, I can help."),
            ),
            metadata={"customer_name": values["name"], "account": values["iban"]},
        )
        used["metadata"] = ['"customer_name"', '"account"']  # the keys: values are counted above
        out.append(Seeded(conv, used))
    return out


def leaks(value: str, kind: str, text: str) -> bool:
    """Whether text shows a seeded value: for names any of its words, for addresses the street
    line, for metadata its key."""
    if kind == "metadata":
        return value in text
    if kind == "name":
        words = [w for w in value.split() if len(w) > 2 and w[0].isupper()]
        return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text) for w in words)
    if kind == "address":
        return value.split(",")[0] in text
    return value in text


def detector_table(seeded: list[Seeded]) -> None:
    """Recall per kind on the seeded user turns, and [NAME] precision against the decoys."""
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    name_hits = name_true = 0
    decoys_hit: Counter[str] = Counter()
    for s in seeded:
        raw = s.conversation.messages[0].content
        clean = scrub(raw)
        for kind, values in s.values.items():
            if kind == "metadata":
                continue
            for v in values:
                total[kind] += 1
                found[kind] += not leaks(v, kind, clean)
        names = s.values.get("name", [])
        others = [sp for d in _DETECTORS if d is not name_spans for sp in d(raw)]
        for span in name_spans(raw):
            if any(o.start < span.end and span.start < o.end for o in others):
                continue  # inside an address or an email: that detector claims it first
            name_hits += 1
            hit = raw[span.start : span.end]
            name_true += any(w in hit for n in names for w in n.split())
            decoys_hit.update(d for d in DECOYS if d in hit)
    print("\n| detector | seeded | caught | recall |\n| --- | ---: | ---: | ---: |")
    for kind in KINDS[:-1]:
        if total[kind]:
            print(f"| {kind} | {total[kind]} | {found[kind]} | {found[kind] / total[kind]:.1%} |")
    precision = name_true / name_hits if name_hits else 1.0
    decoys = dict(decoys_hit) or "none"
    print(f"\nname spans on the seeded text: {name_hits}, on a seeded name {name_true} "
          f"(precision {precision:.1%}); decoy words scrubbed: {decoys}")  # fmt: skip


async def run_pipeline(seeded: list[Seeded], out: Path) -> dict[str, str]:
    """Run batch offline and return the text of each place a person can see, by place."""
    settings = Settings(embedder=EmbedderSettings(kind="static"))
    insight = build_insight(settings, offline=True)
    result = await run_batch(
        [s.conversation for s in seeded],
        insight=insight,
        out=out / "batch",
        cache_path=out / "cache.sqlite",
        min_size_shown=settings.clustering.min_cluster_size_shown,
        metadata_keys=settings.privacy.metadata_keys,
    )
    summaries = "\n".join(s.model_dump_json() for s in result.summaries)
    files = [p for p in (out / "batch").rglob("*") if p.is_file()]
    exported = "\n".join(
        p.read_text("utf-8", "replace") for p in files if "checkpoints" not in p.parts
    )
    checkpoints = "\n".join(
        p.read_text("utf-8", "replace") for p in files if "checkpoints" in p.parts
    )
    return {
        "summaries": summaries,
        "names": "\n".join(c.name for c in result.clusters),
        "descriptions": "\n".join(c.description for c in result.clusters),
        "export files": exported,
        "checkpoints": checkpoints,
    }


def leak_table(seeded: list[Seeded], places: dict[str, str]) -> None:
    """Seeded values found in each place, by kind."""
    print("\n| kind | seeded | " + " | ".join(places) + " |")
    print("| --- | ---: |" + " ---: |" * len(places))
    for kind in KINDS:
        values = [v for s in seeded for v in s.values.get(kind, [])]
        counts = [sum(leaks(v, kind, text) for v in values) for text in places.values()]
        print(f"| {kind} | {len(values)} | " + " | ".join(str(c) for c in counts) + " |")


def sharegpt_names(n: int) -> None:
    """Names scrubbed from real ShareGPT text: how many, and the most frequent."""
    convs = load_sharegpt_conversations(n)
    hits: Counter[str] = Counter()
    for c in convs:
        for m in c.messages:
            hits.update(m.content[s.start : s.end] for s in name_spans(m.content))
    print(f"\nShareGPT, {n} conversations: {sum(hits.values())} [NAME] spans "
          f"({sum(hits.values()) / n:.2f} per conversation); most frequent:")  # fmt: skip
    print(", ".join(f"{w} ({k})" for w, k in hits.most_common(40)))


def timing(n: int) -> None:
    """The added cost of the new detectors per conversation (no memo: every text is new)."""
    from kura_stream.pii_detectors import address_spans, iban_spans
    from kura_stream.pii_names import name_spans as names

    convs = load_sharegpt_conversations(n)
    texts = [m.content for c in convs for m in c.messages]
    old = tuple(d for d in _DETECTORS if d not in (names, address_spans, iban_spans))
    _scrub("warm up Fatima Khan, 020 7019 9577", _DETECTORS)
    cost = {}
    for label, detectors in (("before", old), ("after", _DETECTORS)):
        started = time.perf_counter()
        for text in texts:
            _scrub(text, detectors)
        cost[label] = (time.perf_counter() - started) / len(convs) * 1e3
    chars = statistics.mean(sum(len(m.content) for m in c.messages) for c in convs)
    print(f"\nscrub per ShareGPT conversation ({chars:,.0f} characters on average): "
          f"{cost['before']:.3f} ms without the name, address and IBAN detectors, "
          f"{cost['after']:.3f} ms with them (+{cost['after'] - cost['before']:.3f} ms, "
          f"{(cost['after'] - cost['before']) / chars * 1e3:.3f} ms per 1,000 chars)")  # fmt: skip


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sharegpt", type=int, default=300)
    args = parser.parse_args()
    limit_blas_threads()
    seeded = generate(args.n, args.seed)
    detector_table(seeded)
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    with tempfile.TemporaryDirectory() as tmp:
        places = asyncio.run(run_pipeline(seeded, Path(tmp)))
    logging.getLogger().removeHandler(handler)
    places["logs"] = log.getvalue()
    leak_table(seeded, places)
    if args.sharegpt:
        sharegpt_names(args.sharegpt)
        timing(args.sharegpt)


if __name__ == "__main__":
    main()
