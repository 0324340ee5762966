"""``lora-finetune`` on the Tinker backend, through the real SDK, against a stand-in service.

The stand-in (``tinker_standin.py``) listens on 127.0.0.1 and answers with the SDK's own types;
the SDK finds it through ``TINKER_BASE_URL``. Nothing in occamlab is patched: serialisation,
futures, the SDK's retries and our resume are the real code paths. The last test talks to the
live service and runs only when ``TINKER_API_KEY`` is set in the environment.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from occamlab.cli import main
from occamlab.store import RunStore

pytest.importorskip("tinker")
pytest.importorskip("peft")

# The SDK leaves some of its HTTP connections for the garbage collector (one-off pools of its
# config requests, its event loop's transports): ResourceWarnings of the SDK, not of occamlab.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning",
                                        "ignore::pytest.PytestUnraisableExceptionWarning")

from tinker_standin import StandIn, tiny_models  # noqa: E402

LIVE_KEY = os.environ.get("TINKER_API_KEY")
LIVE_URL = os.environ.get("TINKER_BASE_URL")  # the user's, read before the stand-in sets it
KEY = f"tml-occamlab-test-{uuid.uuid4().hex}"
SRC = Path(__file__).resolve().parents[2] / "src"
N_PARAMS = {"occam/tiny-8": 888, "occam/tiny-16": 3312}  # non-embedding parameters

SPEC = """experiment = "lora-finetune"
max_training_clients = 2
[base]
training_backend = "tinker"
data = "shakespeare"
max_bytes = 200_000
tokenizer = "bytes"
context = 32
batch_size = 4
eval_tokens = 512
eval_batch = 8
save_every = 2
lr = 1e-2
warmup_steps = 1
"""
GRID = """[zip]
base_model = ["occam/tiny-8", "occam/tiny-16"]
n_params = [888.0, 3312.0]
[axes]
lora_rank = [1, 4]
finetune_tokens = [256, 1024]
"""
PRICES = """currency = "USD"
[models."occam/tiny-8"]
train = 2.0
evaluate = 1.0
[models."*"]
train = 4.0
evaluate = 1.0
"""


@pytest.fixture(scope="module")
def standin():
    svc = StandIn(tiny_models({"occam/tiny-8": 8, "occam/tiny-16": 16, "occam/broken": 8}), KEY)
    url = svc.start()
    mp = pytest.MonkeyPatch()
    mp.setenv("TINKER_BASE_URL", url)
    mp.setenv("TINKER_API_KEY", KEY)
    yield svc
    mp.undo()
    svc.stop()
    gc.collect()  # the SDK's unclosed connections are finalized here, under this module's filter


def _spec(tmp_path: Path, extra: str = GRID, name: str = "spec.toml") -> str:
    p = tmp_path / name
    p.write_text(SPEC + extra)
    return str(p)


def _sweep(spec: str, store: Path, *more: str) -> int:
    return main(["sweep", spec, "--store", str(store), "--jobs", "0", "--no-progress", "--yes",
                 *more])


def _losses(store: Path, rid: str) -> list[float]:
    lines = (store / "runs" / rid / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x)["loss"] for x in lines if "loss" in json.loads(x)]


def test_a_small_sweep_lands_in_the_store_ledger_and_report(standin, tmp_path, capsys,
                                                            caplog) -> None:
    (tmp_path / "prices.toml").write_text(PRICES)
    store, out = tmp_path / "store", tmp_path / "report"
    spec = _spec(tmp_path)
    assert _sweep(spec, store, "--prices", str(tmp_path / "prices.toml"),
                  "--json", str(tmp_path / "sweep.json")) == 0
    st = RunStore(store)
    recs = [st.record(r) for r in st.ids()]
    assert len(recs) == 8 and all(r.status == "done" for r in recs)
    for r in recs:  # the backend and base model recorded with every run, and its ledger
        res = r.result
        assert res["training_backend"] == "tinker" and res["base_model"] in N_PARAMS
        assert res["tokenizer"] == "bytes" and res["heldout_windows"] == 16
        assert res["tokens_trained"] == res["finetune_tokens"] == r.config["finetune_tokens"]
        assert res["tokens_evaluated"] == 512 and res["tokens_sampled"] == 0
        assert 0 < res["heldout_nll"] < 6
    assert json.loads((store / "service.json").read_text())["max_training_clients"] == 2
    text = capsys.readouterr().out
    assert "Ledger: tokens and cost" in text
    # occam runs ls: the ledger summed, its cost at the stored price table
    assert main(["runs", "ls", "--store", str(store)]) == 0
    text = capsys.readouterr().out
    trained = {m: sum(r.result["tokens_trained"] for r in recs if r.result["base_model"] == m)
               for m in N_PARAMS}
    cost = (trained["occam/tiny-8"] * 2.0 + trained["occam/tiny-16"] * 4.0 + 8 * 512) / 1e6
    assert f"{cost:.4g}" in text and str(sum(trained.values())) in text
    # occam report: the section from the store alone, with fits and the rank comparison
    assert main(["report", "--store", str(store), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["lora-finetune"]
    assert len(results["results"]["points"]) == 8
    assert "joint" in results["results"]["fits"]
    assert len(results["results"]["rank_comparison"]) == 4
    assert results["results"]["ledger"]["totals"]["cost"] == pytest.approx(cost)
    page = (out / "index.html").read_text()
    assert "LoRA fine-tuning" in page and "cannot train a model" in page
    # the key was used (every request carried it) and is written nowhere
    assert standin.keys_seen == {KEY}
    _assert_key_nowhere(tmp_path, capsys.readouterr(), caplog.text)


def _assert_key_nowhere(root: Path, captured, log: str = "", key: str = KEY) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert key.encode() not in p.read_bytes(), f"the API key is in {p}"
    assert key not in captured.out and key not in captured.err and key not in log


def test_one_config_measures_the_same_on_both_backends(standin, tmp_path) -> None:
    # the stand-in's base model saved as a local checkpoint: local and Tinker runs of one config
    # (only base_model and training_backend differ) give the same losses, bit for bit
    from occamlab.train import save_checkpoint

    save_checkpoint(tmp_path / "tiny-16", standin.models["occam/tiny-16"])
    one = '[axes]\nn_params = [3312.0]\nfinetune_tokens = [512]\nlora_rank = [2]\n'
    spec = _spec(tmp_path, one)
    assert _sweep(spec, tmp_path / "tinker", "--set", 'base_model="occam/tiny-16"') == 0
    assert _sweep(spec, tmp_path / "local", "--set", "training_backend=local",
                  "--set", f'base_model="{tmp_path / "tiny-16"}"') == 0
    (t_id,), (l_id,) = RunStore(tmp_path / "tinker").ids(), RunStore(tmp_path / "local").ids()
    t = RunStore(tmp_path / "tinker").record(t_id).result
    loc = RunStore(tmp_path / "local").record(l_id).result
    assert (t["training_backend"], loc["training_backend"]) == ("tinker", "local")
    assert _losses(tmp_path / "tinker", t_id) == _losses(tmp_path / "local", l_id)
    assert t["heldout_nll"] == loc["heldout_nll"] and t["heldout_nll_se"] == loc["heldout_nll_se"]
    for k in ("tokens_trained", "tokens_evaluated", "finetune_tokens", "heldout_tokens"):
        assert t[k] == loc[k]


def test_rate_limits_and_server_errors_are_retried(standin, tmp_path) -> None:
    one = '[axes]\nbase_model = ["occam/tiny-8"]\nn_params = [888.0]\nfinetune_tokens = [512]\n'
    spec = _spec(tmp_path, one)
    assert _sweep(spec, tmp_path / "clean") == 0
    standin.faults = {"/api/v1/create_model": [429], "/api/v1/forward_backward": [429, 503],
                      "/api/v1/optim_step": [503], "/api/v1/retrieve_future": [503, 429]}
    before = len(standin.log)
    assert _sweep(spec, tmp_path / "faulty") == 0
    hit = [e for _, e in standin.log[before:] if "fault" in e]
    assert sorted(e["fault"] for e in hit) == [429, 429, 429, 503, 503, 503]
    assert not any(standin.faults.values())
    clean, faulty = RunStore(tmp_path / "clean"), RunStore(tmp_path / "faulty")
    rid = clean.ids()[0]
    assert faulty.record(rid).result["heldout_nll"] == clean.record(rid).result["heldout_nll"]


def test_a_transient_failure_resumes_from_the_last_state_within_the_run(standin, tmp_path
                                                                         ) -> None:
    one = '[axes]\nbase_model = ["occam/tiny-16"]\nn_params = [3312.0]\nfinetune_tokens = [768]\n'
    spec = _spec(tmp_path, one)
    assert _sweep(spec, tmp_path / "clean") == 0
    rid = RunStore(tmp_path / "clean").ids()[0]
    standin.fail_requests = {standin.n_forward_backward + 6: ("server", "trainer node lost")}
    assert _sweep(spec, tmp_path / "failing") == 0
    res = RunStore(tmp_path / "failing").record(rid).result
    assert res["service_recoveries"] == 1
    assert _losses(tmp_path / "failing", rid) == _losses(tmp_path / "clean", rid)
    assert res["heldout_nll"] == RunStore(tmp_path / "clean").record(rid).result["heldout_nll"]
    # step 6 failed; the run resumed from its state at step 4, so step 5 was trained twice
    assert res["tokens_trained"] == (6 + 1) * 128


def test_a_service_failure_fails_its_run_with_the_services_message(standin, tmp_path, capsys
                                                                   ) -> None:
    grid = ('[zip]\nbase_model = ["occam/tiny-8", "occam/broken", "occam/nonexistent"]\n'
            'n_params = [888.0, 888.0, 888.0]\n[axes]\nfinetune_tokens = [256]\n')
    standin.fail_models["occam/broken"] = f"model is under maintenance (caller {KEY})"
    spec = _spec(tmp_path, grid)
    assert _sweep(spec, tmp_path / "store") == 1  # a run failed; the others went on
    st = RunStore(tmp_path / "store")
    by_model = {st.record(r).config["base_model"]: st.record(r) for r in st.ids()}
    assert by_model["occam/tiny-8"].status == "done"
    broken = by_model["occam/broken"]
    assert broken.status == "failed" and "model is under maintenance" in broken.error
    assert "[TINKER_API_KEY]" in broken.error  # the service echoed the key: redacted
    missing = by_model["occam/nonexistent"]
    assert missing.status == "failed" and "not offered by the service" in missing.error
    assert "occam/tiny-8" in missing.error  # what it offers
    _assert_key_nowhere(tmp_path, capsys.readouterr())


def test_a_killed_run_resumes_from_its_saved_state_optimizer_included(standin, tmp_path
                                                                      ) -> None:
    one = ('[axes]\nbase_model = ["occam/tiny-16"]\nn_params = [3312.0]\n'
           'finetune_tokens = [4096]\n')
    spec = _spec(tmp_path, one.replace("4096", "4096") + "")
    assert _sweep(spec, tmp_path / "clean") == 0
    rid = RunStore(tmp_path / "clean").ids()[0]
    store = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    standin.delay = 0.05  # slow steps: the kill lands mid-training
    proc = subprocess.Popen([sys.executable, "-m", "occamlab", "sweep", spec, "--store",
                             str(store), "--jobs", "0", "--no-progress", "--yes"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    resume = store / "states" / rid / "resume.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if resume.exists() and json.loads(resume.read_text())["step"] >= 8:
                break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        standin.delay = 0.0
        if proc.poll() is None:
            proc.kill()
    k = json.loads(resume.read_text())["step"]
    trained_before = json.loads((resume.parent / "ledger.json").read_text())["tokens_trained"]
    assert 8 <= k < 32 and RunStore(store).status(rid)[0] == "pending"
    loads = standin.count("/api/v1/load_weights")
    assert _sweep(spec, store) == 0
    assert standin.count("/api/v1/load_weights") == loads + 1
    load = [e for p, e in standin.log if p == "/api/v1/load_weights"][-1]
    assert load["optimizer"] is True and load["path"].endswith(f"{rid}-step{k}")
    res = RunStore(store).record(rid).result
    assert res["resumed_from_step"] == k
    clean = _losses(tmp_path / "clean", rid)
    resumed = _losses(store, rid)
    assert resumed[k] == clean[k]  # the step after the resume (its loss needs the optimizer's
    assert resumed[k + 1] == clean[k + 1]  # moments from before the kill), and every other one
    assert resumed == clean
    assert res["heldout_nll"] == RunStore(tmp_path / "clean").record(rid).result["heldout_nll"]
    # the ledger counts the steps trained before the kill and again after it
    assert res["tokens_trained"] == trained_before + (32 - k) * 128


def test_dry_run_needs_no_key_and_a_remote_sweep_needs_yes_and_a_key(tmp_path, capsys,
                                                                     monkeypatch) -> None:
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    spec = str(Path(__file__).resolve().parents[2] / "configs" / "finetune-tinker.toml")
    assert main(["sweep", spec, "--dry-run", "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "Token plan: 96 runs of lora-finetune (remote" in out
    assert "estimated at 4 bytes per token" in out and "Nothing was run" in out
    assert "total" in out and "cost (USD, estimate)" in out
    assert out.count("eb80a4164e4c0ccd") == 1  # each run listed once (the token plan only)
    assert not (tmp_path / "s").exists()
    small = _spec(tmp_path, GRID)
    assert main(["sweep", small, "--store", str(tmp_path / "s"), "--jobs", "0"]) == 2
    assert "TINKER_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("TINKER_API_KEY", KEY)
    assert main(["sweep", small, "--store", str(tmp_path / "s"), "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert "--yes" in err and "Token plan: 8 runs" in err
    assert not (tmp_path / "s" / "runs").exists() or not list((tmp_path / "s" / "runs").iterdir())
    finetune = tmp_path / "ft.toml"
    finetune.write_text('experiment = "finetune"\n[base]\ncheckpoint = "x"\n')
    assert main(["sweep", str(finetune), "--set", "training_backend=tinker", "--dry-run"]) == 2
    assert "lora-finetune" in capsys.readouterr().err


def test_without_the_sdk_one_line_says_what_to_install(monkeypatch) -> None:
    from occamlab.errors import ConfigError
    from occamlab.experiments._tinker import import_tinker

    monkeypatch.setitem(sys.modules, "tinker", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'occamlab\[tinker\]'"):
        import_tinker()


def test_client_slots_queue_beyond_the_limit(tmp_path) -> None:
    import threading

    from occamlab.experiments._clients import ClientSlots

    slots = ClientSlots(tmp_path, 1, poll=0.01)
    order: list[str] = []
    with slots.hold():
        t = threading.Thread(target=lambda: _hold(slots, order))
        t.start()
        time.sleep(0.2)
        order.append("first released")
    t.join(5)
    assert order == ["first released", "second held"]


def _hold(slots, order: list[str]) -> None:
    with slots.hold() as waited:
        order.append("second held")
        assert waited > 0.1


@pytest.mark.skipif(not LIVE_KEY, reason="TINKER_API_KEY is not set: the live-service test "
                    "needs a key (and spends a few cents)")
def test_live_service_one_tiny_run(tmp_path, monkeypatch, capsys) -> None:
    # the module's stand-in (if it ran first) is still up and set its own address and key
    monkeypatch.setenv("TINKER_API_KEY", LIVE_KEY or "")
    if LIVE_URL:
        monkeypatch.setenv("TINKER_BASE_URL", LIVE_URL)
    else:
        monkeypatch.delenv("TINKER_BASE_URL", raising=False)
    spec = tmp_path / "live.toml"
    spec.write_text('experiment = "lora-finetune"\n[base]\ntraining_backend = "tinker"\n'
                    'base_model = "meta-llama/Llama-3.2-1B"\nlora_rank = 1\ncontext = 128\n'
                    'batch_size = 4\nfinetune_tokens = 1024\neval_tokens = 1024\nsave_every = 1\n'
                    'lr = 1e-4\n')
    assert main(["sweep", str(spec), "--store", str(tmp_path / "s"), "--jobs", "0", "--yes",
                 "--no-progress"]) == 0
    st = RunStore(tmp_path / "s")
    res = st.record(st.ids()[0]).result
    assert res["training_backend"] == "tinker" and 0 < res["heldout_nll"] < 10
    assert res["tokens_trained"] == 1024
    _assert_key_nowhere(tmp_path, capsys.readouterr(), key=LIVE_KEY or "")
