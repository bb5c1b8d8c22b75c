"""Ray's fake multi-node cluster with ray_cluster.yaml's node types, started and stopped without `ray stop`.

Ray tests its own autoscaler on one machine with `provider: type: fake_multinode`: the head's autoscaler
"launches" a node by starting one more raylet on this machine that declares the node type's resources.
The node types here are ray_cluster.yaml's, read from the file, with only the quantities shrunk to fit a
2-core machine; a node type or custom resource renamed there (and not here) fails at once, by name.

`ray.cluster_utils.AutoscalingCluster` builds the same thing, but its start and shutdown run
`ray stop --force`, which kills every Ray process on the machine, another test run's servers included.
So the head is started with `ray start` on free ports, in a temp dir and with an auth token of its own,
and stopping kills only this cluster's processes (`FakeCluster.processes`): the head's, and the fake
worker nodes' that the autoscaler started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ray.util import get_node_ip_address  # importing Ray puts the psutil it vendors on sys.path

# isort: split
import psutil

from iasovoice.serverproc import free_port
from tests.paths import REPO

RAY_CLUSTER_YAML = REPO / "ray_cluster.yaml"
# The fake provider tags its head node with this node type, whatever the config calls it
# (ray/autoscaler/_private/fake_multi_node/node_provider.py), so ray_cluster.yaml's head type goes in
# under this name; the worker types keep theirs.
FAKE_HEAD_TYPE = "ray.head.default"
RAY = str(Path(sys.executable).with_name("ray"))
# In the environment of every process of a fake cluster (its temp dir), so that stopping finds them all.
MARKER = "IASOVOICE_FAKE_CLUSTER"

# Lists the cluster's nodes and actors (dead ones too: Ray keeps them, with the node they ran on) as JSON,
# from a separate driver process: the test process stays free of Ray's auth settings.
PROBE = """
import json, sys
from ray.util.state import list_actors, list_nodes
address = sys.argv[1]
nodes = [{"node_id": n.node_id, "state": n.state, "resources": n.resources_total}
         for n in list_nodes(address=address, detail=True, limit=1000)]
actors = [{"class_name": a.class_name, "state": a.state, "node_id": a.node_id}
          for a in list_actors(address=address, limit=10000)]
