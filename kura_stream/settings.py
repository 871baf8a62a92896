"""The one Settings object: every knob of kura-stream, read from KURA_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    """Where the broker is and which topics kura-stream uses (env: KURA_KAFKA_<FIELD>)."""

    bootstrap: str = "127.0.0.1:9092"
    """Comma-separated bootstrap servers."""
    topic_conversations: str = "conversations"
    """Conversations in, one JSON Conversation per message, key = chat_id."""
    topic_embedded: str = "conversations.embedded"
    """Internal: summarised and embedded conversations, from the summarise to the assign
    consumer. One partition, so exactly one assigner is active (others stand by)."""
    topic_dlq: str = "conversations.dlq"
    """Dead letters: the original bytes, the reason and the stage that refused them."""
    topic_assignments: str = "assignments"
    """Assignments out: chat_id, cluster_id, similarity, new-cluster flag, time."""
    topic_cluster_events: str = "cluster-events"
    """Cluster lifecycle events (created, grown, renamed, merged, split, map updated)."""
    topic_commands: str = "commands"
    """Commands in: recompute, rename."""
    partitions: int = Field(default=4, ge=1)
    """Partitions for topics kura-stream creates."""
    group_id: str = "kura-stream"
    """Consumer group prefix; each consumer appends its stage name."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """Security protocol for the broker connection."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism, when the security protocol uses SASL."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: SecretStr | None = None
    """SASL password (never logged)."""
    max_message_bytes: int = Field(default=1_000_000, ge=1024)
    """Messages larger than this go to the dead-letter topic as oversized."""
    batch_max_records: int = Field(default=512, ge=1)
    """Records a consumer takes per batch (bounds memory: backpressure, not buffering). 512
    rather than 256: fewer, better-packed embedding calls (bench_throughput, MiniLM: 79% of
    the embedder's own speed against 75%)."""


class StoreSettings(_Section):
    """Where clusters and conversations live (env: KURA_STORE_<FIELD>)."""

    qdrant_url: str | None = None
    """A Qdrant server URL; when unset, the embedded store at `path` is used."""
    qdrant_api_key: SecretStr | None = None
    """API key for the Qdrant server (never logged)."""
    path: Path = REPO_ROOT / ".data" / "store"
    """Folder of the embedded, durable store (Qdrant's engine in-process)."""
    collection_prefix: str = "kura"
    """Prefix of the two collections: <prefix>_conversations and <prefix>_clusters."""


class EmbedderSettings(_Section):
    """Which embedding model turns summaries into vectors (env: KURA_EMBEDDER_<FIELD>)."""

    kind: Literal["minilm", "static", "openai"] = "minilm"
    """minilm: all-MiniLM-L6-v2 on onnxruntime; static: model2vec distilled from it;
    openai: an OpenAI-compatible /embeddings endpoint."""
    models_dir: Path = REPO_ROOT / ".cache" / "models"
    """Where set-up puts model files (ONNX export, distilled static model)."""
    batch_size: int = Field(default=64, ge=1)
    """Texts per embedding call."""
    threads: int = Field(default=1, ge=1)
    """Intra-op threads for onnxruntime (one was faster beside another busy process)."""
    worker_process: bool | None = None
    """Embed in a worker process of its own. None: yes for minilm in `serve` (beside the busy
    event loop it ran 30% slower in-process), no elsewhere (static embeds a batch faster than
    the hand-over; openai waits on the network)."""
    openai_base_url: str | None = None
    """Base URL of the embeddings endpoint (kind=openai); defaults to the LLM base URL."""
    openai_model: str = "text-embedding-3-small"
    """Embedding model name at that endpoint (kind=openai)."""
    openai_api_key: SecretStr | None = None
    """API key for the embeddings endpoint (never logged); defaults to the LLM key."""


