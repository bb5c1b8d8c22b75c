"""Serve application builder: `serve run configs/serve.yaml` and `iasovoice serve` both come here.

The builder validates its arguments (the same AppConfig as everything else) before any replica starts,
so a bad config fails the deploy with the key named instead of a replica crash loop.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments import INGRESS_DEPLOYMENT
from deployments.asr import WhisperASR
from deployments.llm import LLMDeployment
from iasovoice.config import AppConfig, load_config
from iasovoice.placement import asr_deployment_options, ingress_deployment_options, llm_deployment_options


class BuildArgs(BaseModel):
    config: str | None = Field(
        None,
        description=(
            "Config file (relative: to the working directory, else the project root); null = $IASOVOICE_CONFIG "
            "or configs/app.yaml. configs/serve.yaml names configs/production.yaml, as the gateway does."
        ),
    )
    overrides: list[str] = Field(default_factory=list, description="section.key=value overrides.")


@serve.deployment(name=INGRESS_DEPLOYMENT, ray_actor_options={"num_cpus": 0})
class VoiceModels:
    """Ingress that ties the model deployments into one app and answers health checks.

    Call actors reach WhisperASR and LLM through the ModelRouter actor (actors/model_router.py), whose
    handles go straight to those deployments; nothing is proxied through here.
    """

    def __init__(self, asr: DeploymentHandle, llm: DeploymentHandle) -> None:
        self._asr = asr
        self._llm = llm

    async def health(self) -> dict[str, Any]:
        return {"asr": await self._asr.stats.remote()}


def build_models_app(config: AppConfig) -> serve.Application:
    """The models app; every replica's resources and requests in flight come from iasovoice.placement."""
    asr_app = WhisperASR.options(**asr_deployment_options(config.asr)).bind(config.asr)
    llm_app = LLMDeployment.options(**llm_deployment_options(config.llm)).bind(config.llm)
    return VoiceModels.options(**ingress_deployment_options(config)).bind(asr_app, llm_app)


def build_app(args: dict[str, Any]) -> serve.Application:
    """Entry point for serve.yaml (`import_path: deployments.app:build_app`)."""
    parsed = BuildArgs.model_validate(args or {})
    return build_models_app(load_config(parsed.config, parsed.overrides))
