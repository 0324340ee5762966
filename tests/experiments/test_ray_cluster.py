"""``occam sweep --backend ray --address`` against a real two-node Ray cluster on this machine.

The module starts a head (``ray start --head``) and a second node (``ray start --address``), one
CPU each, both with ``--node-ip-address 127.0.0.1``, in their own process groups and their own
temporary folder, with token authentication on (``RAY_AUTH_MODE=token``) and a fresh random token
in ``RAY_AUTH_TOKEN``, as Ray documents for clusters that are not started by ``ray.init``
(https://docs.ray.io/en/latest/ray-security/token-auth.html). The sweeps run in subprocesses
exactly as a user types them (token from ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``; no
``RAY_AUTH_MODE``, a ``HOME`` without ``~/.ray/auth_token``) into a store both nodes see. The
cluster is stopped at the end by signalling the processes it started (never ``ray stop``, which
would stop every Ray on the machine).

Ray 2.60 replaces ``127.0.0.1`` (as ``--node-ip-address``, in ``--address`` and in ``ray.init``)
by the machine's routable address and its servers listen on every interface whatever the node
address; see docs/experiments.md. The token is what keeps other clients out.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import occamlab
from occamlab.store import RunStore

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                       reason="Ray is not installed (pip install 'occamlab[ray]')"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:google.*"),
]

SRC = str(Path(occamlab.__file__).resolve().parents[1])
RAY = [sys.executable, "-m", "ray.scripts.scripts"]
N_PORTS = 60  # a block of free ports below the ephemeral range (Ray picks its own there)
START_TIMEOUT_S = 120


def _free_block(n: int) -> int:
    """The first of ``n`` consecutive ports that nothing listens on (TCP, all interfaces)."""
    rng = random.Random()
    for _ in range(50):
        base = rng.randrange(20000, 30000 - n)
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no block of {n} free ports found")


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PYTHONPATH"] = os.pathsep.join([SRC] + [p for p in [env.get("PYTHONPATH")] if p])
    env["HOME"] = str(home)  # no ~/.ray/auth_token of the machine's: the token is the test's
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


@dataclass
class Cluster:
    address: str
    token: str
    root: Path  # the cluster's temporary folder (Ray's sessions and logs)
    home: Path
    procs: list[subprocess.Popen]


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as fh:
        return subprocess.Popen(RAY + ["start", "--block", *args], env=env, stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def _wait_started(proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if "Ray runtime started" in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(f"ray start did not come up:\n{log.read_text(errors='replace')[-3000:]}")


def _wait_listening(proc: subprocess.Popen, log: Path, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"ray start --head did not listen on {port}:\n"
                       f"{log.read_text(errors='replace')[-3000:]}")


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each ``ray start --block`` (it stops its node's processes), then SIGKILL its
    process group (only the processes this test started) if anything is left."""
    for p in reversed(procs):  # the second node first, then the head
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="occ-ray-", dir="/tmp"))  # short: Ray's socket paths
    home = root / "home"
    home.mkdir()
    token = secrets.token_hex(32)
    env = _base_env(home) | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
                             "RAY_worker_niceness": "0"}
    b = _free_block(N_PORTS)
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1",
              "--object-store-memory", str(80 * 1024**2), "--disable-usage-stats",
              "--include-log-monitor", "false"]

    def node_ports(o: int, workers: int) -> list[str]:
        return ["--node-manager-port", str(b + o), "--object-manager-port", str(b + o + 1),
                "--dashboard-agent-listen-port", str(b + o + 2),
                "--dashboard-agent-grpc-port", str(b + o + 3),
                "--runtime-env-agent-port", str(b + o + 4),
                "--metrics-export-port", str(b + o + 5),
                "--min-worker-port", str(b + workers), "--max-worker-port", str(b + workers + 19)]

    procs: list[subprocess.Popen] = []
    try:
        head_log, node_log = root / "head.log", root / "node.log"
        procs.append(_start(["--head", "--port", str(b), "--include-dashboard", "false",
                             "--ray-client-server-port", str(b + 9), "--temp-dir", str(root),
                             *common, *node_ports(1, 20)], env, head_log))
        _wait_listening(procs[0], head_log, b)  # the head's GCS is up: the second node joins
        procs.append(_start(["--address", f"127.0.0.1:{b}", *common, *node_ports(10, 40)],
                            env, node_log))
        _wait_started(procs[0], head_log)
        _wait_started(procs[1], node_log)
        yield Cluster(f"127.0.0.1:{b}", token, root, home, procs)
    finally:
        _stop(procs)
        shutil.rmtree(root, ignore_errors=True)


