"""Personal data against the offline pipeline: seeded values, where they leak, and the cost.

Generates N conversations (fixed seed) from request templates filled by Faker (names,
street addresses, IBANs, national phone numbers, emails, cards and IPs of six locales; lists
other than the detector's own) with `customer_name`-style metadata, runs them through
`kura-stream batch`'s path (offline summariser and namers, static embedder, export) and the
service's path in-process (ingest as the stream stores it, the Assigner over an embedded
store, the offline namer as the name consumer runs it, the API's cluster list and details,
the service's export), with every log record at DEBUG captured, and prints: the detectors'
recall and precision on the seeded text, leaks by kind and place, the names scrubbed from
real ShareGPT text (each a false positive unless a person's name), and the scrub's cost per
conversation on short (MultiWOZ) and long (ShareGPT) conversations.

    .venv/bin/python -m bench.bench_privacy [--n 300] [--seed 7] [--sharegpt 300]
    .venv/bin/python -m bench.bench_privacy --seed 2024 --locales report
    .venv/bin/python -m bench.bench_privacy --seed 31337 --locales holdout2  # held out

Which sets tuned the detectors and which only report: `tune` (seeds 7, 11) in rounds 1-2;
`report` (seed 2024) was held out in round 2 and tuned round 3; `holdout2` (seed 31337),
chosen before its first run, is the held-out set from round 3 on and is never tuned on.
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
from types import SimpleNamespace
from typing import cast

from faker import Faker
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from kura_stream.batch import run_batch
from kura_stream.bootstrap import assign_params, build_insight, build_store, limit_blas_threads
from kura_stream.datasets import load_multiwoz, load_sharegpt_conversations
from kura_stream.pii_names import name_spans
from kura_stream.privacy import _DETECTORS, _scrub, scrub
from kura_stream.protocols import BatchSummariser
from kura_stream.service.assigner import Assigner
from kura_stream.service.export_store import export_store
from kura_stream.service.ingest import RawRecord, ingest
from kura_stream.service.naming import name_due_clusters
from kura_stream.service.read_model import cluster_detail, cluster_view
from kura_stream.service.stream import StreamService
from kura_stream.settings import EmbedderSettings, Settings, StoreSettings
from kura_stream.types import ClusterEvent, Conversation, Message

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "nl_NL", "en_IE")
REPORT_LOCALES = ("en_AU", "en_CA", "de_AT", "fr_CH", "nl_BE", "it_IT", "es_ES", "pl_PL")
"""Held out in round 2 (seed 2024); the tuning set of round 3 (Polish letters, Italian,
Spanish, Polish and Swiss street shapes, phones with "/" and ".")."""
HOLDOUT2_LOCALES = ("pt_PT", "sv_SE", "cs_CZ", "en_IE", "fr_FR", "de_CH", "nl_NL", "da_DK")
"""The held-out mix from round 3 on (seed 31337), fixed before its first run and never tuned
on; en_IE, fr_FR and nl_NL were among round 1's tuning locales, at other seeds."""
LOCALE_SETS = {"tune": LOCALES, "report": REPORT_LOCALES, "holdout2": HOLDOUT2_LOCALES}
KINDS = ("name", "address", "iban", "phone", "email", "card", "ip", "metadata")
STOP = frozenset(w.capitalize() for w in ENGLISH_STOP_WORDS)
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


