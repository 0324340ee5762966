"""The page section of the ``transfer`` suite experiment: tables, verdicts, flags and headline
written from its results dictionary (every number on the page is a number of ``results.json``);
the figures are in :mod:`._transfer_figures`."""

from __future__ import annotations

from typing import Any

from occamlab._render import Table
from occamlab.reports import Section

from ._numbers import fmt, fmt_ci

__all__ = ["section", "TITLE", "QUESTION"]

TITLE = "Scaling laws for transfer, on our own models"
QUESTION = ("The seed's third post asks how predictable transfer learning is: Hernandez et al. "
            "(2021) fit the effective data transferred D_T = k D_F^alpha N^beta, claim that beta "
            "depends only on the architecture and the target distribution while alpha tracks how "
            "close the source is to the target, and report that rank-1 LoRA can match full "
            "fine-tuning. \"I wouldn't really trust these papers... I want to run the experiments "
            "myself.\" Here they are, on small models we train ourselves, with the two claims "
            "tested rather than assumed.")


def _law_row(name: str, e: dict[str, Any]) -> list[Any]:
    if "alpha" not in e:
        return [name, e.get("n_runs", 0), "-", e.get("error", "no law"), "", "", ""]
    return [name, e["n_runs"], f"{e['n_used']} ({e['n_ossified']} ossified, "
            f"{e['n_beyond']} beyond the asymptote)", fmt_ci(e["k"]), fmt_ci(e["alpha"]),
            fmt_ci(e["beta"]), "yes" if e["valid"] else "no"]


def _law_table(config: Any, results: dict[str, Any]) -> Table:
    main = results["main"]
    pub = results["published"]["hernandez"]
    rows = [_law_row(f"{src} to {config.target}", main["sources"].get(src, {}))
            for src in config.sources]
    rows.append([f"Hernandez et al.: {pub['pair']}", "-", "-", fmt(pub["k"]), fmt(pub["alpha"]),
                 fmt(pub["beta"]), "published"])
    for name in ("beta", "alpha"):
        d = main.get(f"{name}_difference")
        if d is not None:
            rows.append([f"difference ({config.sources[1]} - {config.sources[0]})", "", "", "",
                         fmt_ci(d) if name == "alpha" else "", fmt_ci(d) if name == "beta" else "",
                         "paired"])
    return Table("Effective data transferred: D_T = k D_F^alpha N^beta",
                 ["source to target", "runs", "in the fit", "k", "alpha", "beta", "fit valid"],
                 rows, ["value [95% bootstrap percentile interval over runs: residual bootstrap "
                        "of the from-scratch curves, fine-tuned runs resampled within each size, "
                        "every fit redone]; N = non-embedding parameters, D = bytes",
                        "runs whose D_T is not positive (ossified) or infinite (below the "
                        "from-scratch asymptote) are shown in the figures and left out of the "
                        "log-space fit of the law",
                        f"{pub['note']}; their k is not comparable in size: our N and D are "
                        "orders of magnitude smaller",
                        "differences: the two sources share the from-scratch runs and the "
                        "bootstrap's scratch resamples, so the interval is paired"])


def _family_table(results: dict[str, Any]) -> Table:
    fam = results["process"]
    rows = []
    for m in fam["members"]:
        law = [fmt_ci(m["alpha"]), fmt_ci(m["k"])] if "alpha" in m else [m.get("error", "-"), ""]
        rows.append([fmt(m["shift"], 2), fmt(m["kl_nats"], 3), fmt(m["kl_reverse_nats"], 3),
                     *law, f"{m.get('n_used', 0)} of {m.get('n_runs', 0)}"])
    s = fam["slope"]
    rows.append(["slope d alpha / d KL", "", "", fmt_ci(s) if s.get("value") is not None else
                 s.get("error", "-"), "", ""])
    t = fam["truth"]
    return Table("Process family: alpha against the exact divergence of the source",
                 ["shift", "KL(target || source) nats/symbol", "KL(source || target)", "alpha",
                  "k", "runs in the fit"], rows,
                 [f"first-order Markov chains over {t['symbols']} symbols; target entropy rate "
                  f"{fmt(t['h_nats'], 4)} nats/symbol ({'exact' if t['exact'] else 'estimated'})",
                  "KL rates exact (occamlab.processes.kl_divergence_rate); alpha with 95% "
                  "bootstrap intervals; the slope's interval uses the paired draws"])


