"""Digits quality study through the library: MvM vs GFMN vs MvM + mode seeking vs a GAN, same budget.

Every run is ``build_run_config`` with the ``default`` preset for images on scikit-learn's 8x8
digits (read at run time) plus the row's overrides, then ``build_trainer`` and ``fit``. Parts:

* ``table``: rows ``mvm`` (the default), ``gfmn`` (``method="gfmn"``: GFMN feature matching with
  AMA on the digits classifier's hidden layers, the plugin's defaults), ``gfmn-ama0.1`` (the same
  with the AMA step 0.1 that the plugin's own benchmark found to work at this scale; the term is
  swapped in after ``build_trainer``, the one thing not reachable from a RunConfig), ``mvm+ms``
  (MSGAN mode seeking, weight 1) and ``gan`` (``method="gan"``: non-saturating GAN with a logit
  head on the same metric network). Final metrics on 2,000 samples of the (EMA) generator against
  the classifier features of all 1,797 digits: FID, KID, precision/recall (k 3), class coverage and
  the smallest class share (x 10), NDB and JSD over 20 K-means bins. The real-vs-real floor: the
  classifier's 360 held-out test digits against its 1,437 training digits, same metrics.
* interpretability (same runs): every ``--eval-every`` steps the FID of 2,000 samples is measured
  in-process (the same as evaluating a checkpoint saved at that step); the objective's value is the
  mean of the logged values since the previous evaluation: the manifold-matching loss for MvM
  (``matching``), the generator loss for the GAN, the plain feature-matching distance for GFMN
  (``gfmn/matching``). Reported: Spearman correlation of that loss with FID over the checkpoints,
  and of the loss with the step (negative = it falls); and, since the logged loss is measured in a
  metric that keeps changing, the same objective for every checkpoint's generator measured in the
  final metric network (one ruler for all checkpoints), against FID.
* ``modeseek``: class-conditional digits (``conditional=True``), mode seeking weight 0 vs 1:
  FID (all classes pooled), diversity = mean pairwise Euclidean distance between samples of the
  same class, in the classifier's 64-d feature space and in pixel space (8x8 = 64 values in
  [-1, 1]), averaged over classes (200 samples per class), beside the same number for real digits;
  and the share of samples the classifier assigns to their conditioning class.

Note: the evaluation classifier is also GFMN's feature extractor here (the only offline one for
digits), so GFMN is judged in the space it matches: its FID is not an independent measure.

    .venv/bin/python benchmarks/quality_digits.py                 # full: seeds 0 1 2, 2,000 steps
    .venv/bin/python benchmarks/quality_digits.py --quick         # smoke test (seconds)
    .venv/bin/python benchmarks/quality_digits.py --parts modeseek --seeds 0

Finished runs are kept in the JSON and reused while their resolved config is unchanged.
Results: ``<out>/quality_digits.{json,md}`` (``quality_digits.quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DETAILS,
    RESULTS,
    fmt,
    fmt_mean_sd,
    load_average,
    load_range,
    machine,
    mean_sd,
    read_json,
    same_config,
    spearman,
    table,
    write_results,
)

ROWS: dict[str, tuple[str, dict]] = {
    "mvm": ("MvM, `default` preset", {}),
    "gfmn": ("GFMN, AMA (plugin defaults: step 1e-5)", {"method": "gfmn"}),
    "gfmn-ama0.1": ("GFMN, AMA step 0.1", {"method": "gfmn"}),
    "mvm+ms": ("MvM + MSGAN mode seeking (weight 1)", {"regularizers": {"msgan:ModeSeekingLoss": 1.0}}),
    "gan": ("GAN baseline, non-saturating, same nets", {"method": "gan"}),
}
MODESEEK: dict[str, tuple[str, dict]] = {
    "cond-ms0": ("conditional MvM, mode seeking lambda 0", {"conditional": True}),
    "cond-ms1": ("conditional MvM, mode seeking lambda 1",
                 {"conditional": True, "regularizers": {"msgan:ModeSeekingLoss": 1.0}}),
}
LOSS_KEYS = {"gfmn": "gfmn/matching", "gfmn-ama0.1": "gfmn/matching"}  # default: "matching"
LOSS_NAMES = {"matching": "manifold matching", "gfmn/matching": "feature matching (plain)"}
FINAL_METRICS = ("fid", "kid", "precision", "recall", "class_coverage", "ndb", "jsd")
OPTIONS = {"ndb_bins": 20}
NUM_SAMPLES = 2000
MODESEEK_FORMAT = TABLE_FORMAT = 2  # records of an older format are rerun
SAMPLE_SEED = 12345


class Judge:
    """The digits classifier and the real features, computed once."""

    def __init__(self, n_samples: int = NUM_SAMPLES):
        from mvm_core.data import digits_dataset
        from mvm_core.metrics import load_digits_classifier

        self.n_samples = n_samples
        self.classifier = load_digits_classifier()
        self.real = digits_dataset(8).data
        self.real_features, _ = self.classifier.embed(self.real)

    def metrics(self, images: torch.Tensor, names=FINAL_METRICS, real_features=None) -> dict[str, float]:
        from mvm_core.metrics import evaluate

        features, logits = self.classifier.embed(images.float().cpu())
        reference = self.real_features if real_features is None else real_features
        result = evaluate(reference, features, names, space="digits-classifier", fake_logits=logits,
                          options=OPTIONS)
        return {k.split("@")[0]: v for k, v in result.items()}

    def fid_pixels(self, images: torch.Tensor, real: torch.Tensor | None = None) -> float:
        """FID on the raw 64 pixel values: a judge independent of the classifier (and of GFMN)."""
        from mvm_core.metrics import evaluate

        reference = (self.real if real is None else real).flatten(1).double()
        result = evaluate(reference, images.float().cpu().flatten(1).double(), ("fid",), space="pixels")
        return result["fid@pixels"]

    def fid(self, trainer) -> float:
        return self.metrics(trainer.sample(self.n_samples, seed=SAMPLE_SEED), ("fid",))["fid"]


class CheckpointEval:
    """Trainer callback: FID and the mean logged objective every ``every`` steps; keeps the
    sampling generator's weights of each checkpoint (small nets) for :func:`fixed_metric_losses`."""

    def __init__(self, judge: Judge, every: int, loss_key: str):
        self.judge, self.every, self.loss_key = judge, every, loss_key
        self.points: list[dict] = []
        self.states: list[dict] = []
        self.window: list[float] = []
        self.eval_s = 0.0

    def on_step_end(self, trainer, record: dict) -> None:
        if self.loss_key in record:
            self.window.append(record[self.loss_key])
        if record["step"] % self.every == 0:
            start = time.perf_counter()
            fid = self.judge.fid(trainer)
            self.eval_s += time.perf_counter() - start
            loss = statistics.fmean(self.window) if self.window else math.nan
            self.points.append({"step": record["step"], "fid": fid, "loss": loss})
            self.states.append(copy.deepcopy(trainer.sampler.state_dict()))
            self.window = []


