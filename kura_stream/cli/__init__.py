"""The `kura-stream` command line."""

from __future__ import annotations

import logging

import typer

from kura_stream.cli import batch, broker, demo, llm, models, service
from kura_stream.cli.tui import tui

app = typer.Typer(
    name="kura-stream",
    help="Continuous, Clio-style insight into what people ask chatbots.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(broker.app, name="broker", help="The local Apache Kafka broker (KRaft, 127.0.0.1).")
app.add_typer(llm.app, name="llm", help="The local OpenAI-compatible LLM server (llama.cpp).")
app.add_typer(models.app, name="models", help="Local embedding models: fetch, distil, check.")
app.command("demo")(demo.demo)
app.command("batch")(batch.batch)
app.command("tui")(tui)
for command in service.app.registered_commands:
    app.registered_commands.append(command)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One INFO line per HTTP request (readiness polls, API calls) drowns everything else.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def main() -> None:
    """Entry point of the `kura-stream` script."""
    app()