print(json.dumps({"nodes": nodes, "actors": actors}))
"""


def load_ray_cluster() -> dict[str, Any]:
    return yaml.safe_load(RAY_CLUSTER_YAML.read_text())


def fake_node_types(
    ray_cluster: Mapping[str, Any],
    quantities: Mapping[str, Mapping[str, float]],
    max_workers: Mapping[str, int],
) -> dict[str, dict[str, Any]]:
    """ray_cluster.yaml's node types with `quantities` replacing some of their resources' amounts.

    Only amounts change: a name in `quantities` that the node type does not declare is an error, so the
    test cannot drift from the deployed file. `min_workers` stays the file's; `max_workers` may only
    shrink. GPU: 1 stays: a fake node declares a GPU it does not have, which is all Ray's scheduler sees.
    """
    declared = ray_cluster["available_node_types"]
    unknown = set(quantities) - set(declared)
    if unknown:
        raise KeyError(f"ray_cluster.yaml has no node type {sorted(unknown)}")
    types: dict[str, dict[str, Any]] = {}
    for name, spec in declared.items():
        resources = {key: float(value) for key, value in spec["resources"].items() if value}
        for resource, amount in quantities.get(name, {}).items():
            if resource not in resources:
                raise KeyError(f"ray_cluster.yaml's {name} declares no {resource} ({sorted(resources)})")
            resources[resource] = float(amount)
        if name == ray_cluster["head_node_type"]:
            types[FAKE_HEAD_TYPE] = {"resources": resources, "node_config": {}, "max_workers": 0}
            continue
        most = min(int(spec["max_workers"]), max_workers.get(name, int(spec["max_workers"])))
        types[name] = {
            "resources": resources, "node_config": {},
            "min_workers": int(spec["min_workers"]), "max_workers": most,
        }
    return types


def autoscaling_config(
    ray_cluster: Mapping[str, Any],
    node_types: dict[str, dict[str, Any]],
    gcs_address: str,
    idle_timeout_minutes: float,
) -> dict[str, Any]:
    """The fake head's `--autoscaling-config`: Ray's fake_multi_node/example.yaml with these node types."""
    return {
        "cluster_name": f"{ray_cluster['cluster_name']}-fake",
        "max_workers": sum(spec["max_workers"] for spec in node_types.values()),
        "upscaling_speed": ray_cluster["upscaling_speed"],
        "idle_timeout_minutes": idle_timeout_minutes,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            # Without it the fake nodes join whatever listens on port 6379.
            "gcs_address": gcs_address,
        },
        "available_node_types": node_types,
        "head_node_type": FAKE_HEAD_TYPE,
        "auth": {},
        "docker": {},
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
    }


@dataclass
class FakeCluster:
    """A started fake cluster: how to reach it, and its node types, by which its nodes are told apart
    (every fake node has this machine's address; only the resources it declares say what it is)."""

    temp_dir: Path
    gcs_address: str
    node_types: dict[str, dict[str, Any]]
    # What a process that talks to this cluster adds to its environment: the cluster's own token, and this
    # checkout on the Python path.
    client_env: dict[str, str]
    logs: Path

    @property
    def env(self) -> dict[str, str]:
        inherited = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
        return {**inherited, **self.client_env}

    @property
    def gcs_port(self) -> int:
        return int(self.gcs_address.rsplit(":", 1)[1])

    def node_type(self, resources: Mapping[str, float]) -> str | None:
        """The node type a node belongs to: the one whose custom resources it declares (each has its own)."""
        for name, spec in self.node_types.items():
            custom = {key for key in spec["resources"] if key not in ("CPU", "GPU")}
            if custom and custom <= set(resources):
                return name
        return None

    def ray_status(self) -> str:
        """`ray status` of this cluster, as an operator would read it."""
        done = subprocess.run([RAY, "status", "--address", self.gcs_address], env=self.env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def snapshot(self) -> dict[str, Any]:
        """Nodes (with their resources and node type) and actors, alive and dead, from Ray's state API."""
        done = subprocess.run([sys.executable, "-c", PROBE, self.gcs_address], env=self.env,
                              capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
        assert done.returncode == 0, done.stderr[-2000:]
        state = json.loads(done.stdout.strip().splitlines()[-1])
        for node in state["nodes"]:
            node["type"] = self.node_type(node["resources"])
        return state

    def alive_nodes(self, state: Mapping[str, Any], node_type: str) -> int:
        return sum(1 for node in state["nodes"] if node["type"] == node_type and node["state"] == "ALIVE")

    def wait_for_min_workers(self, timeout_s: float = 180.0) -> dict[str, Any]:
        """Until every node type has its `min_workers` up; the autoscaler starts them one at a time."""

        def all_up(state: dict[str, Any]) -> bool:
            return all(self.alive_nodes(state, name) >= spec.get("min_workers", 1)
                       for name, spec in self.node_types.items())

        return self.wait_for(all_up, "every node type's min_workers up", timeout_s)

    def wait_for(
        self, done: Callable[[dict[str, Any]], bool], what: str, timeout_s: float, every_s: float = 2.0
    ) -> dict[str, Any]:
        """Poll the state API until `done` holds; the last state is in the failure message."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.snapshot()
            if done(state):
                return state
            if time.monotonic() > deadline:
                nodes = [(node["type"], node["state"]) for node in state["nodes"]]
                raise AssertionError(
                    f"{what}: not after {timeout_s:.0f} s; nodes {nodes}\n{self.ray_status()}")
            time.sleep(every_s)

    def processes(self) -> list[psutil.Process]:
        """This cluster's processes, the fake worker nodes' (started by the autoscaler) included.

        Ray rewrites its workers' and agents' command lines (`ray::CallActor`), and with them what
        /proc shows of their environment, so a process is this cluster's if its command line names the
        temp dir or GCS address, its environment holds the marker, it writes a file in the temp dir (Ray
        points every process's log there, which also finds one whose parent is gone), or its parent is.
        """
        markers = (str(self.temp_dir), self.gcs_address, f"--gcs_server_port={self.gcs_port}")
        found: dict[int, psutil.Process] = {}
        for process in psutil.process_iter():
            if process.pid != os.getpid() and self._marked(process, markers):
                found[process.pid] = process
        for process in list(found.values()):
            try:
                found.update({child.pid: child for child in process.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        return list(found.values())

    def _marked(self, process: psutil.Process, markers: tuple[str, ...]) -> bool:
        if any(marker in _cmdline(process) for marker in markers):
            return True
        try:
            if process.environ().get(MARKER) == str(self.temp_dir):
                return True
            return any(f.path.startswith(str(self.temp_dir)) for f in process.open_files())
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            return False

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM every process of this cluster, the autoscaler first (or it starts nodes again), and
        SIGKILL what is left after `grace_s`, as `ray stop` does with its own grace period; then check that
        nothing is left. The cluster is thrown away: a raylet's slow clean exit would only cost time."""
        processes = sorted(self.processes(), key=lambda process: "monitor.py" not in _cmdline(process))
        for process in processes:
            _signal(process, signal.SIGTERM)
        psutil.wait_procs(processes, timeout=grace_s)
        for _ in range(3):  # a process started between the listing and the kill is found the next time
            left = self.processes()
            for process in left:
                _signal(process, signal.SIGKILL)
            psutil.wait_procs(left, timeout=10)
        left = self.processes()
        assert not left, f"fake cluster processes left: {[(p.pid, _cmdline(p)) for p in left]}"
        named = _pids_naming(str(self.temp_dir))
        assert not named, f"processes naming {self.temp_dir} left: {named}"
        self._keep_logs()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _keep_logs(self) -> None:
        """The autoscaler's log, for a failure's post-mortem: the temp dir itself goes."""
        session = self.temp_dir / "session_latest" / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        for path in session.glob("monitor*"):
            shutil.copy(path, self.logs / path.name)


def _pids_naming(text: str) -> list[int]:
    """Live processes whose command line contains `text`, read from /proc without psutil: the check that
    stopping worked does not share the code that did the stopping."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return ""


def _signal(process: psutil.Process, sig: signal.Signals) -> None:
    try:
        process.send_signal(sig)
    except psutil.NoSuchProcess:
        pass


@contextmanager
def fake_cluster(
    logs: Path,
    quantities: Mapping[str, Mapping[str, float]],
    max_workers: Mapping[str, int],
    idle_timeout_minutes: float,
) -> Iterator[FakeCluster]:
    """Start the head (the worker nodes follow: `wait_for_min_workers`) and stop it all afterwards.

    The temp dir is a short one under /tmp, not the test's: Ray's unix sockets live in it and a path
    over 107 bytes cannot be bound. The token is this cluster's own (RAY_AUTH_TOKEN), so nothing reads or
    writes ~/.ray/auth_token; every process that talks to the cluster gets `client_env`.
    """
    ray_cluster = load_ray_cluster()
    temp_dir = Path(tempfile.mkdtemp(prefix="ivfc-", dir="/tmp"))
    gcs_address = f"{get_node_ip_address()}:{free_port()}"
    types = fake_node_types(ray_cluster, quantities, max_workers)
    config_path = logs / "autoscaling.yaml"
    logs.mkdir(parents=True, exist_ok=True)
    config = autoscaling_config(ray_cluster, types, gcs_address, idle_timeout_minutes)
    config_path.write_text(yaml.safe_dump(config))
    client_env = {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        # Every node's workers import this checkout (a venv's editable install may point at another).
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    cluster = FakeCluster(temp_dir, gcs_address, types, client_env, logs)
    head = dict(types[FAKE_HEAD_TYPE]["resources"])
    command = [
        RAY, "start", "--head", f"--port={cluster.gcs_port}", f"--temp-dir={temp_dir}",
        f"--autoscaling-config={config_path}", f"--num-cpus={int(head.pop('CPU', 0))}",
        f"--num-gpus={int(head.pop('GPU', 0))}", f"--resources={json.dumps(head)}",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={free_port()}",
        f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
        "--disable-usage-stats",
    ]
    try:
        head_env = {**cluster.env, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
                    MARKER: str(temp_dir)}
        started = subprocess.run(command, env=head_env, capture_output=True, text=True, timeout=180,
                                 check=False)
        assert started.returncode == 0, (
            f"ray start failed:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
        yield cluster
    finally:
        cluster.stop()
