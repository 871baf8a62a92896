"""The local LLM server for real: structured output via openai + instructor, and management."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Annotated

import instructor
import pytest
from pydantic import BaseModel, Field

from kura_stream.adapters.llm.client import make_instructor_client
from kura_stream.adapters.llm_server import (
    LocalLLMServer,
    ModelIntegrityError,
    serves,
    verify_sha256,
)
from kura_stream.settings import LLMSettings

pytestmark = pytest.mark.llm
logger = logging.getLogger(__name__)

CONVERSATION = """\
User: My Flask app returns a 500 error when I post a form with a file upload. How do I debug it?
Assistant: Turn on debug mode, check the traceback, and make sure the form has
enctype="multipart/form-data" and you read request.files, not request.form.
User: That was it, the enctype was missing. Can you show the corrected template in Jinja?"""


class ConversationSummary(BaseModel):
    """What a user asked for in one conversation (a small Clio-style facet set)."""

    # The score comes first: in TOOLS mode the schema becomes a grammar that cannot bound an
    # integer, and as the last field the 0.5B model (at temperature 0) ran it on to
    # 1000000000000000, likely because the token it wanted next is one the grammar refuses.
    frustration: int = Field(ge=1, le=5, description="User frustration, 1 (none) to 5 (high).")
    # Empty strings are refused by the schema, so instructor re-asks instead of the test
    # failing on an answer the model would correct (it once gave languages=[""]).
    request: str = Field(
        min_length=1, description="One sentence: what the user asked the assistant to do."
    )
    task: str = Field(
        min_length=1, description="A short label for the kind of task, e.g. 'debugging'."
    )
    languages: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="Human and programming languages used in the conversation."
    )


def _messages() -> list[dict[str, str]]:
    return [
        {
            "role": "system",
            "content": "You summarise conversations between a user and an AI assistant.",
        },
        {"role": "user", "content": f"Summarise this conversation:\n\n{CONVERSATION}"},
    ]


# TOOLS (the default) only: JSON (json_object) and MD_JSON failed too often on the 0.5B model to
# gate a test run on them (see SUPPORTED_MODES). Temperature stays at the server's default, since
# at 0.0 a failed attempt is repeated word for word on every retry.
async def test_structured_output_validates(llm_settings: LLMSettings) -> None:
    client = make_instructor_client(llm_settings, mode=instructor.Mode.TOOLS)
    started = time.monotonic()
    summary = await client.chat.completions.create(
        response_model=ConversationSummary,
        messages=_messages(),
        max_retries=3,
    )
    logger.info("summary in %.1fs: %r", time.monotonic() - started, summary)
    assert isinstance(summary, ConversationSummary)
    assert summary.request.strip()
    assert summary.task.strip()
    assert summary.languages
    assert all(lang.strip() for lang in summary.languages)
    assert 1 <= summary.frustration <= 5


def test_start_twice_is_harmless_and_status_reports_it(llm_server: LocalLLMServer | None) -> None:
    if llm_server is None:
        pytest.skip("KURA_LLM_BASE_URL names an external endpoint; no local server to manage")
    before = llm_server.status()
    assert before.running
    assert before.ready
    again = llm_server.start(timeout_s=30)
    assert again.pid == before.pid
    assert again.ready
    assert llm_server.status().to_dict() == before.to_dict()
    assert serves(before.base_url, before.alias)
    assert not serves(before.base_url, "some-other-model")


def test_sha256_check_rejects_a_corrupted_file(tmp_path: Path) -> None:
    good = b"GGUF" + bytes(range(256)) * 64
    path = tmp_path / "model.gguf"
    path.write_bytes(good[:-1] + b"\x00")  # one flipped byte at the end
    with pytest.raises(ModelIntegrityError):
        verify_sha256(path, hashlib.sha256(good).hexdigest())
    assert not path.exists()
