"""The managed Rasa service's pure parts: the training cache key and the set-up errors users see."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from iasovoice.config import load_config
from iasovoice.dialogue.rasa_server import RasaService, model_path, rasa_executable, training_fingerprint
from iasovoice.errors import ConfigError

RASA_PROJECT = Path(__file__).resolve().parents[1] / "rasa"


def test_the_model_is_named_by_its_training_data(tmp_path: Path) -> None:
    project = tmp_path / "rasa"
    shutil.copytree(RASA_PROJECT, project, ignore=shutil.ignore_patterns("tests", "actions", ".*"))
    first = training_fingerprint(project)
    assert first == training_fingerprint(project), "stable"
    (project / "actions").mkdir()
    (project / "actions" / "x.py").write_text("# not training data\n")
    (project / "endpoints.yml").write_text("action_endpoint: {url: x}\n")
    assert training_fingerprint(project) == first, "only config, domain and data count"
    nlu = project / "data" / "nlu" / "general.yml"
    nlu.write_text(nlu.read_text() + "\n")
    assert training_fingerprint(project) != first, "any change to the data retrains"
    config = load_config(overrides=[f"dialogue.rasa.project_dir={project}", f"dialogue.rasa.model_dir={tmp_path}/m"])
    assert model_path(config.dialogue.rasa) == tmp_path / "m" / f"iasovoice-{training_fingerprint(project)}.tar.gz"


def test_a_missing_rasa_venv_says_what_to_do(tmp_path: Path) -> None:
    config = load_config(overrides=[f"dialogue.rasa.venv={tmp_path / 'no-venv'}"]).dialogue.rasa
    with pytest.raises(ConfigError) as error:
        rasa_executable(config)
    message = str(error.value)
    assert "dialogue.rasa.venv" in message and "make setup" in message and "Python 3.10" in message
    assert "dialogue.engine: rules" in message


def test_a_managed_rasa_binds_loopback_only() -> None:
    config = load_config(overrides=["dialogue.rasa.url=http://10.0.0.5:5005"]).dialogue.rasa
    with pytest.raises(ConfigError, match="loopback"):
        RasaService(config).start()