def _lora_table(results: dict[str, Any]) -> Table | None:
    rows = []
    tol = None
    for block in results["lora"]:
        if "modes" not in block:
            continue
        tol = block["tolerance"]
        for e in block["modes"]:
            d_t = ", ".join(fmt(v, 2) for v in e["D_T"])
            gap = ", ".join(f"{g:+.3f}" for g in e["gap"])
            if e["mode"] == "full":
                behind, cap = "-", "-"
            elif e.get("behind_status") == "never":
                behind, cap = f"> {fmt(e['D_F'][-1])} (never)", f"> {fmt(e['D_F'][-1] / e['trainable'], 2)}"
            else:
                prefix = "<= " if e.get("behind_status") == "from the start" else ""
                behind = prefix + fmt(e["behind"]["value"])
                cap = prefix + fmt(e["capacity"]["value"], 2)
            rows.append([block["model"], e["mode"], e["trainable"], d_t, gap, behind, cap])
    if not rows:
        return None
    d_f = next(b["modes"][0]["D_F"] for b in results["lora"] if "modes" in b)
    return Table("LoRA and frozen embeddings against full fine-tuning",
                 ["model (d, layers, heads)", "mode", "trained parameters",
                  f"D_T at D_F = {', '.join(fmt(d) for d in d_f)}",
                  "loss - full fine-tuning's (nats)", "falls behind at D_F",
                  "capacity: D_F per trained parameter"], rows,
                 [f"falls behind: the loss exceeds full fine-tuning's by more than {tol} nats "
                  "(interpolated in ln D_F); one seed, so no interval",
                  "LoRA on every attention and MLP matrix, learning rate 10x full fine-tuning's"])


def _l2l_table(results: dict[str, Any]) -> Table:
    rows = []
    for name, label in (("train_to_train", "train-to-train (source loss -> target loss, "
                                           "paired by (N, D))"),
                        ("train_to_test", "train-to-test (source models: own loss -> loss on "
                                          "the target)")):
        e = results["loss_to_loss"].get(name, {})
        lo, hi = results["published"]["kappa"][name]
        sp = e.get("spearman")
        rho = f"{sp['rho']:+.2f}" if sp else "-"
        if "kappa" not in e:
            rows.append([label, e.get("n_models", "-"), rho, e.get("error", "-"), "",
                         f"{lo}-{hi}", ""])
            continue
        rows.append([label, e["n_models"], rho, fmt_ci(e["kappa"]), fmt_ci(e["K"]), f"{lo}-{hi}",
                     "yes" if e["in_published_range"] else "no"])
    return Table("Loss-to-loss: y = K (x - E_x)^kappa + E_y",
                 ["pair", "models", "Spearman rho (x, y)", "kappa", "K", "published kappa",
                  "inside"], rows,
                 [results["published"]["kappa"]["note"], "E_x, E_y from L(N, D) fits of each "
                  "loss; 95% bootstrap intervals; the law needs y to rise with x (rho > 0)"])


def _l2l_verdict(results: dict[str, Any]) -> str:
    parts = []
    for name in ("train_to_train", "train_to_test"):
        e = results["loss_to_loss"].get(name, {})
        lo, hi = results["published"]["kappa"][name]
        label = name.replace("_", "-")
        sp = e.get("spearman")
        if "kappa" in e:
            parts.append(f"{label} kappa = {fmt_ci(e['kappa'])}, "
                         f"{'inside' if e['in_published_range'] else 'outside'} Brandfonbrener "
                         f"et al.'s {lo}-{hi}")
        elif sp is not None and sp["rho"] < 0:
            parts.append(f"{label}: no kappa, the losses move in opposite directions (Spearman "
                         f"rho {sp['rho']:+.2f} over {sp['n']} models): a model better on the "
                         "source is worse on the target, which no loss-to-loss power law "
                         "describes")
        else:
            parts.append(f"{label}: no kappa ({e.get('error', 'no runs')})")
    return "Loss-to-loss: " + "; ".join(parts) + "."


