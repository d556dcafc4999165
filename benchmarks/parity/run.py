"""Parity of aqsvit's published models with their authors' code, on the same random weights.

For each case of the definition modules (spikformer.py, ...): take the reference files out of a
local git copy of the authors' repository (``--source owner/name=<git dir>``, e.g. what the search
tool's ``fetch`` brings), run the reference model in a throwaway venv with its own old dependencies
(``--venv``; see docs/benchmarks.md for how to make one) via ``reference_driver.py``, which gives it random
weights and saves it as its training script does; load that file with aqsvit's checkpoint loader
(the code behind ``aqsvit ... checkpoint=``) and compare float64 logits and float32 argmax.
Writes benchmarks/results/parity.md: the rows of the cases run replace (by label) or join the rows
already there, and each command is listed with the rows it wrote. Nothing of the reference code is kept.

    .venv/bin/python benchmarks/parity/run.py --venv /tmp/parity-venv \\
        --source ZK-Zhou/spikformer=/path/to/spikformer/.git

``--venv`` is one venv for every reference, or one per repository (``--venv owner/name=<venv>``,
repeatable, beside an optional plain default) where their pinned dependencies differ.
"""
from __future__ import annotations

import argparse
import importlib
import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from case import Case  # noqa: E402

from aqsvit.models import create_model, load_checkpoint, model_spec  # noqa: E402
from aqsvit.models.checkpoint import load_weights  # noqa: E402

ARCHITECTURES = ("spikformer", "sdt", "qkformer")


def cases(names: list[str]) -> list[Case]:
    """The cases of every definition module present (or of ``names``)."""
    found = []
    for arch in ARCHITECTURES:
        if (HERE / f"{arch}.py").exists():
            found += importlib.import_module(arch).CASES
    return [c for c in found if not names or c.model in names or c.label in names]


