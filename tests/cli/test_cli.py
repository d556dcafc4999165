"""The console script: one line and exit code 2 for bad input, tables for good input."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

AQSVIT = [sys.executable, "-m", "aqsvit.cli"]
CACHE = os.environ.get("AQSVIT_TEST_CHECKPOINTS", "studies/checkpoints")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*AQSVIT, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("args,field", [
    (("nonsense",), "command: got 'nonsense'"),
    (("baseline", "model.name=vit"), "model.name: got 'vit'"),
    (("baseline", "quant.bits=[9]"), "bits: got 9; allowed: integers 2..8"),
])
def test_bad_input_is_one_line_and_exit_2(args, field, reference):
    result = run(*args)
    assert result.returncode == 2, result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in result.stderr


def test_debug_flag_shows_the_traceback(reference):
    result = run("baseline", "model.name=vit", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_baseline_prints_the_table(reference):
    result = run("baseline", "quant.bits=[8,2]", "quant.schemes=[uniform]")
    assert result.returncode == 0, result.stderr
    assert "| uniform | 8" in result.stdout and "| uniform | 2" in result.stdout


def study_rows(url: str, name: str = "existing") -> list:
    """Everything a study holds: its attributes and every trial, for before/after comparisons."""
    import optuna
    study = optuna.load_study(study_name=name, storage=url)
    return [study.user_attrs, study._storage.get_study_system_attrs(study._study_id)] + [
        (t.number, t.state, t.params, t.values, t.user_attrs, t.system_attrs) for t in study.trials]


NPZ = "dataset=npz", "dataset.kwargs.test_size=50", "dataset.kwargs.calib_size=50", "train.epochs=1"

# (overrides, what the one line must say); {tmp} is the folder of bad_files
CATALOGUE = [
    (("quant.bits=[9]",), "quant.bits: got 9"),
    (("quant.bits=[]",), "quant.bits: got []"),
    (("quant.bits=[0]",), "quant.bits: got 0; allowed: integers 2..8"),
    (("quant.schemes=[int]",), "quant.schemes: got 'int'; allowed: uniform, pot, fp32"),
    (("quant.schemes=uniform",), "quant.schemes: got 'uniform'; allowed: a list, e.g."),
    (("quant.bits=4",), "quant.bits: got 4; allowed: a list, e.g."),
    (("report.compare=other",), "report.compare: got 'other'; allowed: a list"),
    (("quant.split_qkv=3",), "quant.split_qkv: got 3; allowed: true, false"),
    (("sampler=nonexistent",), "sampler: got 'nonexistent'; allowed: beam, greedy, nsga2, random, tpe"),
    (("sampler=beam", "sampler.width=0"), "sampler.width: got 0; allowed: integers >= 1"),
    (("sampler=beam", "sampler.width=2.5"), "sampler.width: got 2.5; allowed: integers >= 1"),
    (("pruner=nonexistent",), "pruner: got 'nonexistent'; allowed: drift, none"),
    (("pruner.definition=vv",), "pruner.definition: got 'vv'"),
    (("pruner.tau=-1",), "pruner.tau: got -1; allowed: numbers > 0"),
    (("pruner.calibrate=2",), "pruner.calibrate: got 2; allowed: true, false"),
    (("delta=-0.5",), "delta: got -0.5"),
    (("delta=nan",), "delta: got nan; allowed: numbers 0..100 (accuracy points)"),
    (("search.front=[0.5,-1]",), "search.front: got -1; allowed: numbers 0..100"),
    (("search.front=[0.5,a]",), "search.front: got 'a'; allowed: numbers 0..100"),
    (("search.front=2",), "search.front: got 2; allowed: a list of accuracy drops"),
    (("sampler=tpe", "search.front=[1,2]"), "search.front: got [1.0, 2.0]; allowed: [] with sampler 'tpe'"),
    (("delta=inf",), "delta: got inf; allowed: numbers 0..100"),
    (("delta=abc",), "delta: got 'abc'; allowed: numbers 0..100"),
    (("delta=1000",), "delta: got 1000; allowed: numbers 0..100"),
    (("delta=95", "checkpoint_dir={cache}"), "delta: got 95; allowed: numbers below"),  # FP - chance: ~87 on digits
    (("seed=-5",), "seed: got -5; allowed: integers 0..4294967295"),
    (("seed=4294967296",), "seed: got 4294967296; allowed: integers 0..4294967295"),
    (("seed=abc",), "seed: got 'abc'"),
    (("search.granularity=chunk",), "search.granularity: got 'chunk'; allowed: network, block, layer"),
    (("search.order=random",), "search.order: got 'random'"),
    (("search.start=middle",), "search.start: got 'middle'; allowed: auto, precise, one_width, sensitivity"),
    (("search.calib_batch=0",), "search.calib_batch: got 0; allowed: integers >= 1"),
    (("search.calib_images=0",), "search.calib_images: got 0; allowed: integers >= 1"),
    (("search.cache_gb=-1",), "search.cache_gb: got -1; allowed: numbers >= 0 (GiB)"),
    (("search.n_trials=-3",), "search.n_trials: got -3; allowed: integers >= 1"),
    (("search.n_trials=0",), "search.n_trials: got 0; allowed: integers >= 1"),
    (("search.study_name=''",), "search.study_name: got ''; allowed: 1..200 bytes of text"),
    (("search.study_name=a/b",), "search.study_name: got 'a/b'"),
    (("search.study_name=..",), "search.study_name: got '..'; allowed: 1..200 bytes"),
    (("search.study_name=.",), "search.study_name: got '.'; allowed"),
    ((f"search.study_name={'n' * 10000}",), "(10000 characters); allowed: 1..200 bytes"),
    (("report", f"search.study_name={'n' * 10000}"), "(10000 characters); allowed: 1..200 bytes"),
    (("model.kwargs.T=0",), "model.kwargs.T: got 0; allowed: integers >= 1"),
    (("model.kwargs.depths=0",), "model.kwargs.depths: got 0; allowed: integers >= 1"),
    (("model=qkformer_digits", "model.kwargs.depths=[1,0,1]"), "model.kwargs.depths: got 0; allowed: integers >= 1"),
    (("report", "--force-new-study"), "only aqsvit search starts a study over"),
    (("finetune", "search.force_new_study=true"), "only aqsvit search starts a study over"),
    (("--experimental-rerun", "x.pickle"), "--experimental-rerun: not allowed (it loads a pickle"),
    (("finetune", "finetune.assignment={tmp}/list.json"), "list.json: not an aqsvit assignment file"),
    (("storage.url=journal:///{tmp}/notes.log",), "notes.log is not an Optuna journal"),
    (("search.screen=0",), "search.screen: got 0; allowed: numbers in (0, 1]"),
    (("search.screen=1.5",), "search.screen: got 1.5; allowed: numbers in (0, 1]"),
    (("search.staged=maybe",), "search.staged: got 'maybe'; allowed: true, false"),
    (("progress=yes",), "progress: got 'yes'; allowed: true, false"),
    (("train.epochs=0",), "train.epochs: got 0; allowed: integers >= 1"),
    (("train.lr=0",), "train.lr: got 0; allowed: numbers > 0"),
    (("train.batch_size=-1",), "train.batch_size: got -1; allowed: integers >= 1"),
    (("workers=0",), "workers: got 0; allowed: integers >= 1"),
    (("workers=2",), "SQLite serves one worker"),
    (("worker=5",), "worker: got 5; allowed: integers 0..0"),
    (("grace_period=0",), "grace_period: got 0; allowed: numbers > 0"),
    (("dashboard.port=70000",), "dashboard.port: got 70000; allowed: integers 1..65535"),
    (("finetune.candidates=0",), "finetune.candidates: got 0; allowed: integers >= 1"),
    (("finetune.epochs=0",), "finetune.epochs: got 0; allowed: integers >= 1"),
    (("finetune.lr=-0.1",), "finetune.lr: got -0.1; allowed: numbers > 0"),
    (("finetune.delta=-1",), "finetune.delta: got -1; allowed: numbers >= 0"),
    (("model=vit",), "model: got 'vit'; allowed: qkformer_cifar100_4_384, "),
    (("model.name=vit",), "model.name: got 'vit'"),
    (("nonsense_key=1",), "nonsense_key: not a config key"),
    (("device=tpu",), "device: got 'tpu'; allowed: auto, cpu"),
    (("checkpoint={tmp}/text.pt",), "text.pt: not a readable torch checkpoint"),
    (("checkpoint={tmp}/cut.pt",), "cut.pt: not a readable torch checkpoint"),
    (("checkpoint={tmp}/pickled.pt",), "pickled.pt: rejected by torch.load(weights_only=True): Unsupported global"),
    (("checkpoint={tmp}/other.pt",), "other.pt: holds spikformer_digits with depths=1; the config asks for depths=2"),
    (("checkpoint={tmp}/missing.pt",), "missing.pt: no such file"),
    (("checkpoint={tmp}",), "checkpoint"),
    (("dataset=nonexistent",), "dataset: got 'nonexistent'"),
    ((*NPZ, "dataset.kwargs.path={tmp}/shape.npz"), "images have shape (200, 2, 2, 2, 2); allowed"),
    ((*NPZ, "dataset.kwargs.path={tmp}/empty.npz"), "no images"),
    ((*NPZ, "dataset.kwargs.path={tmp}/none.npz"), "dataset.path: "),
    ((*NPZ, "dataset.kwargs.path={tmp}/negative.npz"), "labels include -1; allowed: integers >= 0"),
    ((*NPZ, "dataset.kwargs.path={tmp}/strings.npz"), "images are of dtype <U1; allowed: integer or float arrays"),
    ((*NPZ, "dataset.kwargs.path={tmp}/objects.npz"), "allowed: numeric arrays"),
    ((*NPZ, "dataset.kwargs.path={tmp}/nan.npz"), "200 of 200 images hold NaN or infinite values; allowed: finite numbers"),
    ((*NPZ, "dataset.kwargs.path={tmp}/inf.npz"), "1 of 200 images hold NaN or infinite values"),
    ((*NPZ, "dataset.kwargs.path={tmp}/float_labels.npz"), "labels have shape (200,) and dtype float64"),
    ((*NPZ, "dataset.kwargs.path={tmp}/2d_labels.npz"), "labels have shape (200, 1)"),
    ((*NPZ, "dataset.kwargs.path={tmp}/counts.npz"), "200 images but 150 labels; allowed: one label per image"),
    ((*NPZ, "dataset.kwargs.path={tmp}/many_classes.npz"), "labels go up to 11; allowed: 0..9"),
    ((*NPZ, "dataset.kwargs.path={tmp}/no_labels.npz"), "arrays: got ['images']; allowed: images, labels"),
    ((*NPZ, "dataset.kwargs.path={tmp}/text.pt"), "text.pt): not an .npz archive"),
    ((*NPZ, "dataset.kwargs.path={tmp}/single.npy"), "single.npy): a single array, not an .npz"),
    ((*NPZ, "dataset.kwargs.path={tmp}/constant.npz"), "reference: FP accuracy"),
    ((*NPZ, "dataset.kwargs.path={tmp}/good.npz", "dataset.kwargs.test_size=0"), "dataset split: test_size=0"),
    ((*NPZ, "dataset.kwargs.path={tmp}/good.npz", "dataset.kwargs.test_size=abc"), "dataset.test_size: got 'abc'"),
    ((*NPZ, "dataset.kwargs.path={tmp}/cut.npz"), "cut.npz): not an .npz archive"),
    ((*NPZ, "dataset.kwargs.path={tmp}/corrupt.npz"), "corrupt.npz): a damaged .npz archive"),
    ((*NPZ, "dataset.kwargs.path={tmp}/bytes_as_float.npz"), "images hold values from 0 to 255 (float64); allowed: floats in [0, 1]"),
    ((*NPZ, "dataset.kwargs.path={tmp}/signed.npz"), "images hold values from -128 to 127 (int8); allowed: integers 0..255"),
    (("dataset=folder", "dataset.kwargs.path={tmp}/no_folder"), "dataset.path: "),
    (("storage.url=postgresql://postgres@nohost.invalid:5432/test",), "storage.url: cannot open postgresql://"),
    (("storage.url=postgresql://postgres@127.0.0.1:1/test",), "storage.url: cannot open"),
    (("storage.url=postgresql://postgres@127.0.0.1:5432/no_such_db_aqsvit",), "no_such_db_aqsvit"),
    (("storage.url=sqlite:////proc/aqsvit-read-only/x.db",), "storage.url: cannot create folder /proc/aqsvit-read-only"),
    (("storage.url=mysql://root@127.0.0.1/test",), "storage.url: got 'mysql://root@127.0.0.1/test'; allowed"),
    (("storage.url=''",), "storage.url: got ''"),
    (("storage.url=sqlite:///:memory:",), "storage.url: 'sqlite:///:memory:' is an in-memory database"),
    (("storage.url=sqlite://",), "storage.url: 'sqlite://' is an in-memory database"),
]


def test_catalogue_is_large_enough():
    assert len(CATALOGUE) >= 45 and len({c for c, _ in CATALOGUE}) == len(CATALOGUE)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """The files the catalogue points at: broken checkpoints and broken ``.npz`` data sets."""
    import numpy as np
    import torch

    from aqsvit.models import create_model, save_checkpoint
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "text.pt").write_text("not a checkpoint")
    good = save_checkpoint(tmp / "good.pt", create_model("spikformer_digits", depths=1), 90.0, "x").read_bytes()
    (tmp / "cut.pt").write_bytes(good[: len(good) // 2])
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp / "pickled.pt")
    (tmp / "other.pt").write_bytes(good)  # a 1-block model where the 2-block default is expected
    rng = np.random.default_rng(0)
    images, labels = rng.random((200, 8, 8)), np.arange(200) % 10
    inf = images.copy()
    inf[3, 4, 5] = np.inf
    arrays = {
        "good": (images, labels), "shape": (np.zeros((200, 2, 2, 2, 2)), labels), "empty": (np.zeros((0, 8, 8)), labels[:0]),
        "negative": (images, labels - 1), "strings": (np.full((200, 8, 8), "a"), labels),
        "nan": (np.full((200, 8, 8), np.nan), labels), "inf": (inf, labels),
        "float_labels": (images, labels + 0.5), "2d_labels": (images, labels[:, None]),
        "counts": (images, labels[:150]), "many_classes": (images, labels + 2),
        "constant": (np.zeros((200, 8, 8)), labels),  # every image alike: the reference learns nothing
        "bytes_as_float": (np.round(images * 255), labels), "signed": (np.linspace(-128, 127, 200 * 64)
                                                                        .astype(np.int8).reshape(200, 8, 8), labels)}
    for name, (x, y) in arrays.items():
        np.savez(tmp / f"{name}.npz", images=x, labels=y)
    np.savez(tmp / "objects.npz", images=np.array([object()] * 200), labels=labels)
    np.savez(tmp / "no_labels.npz", images=images)
    np.save(tmp / "single.npy", images)
    whole = (tmp / "good.npz").read_bytes()
    (tmp / "cut.npz").write_bytes(whole[: len(whole) // 2])
    np.savez_compressed(tmp / "compressed.npz", images=images, labels=labels)
    damaged = bytearray((tmp / "compressed.npz").read_bytes())
    damaged[len(damaged) // 3:len(damaged) // 3 + 16] = b"x" * 16  # a member's data, not its directory
    (tmp / "corrupt.npz").write_bytes(bytes(damaged))
    (tmp / "list.json").write_text("[1, 2, 3]")
    (tmp / "notes.log").write_text("my notes\nnot a journal\n")
    return tmp


@pytest.fixture(scope="module")
def existing_study(tmp_path_factory) -> str:
    import optuna
    url = f"sqlite:///{tmp_path_factory.mktemp('existing')}/existing.db"
    study = optuna.create_study(study_name="existing", storage=url, directions=["maximize", "minimize"])
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=3)
    return url


def main_in_process(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI's main in this process (a subprocess per case costs seconds of imports)."""
    from aqsvit.cli import main
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    return exit_.value.code, capsys.readouterr().err