def _floor_text(results: dict[str, Any]) -> str:
    f = results["process"]["floor"]
    if not f["n_checked"]:
        return "No model of the process family finished, so the loss floor was not checked."
    ok = f["n_below"] == 0
    return (f"Loss floor: all {f['n_checked']} models trained or fine-tuned on the target chain "
            f"were checked against its exact entropy rate h = {fmt(f['h_nats'], 4)} nats/symbol "
            f"(and the chain's own loss on the held-out symbols, {fmt(f['val_bayes_loss'], 4)} "
            f"nats, standard error {fmt(f['val_bayes_se'], 2)}). The lowest loss is "
            f"{f['min_margin_h']:+.4f} nats from h. "
            + ("None is below the floor by more than 3 standard errors: no sign of a bug."
               if ok else f"{f['n_below']} are below it by more than 3 standard errors: that "
               "is impossible for a correct model and evaluation, so it is a bug, flagged above."))


def _beta_verdict(config: Any, results: dict[str, Any]) -> str:
    src = results["main"]["sources"]
    a, b = (src.get(s, {}) for s in config.sources[:2])
    d = results["main"].get("beta_difference")
    c = results["claims"]["beta_source_independent"]
    if "beta" not in a or "beta" not in b or d is None:
        return "Claim 1 (beta depends only on the architecture and the target): not tested here, " \
               "because a law could not be fitted from both sources."
    text = (f"Claim 1 (beta depends only on the architecture and the target): from "
            f"{config.sources[0]} beta = {fmt_ci(a['beta'])}, from {config.sources[1]} beta = "
            f"{fmt_ci(b['beta'])} (Hernandez et al.: {results['published']['hernandez']['beta']}); "
            f"the difference is {fmt_ci(d)}. ")
    if c["verdict"] == "consistent":
        return text + (f"The interval contains 0: our data are consistent with the claim, but "
                       f"only as far as they can see, since differences up to "
                       f"{fmt(c['largest_difference_allowed'], 2)} are not excluded.")
    if c["verdict"] == "contradicted":
        return text + ("The interval excludes 0: at this scale our data contradict the claim "
                       "(beta depends on the source).")
    return text + "The bootstrap gave no interval, so the claim is not tested."


def _alpha_verdict(results: dict[str, Any]) -> str:
    fam = results["process"]
    fitted = [m for m in fam["members"] if "alpha" in m]
    v = results["claims"]["alpha_tracks_proximity"]["verdict"]
    if len(fitted) < 2:
        return ("Claim 2 (alpha tracks how close source and target are): not tested, fewer than "
                "two sources of the process family gave a law.")
    pairs = "; ".join(f"KL {fmt(m['kl_nats'], 3)} nats: alpha = {fmt_ci(m['alpha'])}"
                      for m in fitted)
    text = (f"Claim 2 (alpha tracks how close source and target are): on the Markov family, "
            f"{pairs}. The slope of alpha on the divergence is {fmt_ci(fam['slope'])}")
    sp = fam.get("spearman")
    if sp is not None:
        text += f" (Spearman rho {sp['rho']:.2f} over {sp['n']} sources)"
    pub = results["published"]["hernandez"]
    text += (f". Hernandez et al. saw the closer source (text + code) give the smaller alpha "
             f"({pub['mixed_alpha']} against {pub['alpha']}), so the claim predicts a positive "
             f"slope. ")
    verdicts = {
        "rises": "Our alpha rises with the divergence: the data support the claim.",
        "falls": "Our alpha falls as the divergence grows: the opposite direction, so alpha does "
                 "track proximity here, but not the way Hernandez et al. found.",
        "no detectable trend": "The interval contains 0: no detectable trend, so our data do "
                               "not support the claim at this scale.",
        "untested": "The bootstrap gave no interval for the slope, so the claim is not tested."}
    return text + verdicts[v] + _pair_alpha_text(results)


def _pair_alpha_text(results: dict[str, Any]) -> str:
    """The natural-language pair's alpha difference: the same claim without an exact distance."""
    d = results["main"].get("alpha_difference")
    srcs = list(results["main"]["sources"])
    if not d or d.get("ci") is None or None in d["ci"] or len(srcs) != 2:
        return ""
    a, b = (results["main"]["sources"][s]["alpha"] for s in srcs)
    return (f" On the natural-language pair, where the distance is not known exactly, {srcs[1]} "
            f"gives alpha = {fmt_ci(b)} against {srcs[0]}'s {fmt_ci(a)} (paired difference "
            f"{fmt_ci(d)}).")