@torch.no_grad()
def fixed_metric_losses(trainer, states: list[dict], n: int = 1000) -> list[float] | None:
    """The generator objective of every checkpoint's generator measured in the *final* metric
    network: ``matching(M(real), M(G_t(z)))`` on ``n`` real digits and ``n`` samples (fixed
    subsets). Unlike the logged loss, each value is measured with the same ruler."""
    if trainer.metric_net is None or trainer.matching is None or not states:
        return None
    gen = torch.Generator().manual_seed(SAMPLE_SEED)
    data = trainer.dataset.data
    real = data[torch.randperm(len(data), generator=gen)[:n]].to(trainer.device)
    z = torch.randn(n, trainer.generator.z_dim, generator=gen).to(trainer.device)
    net, metric = copy.deepcopy(trainer.sampler).eval(), trainer.metric_net
    was_training = metric.training
    metric.eval()
    real_emb = metric(real).float()
    out = []
    for state in states:
        net.load_state_dict(state)
        out.append(float(trainer.matching(real_emb, ref_emb=metric(net(z)).float())))
    metric.train(was_training)
    return out


def resolved_config(overrides: dict, seed: int, steps: int | None, log_every: int):
    from mvm_core.runconfig import build_run_config

    values = {"data": "digits", "seed": seed, "device": "cpu", "log_every": log_every,
              "checkpoint_every": 0, **overrides}
    if steps is not None:
        values["steps"] = steps
    return build_run_config({}, values)


