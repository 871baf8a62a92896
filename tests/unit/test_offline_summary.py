"""OfflineSummariser: honest facets without an LLM, deterministic, scrubbed."""

from __future__ import annotations

import pytest

from kura_stream.protocols import Summariser
from kura_stream.stages.offline_digest import code_regions, first_request
from kura_stream.stages.offline_labels import TASK_LABELS
from kura_stream.stages.offline_summary import (
    OfflineSummariser,
    key_phrases,
    programming_languages,
)
from kura_stream.stages.summarise import summarise
from tests.unit.test_embed_stage import Counting, TinyHashEmbedder
from tests.unit.test_summarise import conv


@pytest.fixture
def offline() -> OfflineSummariser:
    return OfflineSummariser(embedder=TinyHashEmbedder(dim=512))


async def test_fills_the_schema_honestly(offline: OfflineSummariser) -> None:
    assert isinstance(offline, Summariser)
    c = conv(
        "c1",
        "Hi there! Please translate this sentence into French. It goes in my letter. Thanks!",
        "Bien sûr : ...",
        "And into Spanish?",
    )
    s = await offline.summarise(c)
    assert s.request == "Please translate this sentence into French. It goes in my letter."
    assert s.summary == s.request
    assert s.task == "Translate text between languages"
    assert s.languages == ("english",)
    assert s.concerning_score is None
    assert s.user_frustration is None
    assert s.assistant_errors == ()
    assert s.summariser == offline.name == "offline:v3+fake:tiny-hash"
    assert "translate sentence french" in s.facets["key_phrases"]  # type: ignore[operator]


async def test_topic_is_a_fixed_label(offline: OfflineSummariser) -> None:
    s = await offline.summarise(conv("c", "What food should I be cooking for a dinner party?"))
    assert s.topic == "Food and cooking"
    assert s.task in TASK_LABELS


async def test_detects_human_and_programming_languages(offline: OfflineSummariser) -> None:
    c = conv(
        "c",
        "¿Cómo puedo invertir una lista en Python? Necesito ayuda con este código:\n"
        "```py\nxs = [1, 2]\nprint(xs[::-1])\n```",
        "Puedes usar `reversed()`:\n```\nconst ys = xs.reverse();\nconsole.log(ys);\n```",
    )
    s = await offline.summarise(c)
    assert s.languages == ("spanish", "python", "javascript")
    assert s.request == "¿Cómo puedo invertir una lista en Python? Necesito ayuda con este código:"


def test_code_regions_and_keywords() -> None:
    text = "Fix this:\n    def f(x):\n        return x\nand `SELECT * FROM t` please"
    prose, blocks = code_regions(text)
    assert "def f" not in prose
    assert "Fix this:" in prose
    assert set(programming_languages(blocks)) == {"python", "sql"}
    assert programming_languages([("text", "select from the menu")]) == []
    assert programming_languages([("rs", "fn main() {}")]) == ["rust"]


def test_first_request_is_cleaned_and_cut() -> None:
    assert first_request("hello,  how are\nyou? I am fine. Really.") == "how are you? I am fine."
    assert first_request("```python\nprint(1)\n```") == "(code only)"
    long = "word " * 200
    assert len(first_request(long)) <= 243
    assert first_request(long).endswith("...")


def test_key_phrases_prefer_repeated_phrases() -> None:
    phrases = key_phrases("pandas dataframe merge. pandas dataframe join. the weather")
    assert phrases[0] == "pandas dataframe"


async def test_personal_data_never_reaches_the_summary(offline: OfflineSummariser) -> None:
    c = conv("c", "Email jane.doe@example.com about my card 4111 1111 1111 1111 please")
    s = await offline.summarise(c)
    dumped = s.model_dump_json()
    assert "jane.doe" not in dumped
    assert "4111" not in dumped
    assert "[EMAIL]" in (s.request or "")


async def test_deterministic_and_short_texts_have_no_guessed_language(
    offline: OfflineSummariser,
) -> None:
    c = conv("c", "ok")
    a = await offline.summarise(c)
    b = await OfflineSummariser(embedder=TinyHashEmbedder(dim=512)).summarise(c)
    assert a == b
    assert a.languages == ()


async def test_labels_are_embedded_once_and_the_stage_works(offline: OfflineSummariser) -> None:
    emb = Counting(TinyHashEmbedder())
    s = OfflineSummariser(embedder=emb)
    result = await summarise([conv(f"c{i}", f"question {i}") for i in range(3)], summariser=s)
    assert len(result.summaries) == 3
    assert not result.failures
    assert len(emb.calls) == 1 + 3  # the label lists once, then one request per conversation


def test_warm_up_loads_what_the_first_batch_would() -> None:
    from kura_stream.stages.phrases import stop_words

    emb = Counting(TinyHashEmbedder())
    s = OfflineSummariser(embedder=emb)
    stop_words.cache_clear()
    s.warm_up()
    assert len(emb.calls) == 1  # the label lists
    assert s._identifier is not None
    assert stop_words.cache_info().currsize == 1  # scikit-learn's stop words, imported


def test_custom_labels_change_the_name() -> None:
    emb = TinyHashEmbedder()
    custom = OfflineSummariser(embedder=emb, task_labels=["A"], topic_labels=["B"])
    assert custom.name != OfflineSummariser(embedder=emb).name
    with pytest.raises(ValueError, match="must not be empty"):
        OfflineSummariser(embedder=emb, task_labels=[])


async def test_batch_equals_one_by_one() -> None:
    from datetime import UTC, datetime

    from kura_stream.stages.offline_summary import OfflineSummariser
    from kura_stream.types import Conversation, Message
    from tests.fakes.hash_embedder import HashEmbedder

    now = datetime.now(UTC)
    convs = [
        Conversation(
            chat_id=f"c{i}",
            created_at=now,
            messages=(Message(created_at=now, role="user", content=text),),
        )
        for i, text in enumerate(["Fix my python import error", "Write a poem about rain"])
    ]
    offline = OfflineSummariser(embedder=HashEmbedder(dim=64))
    batch = await offline.summarise_batch(convs)
    single = [await offline.summarise(c) for c in convs]
    assert batch == single


def test_labels_of_a_batch_are_those_of_each_vector(offline: OfflineSummariser) -> None:
    import numpy as np

    from kura_stream.stages.offline_labels import confident_label

    rng = np.random.default_rng(0)
    task_vectors = offline._labels()[0]
    near = task_vectors[:5] + 0.01 * rng.standard_normal((5, task_vectors.shape[1]))
    vectors = np.vstack([near, rng.standard_normal((20, task_vectors.shape[1]))])
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    want = [confident_label(v, task_vectors, offline.task_labels) for v in vectors]
    assert offline._batch_labels(vectors, offline.task_labels, 0) == want
    assert want[:5] == list(offline.task_labels[:5])
    assert offline._batch_labels(vectors[:0], offline.task_labels, 0) == []