def _behind_text(e: dict[str, Any]) -> str:
    status = e.get("behind_status")
    if status == "never":
        return f"nowhere in the ladder (D_F up to {fmt(e['D_F'][-1])} bytes)"
    at = "already at the smallest D_F, " if status == "from the start" else "at D_F = "
    return (f"{at}{fmt(e['behind']['value'])} bytes, {fmt(e['capacity']['value'], 2)} bytes per "
            "trained parameter")


def _lora_verdict(results: dict[str, Any]) -> list[str]:
    out = []
    for block in results["lora"]:
        if "modes" not in block or block["rank1_matches_at_smallest"] is None:
            continue
        r1 = next(e for e in block["modes"] if e["rank"] == 1)
        matches = block["rank1_matches_at_smallest"]
        gap, tol = r1["gap"][0], block["tolerance"]
        how = (f"so it does better than full fine-tuning there (by more than {tol} nats)"
               if gap < -tol else f"so it {'matches' if matches else 'does not match'} full "
               f"fine-tuning within {tol} nats")
        out.append(f"LoRA on model {block['model']}: at the smallest D_F ({fmt(r1['D_F'][0])} "
                   f"bytes) rank 1's loss is {gap:+.3f} nats from full fine-tuning's, {how}; "
                   f"it falls behind {_behind_text(r1)} ({r1['trainable']} trained "
                   f"parameters).")
    return out


def _main_verdict(config: Any, results: dict[str, Any]) -> str:
    e = results["main"]["sources"].get(config.sources[0], {})
    if "alpha" not in e:
        return f"{config.sources[0]} to {config.target}: no law ({e.get('error', 'no runs')})."
    pub = results["published"]["hernandez"]
    fr = [p["fraction"] for p in e["points"] if p["status"] == "transfer"]
    return (f"{config.sources[0]} to {config.target}: D_T = k D_F^alpha N^beta with k = "
            f"{fmt_ci(e['k'])}, alpha = {fmt_ci(e['alpha'])}, beta = {fmt_ci(e['beta'])} "
            f"(Hernandez et al., text to Python: alpha {pub['alpha']}, beta {pub['beta']}); "
            f"{e['n_used']} of {e['n_runs']} fine-tunes transferred, {e['n_ossified']} did no "
            f"better than scratch (ossified) and {e['n_beyond']} went below the from-scratch "
            f"asymptote. Where it transferred, D_T / D_E ranges from "
            f"{fmt(min(fr), 2) if fr else '-'} to {fmt(max(fr), 2) if fr else '-'}.")


def _flags(config: Any, results: dict[str, Any]) -> list[str]:
    flags = []
    fits = [(src, e) for src, e in results["main"]["sources"].items()]
    fits += [(f"process shift {m['shift']:g}", m) for m in results["process"]["members"]]
    for name, e in fits:
        flags += [f"{name}: {w}" for w in e.get("warnings", [])
                  if "fewer than 4 usable runs" not in w]
        if "error" in e:
            flags.append(f"{name}: {e['error']}")
        if e.get("n_extrapolated"):
            flags.append(f"{name}: {e['n_extrapolated']} of {e['n_runs']} fine-tuned runs have D_E "
                         f"beyond the largest from-scratch D ({e['largest_scratch_d']:g} tokens): "
                         "their D_T extrapolates the scratch law")
    if results["process"]["floor"]["n_below"]:
        flags.append(f"{results['process']['floor']['n_below']} models are below the target "
                     "chain's entropy rate: a bug")
    for name, e in results["loss_to_loss"].items():
        if isinstance(e, dict):
            flags += [f"loss-to-loss {name}: {w}" for w in e.get("warnings", [])]
            if "error" in e:
                flags.append(f"loss-to-loss {name}: {e['error']}")
    p = results["protocol"]
    for role in ("scratch", "finetune"):
        if p[role].get("at_cap"):
            flags.append(f"{p[role]['at_cap']} of {p[role]['n']} {role} runs ended at the step cap "
                         "still improving: their loss is above their validation optimum")
    failed = sum(results["failed_runs"].values())
    if failed:
        flags.append(f"{failed} runs failed and are left out")
    return flags


