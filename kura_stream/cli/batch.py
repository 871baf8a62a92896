"""`kura-stream batch INPUT --out DIR`: Kura's whole pipeline over a file, with progress bars."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from kura_stream.settings import Settings

if TYPE_CHECKING:
    from kura_stream.types import Conversation

console = Console(stderr=True)


def _base_k(value: str) -> int | Literal["auto"] | None:
    """--k: a positive number, "auto" or "kura" (None: Kura's n/10)."""
    if value in ("auto", "kura"):
        return "auto" if value == "auto" else None
    if not value.isdigit() or int(value) < 1:
        raise typer.BadParameter(f"--k must be a positive number, auto or kura, not {value!r}")
    return int(value)


def _load(input_path: Path, fmt: str, limit: int) -> list[Conversation]:
    """The file's conversations (the first `limit`, if not 0); says which records it skipped."""
    from kura_stream.loaders import load_conversations

    loaded = load_conversations(input_path, fmt)  # type: ignore[arg-type]
    conversations = loaded.conversations[:limit] if limit else loaded.conversations
    for error in loaded.errors[:10]:
        console.print(f"[yellow]skipped[/] {error.source}:{error.line_or_index}: {error.reason}")
    if len(loaded.errors) > 10:
        console.print(f"[yellow]... and {len(loaded.errors) - 10} more records skipped[/]")
    console.print(f"{len(conversations)} conversations from {input_path}")
    return conversations


@contextlib.contextmanager
def _progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """One bar per stage; yields the progress(stage, done, total) callback that updates it."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        yield progress


def batch(
    input_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Conversations file."),
    out: Path = typer.Option(..., "--out", help="Folder for the results."),
    offline: bool = typer.Option(False, "--offline", help="No LLM: offline summaries and names."),
    fmt: str = typer.Option("auto", "--format", help="auto, jsonl, kura, claude or sharegpt."),
    limit: int = typer.Option(0, "--limit", help="Only the first N conversations (0: all)."),
    max_top: int = typer.Option(10, "--top", help="Top-level clusters at most."),
    k: str = typer.Option(
        "auto", "--k", help="Base clusters: a number, auto (chosen from the data) or kura (n/10)."
    ),
) -> None:
    """Summarise, cluster, name, build the hierarchy and the map; write files and print the tree."""
    from kura_stream.adapters.blas import limit_blas_threads
    from kura_stream.batch import run_batch
    from kura_stream.bootstrap import build_insight
    from kura_stream.tree import rich_tree

    limit_blas_threads()
    settings = Settings()
    conversations = _load(input_path, fmt, limit)
    out.mkdir(parents=True, exist_ok=True)
    insight = build_insight(settings, offline=offline)
    started = time.perf_counter()
    with _progress_bar() as progress:
        result = asyncio.run(
            run_batch(
                conversations,
                insight=insight,
                out=out,
                cache_path=settings.cache_dir / "batch-cache.sqlite",
                min_size_shown=settings.clustering.min_cluster_size_shown,
                max_top=max_top,
                k=_base_k(k),
                concurrency=settings.llm.concurrency,
                progress=progress,
                metadata_keys=settings.privacy.metadata_keys,
            )
        )
    Console().print(rich_tree(result.clusters, settings.clustering.min_cluster_size_shown))
    for chat_id, reason in result.failures[:10]:
        console.print(f"[red]not summarised[/] {chat_id}: {reason}")
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    console.print(
        f"{len(result.summaries)} summarised, {len(result.failures)} failed, "
        f"{sum(1 for c in result.clusters if c.level == 0)} base clusters, "
        f"{len(result.clusters)} in all; {time.perf_counter() - started:.1f}s ({stages})"
    )
    console.print(f"wrote {out}/clusters.json, assignments.jsonl, summaries.jsonl, kura/")
