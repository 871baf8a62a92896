"""`kura-stream models fetch|check`: set up the local embedding models and try them."""

from __future__ import annotations

import time

import numpy as np
import typer

from kura_stream.adapters import model_files
from kura_stream.adapters.embedders import EmbedderError, make_embedder
from kura_stream.adapters.llm_weights import ModelIntegrityError
from kura_stream.settings import Settings

app = typer.Typer(no_args_is_help=True)

_SENTENCE = "How do I reset the password of my email account?"
_SPEED_TEXTS = [
    f"Customer {i} asks how to {verb} their {thing} before the {when}."
    for i, (verb, thing, when) in enumerate(
        (v, t, w)
        for v in ("reset", "cancel", "upgrade", "renew", "transfer")
        for t in ("subscription", "account", "flight booking", "insurance policy")
        for w in ("weekend", "deadline", "next invoice", "holiday", "end of the month")
    )
]


@app.command()
def fetch() -> None:
    """Fetch, verify and extract MiniLM's ONNX graph, distil the static model; skip intact ones."""
    settings = Settings()
    models_dir = settings.embedder.models_dir
    typer.echo(f"models folder: {models_dir}")
    started = time.perf_counter()
    try:
        steps = model_files.ensure_models(models_dir)
    except (EmbedderError, ModelIntegrityError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from err
    for step in steps:
        typer.echo(f"  {step.name:<7} {step.action:<9} {step.seconds:6.1f}s  {step.detail}")
        typer.echo(f"  {'':<7} -> {step.path}")
    typer.echo(f"done in {time.perf_counter() - started:.1f}s")


@app.command()
def check(
    openai: bool = typer.Option(
        False, "--openai", help="Also try the OpenAI-compatible endpoint (KURA_EMBEDDER_OPENAI_*)."
    ),
) -> None:
    """Load each local embedder, embed a sentence, print its dims and speed."""
    settings = Settings()
    kinds = ["minilm", "static", *(["openai"] if openai else [])]
    failed = False
    for kind in kinds:
        embedder_settings = settings.embedder.model_copy(update={"kind": kind})
        try:
            started = time.perf_counter()
            embedder = make_embedder(settings.model_copy(update={"embedder": embedder_settings}))
            loaded_s = time.perf_counter() - started
            vector = embedder.embed([_SENTENCE])[0]
            started = time.perf_counter()
            embedder.embed(_SPEED_TEXTS)
            rate = len(_SPEED_TEXTS) / (time.perf_counter() - started)
        except EmbedderError as err:
            typer.echo(f"{kind:<7} FAILED: {err}", err=True)
            failed = True
            continue
        typer.echo(
            f"{kind:<7} {embedder.dim:4d} dims  norm {float(np.linalg.norm(vector)):.4f}  "
            f"load {loaded_s:5.2f}s  {rate:8.0f} sentences/s  {embedder.name}"
        )
    if failed:
        raise typer.Exit(1)