def generate(n: int, seed: int, locales: tuple[str, ...] = LOCALES) -> list[Seeded]:
    """n conversations, each a template filled by one locale's Faker (seeded)."""
    rng = random.Random(seed)
    fakers = {loc: Faker(loc) for loc in locales}
    for i, fake in enumerate(fakers.values()):
        fake.seed_instance(seed + i)
    out: list[Seeded] = []
    for i in range(n):
        fake = fakers[locales[(i // len(TEMPLATES)) % len(locales)]]
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
    if kind == "name":  # a stop word ("The" of "Mohammed The Elder") names no one, and a
        # decoy is the template's own word ("Jordan Lane" and "the Jordan conference")
        words = [
            w
            for w in value.split()
            if len(w) > 2 and w[0].isupper() and w not in STOP and w not in DECOYS
        ]
        return any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text) for w in words)
    if kind == "address":
        parts = value.split(",")
        street = ",".join(parts[:2]) if parts[0].strip().isdigit() else parts[0]  # "63, avenue …"
        return street in text
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


async def run_service(seeded: list[Seeded], out: Path) -> dict[str, str]:
    """Run the service's path in-process and return what each view shows, by place.

    Ingest (parse, metadata allow-list, scrub, offline summary, embedding: what the stream
    stores), the Assigner over an embedded store, the offline namer on every cluster as the
    name consumer runs it, the API's /clusters and /clusters/{id} (read_model), and the
    service's export (export_store).
    """
    settings = Settings(
        embedder=EmbedderSettings(kind="static"), store=StoreSettings(path=out / "store")
    )
    insight = build_insight(settings, offline=True)
    summariser = insight.summariser
    records = [
        RawRecord(value=s.conversation.model_dump_json().encode(), source=f"bench/0/{i}")
        for i, s in enumerate(seeded)
    ]
    result = await ingest(
        records,
        summarise=summariser.summarise,
        summarise_batch=summariser.summarise_batch
        if isinstance(summariser, BatchSummariser)
        else None,
        embedder=insight.embedder,
        max_bytes=settings.kafka.max_message_bytes,
        concurrency=4,
        metadata_keys=settings.privacy.metadata_keys,
    )
    shown = settings.clustering.min_cluster_size_shown
    store = build_store(settings, insight.embedder.dim)
    Assigner(store, assign_params(settings), min_size_shown=shown).process(result.embedded)

    async def publish(events: list[ClusterEvent]) -> None:
        return None

    ids = [c.cluster_id for c in store.list_clusters()]
    await name_due_clusters(
        store, ids, namer=insight.namer, min_size_shown=shown, write_lock=asyncio.Lock(),
        publish=publish,
    )  # fmt: skip
    service = cast(StreamService, SimpleNamespace(store=store, settings=settings))
    views = [cluster_view(c, min_size_shown=shown) for c in store.list_clusters()]
    details = [cluster_detail(service, v.id) for v in views]
    export_store(store, out / "export", min_size_shown=shown)
    exported = [p for p in (out / "export").rglob("*") if p.is_file()]
    return {
        "stream store": "\n".join(e.model_dump_json() for e in result.embedded),
        "API /clusters": "\n".join(v.model_dump_json() for v in views),
        "API /clusters/{id}": "\n".join(d.model_dump_json() for d in details),
        "service export": "\n".join(p.read_text("utf-8", "replace") for p in exported),
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
    """The scrub's cost per conversation, short and long, best of 3 (no memo: each text new)."""
    from kura_stream.pii_addresses import address_spans
    from kura_stream.pii_detectors import iban_spans
    from kura_stream.pii_names import name_spans as names

    corpora = {
        "short (MultiWOZ turns)": [[t.text] for t in load_multiwoz(4 * n, seed=1)],
        "long (ShareGPT)": [
            [m.content for m in c.messages] for c in load_sharegpt_conversations(n)
        ],
    }
    old = tuple(d for d in _DETECTORS if d not in (names, address_spans, iban_spans))
    _scrub("warm up Fatima Khan, 020 7019 9577, my name is", _DETECTORS)
    print("\n| conversations | n | chars (mean) | scrub ms | without names, addresses, IBANs "
          "| ms per 1,000 chars |\n| --- | ---: | ---: | ---: | ---: | ---: |")  # fmt: skip
    for label, convs in corpora.items():
        cost = {"before": float("inf"), "after": float("inf")}
        for _ in range(3):
            for which, detectors in (("before", old), ("after", _DETECTORS)):
                started = time.perf_counter()
                for conv in convs:
                    for text in conv:
                        _scrub(text, detectors)
                took = (time.perf_counter() - started) / len(convs) * 1e3
                cost[which] = min(cost[which], took)
        chars = statistics.mean(sum(len(t) for t in conv) for conv in convs)
        print(f"| {label} | {len(convs)} | {chars:,.0f} | {cost['after']:.3f} | "
              f"{cost['before']:.3f} | {cost['after'] / chars * 1e3:.3f} |")  # fmt: skip


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sharegpt", type=int, default=300)
    parser.add_argument(
        "--locales", choices=tuple(LOCALE_SETS), default="tune",
        help=f"tune (rounds 1-2 tuned on it, seeds 7 and 11): {', '.join(LOCALES)}; report "
        f"(held out in round 2, seed 2024; round 3 tuned on it): {', '.join(REPORT_LOCALES)}; "
        f"holdout2 (held out from round 3 on, seed 31337; never tuned on): "
        f"{', '.join(HOLDOUT2_LOCALES)}",
    )  # fmt: skip
    args = parser.parse_args()
    limit_blas_threads()
    seeded = generate(args.n, args.seed, LOCALE_SETS[args.locales])
    print(f"seed {args.seed}, {args.n} conversations, locales {args.locales}")
    detector_table(seeded)
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            places = asyncio.run(run_pipeline(seeded, Path(tmp)))
            places |= asyncio.run(run_service(seeded, Path(tmp)))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    places["logs (DEBUG)"] = log.getvalue()
    leak_table(seeded, places)
    if args.sharegpt:
        sharegpt_names(args.sharegpt)
        timing(args.sharegpt)


if __name__ == "__main__":
    main()