COMMANDS = ("search", "report", "finetune", "dashboard", "train", "baseline")


@pytest.mark.parametrize("bad,field", CATALOGUE, ids=[" ".join(c)[:80] for c, _ in CATALOGUE])
def test_bad_values_create_and_damage_no_study(bad, field, bad_files, existing_study, reference, tmp_path, capsys):
    """One line naming the field and what is allowed, exit 2, no traceback; no study file is
    created, an existing study keeps every trial as it was and every file the case names keeps
    its bytes. A case may start with the command it runs (default: search)."""
    command, bad = (bad[0], bad[1:]) if bad[0] in COMMANDS else ("search", bad)
    bad = tuple(b.replace("{tmp}", str(bad_files)).replace("{cache}", str(Path(CACHE).resolve())) for b in bad)
    named = sorted(p for p in bad_files.iterdir() if p.is_file())
    files_before = {p: p.read_bytes() for p in named}
    common = (f"hydra.run.dir={tmp_path}/run", f"checkpoint_dir={tmp_path}/checkpoints", "progress=false",
              "search.study_name=existing")
    fresh = tmp_path / "fresh.db"
    before = study_rows(existing_study)
    for url in (f"sqlite:///{fresh}", existing_study):
        if url == existing_study and any(b.startswith("storage.url=") for b in bad):
            continue
        code, err = main_in_process(capsys, command, *common, f"storage.url={url}", *bad)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, err
        assert len(lines) == 1 and lines[0].startswith("aqsvit: error: ") and field in lines[0], err
        assert "Traceback" not in err and not fresh.exists()
    assert study_rows(existing_study) == before
    assert {p: p.read_bytes() for p in named} == files_before


