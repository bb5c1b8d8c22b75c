"""The ModelRouter carries utterances, streamed replies and notes between call actors and Serve.

A real local Ray and a real Serve application with the stand-in engines (constant-time, no model: what
is under test is the routing, not the models, which the e2e tests cover). And the reason the router
exists: a call actor's process must not import `ray.serve`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from actors.model_router import ModelRouter
from deployments import ASR_DEPLOYMENT, LLM_DEPLOYMENT
from deployments.app import build_models_app
from iasovoice.config import load_config
from iasovoice.engines.standin import STANDIN_REPLY, STANDIN_TEXT

ROOT = Path(__file__).resolve().parent.parent
APP = "router-test"
ENDLESS_APP = "router-test-endless"


@pytest.fixture(scope="module")
def router() -> Iterator[ray.actor.ActorHandle]:
    config = load_config(overrides=["asr.engine=standin", "llm.engine=standin", "asr.num_cpus=0", "llm.num_cpus=0"])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="router-test")
    try:
        serve.start(proxy_location="Disabled")
        serve.run(build_models_app(config), name=APP, route_prefix=None)
        actor = ModelRouter.remote(APP)
        ray.get(actor.ready.remote())
        yield actor
    finally:
        serve.shutdown()
        ray.shutdown()


def test_transcribe_goes_through_the_asr_deployment(router: ray.actor.ActorHandle) -> None:
    audio = np.zeros(16000, dtype=np.float32)
    result = ray.get(router.transcribe.remote(audio), timeout=30)
    assert result.text == STANDIN_TEXT
    assert result.duration_s == pytest.approx(1.0)


def test_reply_streams_delta_by_delta(router: ray.actor.ActorHandle) -> None:
    deltas = [ray.get(ref, timeout=30) for ref in router.stream_reply.remote([{"role": "user", "content": "hi"}])]
    assert len(deltas) == len(STANDIN_REPLY.split(" ")) > 1
    assert "".join(deltas) == STANDIN_REPLY


@serve.deployment(name=LLM_DEPLOYMENT, ray_actor_options={"num_cpus": 0})
class EndlessLLM:
    """Test-only LLM that never stops talking and remembers whether it was cancelled."""

    def __init__(self) -> None:
        self.cancelled = False

    async def stream_reply(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        try:
            while True:
                yield "word "
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def was_cancelled(self) -> bool:
        return self.cancelled


@serve.deployment(name=ASR_DEPLOYMENT, ray_actor_options={"num_cpus": 0})
class UnusedASR:
    """The router looks both deployments up when it starts; this test needs only the LLM."""


@serve.deployment(ray_actor_options={"num_cpus": 0})
class EndlessApp:
    def __init__(self, asr: DeploymentHandle, llm: DeploymentHandle) -> None:
        self.llm = llm

    async def was_cancelled(self) -> bool:
        return await self.llm.was_cancelled.remote()


def test_barge_in_cancel_reaches_the_llm_replica(router: ray.actor.ActorHandle) -> None:
    """Cancelling the router's stream (what a call actor does on barge-in) stops generation in Serve."""
    handle = serve.run(EndlessApp.bind(UnusedASR.bind(), EndlessLLM.bind()), name=ENDLESS_APP, route_prefix=None)
    endless = ModelRouter.remote(ENDLESS_APP)
    stream = endless.stream_reply.remote([{"role": "user", "content": "hi"}])
    assert ray.get(next(stream), timeout=30) == "word "
    ray.cancel(stream)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        for ref in stream:
            ray.get(ref, timeout=30)
    deadline = time.monotonic() + 10
    while not handle.was_cancelled.remote().result() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert handle.was_cancelled.remote().result(), "the LLM replica kept generating after the cancel"


def test_note_goes_through_the_llm_deployment(router: ray.actor.ActorHandle) -> None:
    turns = [{"role": "caller", "text": "I have had a cough for three days.", "utterance_id": "u1"}]
    note = json.loads(ray.get(router.write_note.remote("call-1", turns, ["emergency"], None), timeout=60))
    assert note["call_id"] == "call-1"
    assert "emergency" in note["flags"]


def test_call_actor_process_imports_neither_serve_nor_file_io() -> None:
    """Each is private memory in every call actor process (bench 3): ray.serve ~18 MB, libsndfile+cffi a few."""
    probe = "import sys, actors.call_actor; print([m for m in ('ray.serve', 'soundfile', 'cffi') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stderr
