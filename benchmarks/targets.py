"""Compression as each hardware target stores it (issue 34): one default greedy search at Δ = 1 per
target and model, beside the ``any`` figure (codes packed bit for bit, FP32 scales per channel).

Each search is the CLI's default (sensitivity start, drift pruner, screen) with ``target=<name>``;
every chosen layer is checked against the profile, and the chip export's integer reference forward
(codes times the target's scales, rebuilt from the written file) is checked to give the searched
accuracy on the whole evaluation split. Writes benchmarks/results/targets.md.

    .venv/bin/python benchmarks/targets.py [--models spikformer_digits spikformer_wide] [--targets any loihi2 ...]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

import aqsvit  # noqa: F401
from aqsvit.evaluation import accuracy
from aqsvit.hardware import TARGETS
from aqsvit.report import markdown_table
from aqsvit.report.export import load_model, save_model
from aqsvit.search.run import run, summarize
from aqsvit.search.setup import assemble, reference
from aqsvit.settings import ModelSettings, SearchSettings, Settings

RESULTS = Path(__file__).parent / "results"


def search(model: str, target: str, folder: Path) -> tuple:
    """One default search for ``target``; its table row."""
    settings = Settings(SearchSettings(target=target, study_name=f"{model}-{target}",
                                       storage_url=f"sqlite:///{folder}/targets.db"),
                        model=ModelSettings(model), progress=False)
    ref = reference(settings)
    evaluator = ref.evaluator(settings, "cpu")
    started = time.perf_counter()
    prepared = assemble(evaluator, settings.search, ref.key, storage=optuna.storages.InMemoryStorage())
    run(prepared, progress=False)
    summary = summarize(prepared)
    seconds = time.perf_counter() - started
    hardware = TARGETS[target]
    assignment = prepared.space.assignment(summary.choices)
    illegal = [name for name, choice in assignment.items() if not hardware.holds(*choice)]
    assert not illegal, f"{target}: {illegal[0]} holds {assignment[illegal[0]]}"
    path = save_model(folder / target, evaluator.model, assignment, hardware, evaluator.quantizer.split_qkv)
    rebuilt = load_model(path, ref.checkpoint.build())
    exported = accuracy(rebuilt, evaluator.test, evaluator.eval_batch)
    m = summary.measurement
    assert exported == m.accuracy, f"{target}: export {exported} != searched {m.accuracy}"
    widths = sorted({f"{s}{b}" for s, b in assignment.values()})
    return (model, target, f"{m.accuracy:.2f}", f"{m.drop:.2f}", f"{m.memory_bytes / 1024:.2f}",
            f"{m.model_compression:.2f}", f"{m.weight_compression:.2f}", f"{m.effective_bits:.2f}",
            " ".join(widths), f"{exported:.2f}", f"{seconds:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["spikformer_digits", "spikformer_wide"])
    parser.add_argument("--targets", nargs="+", default=TARGETS.names())
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for target in sorted(args.targets, key=lambda t: (t != "any", t)):
                (Path(tmp) / target).mkdir(exist_ok=True)
                rows.append(search(model, target, Path(tmp)))
                print(rows[-1], flush=True)
    headers = ("model", "target", "accuracy %", "drop", "memory KiB", "model x", "weight x", "stored bits/weight",
               "codes used", "export accuracy %", "search s")
    kept = [row for row in earlier_rows(RESULTS / "targets.md", len(headers))
            if row[0] not in args.models or row[1] not in args.targets]
    rows = sorted(kept + rows, key=lambda row: (row[0], row[1] != "any", row[1]))
    text = "\n".join([
        "# Compression as each hardware target stores it (Δ = 1 point)", "",
        "Default greedy search (sensitivity start, drift pruner, 30% screen) per target; memory, compression",
        "and bits per weight counted in the target's containers with its scales (aqsvit/hardware.py).",
        "`export accuracy` is the integer reference forward of the written export (codes x scales), over",
        "the whole evaluation split: equal to the searched accuracy in every row (checked). A run for some",
        "models (or targets) keeps the other rows; each model's rows come from", "",
        *(f"    .venv/bin/python benchmarks/targets.py --models {model}" for model in sorted({r[0] for r in rows})), "",
        markdown_table(headers, rows), ""])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "targets.md").write_text(text)
    print(text)


def earlier_rows(path: Path, columns: int) -> list[tuple[str, ...]]:
    """The rows of the table a previous run wrote to ``path`` (none when it is missing)."""
    if not path.exists():
        return []
    cells = [tuple(c.strip() for c in line.strip().strip("|").split("|")) for line in path.read_text().splitlines()
             if line.startswith("|")]
    return [row for row in cells[2:] if len(row) == columns]  # past the header and its rule


if __name__ == "__main__":
    main()
