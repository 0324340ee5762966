"""The bad-input matrix of the whole command line (issue 18).

Every row is a user mistake: ``(argv, expected)``. Each must end with exit code 2, exactly one
non-empty line on stderr that contains ``expected``, no traceback anywhere, and nothing written or
changed: every file under the scratch folder (a run store with a finished and a failed run, a
checkpoint, data files) is hashed before and after, and the command runs with the scratch folder
as its working directory, so default outputs (``demo-out``, ``runs-store``) land there too.

The CLI runs in-process (``occamlab.cli.main``), so the matrix is quick. A new command joins by
adding rows to ``CASES``; ``test_every_command_has_five_cases`` keeps the count honest.
Placeholders in ``argv``: ``{d}`` the scratch folder (relative paths also resolve there).
"""

from __future__ import annotations

import hashlib
import shlex
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from occamlab.cli import COMMANDS, main

SPEC = 'experiment = "noop"\n[base]\ny = 1.0\n[axes]\nx = [1, 2]\nfail = ["", "bad"]\n'
BIG_SPEC = ('experiment = "noop"\n[axes]\nx = {lin = [0, 1], num = 20000}\n'
            'y = {lin = [0, 1], num = 5000}\n')

# (argv, substring of the one stderr line). Grouped by command; siblings of the cases.
CASES: list[tuple[str, str]] = [
    # ---- fit ------------------------------------------------------------------------------
    ("fit chinchilla good.csv --n params --d tokens --bootstrap 20 --seed -1",
     "seed must be a non-negative integer"),
    ("fit power-law good.csv --x tokens --seed -1", "seed must be a non-negative integer"),
    ("fit loss-to-loss good.csv --n params --d tokens --x loss --y task_a --seed -1",
     "seed must be a non-negative integer"),
    ("fit isoflop good.csv --n params --flops flops --seed -1", "seed must be a non-negative"),
    ("fit chinchilla good.csv --n params --d tokens --bootstrap 1000000000000",
     "of memory;"),
    ("fit isoflop good.csv --n params --flops flops --bootstrap 1000000000000",
     "of memory;"),
    ("fit power-law good.csv --x tokens --bootstrap -1", "bootstrap must be a non-negative"),
    ("fit downstream good.csv --x params --metric-prefix zzz_", "matches no column"),
    ("fit downstream good.csv --x params", "give --metric COL"),
    ("fit chinchilla good.csv --n params", "give --d (tokens) or --flops"),
    ("fit chinchilla good.csv --n parms --d tokens", "did you mean 'params'"),
    ("fit chinchilla bad.csv --n params --d tokens", "data rows 2"),
    ("fit power-law missing.csv --x tokens", "missing.csv"),
    ("fit power-law binary.csv --x tokens", "binary.csv: not a text file"),
    ("fit power-law adir --x tokens", "adir"),
    ("fit power-law good.csv --x tokens --json afile/fit.json",
     "'afile' is a file, not a folder"),
    ("fit power-law good.csv --x tokens --json adir", "is a folder"),
    ("fit power-law good.csv --x tokens --plot afile/fit.png", "is a file, not a folder"),
    ("fit power-law good.csv --x tokens --delta 0", "delta must be > 0"),
    ("fit transfer good.csv missing.csv --n params --d tokens", "missing.csv"),
    ("fit chinchilla", "the following arguments are required"),
    # ---- process --------------------------------------------------------------------------
    ("process generator even --states 2 --seed -1", "seed must be a non-negative integer"),
    ("process sample even -n 10 --seed -1 --out x.npz", "seed must be a non-negative integer"),
    ("process sample even -n 100000000000 --batch 100000000 --out x.npz",
     "of memory;"),
    ("process sample even -n 0 --out x.npz", "length must be >= 1"),
    ("process sample even -n 10 --out x.txt", "--out must name a .npz file"),
    ("process sample even -n 10 --out afile/x.npz", "is a file, not a folder"),
    ("process info file --file binary.json", "is not UTF-8 text"),
    ("process info file --file adir", "is a folder"),
    ("process info file --file missing.json", "does not exist"),
    ("process info --file bad_process.json", "cannot parse process file"),
    ("process info even --block-entropies 100000000", "block_length must be at most"),
    ("process info nosuch", "nosuch"),
    ("process info even --param p=0.3 --file process.json", "--param applies to library"),
    ("process info golden-mean --param p=2", "p"),
    ("process generator even --states 2 --starts 0", "--starts must be >= 1"),
    ("process generator even --states 0", "states must be >= 1"),
    ("process compare golden-mean --sweep p=0.1:0.9", "--sweep expects K=START:STOP:N"),
    ("process compare golden-mean --sweep p=0.1:0.9:3 --seed -1", "seed must be"),
    ("process compare golden-mean --sweep p=0.1:0.9:100000000", "--sweep needs N from 1"),
    ("process compare binary-markov --sweep p=0.1:0.9:1000 --sweep q=0.1:0.9:1000",
     "at most 10000"),
    ("process compare golden-mean --sweep p=0.1:0.9:3 --plot fig.gif", "--plot must end in"),
    ("process infer samples.npz --seed -1", "seed must be a non-negative integer"),
    ("process infer missing.npz", "missing.npz"),
    ("process infer samples.npz --machine m.txt", "--machine must name a .json file"),
    ("process infer samples.npz --machine afile/m.json", "is a file, not a folder"),
    ("process list --json adir", "is a folder"),
    # ---- train ----------------------------------------------------------------------------
    ("train --config binary.csv --out r", "is not a text file"),
    ("train --config missing.toml --out r", "missing.toml"),
    ("train --config tiny.toml", "--out DIR is required"),
    ("train --config tiny.toml --out afile", "is a file, not a folder"),
    ("train --config tiny.toml --out r --json afile/x.json", "is a file, not a folder"),
    ("train --config tiny.toml --out r --json adir", "is a folder"),
    ("train --config tiny.toml --out r --set steps=-1", "steps"),
    ("train --config tiny.toml --out r --set seed=-1", "seed"),
    ("train --config tiny.toml --out r --set nosuch=1", "nosuch"),
    ("train --config tiny.toml --out r --set steps", "--set expects KEY=VALUE"),
    ("train --config tiny.toml --out r --set data.corpus=binary.csv", "binary file"),
    ("train --config tiny.toml --out r --set model.d_model=100000000", "of memory;"),
    # ---- finetune -------------------------------------------------------------------------
    ("finetune ck --data toks.npy --out ft --lora-rank 0", "lora_rank must be a positive"),
    ("finetune ck --data toks.npy --out ft --lora-rank 2 --lora-alpha nan",
     "lora_alpha must be a positive finite"),
    ("finetune ck --data toks.npy --out ft --lora-rank 2 --lora-lr-scale -1",
     "lora_lr_scale must be a positive finite"),
    ("finetune ck --data toks.npy --out ft --mode full --lora-rank 2", "--lora-rank only applies"),
    ("finetune nan --data toks.npy --out ft", "not finite"),
    ("finetune missing --data toks.npy --out ft", "missing"),
    ("finetune ck --data toks.npy --out afile", "is a file, not a folder"),
    ("finetune ck --data toks.npy --out ft --json adir", "is a folder"),
    ("finetune ck --data binary.csv --out ft", "binary file"),
    ("finetune ck --data toks.npy --out ft --set seed=-1", "seed"),
    # ---- data -----------------------------------------------------------------------------
    ("data list --json afile/x.json", "is a file, not a folder"),
    ("data list --json adir", "is a folder"),
    ("data list --json adir/sub/../", "is a folder"),
    ("data", "the following arguments are required"),
    ("data frob", "invalid choice"),
    ("data list --bogus", "unrecognized arguments"),
    # ---- llc ------------------------------------------------------------------------------
    ("llc ck --data toks.npy --seed -1", "seed must be a non-negative integer"),
    ("llc ck", "--data is required"),
    ("llc ck --data missing.npy", "missing.npy"),
    ("llc nan --data toks.npy", "not finite"),
    ("llc missing --data toks.npy", "missing"),
    ("llc ck --data toks.npy --json afile/x.json", "is a file, not a folder"),
    ("llc ck --data toks.npy --json adir", "is a folder"),
    ("llc ck validate --data toks.npy", "`validate` takes no checkpoints"),
    ("llc ck --data toks.npy --set nbeta=-1", "nbeta"),
    ("llc ck --data toks.npy --set bogus=1", "bogus"),
    ("llc ck --data binary.csv", "binary file"),
    # ---- compress -------------------------------------------------------------------------
    ("compress nan --data toks.npy --epsilon 0.1", "not finite"),
    ("compress ck --data toks.npy --epsilon -1", "epsilon"),
    ("compress ck --data toks.npy --epsilon nan", "epsilon"),
    ("compress ck --data toks.npy --epsilon 0.1 --group-size 0", "group_size"),
    ("compress ck --data toks.npy --epsilon 0.1 --max-tokens 0", "max_tokens"),
    ("compress ck --data binary.csv --epsilon 0.1", "binary file"),
    ("compress ck --data toks.npy --epsilon 0.1 --json adir", "is a folder"),
    ("compress missing --data toks.npy --epsilon 0.1", "missing"),
    # ---- sweep ----------------------------------------------------------------------------
    ("sweep spec.toml --jobs -1 --store S2", "--jobs must be a non-negative integer"),
    ("sweep binary.csv --dry-run", "is not a text file"),
    ("sweep missing.toml --dry-run", "missing.toml"),
    ("sweep big.toml --dry-run", "at most 100000"),
    ("sweep spec.toml --store S2 --retries -1", "--retries must be a non-negative"),
    ("sweep spec.toml --store S2 --time-limit 0", "--time-limit must be a positive"),
    ("sweep spec.toml --store afile", "is a file, not a folder"),
    ("sweep spec.toml --store S2 --set y", "--set expects KEY=VALUE"),
    ("sweep spec.toml --store S --json S/sweep.json", "inside the run store"),
    ("sweep spec.toml --store S2 --address 1.2.3.4:6379", "--address applies to the Ray"),
    ("sweep spec.toml --store adir", "not an occamlab run store"),
    ("sweep spec.toml --store S2 --dry-run --max-clients 0", "--max-clients must be >= 1"),
    ("sweep spec.toml --store S2 --dry-run --prices missing.toml", "does not exist"),
    ("sweep spec.toml --store S2 --dry-run --prices binary.csv", "is not a text file"),
    # ---- runs -----------------------------------------------------------------------------
    ("runs export S/store.json --store S --format json", "inside the run store"),
    ("runs export S/runs/x.csv --store S", "inside the run store"),
    ("runs export afile/x.csv --store S", "is a file, not a folder"),
    ("runs export x.txt --store S", "cannot tell the export format"),
    ("runs export - --store S --format parquet", "Parquet cannot go to standard output"),
    ("runs ls --store missing", "no run store at"),
    ("runs ls --store S --json S/ls.json", "inside the run store"),
    ("runs ls --store S --json adir", "is a folder"),
    ("runs show ffff --store S", "no run in"),
    ("runs retry --store S --jobs -3", "--jobs must be a non-negative integer"),
    ("runs retry --store S --time-limit -1", "--time-limit must be a positive"),
    ("runs retry --store S --time-limit nan", "--time-limit must be a positive"),
    ("runs retry --store S --address 1.2.3.4:6379", "--address applies to the Ray"),
    ("runs retry zzzz --store S", "no run in"),
    ("runs retry --store S --json S/retry.json", "inside the run store"),
    # ---- demo -----------------------------------------------------------------------------
    ("demo --jobs -1", "--jobs must be a non-negative integer"),
    ("demo --only nosuch", "nosuch"),
    ("demo --only published --only nosuch", "unknown experiment 'nosuch'"),
    ("demo --out afile", "is a file, not a folder"),
    ("demo --store afile --only chinchilla", "is a file, not a folder"),
    ("demo --json adir --only chinchilla", "is a folder"),
    ("demo --address 1.2.3.4:6379", "--address applies to the Ray"),
    ("demo --size huge", "invalid choice"),
    ("demo --store adir --only chinchilla", "not an occamlab run store"),
    # ---- report ---------------------------------------------------------------------------
    ("report --store missing --out page", "missing"),
    ("report --store afile --out page", "afile"),
    ("report --store S --out afile", "is a file, not a folder"),
    ("report --store S --out page --json adir", "is a folder"),
    ("report --store adir --out page", "adir"),
    ("report --out page", "the following arguments are required"),
    # ---- top level ------------------------------------------------------------------------
    ("frob", "invalid choice"),
]