def _headline(config: Any, results: dict[str, Any]) -> str:
    e = results["main"]["sources"].get(config.sources[0], {})
    parts = []
    if "alpha" in e:
        parts.append(f"{config.sources[0]} to code: alpha = {fmt_ci(e['alpha'])}, beta = "
                     f"{fmt_ci(e['beta'])}")
    d = results["main"].get("beta_difference")
    if d is not None:
        parts.append(f"beta difference {fmt_ci(d)}")
    s = results["process"]["slope"]
    if s.get("value") is not None:
        parts.append(f"alpha vs KL slope {fmt_ci(s)}")
    return "; ".join(parts) or "no law fitted"


def _setup(config: Any, results: dict[str, Any]) -> list[str]:
    p, pr = config.process, results["protocol"]
    return [
        f"Models (d_model, layers, heads) {', '.join(str(tuple(m)) for m in config.models)}; N = "
        f"non-embedding parameters. Target {config.target} (bytes); sources "
        f"{' and '.join(config.sources)}, each pretrained once per size on "
        f"{fmt(config.pretrain_tokens)} bytes for at most {config.pretrain_steps} steps and shared "
        f"by every fine-tune from it.",
        f"From scratch at D = {', '.join(fmt(d) for d in config.scratch_sizes)}; fine-tuned at "
        f"D_F = {', '.join(fmt(d) for d in config.finetune_sizes)} (nested subsets of 512-byte "
        f"chunks in shuffled order). Every run is measured at its validation optimum "
        f"(Hernandez et al.'s protocol): evaluated on the same {config.val_tokens} held-out "
        f"tokens about twice an epoch (every 10 to 50 steps), stopped after {config.patience} evaluations without "
        f"improvement or at {config.max_steps} steps; context {config.context}, batch "
        f"{config.batch_size}, AdamW at a constant {config.lr:g} (scratch) or "
        f"{config.finetune_lr:g} (fine-tuning) after {config.warmup_steps} warm-up steps.",
        f"Process family: first-order Markov chains over {p.symbols} symbols, logits moved from "
        f"the target's towards an unrelated chain's by shifts {', '.join(f'{s:g}' for s in p.shifts)}"
        f"; models {', '.join(str(tuple(m)) for m in p.models)}, D = "
        f"{', '.join(fmt(d) for d in p.scratch_sizes)}, D_F = "
        f"{', '.join(fmt(d) for d in p.finetune_sizes)}. (A binary Markov chain was learned from "
        f"a few hundred symbols, too few for a ladder of D.)",
        f"{pr['scratch']['n']} from-scratch, {pr['pretrain']['n']} pretraining and "
        f"{pr['finetune']['n']} fine-tuning runs ({fmt(pr['training_tokens'], 3)} training "
        f"tokens in all), {pr['n_eval']} evaluations; seed {config.seed}; {config.bootstrap} "
        f"bootstrap resamples. " + _points_per_fit(config, results),
    ]


def _points_per_fit(config: Any, results: dict[str, Any]) -> str:
    """How many points each law rests on: the width of the intervals follows from it."""
    used = [f"{name}'s on {src['n_used']}" for name, src in results["main"]["sources"].items()
            if src.get("n_used") is not None]
    text = (f"The laws rest on few points ({' and '.join(used)} fine-tunes over "
            f"{len(config.models)} model sizes")
    fam = [m["n_used"] for m in results["process"]["members"] if m.get("n_used")]
    if fam:
        span = str(min(fam)) if min(fam) == max(fam) else f"{min(fam)} to {max(fam)}"
        text += f"; each Markov source's on {span}"
    return text + "): the intervals are as wide as that allows."


def section(config: Any, results: dict[str, Any], objects: dict[str, Any]) -> Section:
    from ._transfer_figures import figures

    flags = _flags(config, results)
    tables: list[Any] = [_law_table(config, results), _family_table(results)]
    lora = _lora_table(results)
    if lora is not None:
        tables.append(lora)
    tables.append(_l2l_table(results))
    verdict = [_main_verdict(config, results), _beta_verdict(config, results),
               _alpha_verdict(results), *_lora_verdict(results), _l2l_verdict(results),
               _floor_text(results)]
    return Section(key="transfer", title=TITLE, headline=_headline(config, results),
                   question=QUESTION, setup=_setup(config, results), config=config.to_dict(),
                   tables=tables, figures=figures(config, results, objects), verdict=verdict,
                   flags=flags, status="flagged" if flags else "ok")