def checkout(git_dir: str, files: tuple[str, ...], dest: Path) -> str:
    """Extract ``files`` at HEAD of ``git_dir`` into ``dest``; returns the commit."""
    commit = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    archive = subprocess.run(["git", "--git-dir", git_dir, "archive", commit, *files], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return commit


def inputs(case: Case, seed: int) -> torch.Tensor:
    """Seeded float64 inputs: normalised-image-like values, or event counts."""
    gen = torch.Generator().manual_seed(seed)
    shape = (case.images, *case.input_shape)
    if case.events:
        return torch.randint(0, 3, shape, generator=gen).double()
    return torch.randn(shape, generator=gen, dtype=torch.float64)


def aqsvit_logits(case: Case, checkpoint: Path, x: torch.Tensor, dtype: torch.dtype, batch: int) -> torch.Tensor:
    """Load ``checkpoint`` as ``aqsvit ... checkpoint=`` does and run aqsvit's model in ``dtype``."""
    from spikingjelly.activation_based import functional

    spec = model_spec(case.model, **case.kwargs)
    ckpt = load_checkpoint(checkpoint, spec)
    model = create_model(spec).to(dtype)
    load_weights(model, ckpt.state_dict, source=str(checkpoint))
    model.eval()
    outs = []
    with torch.no_grad():
        for chunk in x.to(dtype).split(batch):
            outs.append(model(chunk))
            functional.reset_net(model)
    return torch.cat(outs)


def run_case(case: Case, source: str, venv_python: str, seed: int, batch: int) -> dict:
    """One row: reference run in the venv, aqsvit run here, the comparison."""
    with tempfile.TemporaryDirectory(prefix="aqsvit-parity-") as tmp:
        tmp = Path(tmp)
        src = tmp / "reference"
        src.mkdir()
        commit = checkout(source, case.files, src)
        for path in case.files:
            for file in ([src / path] if (src / path).is_file() else (src / path).rglob("*.py")):
                text = file.read_text()
                for old, new in case.patches:
                    text = text.replace(old, new)
                file.write_text(text)
        x = inputs(case, seed)
        torch.save(x, tmp / "inputs.pt")
        job = {"module_dir": str((src / case.module).parent), "module_file": str(src / case.module),
               "source_root": str(src),  # a module may import its repository's packages (SDT: module/)
               "build": case.build, "forward": case.forward, "head": case.head, "save": case.save, "seed": seed, "batch": batch,
               "inputs": str(tmp / "inputs.pt"), "logits": str(tmp / "logits.pt"),
               "checkpoint_float64": str(tmp / "ckpt64.pth"), "checkpoint_float32": str(tmp / "ckpt32.pth")}
        (tmp / "job.json").write_text(json.dumps(job))
        done = subprocess.run([venv_python, str(HERE / "reference_driver.py"), str(tmp / "job.json")],
                              capture_output=True, text=True, cwd=tmp)
        if done.returncode:
            raise SystemExit(f"{case.label}: the reference run failed:\n{done.stderr[-3000:]}")
        ref = torch.load(tmp / "logits.pt", weights_only=True)
        ours64 = aqsvit_logits(case, tmp / "ckpt64.pth", x, torch.float64, batch)
        ours32 = aqsvit_logits(case, tmp / "ckpt32.pth", x, torch.float32, batch)
    rel = float((ours64 - ref["float64"]).abs().max() / ref["float64"].abs().max())
    agree = int((ours32.argmax(1) == ref["float32"].argmax(1)).sum())
    distinct = len(set(ref["float32"].argmax(1).tolist()))
    return {"case": case, "rel": rel, "agree": agree, "distinct": distinct, "commit": commit,
            "parameters": json.loads(done.stdout.strip().splitlines()[-1])["parameters"]}


HEADER = ("| model | aqsvit model | config | input | reference parameters | max rel diff, float64 "
          "| argmax agree, float32 | distinct argmax | reference |")


def row_line(r: dict) -> str:
    """One row of the parity table."""
    c = r["case"]
    kwargs = " " + " ".join(f"{k}={v}" for k, v in c.kwargs.items()) if c.kwargs else ""
    return (f"| {c.label} | `{c.model}`{kwargs} | {c.config} | {c.input_label} | {r['parameters']:,} "
            f"| {r['rel']:.1e} | {r['agree']}/{c.images} | {r['distinct']} "
            f"| {c.repo}@{r['commit'][:10]} `{c.module}` |")


def merged(previous: str, command: str, rows: dict[str, str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The commands (each with the labels of the rows it wrote) and table rows of parity.md once
    ``rows`` (label -> row) replace or join those of ``previous`` (the file's text)."""
    commands: list[tuple[str, list[str]]] = []
    table: dict[str, str] = {}
    for line in previous.splitlines():
        if match := re.fullmatch(r"- `(.+)`: (.+)", line):
            commands.append((match[1], match[2].split("; ")))
        elif match := re.fullmatch(r"Command: `(.+)`", line):  # one command wrote every row
            commands.append((match[1], None))
        elif line.startswith("| ") and not line.startswith("| model |"):
            table[line[2:].split(" | ")[0]] = line
    commands = [(cmd, [label for label in (labels or list(table)) if label not in rows]) for cmd, labels in commands]
    table.update(rows)
    commands = [(cmd, labels) for cmd, labels in commands if labels] + ([(command, list(rows))] if rows else [])
    return commands, list(table.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", action="append", default=[], metavar="OWNER/NAME=GIT_DIR",
                        help="a local git copy of a reference repository (repeatable)")
    parser.add_argument("--venv", action="append", required=True, metavar="[OWNER/NAME=]VENV",
                        help="the throwaway venv with the references' dependencies, or one per repository")
    parser.add_argument("--only", nargs="*", default=[], help="aqsvit model names or case labels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--out", default=str(HERE.parent / "results" / "parity.md"))
    args = parser.parse_args()
    sources = dict(s.split("=", 1) for s in args.source)
    venvs = dict(v.split("=", 1) if re.match(r"[\w.-]+/[\w.-]+=", v) else (None, v) for v in args.venv)
    rows = {}
    for case in cases(args.only):
        if case.repo not in sources:
            print(f"skip {case.label}: no --source {case.repo}=...", file=sys.stderr)
            continue
        venv = venvs.get(case.repo, venvs.get(None))
        if venv is None:
            raise SystemExit(f"--venv: none given for {case.repo}; allowed: --venv VENV or --venv {case.repo}=VENV")
        row = run_case(case, sources[case.repo], str(Path(venv) / "bin" / "python"), args.seed, args.batch)
        print(f"{case.label} {case.config}: max rel diff {row['rel']:.1e}, argmax {row['agree']}/{case.images}",
              flush=True)
        rows[case.label] = row_line(row)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    command = shlex.join([".venv/bin/python", "benchmarks/parity/run.py", *sys.argv[1:]])
    commands, table = merged(out.read_text() if out.exists() else "", command, rows)
    out.write_text("# Parity with the published reference code\n\n"
                   "Same random weights (every BatchNorm with non-trivial running statistics and affine parameters, "
                   "every bias non-zero; the classifier scaled so that the inputs' predictions differ), saved as the "
                   "reference's training script saves them and loaded with aqsvit's checkpoint loader. Max rel diff = "
                   "max |aqsvit - reference| / max |reference| over all logits.\n\n"
                   "Commands, each with the rows it wrote:\n\n"
                   + "".join(f"- `{cmd}`: {'; '.join(labels)}\n" for cmd, labels in commands)
                   + "\n" + "\n".join([HEADER, "|---|---|---|---|---|---|---|---|---|", *table]) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