def _command(argv: str) -> str:
    return argv.split()[0]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good inputs next to bad ones: a table, a run store with a done and a failed run, a tiny
    checkpoint and a NaN one, tokens, samples, binary files, a file and a folder in the way."""
    import torch

    from occamlab.processes import build_process, sample, save_samples
    from occamlab.train import ModelConfig, TrainConfig, Transformer, save_checkpoint

    d = tmp_path_factory.mktemp("bad-input")
    rng = np.random.default_rng(0)
    rows = ["params,tokens,loss,flops,task_a"]
    for n in (1e6, 3e6, 1e7, 3e7, 1e8):
        for t in (1e8, 3e8, 1e9, 3e9):
            loss = (1.7 + 400 / n**0.34 + 410 / t**0.28) * (1 + 0.01 * rng.standard_normal())
            rows.append(f"{n},{t},{loss},{6 * n * t},{1 - loss / 5}")
    (d / "good.csv").write_text("\n".join(rows) + "\n")
    (d / "bad.csv").write_text("params,tokens,loss\n1e6,1e8,2.0\n1e7,-1,2.0\n1e8,1e9,2.1\n")
    junk = bytes(range(256)) * 4
    for name in ("binary.csv", "binary.json"):
        (d / name).write_bytes(junk)
    (d / "bad_process.json").write_text("{not json")
    (d / "process.json").write_text('{"matrices": [[[0.5]], [[0.5]]]}')
    (d / "afile").write_text("in the way\n")
    (d / "adir").mkdir()
    (d / "adir" / "keep").write_text("x\n")
    (d / "spec.toml").write_text(SPEC)
    (d / "big.toml").write_text(BIG_SPEC)
    (d / "tiny.toml").write_text("steps = 2\n[model]\ncontext = 8\nd_model = 8\nn_layer = 1\n"
                                 "n_head = 1\n[data]\ncorpus = 'toks.npy'\n")
    np.save(d / "toks.npy", rng.integers(0, 256, 4096).astype(np.int64))
    save_samples(sample(build_process("even", {}), 2000, seed=0), d / "samples.npz")
    cfg = ModelConfig(vocab_size=256, context=8, d_model=8, n_layer=1, n_head=1)
    train = TrainConfig(model=cfg).to_dict()
    model = Transformer(cfg)
    save_checkpoint(d / "ck", model, train_config=train)
    with torch.no_grad():
        model.wte.weight[0, 0] = float("nan")
    save_checkpoint(d / "nan", model, train_config=train)
    assert main(["sweep", str(d / "spec.toml"), "--store", str(d / "S"), "--jobs", "0",
                 "--no-progress"]) == 1  # two runs done, two failed on purpose
    return d


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``: content hash (files) or a marker (folders)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


@pytest.mark.parametrize(("argv", "expected"), CASES, ids=[a for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    argv: str, expected: str, scratch: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(scratch)
    before = _snapshot(scratch)
    capsys.readouterr()
    try:
        rc = main(shlex.split(argv.format(d=scratch)))
    except SystemExit as exc:  # argparse
        rc = exc.code
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, (rc, err)
    assert "Traceback" not in out + err
    assert len(lines) == 1, err
    assert expected in lines[0], lines[0]
    assert lines[0].startswith("occam")
    assert _snapshot(scratch) == before


def test_every_command_has_five_cases() -> None:
    counts = Counter(_command(a) for a, _ in CASES)
    assert all(counts[name] >= 5 for name in COMMANDS), counts