class LLMSettings(_Section):
    """The OpenAI-compatible LLM for summaries and names (env: KURA_LLM_<FIELD>)."""

    base_url: str = "http://127.0.0.1:8088/v1"
    """Base URL of any OpenAI-compatible endpoint; the local server listens here by default."""
    model: str = "qwen2.5-0.5b-instruct"
    """Model name sent with each request (the local server's alias)."""
    api_key: SecretStr = SecretStr("local")
    """API key (never logged); the local server accepts any."""
    concurrency: int = Field(default=1, ge=1)
    """Requests in flight at once (the local llama.cpp server has one slot: queued requests
    count against the timeout)."""
    mode: Literal["tool_call", "markdown_json_mode", "json_mode"] = "tool_call"
    """How instructor asks for structure. tool_call held up best with the 0.5B model;
    markdown_json_mode generates about 5x faster on llama.cpp (no grammar), but the small
    model sometimes answers with the schema's shape (re-asked)."""
    timeout_s: float = Field(default=120.0, gt=0)
    """Per-request timeout, seconds."""
    max_retries: int = Field(default=3, ge=0)
    """Retries with backoff on a failed or invalid response."""
    local_model: Literal["qwen2.5-0.5b", "qwen2.5-1.5b"] = "qwen2.5-0.5b"
    """Which pinned GGUF `kura-stream llm start` serves."""
    local_port: int = 8088
    """Port of the local LLM server on 127.0.0.1."""
    local_threads: int = Field(default=2, ge=1)
    """CPU threads of the local LLM server."""
    local_ctx: int = Field(default=4096, ge=512)
    """Context window of the local LLM server, tokens."""


class ClusteringSettings(_Section):
    """Thresholds of incremental clustering (env: KURA_CLUSTERING_<FIELD>)."""

    join_similarity: float | None = Field(default=None, ge=-1.0, le=1.0)
    """A conversation at least this cosine-similar to a centroid joins that cluster (see
    join_margin). None: learnt per cluster from its members (mean - join_z x std of their
    similarities to it, never below recent arrivals' mean similarity to it)."""
    birth_similarity: float | None = Field(default=None, ge=-1.0, le=1.0)
    """Outliers at least this similar to each other may found a cluster together. None:
    learnt from recent arrivals (the birth_quantile of their similarities to their
    (min_birth_size - 1)-th nearest neighbour among the last 1,000)."""
    join_z: float = Field(default=2.5, gt=0.0)
    """Learnt join threshold: standard deviations below a cluster's mean member similarity a
    newcomer may be (chosen on MultiWOZ and chatterbot: bench/bench_stream_quality.py)."""
    birth_quantile: float = Field(default=0.25, ge=0.0, le=1.0)
    """Learnt birth threshold: the quantile of recent arrivals' neighbour similarities (lower:
    births come easier)."""
    min_birth_size: int = Field(default=5, ge=2)
    """Outliers needed to found a new cluster."""
    join_margin: float = Field(default=0.1, ge=0.0, le=1.0)
    """With join_similarity set: a loose cluster takes a newcomer whose similarity reaches the
    cluster's cohesion (mean member similarity to its centroid) minus this, even below
    join_similarity. On diverse traffic (ShareGPT) after a recompute: 45% of newcomers left
    outliers instead of 91%; on MultiWOZ, whose clusters are tight, nothing changes."""
    join_floor: float = Field(default=0.3, ge=-1.0, le=1.0)
    """... but never below this similarity."""
    min_cluster_size_shown: int = Field(default=5, ge=1)
    """Clusters smaller than this are never shown by name (Clio's privacy floor)."""
    recompute_first_after: int = Field(default=300, ge=1)
    """A store that started with fewer conversations than this is recomputed as soon as it
    holds this many, so a fresh service has clusters to join within minutes instead of
    leaving most arrivals outliers until the regular schedule; then again each time it has
    doubled (600, 1,200, ...) until it passes recompute_every_n; then the schedule below."""
    recompute_every_s: float = Field(default=600.0, gt=0)
    """Full recompute at least this often (seconds)."""
    recompute_every_n: int = Field(default=5000, ge=1)
    """... or after this many new conversations, whichever comes first, ..."""
    recompute_growth: float = Field(default=0.1, ge=0.0)
    """... and at least this share of all stored conversations (a store of a million waits
    for 100,000 new ones, not 5,000: a recompute's cost grows with the store), ..."""
    recompute_outlier_share: float = Field(default=0.5, gt=0.0, le=1.0)
    """... or as soon as this share of all conversations waits as outliers (diverse traffic
    seldom reaches the join threshold before the first recompute), ..."""
    recompute_min_outliers: int = Field(default=500, ge=1)
    """... and at least this many do."""
    recompute_max_time_share: float = Field(default=0.25, gt=0.0, le=1.0)
    """Scheduled recomputes take at most this share of the time: after one that took T
    seconds, the next waits at least T x (1/share - 1). Requested ones run at once."""
    recompute_max_clusters: int = Field(default=2000, ge=2)
    """Most base clusters a recompute makes (one per 25 conversations up to this); when the
    stream has built more, the largest keep their ids and the rest merge into their nearest."""
    recompute_fit_sample: int = Field(default=50_000, ge=100)
    """A recompute fits k-means on at most this many conversations (a seeded sample), then
    places every one on its nearest centroid, so time and memory stay bounded as the store
    grows (bench/bench_recompute.py)."""
    top_level_clusters: int = Field(default=10, ge=1)
    """Number of top-level clusters the hierarchy reduces to."""