@pytest.mark.parametrize("command", ["report", "finetune", "dashboard", "pick"])
def test_reading_commands_create_and_invent_nothing(command, existing_study, tmp_path, capsys):
    """report, finetune, dashboard and pick only read: a missing database (and its folder) is not
    created, a missing study is one line naming the studies that exist, and a study that aqsvit
    search did not make is refused; the existing study keeps every trial and attribute."""
    common = (f"hydra.run.dir={tmp_path}/run", "progress=false", f"report.dir={tmp_path}/reports",
              f"finetune.dir={tmp_path}/finetune")
    missing = tmp_path / "nofolder" / "x.db"
    cases = [((f"storage.url=sqlite:///{missing}", "search.study_name=existing"), "x.db does not exist"),
             ((f"storage.url={existing_study}", "search.study_name=nope"),
              "search.study_name: got 'nope'; allowed: existing"),
             ((f"storage.url={existing_study}", "search.study_name=existing"), "was not made by aqsvit search")]
    before = study_rows(existing_study)
    for args, expected in cases:
        code, err = main_in_process(capsys, command, *common, *args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and expected in lines[0], err
    assert not missing.parent.exists() and not (tmp_path / "reports").exists() and not (tmp_path / "finetune").exists()
    assert study_rows(existing_study) == before
