"""How well each drift definition predicts the accuracy drop (issue #3, part 1).

Random per-layer assignments plus every single-layer change from all-8-bit, on the default digits
model: Spearman and Kendall per definition, overall and near the constraint (drop < 5 points),
with 95% bootstrap intervals. Writes benchmarks/results/proxy.md and an interactive scatter (HTML).

    .venv/bin/python benchmarks/proxy.py [--random 200] [--seed 0]
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
from scipy.stats import kendalltau, spearmanr

import aqsvit  # noqa: F401
from aqsvit.data import load_dataset
from aqsvit.models import model_spec
from aqsvit.proxy import DEFINITIONS, drift, get_reference
from aqsvit.report import markdown_table
from aqsvit.search.evaluator import Evaluator
from aqsvit.training import get_reference as reference_checkpoint

RESULTS = Path(__file__).parent / "results"


def bootstrap(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n: int = 1000) -> tuple[float, float]:
    stats = []
    for _ in range(n):
        idx = rng.integers(0, len(x), len(x))
        stats.append(spearmanr(x[idx], y[idx])[0])
    return float(np.nanpercentile(stats, 2.5)), float(np.nanpercentile(stats, 97.5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    spec = model_spec("spikformer_digits")
    data = load_dataset("digits", spec.input_shape, seed=0)
    ckpt = reference_checkpoint(spec, data, progress=False)
    ev = Evaluator(ckpt.build(), data, ckpt.fp_accuracy)
    modules = tuple(sorted({l.module_name for l in ev.layers}))
    ref = get_reference(ev.model, data.calib, "bench", images=64, batch_size=32, layer_inputs=modules)
    rng = random.Random(args.seed)
    assignments = [{l.name: (rng.choice(["uniform", "pot"]), rng.choice([8, 6, 5, 4, 3, 2])) for l in ev.layers}
                   for _ in range(args.random)]
    base = {l.name: ("uniform", 8) for l in ev.layers}
    assignments += [{**base, l.name: (s, b)} for l in ev.layers for s in ("uniform", "pot") for b in (6, 4, 3, 2)]
    rows, started = [], time.perf_counter()
    for a in assignments:
        with ev.quantizer.applied(a) as model:
            d = drift(model, ref, local=True).values
        rows.append((d, ev.measure(a).drop))
    seconds = time.perf_counter() - started
    drops = np.array([r[1] for r in rows])
    near = drops < 5
    nrng = np.random.default_rng(args.seed)
    table = []
    for name in DEFINITIONS:
        x = np.array([r[0][name] for r in rows])
        lo, hi = bootstrap(x[near], drops[near], nrng)
        table.append((name, spearmanr(x, drops)[0], kendalltau(x, drops)[0], spearmanr(x[near], drops[near])[0],
                      kendalltau(x[near], drops[near])[0], f"{lo:.2f} .. {hi:.2f}"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    step = 100.0 / len(data.test)
    text = [
        "# Drift definitions against accuracy drop", "",
        f"Command: `.venv/bin/python benchmarks/proxy.py --random {args.random} --seed {args.seed}`. "
        f"{len(rows)} assignments ({args.random} random, {len(rows) - args.random} single-layer changes from "
        f"all-8-bit), spikformer_digits (FP {ev.fp_accuracy:.2f}%), drift on 64 calibration images, "
        f"accuracy on {len(data.test)} test images (granularity {step:.2f} points). "
        f"{int(near.sum())} assignments have a drop < 5 points. {seconds:.0f} s.", "",
        markdown_table(("definition", "Spearman", "Kendall", "Spearman, drop < 5", "Kendall, drop < 5",
                        "95% bootstrap, drop < 5"), table), "",
    ]
    (RESULTS / "proxy.md").write_text("\n".join(text))
    fig = go.Figure()
    for name in DEFINITIONS:
        fig.add_trace(go.Scatter(x=[r[0][name] for r in rows], y=drops, mode="markers", name=name,
                                 visible=True if name == "kl" else "legendonly"))
    fig.update_layout(title="Drift vs accuracy drop", xaxis_title="drift", yaxis_title="drop (points)")
    fig.write_html(RESULTS / "proxy.html", include_plotlyjs="cdn")
    print("\n".join(text))


if __name__ == "__main__":
    main()