def build(name: str, overrides: dict, seed: int, steps: int | None, log_every: int, callbacks=()):
    from mvm_core.build import build_trainer
    from mvm_core.registry import resolve
    from mvm_core.trainer import Term

    config = resolved_config(overrides, seed, steps, log_every)
    trainer = build_trainer(config, callbacks=callbacks)
    if name == "gfmn-ama0.1":  # same term as method="gfmn", with the AMA step as an option
        term = resolve("regularizers", "gfmn:FeatureMatching", data=trainer.dataset,
                       extractors=["gfmn:digits-classifier"], estimator_options={"lr": 0.1})
        trainer.terms = [Term("gfmn", 1.0, term)]
    return config, trainer


def run_table(judge: Judge, name: str, seed: int, steps: int | None, eval_every: int) -> dict:
    """Train one row of the quality table with checkpoint evaluations; final metrics."""
    loss_key = LOSS_KEYS.get(name, "matching")
    tracker = CheckpointEval(judge, eval_every, loss_key)
    config, trainer = build(name, ROWS[name][1], seed, steps, 10, [tracker])
    load = load_average()
    start = time.perf_counter()
    trainer.fit()
    train_s = time.perf_counter() - start - tracker.eval_s
    samples = trainer.sample(judge.n_samples, seed=SAMPLE_SEED)
    final = judge.metrics(samples)
    final["fid_pixels"] = judge.fid_pixels(samples)
    pts = tracker.points
    fixed = fixed_metric_losses(trainer, tracker.states)
    for point, value in zip(pts, fixed or []):
        point["loss_final_metric"] = value
    return {
        "part": "table", "format": TABLE_FORMAT, "config": name, "seed": seed, "steps": config.steps, "final": final,
        "train_s": train_s, "load_average": load, "loss_key": loss_key, "checkpoints": pts,
        "spearman_loss_fid": spearman([p["loss"] for p in pts], [p["fid"] for p in pts]),
        "spearman_loss_step": spearman([p["loss"] for p in pts], [p["step"] for p in pts]),
        "spearman_final_metric_loss_fid": spearman([p.get("loss_final_metric", math.nan) for p in pts],
                                                   [p["fid"] for p in pts]),
        "resolved": config.to_dict(),
    }


def per_class_diversity(images: torch.Tensor, labels: torch.Tensor, judge: Judge,
                        features: torch.Tensor | None = None) -> dict[str, float]:
    """Mean pairwise distance within each class of ``labels``, averaged over the classes with at
    least 2 samples, in the classifier's features and in pixels."""
    from mvm_core.metrics import mean_pairwise_distance

    feats = judge.classifier.embed(images)[0] if features is None else features
    out = {"diversity_features": [], "diversity_pixels": []}
    for c in range(10):
        mask = labels == c
        if int(mask.sum()) < 2:
            continue
        out["diversity_features"].append(mean_pairwise_distance(feats[mask]))
        out["diversity_pixels"].append(mean_pairwise_distance(images[mask].flatten(1).double()))
    return {k: statistics.fmean(v) for k, v in out.items()}


def run_modeseek(judge: Judge, name: str, seed: int, steps: int | None) -> dict:
    config, trainer = build(name, MODESEEK[name][1], seed, steps, 50)
    load = load_average()
    start = time.perf_counter()
    trainer.fit()
    train_s = time.perf_counter() - start
    cond = torch.arange(judge.n_samples) % 10
    images = trainer.sample(judge.n_samples, cond=cond, seed=SAMPLE_SEED).float().cpu()
    final = judge.metrics(images, ("fid", "class_coverage"))
    features, logits = judge.classifier.embed(images)
    predicted = logits.argmax(1)
    final["class_accuracy"] = float((predicted == cond).float().mean())
    final.update(per_class_diversity(images, cond, judge, features))
    # grouped by the class the classifier sees (meaningful also when the generator ignores cond)
    final.update({f"{k}_predicted": v for k, v in per_class_diversity(images, predicted, judge, features).items()})
    return {"part": "modeseek", "format": MODESEEK_FORMAT, "config": name, "seed": seed, "steps": config.steps,
            "final": final,
            "train_s": train_s, "load_average": load, "resolved": config.to_dict()}


