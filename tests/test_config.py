"""Configuration: shipped files validate, and a bad key fails at start with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from iasovoice.config import load_config, parse_config
from iasovoice.errors import ConfigError, ModelNotFoundError
from iasovoice.factory import build_asr_engine

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_shipped_configs_validate() -> None:
    default = load_config(CONFIGS / "app.yaml")
    assert default.asr.engine == "faster-whisper" and default.tts.engine == "piper"
    production = load_config(CONFIGS / "production.yaml")
    assert production.llm.engine == "vllm" and production.tts.engine == "polly"
    assert production.storage.backend == "s3" and production.metrics.backend == "cloudwatch"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"asr": {"engin": "faster-whisper"}}, "asr.engin"),
        ({"vad": {"threshold": 1.5}}, "vad.threshold"),
        ({"tts": {"engine": "festival"}}, "tts.engine"),
        ({"server": {"port": "eighty"}}, "server.port"),
        ({"asr": {"engine": "openai-whisper"}}, "asr"),
        ({"connect": {"instance": "x"}}, "connect.instance"),
    ],
)
def test_bad_keys_are_named(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(data, "configs/app.yaml")
    assert f"  {key}" in str(error.value)
    assert "configs/app.yaml" in str(error.value)


def test_safety_scripts_have_no_code_default() -> None:
    """The scripts a caller in danger hears live in one place, the config; a config without them fails."""
    with pytest.raises(ConfigError) as error:
        parse_config({}, "configs/app.yaml")
    assert "  dialogue: Field required" in str(error.value)
    default = load_config(CONFIGS / "app.yaml")
    assert "911" in default.dialogue.safety.emergency_message and "988" in default.dialogue.safety.crisis_message


def test_a_production_file_lays_its_keys_over_its_base(tmp_path: Path) -> None:
    production = load_config(CONFIGS / "production.yaml")
    default = load_config(CONFIGS / "app.yaml")
    assert production.dialogue.safety.emergency_message == default.dialogue.safety.emergency_message
    assert production.dialogue.safety.set_contact_attributes and not default.dialogue.safety.set_contact_attributes
    assert production.call.greeting == default.call.greeting
    loop = tmp_path / "a.yaml"
    loop.write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="loop"):
        load_config(loop)
    missing = tmp_path / "c.yaml"
    missing.write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml not found"):
        load_config(missing)


def test_overrides_and_missing_file(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "app.yaml", ["llm.reply_max_tokens=42", "call.voice=clinical"])
    assert config.llm.reply_max_tokens == 42 and config.call.voice == "clinical"
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_missing_model_names_the_config_key(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "app.yaml", [f"asr.model_path={tmp_path / 'no-such-model'}"])
    with pytest.raises(ModelNotFoundError) as error:
        build_asr_engine(config.asr)
    assert "asr.model_path" in str(error.value)