def _occam(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "occamlab", *args], env=env,
                          capture_output=True, text=True, timeout=600)


def _files(*roots: Path) -> Iterator[Path]:
    for r in roots:
        if r.is_file():
            yield r
        elif r.is_dir():
            yield from (p for p in r.rglob("*") if p.is_file())


NOOP = 'experiment = "noop"\n[base]\nsleep = 1.0\n[axes]\nx = [1, 2, 3, 4, 5, 6]\n'
TRAIN = """experiment = "train"
[base]
batch_size = 4
eval_every = 100
eval_tokens = 256
warmup_steps = 2
threads = 1
steps = 8
model = {context = 16, d_model = 8, n_layer = 1, n_head = 2}
data = {corpus = "shakespeare", max_bytes = 100000}
[axes]
seed = [0, 1]
"""


def test_occam_sweep_runs_on_both_nodes_of_a_token_cluster_and_stores_no_token(
        cluster: Cluster, tmp_path: Path) -> None:
    noop, train = tmp_path / "noop.toml", tmp_path / "train.toml"
    noop.write_text(NOOP)
    train.write_text(TRAIN)
    token_file = tmp_path / "token"  # RAY_AUTH_TOKEN_PATH: a file only this user reads
    token_file.touch(mode=0o600)
    token_file.write_text(cluster.token)
    store = tmp_path / "store"
    env = _base_env(cluster.home)
    by_env = env | {"RAY_AUTH_TOKEN": cluster.token}
    by_file = env | {"RAY_AUTH_TOKEN_PATH": str(token_file)}
    outputs = []

    def sweep(spec: Path, env: dict[str, str], tag: str) -> dict:
        out = tmp_path / f"{tag}.json"
        p = _occam(["sweep", str(spec), "--backend", "ray", "--address", cluster.address,
                    "--store", str(store), "--no-progress", "--json", str(out)], env)
        outputs.append(p.stdout + p.stderr)
        assert p.returncode == 0, p.stdout + p.stderr
        return json.loads(out.read_text())

    first = sweep(noop, by_env, "noop1")
    assert (first["n_runs"], first["n_done"], first["n_failed"]) == (6, 6, 0), first
    trained = sweep(train, by_file, "train1")
    assert (trained["n_runs"], trained["n_done"], trained["n_failed"]) == (2, 2, 0), trained

    st = RunStore(store)
    ids = st.ids()
    assert len(ids) == 8 and {st.status(i)[0] for i in ids} == {"done"}
    envs = {i: st.read(i)["env"] for i in ids}
    nodes = {e["ray_node_id"] for e in envs.values()}
    # the noop runs (one CPU each, 1 s) spread over both nodes of the cluster
    noop_nodes = {e["ray_node_id"] for e in envs.values() if e["experiment"] == "noop"}
    assert len(noop_nodes) == 2, nodes
    assert all(len(n) == 56 and int(n, 16) >= 0 for n in nodes)  # Ray's hex node id, no more
    assert all(e["pid"] != os.getpid() for e in envs.values())
    assert {e["torch_threads"] for e in envs.values() if e["experiment"] == "train"} == {1}

    # resuming (the other token source each time) skips every run
    again = sweep(noop, by_file, "noop2")
    assert (again["n_done"], again["n_skipped"]) == (0, 6), again
    again = sweep(train, by_env, "train2")
    assert (again["n_done"], again["n_skipped"]) == (0, 2), again

    # the token is nowhere in the store, the commands' output or their JSON results; nor in
    # Ray's own logs and session files (it was never handed to Ray through a runtime env)
    secret = cluster.token.encode()
    leaked = [p for p in _files(store, *tmp_path.glob("*.json"), cluster.root / "session_latest")
              if secret in p.read_bytes()]
    assert leaked == []
    assert all(cluster.token not in o for o in outputs)
    assert not any("Traceback" in o for o in outputs)


