"""Settings: defaults, environment and dotenv precedence, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import LOCAL_S3_SECRET, SettingsError, load_settings
from features.versions import model_name_of, model_spec, model_version_of


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Point at an empty dotenv file so a developer's config/local.env cannot change the outcome.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    monkeypatch.setenv("SPOTREC_ENV_FILE", str(empty))


def test_defaults_point_at_the_local_servers() -> None:
    s = load_settings()
    assert s.kafka.bootstrap == "127.0.0.1:19092"
    assert s.kafka.url == "kafka://127.0.0.1:19092"
    assert s.cassandra.port == 19042
    assert s.s3.url == "http://127.0.0.1:18333"
    assert s.kafka.topic_partitions == 8


def test_environment_overrides_and_is_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTREC_KAFKA_PORT", "29092")
    monkeypatch.setenv("SPOTREC_S3_ENDPOINT_URL", "https://s3.example.org")
    monkeypatch.setenv("SPOTREC_S3_SECRET_ACCESS_KEY", "its-own-secret")  # required there
    s = load_settings()
    assert s.kafka.port == 29092
    assert s.s3.url == "https://s3.example.org"


def test_environment_wins_over_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / "local.env"
    env_file.write_text("# comment\nSPOTREC_KAFKA_PORT=1111\nSPOTREC_CASSANDRA_KEYSPACE='music'\n")
    monkeypatch.setenv("SPOTREC_ENV_FILE", str(env_file))
    monkeypatch.setenv("SPOTREC_KAFKA_PORT", "2222")
    s = load_settings()
    assert s.kafka.port == 2222
    assert s.cassandra.keyspace == "music"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPOTREC_KAFKA_PORT", "not-a-port"),
        ("SPOTREC_KAFKA_PORT", "70000"),
        ("SPOTREC_KAFKA_HOST", ""),
        ("SPOTREC_CASSANDRA_KEYSPACE", "Bad-Name"),
        ("SPOTREC_LOG_LEVEL", "LOUD"),
        ("SPOTREC_S3_BUCKET", "x"),
        ("SPOTREC_WORKER_SESSION_TIMEOUT_S", "2"),
        ("SPOTREC_WORKER_HEARTBEAT_INTERVAL_S", "30"),
    ],
)
def test_malformed_value_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_missing_env_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPOTREC_ENV_FILE", str(tmp_path / "nope.env"))
    with pytest.raises(SettingsError, match="SPOTREC_ENV_FILE"):
        load_settings()


def test_secrets_never_appear_in_output(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTREC_S3_SECRET_ACCESS_KEY", "hunter2-very-secret")
    monkeypatch.setenv("SPOTREC_CASSANDRA_PASSWORD", "hunter3-very-secret")
    s = load_settings()
    assert s.s3.secret_access_key.get_secret_value() == "hunter2-very-secret"
    shown = f"{s!r} {s} {s.redacted()}"
    assert "hunter2" not in shown
    assert "hunter3" not in shown
    # A malformed neighbour's error message does not leak the secret either.
    monkeypatch.setenv("SPOTREC_S3_PORT", "hunter2-very-secret")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "hunter2" not in str(err.value)


def test_the_s3_secret_has_a_default_for_the_local_server_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SPOTREC_S3_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.delenv("SPOTREC_S3_ENDPOINT_URL", raising=False)
    (tmp_path / "empty.env").write_text("")
    monkeypatch.setenv("SPOTREC_ENV_FILE", str(tmp_path / "empty.env"))
    assert load_settings().s3.secret_access_key.get_secret_value() == LOCAL_S3_SECRET
    monkeypatch.setenv("SPOTREC_S3_ENDPOINT_URL", "https://s3.eu-west-1.amazonaws.com")
    with pytest.raises(SettingsError, match="SPOTREC_S3_SECRET_ACCESS_KEY is required"):
        load_settings()
    monkeypatch.setenv("SPOTREC_S3_SECRET_ACCESS_KEY", "given")
    assert load_settings().s3.secret_access_key.get_secret_value() == "given"


def test_allowed_addresses_must_be_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOTREC_AUDIO_ALLOWED_ADDRESSES", '["127.0.0.1", "10.0.0.0/8"]')
    assert load_settings().audio.allowed_addresses == ("127.0.0.1", "10.0.0.0/8")
    monkeypatch.setenv("SPOTREC_AUDIO_ALLOWED_ADDRESSES", '["localhost"]')
    with pytest.raises(SettingsError, match="SPOTREC_AUDIO_ALLOWED_ADDRESSES"):
        load_settings()


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        s.kafka.port = 1


def test_the_default_model_is_musicnn(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test session pins a faster model for itself; the default is what a deployment gets.
    monkeypatch.delenv("SPOTREC_MODEL_VERSION", raising=False)
    model = load_settings().model
    assert model.version == "musicnn-msd"
    assert model_version_of(model).startswith("musicnn-msd.")
    assert (model_spec(model.version).dim, model_spec(model.version).retrieval_space) == (
        200,
        "cosine",
    )
    # The other models stay selectable.
    for name in ("choi2017", "choi2017-calibrated"):
        monkeypatch.setenv("SPOTREC_MODEL_VERSION", name)
        assert model_name_of(model_version_of(load_settings().model)) == name
