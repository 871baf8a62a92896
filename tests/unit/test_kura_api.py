"""Kura's module-level API on kura_stream: model resolution, loaders, stages, visualisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from kura_stream.api import BaseCluster
from kura_stream.checkpoints import JSONLCheckpointManager
from kura_stream.cluster import (
    ClusterDescriptionModel,
    HDBSCANClusteringMethod,
    KmeansClusteringModel,
    generate_base_clusters_from_conversation_summaries,
)
from kura_stream.dimensionality import HDBUMAP, reduce_dimensionality_from_clusters
from kura_stream.kura_models import resolve_llm
from kura_stream.meta_cluster import MetaClusterModel, reduce_clusters_from_base_clusters
from kura_stream.settings import LLMSettings, Settings
from kura_stream.summarisation import SummaryModel, summarise_conversations
from kura_stream.types import Conversation, ProjectedCluster
from kura_stream.visualization import load_clusters, visualise_pipeline_results
from tests.fakes.hash_embedder import HashEmbedder

QUICKSTART_DATA = Path(__file__).resolve().parent.parent / "fixtures" / "kura_quickstart_data"


@pytest.fixture
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KURA_LLM_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.usefixtures("no_endpoint")
def test_model_strings_resolve_to_the_endpoint_or_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_llm("openai/gpt-4o-mini") is None  # no endpoint: offline
    local = Settings(llm=LLMSettings(base_url="http://127.0.0.1:9/v1"))
    llm = resolve_llm("openai/gpt-4o-mini", local)
    assert llm is not None
    assert (llm.base_url, llm.model) == ("http://127.0.0.1:9/v1", "gpt-4o-mini")
    assert resolve_llm("offline", local) is None
    monkeypatch.setenv("OPENAI_BASE_URL", "http://gateway/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    llm = resolve_llm("Qwen/Qwen2.5-7B-Instruct")
    assert llm is not None
    assert (llm.base_url, llm.model) == ("http://gateway/v1", "Qwen/Qwen2.5-7B-Instruct")
    assert llm.api_key == SecretStr("sk-test")


def test_from_hf_dataset_reads_local_folders_files_and_saved_datasets(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    folder = Conversation.from_hf_dataset(str(QUICKSTART_DATA), split="train")
    assert len(folder) == 120
    assert all(c.messages[0].role == "user" for c in folder)
    files = Conversation.from_hf_dataset(
        "json", data_files=str(QUICKSTART_DATA / "train.jsonl"), max_conversations=5
    )
    assert [c.chat_id for c in files] == [c.chat_id for c in folder[:5]]
    rows = [json.loads(line) for line in (QUICKSTART_DATA / "train.jsonl").open()][:7]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    saved = Conversation.from_hf_dataset(
        str(tmp_path / "saved"), metadata_fn=lambda row: {"topic": row["chat_id"][:3]}
    )
    assert [c.chat_id for c in saved] == [r["chat_id"] for r in rows]
    assert saved[0].metadata == {"topic": rows[0]["chat_id"][:3]}


def test_conversation_dump_round_trip(tmp_path: Path) -> None:
    conversations = Conversation.from_hf_dataset(str(QUICKSTART_DATA), max_conversations=3)
    Conversation.generate_conversation_dump(conversations, str(tmp_path / "dump.json"))
    assert Conversation.from_conversation_dump(str(tmp_path / "dump.json")) == conversations


def test_unsupported_kura_arguments_say_so() -> None:
    with pytest.raises(NotImplementedError, match="n_components"):
        HDBUMAP(n_components=3)
    with pytest.raises(NotImplementedError, match="clustering_model"):
        MetaClusterModel(clustering_model=KmeansClusteringModel(12))
    with pytest.raises(NotImplementedError, match="metric"):
        HDBSCANClusteringMethod(metric="manhattan")


async def test_summarise_refuses_custom_prompts() -> None:
    with pytest.raises(NotImplementedError, match="prompt"):
        await summarise_conversations([], model=SummaryModel(model="offline"), prompt="Rate it")


def test_clustering_methods_group_kura_items() -> None:
    items = [{"embedding": [1.0, 0.0] if i < 6 else [0.0, 1.0], "item": i} for i in range(12)]
    groups = KmeansClusteringModel(clusters_per_group=6).cluster(items)
    assert sorted(sorted(g) for g in groups.values()) == [list(range(6)), list(range(6, 12))]
    assert HDBSCANClusteringMethod(min_cluster_size=3).options()["method"] == "hdbscan"


@pytest.mark.usefixtures("no_endpoint")
async def test_pipeline_with_kura_kmeans_builds_a_hierarchy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    embedder = HashEmbedder(dim=64)
    conversations = Conversation.from_hf_dataset(str(QUICKSTART_DATA))
    checkpoints = JSONLCheckpointManager(tmp_path / "ck")
    summaries = await summarise_conversations(
        conversations,
        model=SummaryModel(embedding_model=embedder),
        checkpoint_manager=checkpoints,
    )
    assert len(summaries) == 120
    base = await generate_base_clusters_from_conversation_summaries(
        summaries,
        embedding_model=embedder,
        clustering_method=KmeansClusteringModel(),  # Kura's k = n / 10 = 12 > max_clusters
        checkpoint_manager=checkpoints,
        model=ClusterDescriptionModel(),
    )
    assert len(base) == 12
    assert all(isinstance(c, BaseCluster) and c.count == len(c.chat_ids) for c in base)
    meta_model = MetaClusterModel(embedding_model=embedder, max_clusters=4)
    reduced = await reduce_clusters_from_base_clusters(
        base, model=meta_model, checkpoint_manager=checkpoints, summaries=summaries
    )
    roots = [c for c in reduced if c.parent_id is None]
    assert 2 <= len(roots) <= 4
    assert sum(c.count for c in roots) == 120
    assert all(len(c.chat_ids) == c.count for c in reduced)  # parents carry their members
    projected = await reduce_dimensionality_from_clusters(
        reduced, model=HDBUMAP(embedding_model=embedder), checkpoint_manager=checkpoints
    )
    assert all(isinstance(c, ProjectedCluster) for c in projected)
    assert {(c.x_coord, c.y_coord) for c in projected} != {(0.0, 0.0)}
    assert [c.chat_ids for c in projected] == [c.chat_ids for c in reduced]

    visualise_pipeline_results(projected, style="basic")
    basic = capsys.readouterr().out
    assert basic.startswith("Clusters (120 conversations)")
    visualise_pipeline_results(projected, style="enhanced")
    assert "Root clusters:" in capsys.readouterr().out
    visualise_pipeline_results(projected, style="rich")
    assert "Cluster statistics" in capsys.readouterr().out
    with pytest.raises(ValueError, match="Invalid style"):
        visualise_pipeline_results(projected, style="fancy")  # type: ignore[arg-type]
    on_disk = load_clusters(checkpoints.get_checkpoint_path("meta_clusters"))
    assert {c.id for c in on_disk} == {c.id for c in reduced}


def test_visualise_reads_kura_own_checkpoints(tmp_path: Path) -> None:
    rows = [
        {"id": "p", "name": "Code", "description": "d", "slug": "code", "chat_ids": ["1", "2"],
         "parent_id": None, "x_coord": 1.0, "y_coord": 2.0, "level": 1},
        {"id": "c", "name": "Python", "description": "d", "slug": "py", "chat_ids": ["1", "2"],
         "parent_id": "p", "x_coord": 1.0, "y_coord": 2.0, "level": 0},
    ]  # fmt: skip
    path = tmp_path / "dimensionality.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    clusters = load_clusters(path)
    assert [(c.count, c.x, c.y, c.parent_id) for c in clusters] == [
        (2, 1.0, 2.0, None),
        (2, 1.0, 2.0, "p"),
    ]
