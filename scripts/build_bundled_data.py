"""Build the real measurements bundled with occamlab from ../shared/data (run once; outputs committed).

- porian2024_isoflop.csv: Porian et al. 2024 isoFLOP points (MIT), copied with the rows that lack a loss dropped.
- gadre2024_models.csv: Gadre et al. 2024, one row per model: training corpus, parameters, tokens, over-training
  multiplier, the validation losses on eight evaluation sets, and the 46 downstream-task scores (MIT).

Usage: python scripts/build_bundled_data.py [SHARED_DATA_DIR]
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

EVAL_SETS = {
    "val_tok_mult/openlm/": "loss_openlm_val",
    "c4_val/": "loss_c4_val",
    "paloma_c4_en/": "loss_paloma_c4_en",
    "paloma_dolma_100_programing_languages/": "loss_paloma_code",
    "paloma_falcon-refinedweb/": "loss_paloma_refinedweb",
    "paloma_ptb/": "loss_paloma_ptb",
    "paloma_redpajama/": "loss_paloma_redpajama",
    "de-en/": "loss_de_en",
}


def main(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    por = src / "scaling" / "porian2024"
    with open(por / "isoflop_points_from_summary.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["loss"] not in ("", "nan")]
    with open(dst / "porian2024_isoflop.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    shutil.copy(por / "LICENSE", dst / "porian2024_LICENSE.txt")

    gad = src / "scaling" / "gadre2024"
    out = []
    tasks: list[str] = []
    for f in sorted((gad / "exp_data" / "models").glob("*.json")):
        m = json.loads(f.read_text())
        hp = m["hyperparameters"]
        row = {
            "name": m["name"],
            "dataset": m["dataset_name"],
            "model": Path(hp["model"]).stem,
            "params": hp["params"],
            "params_no_embed": hp["params_no_embed"],
            "tokens": hp["tokens"],
            "multiplier": hp.get("chinchilla_multiplier", m["name"].rsplit("-", 1)[-1]),
        }
        for r in m["results"]:
            key = next(v for k, v in EVAL_SETS.items() if k in r["val_data"][0])
            row[key] = r["loss"]
        ev = gad / "exp_data" / "evals" / f"evaluation_{m['name']}_heavy.json"
        icl = json.loads(ev.read_text())["eval_metrics"]["icl"]
        tasks = tasks or sorted(icl)
        for t in tasks:
            row[f"task_{t}"] = icl[t]
        out.append(row)
    with open(dst / "gadre2024_models.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(out[0]))
        w.writeheader()
        w.writerows(out)
    shutil.copy(gad / "LICENSE.txt", dst / "gadre2024_LICENSE.txt")
    print(f"wrote {len(rows)} Porian points and {len(out)} Gadre models to {dst}")


if __name__ == "__main__":
    here = Path(__file__).resolve().parents[1]
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "shared" / "data"
    main(src, here / "src" / "occamlab" / "data")
