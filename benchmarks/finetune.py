"""Post-training search alone against search + quantization-aware fine-tuning, at a final delta of 1 point.

For each model: (a) the default greedy search at delta = 1; (b) the same search aiming lower
(delta = 3 post-training), then `finetune.candidates` of its smallest feasible assignments fine-tuned,
keeping the smallest within 1 point after fine-tuning. Both run through the CLI, as a user would.
Writes benchmarks/results/finetune.md.

    .venv/bin/python benchmarks/finetune.py [--models spikformer_digits spikformer_wide]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aqsvit  # noqa: F401
from aqsvit.report import markdown_table

RESULTS = Path(__file__).parent / "results"
NUMBER = r"([-\d.]+)"


def search(model: str, folder: str, extra: list[str]) -> tuple[str, float]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "aqsvit.cli", "search", f"model={model}", "progress=false",
                          f"storage.url=sqlite:///{folder}/study.db", f"finetune.dir={folder}/finetune", *extra],
                         check=True, capture_output=True, text=True)
    return out.stdout, time.perf_counter() - started


def chosen_row(stdout: str) -> tuple[float, float, float]:
    """(accuracy, drop, effective bits) of the post-training chosen assignment."""
    cells = [c.strip() for c in re.search(r"^\| chosen .*$", stdout, re.M).group(0).strip("|").split("|")]
    return float(cells[1]), float(cells[2]), float(cells[6])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["spikformer_digits", "spikformer_wide"])
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for model in args.models:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            post, post_s = search(model, a, ["delta=1", "search.study_name=post"])
            acc, drop, bits = chosen_row(post)
            rows.append((model, "search, delta 1", bits, f"{32 / bits:.2f}x", acc, drop, f"{post_s:.0f}", "-"))
            low, low_s = search(model, b, ["delta=3", "search.study_name=low", "finetune.delta=1",
                                           f"finetune.candidates={args.candidates}", f"finetune.epochs={args.epochs}"])
            ft_s = float(re.search(rf"fine-tuned \d+ assignment\(s\), \d+ epochs each, {NUMBER} s", low).group(1))
            picked = re.search(rf"chosen: #\d+, {NUMBER} effective bits .*accuracy {NUMBER}% \(drop {NUMBER}\)", low)
            if picked:
                fbits, facc, fdrop = (float(g) for g in picked.groups())
                rows.append((model, f"search delta 3 + fine-tune ({args.candidates} candidates)", fbits,
                             f"{32 / fbits:.2f}x", facc, fdrop, f"{low_s:.0f}", f"{ft_s:.0f}"))
            else:
                rows.append((model, "search delta 3 + fine-tune: none within 1 point", "-", "-", "-", "-",
                             f"{low_s:.0f}", f"{ft_s:.0f}"))
            print(rows[-2:], flush=True)
    text = ["# Fine-tuning: post-training search alone vs search + fine-tune (final delta 1 point)", "",
            f"Command: `.venv/bin/python benchmarks/finetune.py --models {' '.join(args.models)}` on this 2-core "
            f"machine. Both rows per model are CLI runs (`aqsvit search`, greedy, drift pruner, {args.epochs} "
            "fine-tuning epochs). The second aims lower: `aqsvit search delta=3 finetune.delta=1 "
            f"finetune.candidates={args.candidates}` fine-tunes the {args.candidates} smallest feasible "
            "assignments of the loose search and keeps the smallest within 1 point of the FP accuracy after "
            "fine-tuning. Wall s covers the whole command (a model's first row includes training its FP reference when it is not cached yet: spikformer_wide's was trained in that run), fine-tune s the fine-tuning alone.", "",
            markdown_table(("model", "method", "eff. bits", "weight x", "accuracy %", "drop", "wall s", "fine-tune s"),
                           rows), ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "finetune.md").write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