def test_a_refused_token_is_one_line_naming_the_address(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    spec = tmp_path / "noop.toml"
    spec.write_text('experiment = "noop"\n[axes]\nx = [1]\n')
    wrong = secrets.token_hex(32)
    t0 = time.monotonic()
    p = _occam(["sweep", str(spec), "--backend", "ray", "--address", cluster.address,
                "--store", str(tmp_path / "s"), "--no-progress"],
               _base_env(cluster.home) | {"RAY_AUTH_TOKEN": wrong})
    assert time.monotonic() - t0 < 30  # not Ray's minute of InvalidAuthToken retries
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.strip().splitlines() == [
        f"occam sweep: error: the Ray cluster at '{cluster.address}' refused this client "
        "(InvalidAuthToken: it uses token authentication and the token from RAY_AUTH_TOKEN is "
        "not the cluster's); set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH, a file holding it) to "
        "the cluster's token (`ray get-auth-token` on the head node prints it), or run on the "
        "head node"]
    assert wrong not in p.stdout + p.stderr


@pytest.mark.parametrize("env, message", [
    ({}, "and no token was found here (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, {home}/.ray/"
         "auth_token)); set RAY_AUTH_TOKEN"),
    ({"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": "{token}"},
     "RAY_AUTH_MODE=disabled is set here, so no token was sent); unset RAY_AUTH_MODE (or set "
     "it to token) and set RAY_AUTH_TOKEN"),
    ({"RAY_AUTH_TOKEN_PATH": "{home}/missing"},
     "RAY_AUTH_TOKEN_PATH={home}/missing is not a readable, non-empty file"),
])
def test_the_backend_says_why_the_cluster_refused_it(cluster: Cluster, monkeypatch,
                                                      env: dict, message: str) -> None:
    import ray

    from occamlab.experiments import RayBackend
    from occamlab.experiments._ray_connect import RayConnectError

    assert not ray.is_initialized()
    for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(cluster.home))
    for k, v in env.items():
        monkeypatch.setenv(k, v.format(home=cluster.home, token=cluster.token))
    before = os.environ.get("RAY_AUTH_MODE")
    with pytest.raises(RayConnectError) as info:
        RayBackend(1, address=cluster.address)
    text = str(info.value)
    assert message.format(home=cluster.home) in text and "\n" not in text
    assert cluster.token not in text
    assert os.environ.get("RAY_AUTH_MODE") == before and not ray.is_initialized()


def test_token_source_follows_rays_order_and_names_no_token(tmp_path: Path,
                                                            monkeypatch) -> None:
    from occamlab.experiments._ray_connect import RayConnectError, token_source

    for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert token_source() is None
    default = tmp_path / ".ray" / "auth_token"
    default.parent.mkdir()
    default.write_text("t0")
    assert token_source() == str(default)
    path = tmp_path / "tok"
    path.write_text("t1")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(path))
    assert token_source() == f"RAY_AUTH_TOKEN_PATH ({path})"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "t2")
    assert token_source() == "RAY_AUTH_TOKEN"
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    path.write_text("")
    with pytest.raises(RayConnectError, match="not a readable, non-empty file"):
        token_source()


def test_no_cluster_at_the_address_is_a_quick_clear_error(tmp_path: Path, monkeypatch) -> None:
    import ray

    from occamlab.experiments import RayBackend
    from occamlab.experiments._ray_connect import RayConnectError

    assert not ray.is_initialized()
    for k in ("RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-a-real-token")
    address = f"127.0.0.1:{_free_block(1)}"
    t0 = time.monotonic()
    with pytest.raises(RayConnectError, match=f"no Ray cluster answers at '{address}'"):
        RayBackend(1, address=address)
    assert time.monotonic() - t0 < 15
    assert "RAY_AUTH_MODE" not in os.environ  # put back as it was
    assert not ray.is_initialized()