def floor(judge: Judge) -> dict:
    """Real vs real: held-out test digits against the classifier's training digits."""
    from mvm_core.metrics import digits_split

    x_train, y_train, x_test, y_test = digits_split()
    train_features, _ = judge.classifier.embed(x_train)
    result = judge.metrics(x_test, real_features=train_features)
    result["fid_pixels"] = judge.fid_pixels(x_test, real=x_train)
    result.update({"n_fake": len(x_test), "n_real": len(x_train)})
    real = per_class_diversity(judge.real, torch.as_tensor(_digit_labels()), judge)
    return {"table": result, "real_diversity": real}


def _digit_labels():
    from sklearn.datasets import load_digits

    return load_digits().target


def _values(runs: list[dict], name: str, key: str, src: str = "final") -> list[float]:
    return [r[src][key] if src else r[key] for r in runs if r["config"] == name]


def markdown(data: dict) -> str:
    meta, runs, fl = data["meta"], data["runs"], data["floor"]
    table_runs = [r for r in runs if r["part"] == "table"]
    ms_runs = [r for r in runs if r["part"] == "modeseek"]
    preset = meta["preset_values"]
    m = meta["machine"]
    out = [
        f"# Digits quality study ({'quick' if meta['quick'] else 'full'} run)",
        "",
        f"Library runs on scikit-learn's 8x8 digits, `default` image preset ({preset.get('steps')}"
        f" steps, batch {preset.get('batch_size')}, matching `{preset.get('matching')}`, metric loss"
        f" `{preset.get('metric_loss')}`, EMA {preset.get('ema_decay')}) unless the row says otherwise;"
        f" seeds {meta['seeds']}; mean ± sd over seeds. Judge: the shipped digits classifier"
        f" (`@digits-classifier`), {meta['samples']} samples vs the 1,797 real digits. {m['cpu']},"
        f" {m['logical_cpus']} logical CPUs shared with other jobs (1-minute load average"
        f" {load_range(runs)} across the runs), 1 torch thread, torch {m['torch']}, commit"
        f" {m['commit'][:10]}{' + local changes' if m['dirty'] else ''}.",
        "",
    ]
    names = [n for n in ROWS if any(r["config"] == n for r in table_runs)]
    if names:
        t = fl["table"]
        body = [["real vs real (360 test vs 1,437 train digits)", fmt(t["fid"], "{:.2f}"),
                 fmt(t["fid_pixels"], "{:.2f}"),
                 fmt(t["kid"], "{:.1f}"), fmt(t["precision"], "{:.2f}"), fmt(t["recall"], "{:.2f}"),
                 f"{t['class_coverage'] * 10:.0f}/10 ({t['min_class_share']:.2f})",
                 fmt(t["ndb"], "{:.0f}"), fmt(t["jsd"], "{:.3f}"), "-"]]
        for n in names:
            classes = _values(table_runs, n, "class_coverage")
            body.append([
                f"{n}: {ROWS[n][0]}", fmt_mean_sd(_values(table_runs, n, "fid"), "{:.1f}"),
                fmt_mean_sd(_values(table_runs, n, "fid_pixels"), "{:.2f}"),
                fmt_mean_sd(_values(table_runs, n, "kid"), "{:.0f}"),
                fmt_mean_sd(_values(table_runs, n, "precision"), "{:.2f}"),
                fmt_mean_sd(_values(table_runs, n, "recall"), "{:.2f}"),
                f"{min(classes) * 10:.0f}/10 ({fmt_mean_sd(_values(table_runs, n, 'min_class_share'), '{:.2f}')})",
                fmt_mean_sd(_values(table_runs, n, "ndb"), "{:.1f}"),
                fmt_mean_sd(_values(table_runs, n, "jsd"), "{:.3f}"),
                fmt(statistics.fmean(_values(table_runs, n, "train_s", None)), "{:.0f}"),
            ])
        out += ["## Quality", "",
                table(["method", "FID", "FID@pixels", "KID", "precision", "recall", "classes (min share)",
                       "NDB/20", "JSD", "train s"], body),
                "",
                "All columns but FID@pixels are measured in the classifier's features; FID@pixels is the"
                " Fréchet distance of the raw 64 pixel values, a judge that no method trains on."
                " KID is the unbiased polynomial-kernel MMD² on the classifier's features (raw units, not"
                " x1000; negative = indistinguishable). Classes: digits predicted at least once (worst"
                " seed); min share: smallest class share x 10 (1 = balanced). The floor uses 360 fake"
                " samples: FID is biased upwards at small N, so the floor at 2,000 samples is at most"
                " this. GFMN matches the features of the judging classifier (see the note above).",
                ""]
        body = []
        for n in names:
            rs = [r for r in table_runs if r["config"] == n]
            first = [r["checkpoints"][0] for r in rs if r["checkpoints"]]
            last = [r["checkpoints"][-1] for r in rs if r["checkpoints"]]
            body.append([
                n, "GAN generator loss" if n == "gan" else LOSS_NAMES.get(rs[0]["loss_key"], rs[0]["loss_key"]),
                str(len(rs[0]["checkpoints"])),
                fmt_mean_sd([r["spearman_loss_fid"] for r in rs], "{:.2f}"),
                fmt_mean_sd([r["spearman_loss_step"] for r in rs], "{:.2f}"),
                fmt_mean_sd([r.get("spearman_final_metric_loss_fid", math.nan) for r in rs], "{:.2f}"),
                f"{fmt(mean_sd([p['loss'] for p in first])[0], '{:.3g}')} ->"
                f" {fmt(mean_sd([p['loss'] for p in last])[0], '{:.3g}')}",
                f"{fmt(mean_sd([p['fid'] for p in first])[0], '{:.0f}')} ->"
                f" {fmt(mean_sd([p['fid'] for p in last])[0], '{:.0f}')}",
            ])
        out += ["## Does the loss track quality?", "",
                f"FID of {meta['samples']} samples every {meta['eval_every']} steps (in-process, as from a"
                " checkpoint saved there); the loss is the mean of the values logged since the previous"
                " evaluation. Spearman(loss, FID) > 0: lower loss goes with lower FID;"
                " Spearman(loss, step) < 0: the loss falls over training. The logged loss is measured"
                " in a metric that keeps changing; the last column measures every checkpoint's"
                " generator (EMA weights, as for FID) in the final metric network instead (1,000 real"
                " vs 1,000 generated digits; not defined for GFMN, which has no metric network).",
                "",
                table(["method", "loss", "checkpoints", "Spearman(loss, FID)", "Spearman(loss, step)",
                       "Spearman(loss in final metric, FID)", "loss first -> last", "FID first -> last"],
                      body),
                ""]
    ms_names = [n for n in MODESEEK if any(r["config"] == n for r in ms_runs)]
    if ms_names:
        real = fl["real_diversity"]
        body = [["real digits (by their label)", "-", fmt(real["diversity_features"], "{:.2f}"),
                 fmt(real["diversity_pixels"], "{:.2f}"), "-", "-", "-", "-"]]
        for n in ms_names:
            body.append([
                f"{n}: {MODESEEK[n][0]}", fmt_mean_sd(_values(ms_runs, n, "fid"), "{:.1f}"),
                fmt_mean_sd(_values(ms_runs, n, "diversity_features"), "{:.2f}"),
                fmt_mean_sd(_values(ms_runs, n, "diversity_pixels"), "{:.2f}"),
                fmt_mean_sd(_values(ms_runs, n, "diversity_features_predicted"), "{:.2f}"),
                fmt_mean_sd(_values(ms_runs, n, "diversity_pixels_predicted"), "{:.2f}"),
                fmt_mean_sd(_values(ms_runs, n, "class_accuracy"), "{:.2f}"),
                fmt(statistics.fmean(_values(ms_runs, n, "train_s", None)), "{:.0f}"),
            ])
        out += ["## Mode seeking on conditional digits", "",
                "Diversity: mean pairwise Euclidean distance between samples of the same class"
                f" ({meta['samples'] // 10} per class, averaged over the 10 classes), in the classifier's 64-d features and in"
                " pixels; higher = more diverse. Samples are grouped by the class they were generated"
                " for, and (\"predicted\") by the class the digits classifier assigns them; the real row"
                " groups real digits by their label. Class accuracy: share of samples the classifier"
                " assigns to the class they were generated for (0.1 = the class is ignored).",
                "",
                table(["run", "FID", "diversity (features)", "diversity (pixels)",
                       "diversity, predicted class (features)", "diversity, predicted class (pixels)",
                       "class accuracy", "train s"], body),
                ""]
    out += [DETAILS, "", "## Per seed", ""]
    out.append(table(["part", "run", "seed", "FID", "precision", "recall", "min share",
                      "Spearman(loss, FID)", "train s"],
                     [[r["part"], r["config"], r["seed"], fmt(r["final"]["fid"], "{:.1f}"),
                       fmt(r["final"].get("precision"), "{:.2f}"), fmt(r["final"].get("recall"), "{:.2f}"),
                       fmt(r["final"].get("min_class_share"), "{:.2f}"),
                       fmt(r.get("spearman_loss_fid"), "{:.2f}"), f"{r['train_s']:.0f}"] for r in runs],
                     "lllrrrrrr"))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 seed, 20 steps, 2 rows")
    parser.add_argument("--parts", nargs="+", choices=("table", "modeseek"), default=["table", "modeseek"])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), help="rows of the table (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, help="override the preset's step budget")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between FID checkpoints")
    parser.add_argument("--samples", type=int, default=NUM_SAMPLES, help="generated samples per evaluation")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--fresh", action="store_true", help="ignore finished runs in the JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = args.rows or (["mvm", "gan"] if args.quick else list(ROWS))
    if args.quick:
        args.seeds, args.steps, args.eval_every = args.seeds[:1], args.steps or 20, 10
        args.samples = min(args.samples, 400)
    stem = "quality_digits.quick" if args.quick else "quality_digits"
    previous = None if args.fresh else read_json(args.out / f"{stem}.json")
    kept = previous["runs"] if previous else []
    judge = Judge(args.samples)
    meta = {"quick": args.quick, "seeds": args.seeds, "rows": rows, "parts": args.parts, "samples": args.samples,
            "eval_every": args.eval_every, "steps_override": args.steps, "machine": machine(args.threads),
            "preset_values": resolved_config({}, 0, args.steps, 10).to_dict()}
    data = {"meta": meta, "floor": floor(judge), "runs": []}

    def save() -> None:
        meta["load_average_end"] = load_average()
        write_results(args.out, stem, data, markdown(data))

    jobs = [("table", n) for n in rows if "table" in args.parts]
    jobs += [("modeseek", n) for n in MODESEEK if "modeseek" in args.parts]
    for seed in args.seeds:  # seed-major: an interrupted study still has every row
        for part, name in jobs:
            overrides = (ROWS if part == "table" else MODESEEK)[name][1]
            log_every = 10 if part == "table" else 50
            config = resolved_config(overrides, seed, args.steps, log_every).to_dict()
            done = next((r for r in kept if r["part"] == part and r["config"] == name and r["seed"] == seed
                         and same_config(r["resolved"], config)
                         and r.get("samples") == args.samples
                         and r.get("format") == (MODESEEK_FORMAT if part == "modeseek" else TABLE_FORMAT)
                         and (part != "table" or r.get("eval_every") == args.eval_every)), None)
            if done is None:
                if part == "table":
                    done = run_table(judge, name, seed, args.steps, args.eval_every)
                    done["eval_every"] = args.eval_every
                else:
                    done = run_modeseek(judge, name, seed, args.steps)
                done["samples"] = args.samples
                f = done["final"]
                print(f"{part:8s} {name:12s} s{seed}: FID {f['fid']:.1f}"
                      f" rho(loss,FID) {done.get('spearman_loss_fid', math.nan):.2f}"
                      f" ({done['train_s']:.0f} s)", flush=True)
            data["runs"].append(done)
            save()
    save()
    print((args.out / f"{stem}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
