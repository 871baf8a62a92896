"""The `kura-stream` command line."""

from __future__ import annotations

import logging

import typer

from kura_stream.cli import broker, llm, models

app = typer.Typer(
    name="kura-stream",
    help="Continuous, Clio-style insight into what people ask chatbots.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(broker.app, name="broker", help="The local Apache Kafka broker (KRaft, 127.0.0.1).")
app.add_typer(llm.app, name="llm", help="The local OpenAI-compatible LLM server (llama.cpp).")
app.add_typer(models.app, name="models", help="Local embedding models: fetch, distil, check.")


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Entry point of the `kura-stream` script."""
    app()
