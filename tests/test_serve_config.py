"""configs/serve.yaml is a valid Serve config whose import path builds the model application.

`serve run configs/serve.yaml` was also run by hand on this machine: the three replicas initialised in
about 3 s. This test keeps the file and the builder in step without starting a cluster.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

from deployments import ASR_DEPLOYMENT, INGRESS_DEPLOYMENT, LLM_DEPLOYMENT
from deployments.app import build_app

SERVE_YAML = Path(__file__).resolve().parent.parent / "configs" / "serve.yaml"


def test_serve_yaml_validates_and_builds() -> None:
    raw = yaml.safe_load(SERVE_YAML.read_text())
    schema = ServeDeploySchema.model_validate(raw)
    (app_schema,) = schema.applications
    assert app_schema.import_path == "deployments.app:build_app"
    assert str(schema.proxy_location).endswith("Disabled")
    app = build_app(app_schema.args)
    ingress = app._bound_deployment
    assert ingress.name == INGRESS_DEPLOYMENT
    bound = {arg._bound_deployment.name for arg in ingress.init_args}
    assert bound == {ASR_DEPLOYMENT, LLM_DEPLOYMENT}
    overridden = {d.name for d in app_schema.deployments}
    assert overridden <= {ASR_DEPLOYMENT, LLM_DEPLOYMENT, INGRESS_DEPLOYMENT}