class ServiceSettings(_Section):
    """The running service's local HTTP API, /metrics and /health (env: KURA_SERVICE_<FIELD>)."""

    host: str = "127.0.0.1"
    """Interface of the HTTP API."""
    port: int = 8799
    """Port of the HTTP API."""
    summarise_consumers: int = Field(default=2, ge=1)
    """Summarise + embed consumers in this process (each takes a share of the conversations
    topic's partitions): while one embeds a batch, another parses and publishes its own."""
    names: Literal["offline", "llm"] = "offline"
    """Who names base clusters under `serve --offline` (summaries stay offline either way).
    offline: the offline namer, everywhere. llm: recomputes and new clusters get an offline
    name at once, and the name consumer renames them with the LLM in the background
    (`renamed` events); a recompute never waits on the LLM. Without --offline the LLM
    summarises and names everything, whatever this says."""
    export_dir: Path | None = None
    """The only folder `POST /export` (and `kura-stream export`) writes under; a request names
    a folder inside it. None: <data_dir>/exports."""


class PrivacySettings(_Section):
    """What of a conversation is kept besides its scrubbed text (env: KURA_PRIVACY_<FIELD>)."""

    metadata_keys: tuple[str, ...] = ()
    """Metadata keys kept (their string values scrubbed) by the service and by batch; every
    other key is dropped before summarising, so it reaches no summary, store, event or export.
    Default: none (metadata such as `customer_name` is personal data more often than not).
    Example: KURA_PRIVACY_METADATA_KEYS='["source", "language"]'."""


class Settings(BaseSettings):
    """All of kura-stream's configuration; nested sections read KURA_<SECTION>_<FIELD>."""

    model_config = SettingsConfigDict(
        env_prefix="KURA_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        frozen=True,
        extra="ignore",
    )

    kafka: KafkaSettings = KafkaSettings()
    """Kafka connection and topics."""
    store: StoreSettings = StoreSettings()
    """Cluster store."""
    embedder: EmbedderSettings = EmbedderSettings()
    """Embedding model."""
    llm: LLMSettings = LLMSettings()
    """LLM endpoint and the local server."""
    clustering: ClusteringSettings = ClusteringSettings()
    """Incremental clustering thresholds."""
    service: ServiceSettings = ServiceSettings()
    """Local HTTP API of the running service."""
    privacy: PrivacySettings = PrivacySettings()
    """Which metadata keys are kept."""
    data_dir: Path = REPO_ROOT / ".data"
    """Runtime state: broker logs, PID files, caches, checkpoints."""
    cache_dir: Path = REPO_ROOT / ".cache"
    """Downloads and builds: Kafka jars, model files, the LLM build."""
    log_format: Literal["text", "json"] = "text"
    """Log lines for people (text) or one JSON object per line for log pipelines (json)."""
