#!/usr/bin/env python3
"""Tables of the Go trainer's and the PyTorch reference's runs (run.sh's output folder):
kNN accuracy at init and after each epoch per seed, mean and sample standard deviation per
trainer, the difference of the means against the seed-to-seed spread, loss and step times.

    python bench/moco_reference/compare.py out/moco_reference
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
import sys

TRAINERS = (("go", "ours (Go, SimpleGo)"), ("torch", "PyTorch reference"))


STEP_LINE = re.compile(r"step (\d+) epoch (\d+) loss ([0-9.]+)")
CPU_LINE = re.compile(r"(?:User|System) time \(seconds\): ([0-9.]+)")


def load(folder: str, trainer: str) -> dict[int, dict]:
    """The summaries of one trainer by seed. The Go summary has no per-step losses: they come
    from its log's step lines (run.sh logs every step)."""
    runs = {}
    for path in glob.glob(os.path.join(folder, f"{trainer}-seed*.json")):
        seed = int(re.search(r"seed(\d+)\.json$", path).group(1))
        with open(path) as f:
            run = json.load(f)
        log_path = path[:-len(".json")] + ".log"
        log = open(log_path).read() if os.path.exists(log_path) else ""
        if "losses" not in run:
            steps = {int(m[1]): float(m[3]) for m in STEP_LINE.finditer(log)}
            if len(steps) == run["steps"]:
                run["losses"] = [steps[i] for i in range(1, run["steps"] + 1)]
        cpu = [float(m[1]) for m in CPU_LINE.finditer(log)]
        run["cpu_s"] = sum(cpu) if len(cpu) == 2 else None  # GNU time's user + system
        runs[seed] = run
    return dict(sorted(runs.items()))


def epoch_losses(run: dict, epochs: int) -> list[float]:
    """Mean training loss of each epoch (equal steps per epoch), or [] without per-step losses."""
    losses = run.get("losses") or []
    per = len(losses) // epochs if epochs else 0
    return [sum(losses[e * per:(e + 1) * per]) / per for e in range(epochs)] if per else []


def curve(run: dict) -> list[float]:
    return [run["knn_accuracy_at_init"], *run["knn_accuracy_per_epoch"]]


def mean_sd(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return m, sd


def main(argv: list[str]) -> int:
    folder = argv[1] if len(argv) > 1 else "out/moco_reference"
    runs = {t: load(folder, t) for t, _ in TRAINERS}
    if not all(runs.values()):
        print(f"{folder}: need go-seed*.json and torch-seed*.json", file=sys.stderr)
        return 1
    epochs = min(len(curve(r)) for rs in runs.values() for r in rs.values())
    head = ["trainer", "seed", "init"] + [f"ep {e}" for e in range(epochs - 1)] + ["loss step 1", "final loss", "ms/step", "CPU s (run)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    means = {}
    for t, name in TRAINERS:
        for seed, r in runs[t].items():
            loss1 = r["losses"][0] if r.get("losses") else None
            cells = [name, str(seed)] + [f"{a:.3f}" for a in curve(r)[:epochs]] + [
                f"{loss1:.3f}" if loss1 is not None else "", f"{r['final_loss']:.3f}", f"{r['mean_step_ms']:.0f}",
                f"{r['cpu_s']:.0f}" if r["cpu_s"] is not None else ""]
            print("| " + " | ".join(cells) + " |")
        cols = list(zip(*(curve(r)[:epochs] for r in runs[t].values())))
        means[t] = [mean_sd(list(c)) for c in cols]
        step = mean_sd([r["mean_step_ms"] for r in runs[t].values()])
        loss = mean_sd([r["final_loss"] for r in runs[t].values()])
        cpu = [r["cpu_s"] for r in runs[t].values() if r["cpu_s"] is not None]
        cpu_cell = "{:.0f} ± {:.0f}".format(*mean_sd(cpu)) if cpu else ""
        cells = [f"**{name}, mean ± sd**", f"{len(runs[t])} seeds"] + [f"{m:.3f} ± {s:.3f}" for m, s in means[t]] + [
            "", f"{loss[0]:.3f} ± {loss[1]:.3f}", f"{step[0]:.0f} ± {step[1]:.0f}", cpu_cell]
        print("| " + " | ".join(cells) + " |")
    print()
    print("| | init | " + " | ".join(f"ep {e}" for e in range(epochs - 1)) + " |")
    print("|---|" + "---|" * epochs)
    diff = [g[0] - p[0] for g, p in zip(means["go"], means["torch"])]
    spread = [max(g[1], p[1]) for g, p in zip(means["go"], means["torch"])]
    print("| mean Go − mean PyTorch | " + " | ".join(f"{d:+.3f}" for d in diff) + " |")
    print("| larger seed sd | " + " | ".join(f"{s:.3f}" for s in spread) + " |")
    paired = [s for s in runs["go"] if s in runs["torch"]]
    if len(paired) > 1:  # the same seed is the same views: their difference leaves them out
        cols = zip(*([g - p for g, p in zip(curve(runs["go"][s])[:epochs], curve(runs["torch"][s])[:epochs])] for s in paired))
        print(f"| paired by seed ({len(paired)}): Go − PyTorch, mean ± sd | "
              + " | ".join("{:+.3f} ± {:.3f}".format(*mean_sd(list(c))) for c in cols) + " |")
    print()
    print("Mean training loss per epoch, mean ± sd over seeds:")
    print()
    print("| trainer | " + " | ".join(f"ep {e}" for e in range(epochs - 1)) + " |")
    print("|---|" + "---|" * (epochs - 1))
    for t, name in TRAINERS:
        per_seed = [epoch_losses(r, epochs - 1) for r in runs[t].values()]
        per_seed = [p for p in per_seed if p]
        if per_seed:
            cells = [f"{m:.3f} ± {sd:.3f}" for m, sd in (mean_sd(list(c)) for c in zip(*per_seed))]
            print(f"| {name} ({len(per_seed)} seeds) | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
