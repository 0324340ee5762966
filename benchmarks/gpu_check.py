"""GPU check: training and an LLC estimate on CUDA against the same seed on the CPU (under 5 min).

Run on a machine with a CUDA device (``python benchmarks/gpu_check.py``); on a machine without one
it says so and exits 0. It checks that

1. ``occam train``'s engine with ``device = "auto"`` picks CUDA and records it, and that its loss
   curve follows the CPU run of the same config and seed (float32 on both; the kernels differ, so
   the curves agree to a tolerance, not bit for bit: the final validation loss within 2%);
2. an LLC estimate of the trained model on CUDA (the ``llc`` experiment with ``device = "cuda"``)
   agrees with the CPU estimate within their combined standard errors (|z| < 4), and
3. the two-device speed ratio, printed (not asserted: the GPU pays launch overhead on tiny models).

Results go to ``benchmarks/results/gpu_check.json``.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from occamlab.train import DataConfig, ModelConfig, TrainConfig, train

OUT = Path(__file__).resolve().parent / "results" / "gpu_check.json"


def _train(device: str, out: Path) -> tuple[float, float, str]:
    cfg = TrainConfig(model=ModelConfig(vocab_size=256, context=64, d_model=64, n_layer=2,
                                        n_head=4),
                      data=DataConfig(corpus="shakespeare"), steps=300, batch_size=32, lr=3e-3,
                      warmup_steps=30, eval_every=100, eval_tokens=16_384, seed=0, threads=1,
                      device=device)
    t0 = time.perf_counter()
    _, res = train(cfg, out=out)
    return res.final_val_loss, time.perf_counter() - t0, res.device


def _llc(checkpoint: Path, device: str) -> tuple[float, float, float]:
    from occamlab.experiments.llc import Config, estimate
    from occamlab.slt import SGLDConfig

    cfg = Config(checkpoint=str(checkpoint), data="shakespeare", max_tokens=16_384,
                 sgld=SGLDConfig(step_size=1e-4, n_chains=4, n_draws=200, n_burnin=100,
                                 batch_size=16),
                 seed=0, device=device)
    t0 = time.perf_counter()
    rep = estimate(cfg)
    return rep.result.llc, rep.result.llc_stderr, time.perf_counter() - t0  # type: ignore[union-attr]


def main() -> int:
    if not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device on this machine; nothing to check")
        return 0
    out: dict[str, object] = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        cpu_loss, cpu_s, cpu_dev = _train("cpu", Path(tmp, "cpu"))
        gpu_loss, gpu_s, gpu_dev = _train("auto", Path(tmp, "gpu"))
        assert cpu_dev == "cpu" and gpu_dev.startswith("cuda"), (cpu_dev, gpu_dev)
        rel = abs(gpu_loss - cpu_loss) / cpu_loss
        out["train"] = {"cpu_val_loss": cpu_loss, "gpu_val_loss": gpu_loss, "relative_gap": rel,
                        "cpu_s": cpu_s, "gpu_s": gpu_s, "speedup": cpu_s / gpu_s}
        print(f"train: CPU {cpu_loss:.4f} nats ({cpu_s:.1f} s), CUDA {gpu_loss:.4f} ({gpu_s:.1f} s),"
              f" gap {100 * rel:.2f}%")
        l_cpu, se_cpu, t_cpu = _llc(Path(tmp, "cpu", "best"), "cpu")
        l_gpu, se_gpu, t_gpu = _llc(Path(tmp, "cpu", "best"), "cuda")
        z = (l_gpu - l_cpu) / math.sqrt(se_cpu**2 + se_gpu**2)
        out["llc"] = {"cpu": [l_cpu, se_cpu], "gpu": [l_gpu, se_gpu], "z": z, "cpu_s": t_cpu,
                      "gpu_s": t_gpu}
        print(f"llc: CPU {l_cpu:.2f} +- {se_cpu:.2f} ({t_cpu:.1f} s), CUDA {l_gpu:.2f} +- "
              f"{se_gpu:.2f} ({t_gpu:.1f} s), z = {z:.2f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    ok = rel < 0.02 and abs(z) < 4
    print("gpu_check:", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
