"""Experiment files cannot run commands or write outside their folder (issue 24), tested from
outside the process: ``deepseg sbatch`` in a subprocess, then the job scripts it wrote run
with bash (and parsed by sbatch and shellcheck where installed). Every hostile value is
either refused with one line, writing nothing, or written quoted: the marker files its
``$(touch ...)``, backticks and ``;`` would create never appear."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess

import pytest
import yaml

from deepseg_core.config import load_experiment
from deepseg_core.hpc.paths import bind_folders
from tests.support.cli import deepseg
from tests.support.hpc import HPC, tiny_experiment
from tests.support.models import save_untrained

#: a folder name holding every character a shell or sbatch treats specially
HOSTILE = "sp ace$(touch PWNED1)`touch PWNED2`;touch PWNED3;'q\"#%x&|<>*~{a,b}\\"
JOBS = ("dataprep", "train", "crossval", "crossval-report", "predict", "merge")
STUB = "() { printf '%s' \"$FUNCNAME\"; printf ' [%s]' \"$@\"; printf '\\n'; }"


def markers(*folders) -> list:
    return [p for folder in folders for p in folder.rglob("PWNED*")]


def set_key(path, key: str, value):
    """Set ``key`` (``hpc.account``) of the experiment file ``path`` (its file name stays)."""
    data = yaml.safe_load(path.read_text())
    *sections, last = key.split(".")
    inner = data
    for section in sections:
        inner = inner.setdefault(section, {})
    inner[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def one_error_line(done, path, key: str) -> str:
    """The one line a refused experiment gives (non-zero exit, no traceback)."""
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: {key}: "), line
    return line


@pytest.mark.parametrize("key, value, message", [
    ("name", "x$(touch PWNED)", "'x$(touch PWNED)' is not a safe experiment name; expected "
                                "letters, digits, '.', '_' and '-'"),
    ("name", "x`touch PWNED`", "is not a safe experiment name"),
    ("name", "a;touch PWNED", "is not a safe experiment name"),
    ("name", "../../elsewhere", "'../../elsewhere' is not a safe experiment name"),
    ("name", "..", "is not a safe experiment name"),
    ("name", "-rf", "is not a safe experiment name"),
    ("workdir", "runs\ntouch PWNED", "holds the control character '\\n'"),
    ("predict.output", "../../elsewhere.tif", "leads out of <workdir>/<name>/"),
    ("hpc.account", "nesi1\n#SBATCH --wrap=touch PWNED", "holds the control character '\\n'"),
    ("hpc.account", "nesi1;touch PWNED", "is not a Slurm account name"),
    ("hpc.partition", "milan touch", "is not a Slurm partition name"),
    ("hpc.extra_sbatch", ["--qos=debug\ntouch PWNED"], "holds the control character '\\n'"),
    ("hpc.modules", ["Python\ntouch PWNED"], "holds the control character '\\n'"),
    ("hpc.modules", ["Python 3.11;touch PWNED"], "is not a module name"),
    ("hpc.venv", "/venv\rtouch PWNED", "holds the control character '\\r'"),
    ("hpc.mem", "16G\n#SBATCH --wrap=id", "holds the control character '\\n'"),
    ("hpc.env", ["X=1\ntouch PWNED"], "holds the control character '\\n'"),
    ("hpc.env", ["X;touch PWNED=1"], "'X;touch PWNED=1' is not an environment line"),
    ("hpc.env", ["$(touch PWNED)=1"], "is not an environment line"),
])
def test_sbatch_refuses_values_that_would_run_or_escape_writing_nothing(tmp_path, key, value,
                                                                        message):
    path = set_key(tiny_experiment(tmp_path / "exp", size=40), key, value)
    done = deepseg("sbatch", str(path), cwd=tmp_path)
    line = one_error_line(done, path, key)
    assert message in line
    assert not (tmp_path / "exp" / "runs").exists() and not markers(tmp_path)


def test_a_file_name_that_is_no_safe_name_needs_a_name_key(tmp_path):
    data = yaml.safe_load(tiny_experiment(tmp_path, size=40).read_text())
    del data["name"]
    path = tmp_path / "x$(touch PWNED).yaml"
    path.write_text(yaml.safe_dump(data))
    done = deepseg("sbatch", str(path), cwd=tmp_path)
    assert "not set, so the file name gives it, but 'x$(touch PWNED)' is not a safe " \
           "experiment name" in one_error_line(done, path, "name")
    assert not markers(tmp_path)


@pytest.mark.parametrize("settings, key, message", [
    ({"tilesize": 100000}, "tilesize", "Input should be less than or equal to 8192 (got 100000)"),
    ({"tilesize": 1, "overlap": 0}, "tilesize",
     "Input should be greater than or equal to 16 (got 1)"),
    ({"tilesize": 32, "overlap": 24}, "overlap",
     "overlap (24) must be at most half the tilesize (32 / 2 = 16)"),
    ({"tilesize": 8192, "nbands": 5}, "nbands", "a tile of 8192 x 8192 px x 5 bands holds "
                                                "335,544,320 values, more than the 268,435,456"),
])
@pytest.mark.parametrize("command", ["validate", "dataprep"])
def test_tile_limits_are_one_line_errors_not_tracebacks(tmp_path, settings, key, message,
                                                         command):
    path = tiny_experiment(tmp_path, size=40, **settings)
    line = one_error_line(deepseg(command, str(path)), path, key)
    assert message in line
    assert not (tmp_path / "runs").exists()


def hostile_experiment(root, training=None, hostile=HOSTILE, size=40, **hpc):
    """An experiment whose folder, workdir and log folder hold ``hostile``; its scripts."""
    folder = root / hostile
    logs = folder / f"logs {hostile}"
    path = tiny_experiment(folder, size=size, folds=2, workdir=str(folder / f"runs{hostile}"),
                           hpc={**HPC, "crossval_array": True, "logs": str(logs), **hpc},
                           training={"batch_size": 8, "seed": 1, **(training or {})})
    done = deepseg("sbatch", str(path), cwd=root)
    assert done.returncode == 0, done.stderr
    exp = load_experiment(path)
    return exp, exp.outdir.resolve() / "slurm"


def run(script, cwd, env, *args):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          cwd=cwd, env={**environ, **env}, timeout=600)


def fake_tools(folder):
    """A PATH folder with ``apptainer`` and ``sbatch`` that print their arguments."""
    folder.mkdir()
    for tool, answer in (("apptainer", ""), ("sbatch", "echo 4242")):
        script = folder / tool
        script.write_text(f"#!/bin/bash\n{{ printf '{tool}'; printf ' [%s]' \"$@\"; "
                          f"printf '\\n'; }} >> {folder}/calls\n{answer}\n")
        script.chmod(0o755)
    return folder


def test_hostile_paths_are_quoted_and_the_scripts_run_none_of_them(tmp_path):
    venv = tmp_path / HOSTILE / f"venv{HOSTILE}"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text("export FAKE_VENV=on\n")
    exp, slurm = hostile_experiment(tmp_path, venv=str(venv), container="deepseg.sif", size=96,
                                    modules=["Fake/1.0", "X$(id)`id`;id"])
    tools, cwd = fake_tools(tmp_path / "bin"), tmp_path / "cwd"
    cwd.mkdir()
    env = {"PATH": f"{tools}:{os.environ['PATH']}", "BASH_FUNC_module%%": STUB}
    for name in JOBS:
        done = run(slurm / f"{name}.sh", cwd, env)
        assert done.returncode == 0, (name, done.stderr)
        assert "module [load] [Fake/1.0] [X$(id)`id`;id]" in done.stdout
    assert not markers(tmp_path, cwd)
    calls = (tools / "calls").read_text()
    source = str(exp.source.resolve())
    binds = ",".join(str(p) for p in bind_folders(exp))
    image = str(exp.source.parent / "deepseg.sif")
    head = f"apptainer [exec] [--nv] [--bind] [{binds}] [{image}] [deepseg]"
    for call in ([f"[dataprep] [{source}]"], [f"[run] [{source}] [--stages] [train]"],
                 [f"[predict] [{source}] [--shard] [{i}/3]" for i in range(3)],
                 [f"[merge] [{source}]"],
                 [f"[crossval] [{slurm}/fold{i}.yaml]" for i in range(2)],
                 [f"[crossval] [{slurm}/crossval-report.yaml]"]):
        for args in call:
            assert f"{head} {args}\n" in calls, args
    for fold, folds in (("fold1", [1]), ("crossval-report", [])):
        derived = load_experiment(slurm / f"{fold}.yaml")
        assert (derived.name, derived.crossval.folds) == (exp.name, folds)
        assert derived.outdir.resolve() == exp.outdir.resolve()
    done = run(slurm / "crossval.sh", cwd, env, "1;touch PWNED9")
    assert done.returncode == 2 and "not a task number: 1;touch PWNED9" in done.stderr
    done = run(slurm / "submit.sh", cwd, env)
    assert done.returncode == 0 and not markers(tmp_path, cwd), done.stderr
    assert "sbatch [--parsable] [--dependency=afterok:4242] [--kill-on-invalid-dep=yes] " \
           "[merge.sh]" in (tools / "calls").read_text()


def test_scripts_with_hostile_paths_run_for_real(tmp_path):
    """The real deepseg, a 2-filter model: outputs land in the hostile workdir, nothing runs."""
    exp, slurm = hostile_experiment(tmp_path, size=96, shards=2)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for name, args in (("dataprep", ()), ("train", ()), ("crossval", ("1",)),
                       ("crossval-report", ()), ("predict", ()), ("merge", ())):
        done = run(slurm / f"{name}.sh", cwd, {}, *args)
        assert done.returncode == 0, (name, done.stdout[-2000:], done.stderr[-2000:])
    out = exp.outdir.resolve()
    assert (out / "model" / "best.keras").exists() and (out / "crossval" / "fold1").is_dir()
    assert (out / "predictions" / "prediction.tif").exists()
    assert not markers(tmp_path, cwd)


def test_model_files_that_hold_code_are_refused_not_run(tmp_path, registry):
    """A .keras file whose Lambda layer touches a marker when loaded: as pretrained weights
    and as the trained model, deepseg refuses it with one line and the marker never appears."""
    import keras

    marker, evil = tmp_path / "PWNED", tmp_path / "evil.keras"
    inputs = keras.Input((None, None, 3))
    touch = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")  # path in its code
    payload = keras.layers.Lambda(touch)
    keras.Model(inputs, keras.layers.Conv2D(2, 1)(payload(inputs))).save(evil)
    marker.unlink()
    keras.saving.load_model(evil, safe_mode=False)  # the payload is live: loading runs it
    assert marker.exists()
    marker.unlink()
    model = {"name": "unet64", "filters": 2, "depth": 1, "weights": str(evil)}
    path = tiny_experiment(tmp_path / "weights", model=model)
    done = deepseg("run", str(path), "--stages", "dataprep,train")
    [line] = done.stderr.strip().splitlines()[-1:]
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert line == (f"error: model parameter weights: cannot read {str(evil)!r}: it holds code "
                    "(such as a Lambda layer), which DeepSeg does not run from a model file; "
                    "see docs/crash-safety.md, 'Trust model'")
    exp = load_experiment(tiny_experiment(tmp_path / "trained"))
    save_untrained(exp, registry)
    best = exp.outdir / "model" / "best.keras"
    shutil.copyfile(evil, best)
    done = deepseg("predict", str(exp.source))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"error: {best}: cannot load the trained model (it holds code (such as a Lambda layer)")
    assert not markers(tmp_path)


def sbatch_options(script, port: int, conf) -> dict[str, str]:
    """The options sbatch reads from the script's #SBATCH lines (``sbatch -vv``; the
    submission then fails: no controller listens on ``port``)."""
    conf.write_text(f"ClusterName=parse\nSlurmctldHost=localhost(127.0.0.1)\n"
                    f"SlurmctldPort={port}\nMessageTimeout=1\nNodeName=localhost CPUs=1\n"
                    "PartitionName=p Nodes=localhost Default=YES\n")
    done = subprocess.run(["sbatch", "-vv", str(script)], capture_output=True, text=True,
                          env={**os.environ, "SLURM_CONF": str(conf)}, timeout=60)
    assert "Invalid directive" not in done.stderr, done.stderr
    return dict(re.findall(r"^sbatch: ([a-z-]+) +: (.*)$", done.stderr, re.M))


@pytest.mark.skipif(shutil.which("sbatch") is None, reason="sbatch not installed (Slurm's "
                    "client; .ci/run installs it as root on Debian)")
def test_sbatch_reads_the_hostile_sbatch_lines_as_written(tmp_path):
    exp, slurm = hostile_experiment(tmp_path, size=96, account="nesi12345",
                                    partition="milan,genoa", array_throttle=2,
                                    extra_sbatch=["--comment=\"a b\""])
    with socket.socket() as closed:  # bound, never listening: sbatch's connection is refused
        closed.bind(("127.0.0.1", 0))
        options = sbatch_options(slurm / "predict.sh", closed.getsockname()[1],
                                 tmp_path / "slurm.conf")
    logs = str(tmp_path / HOSTILE / f"logs {HOSTILE}").replace("%", "%%")
    assert options["output"] == f"{logs}/%x-%A_%a.out"
    assert (options["account"], options["partition"], options["comment"]) == \
           ("nesi12345", "milan,genoa", "a b")
    assert (options["job-name"], options["array"]) == ("exp-predict", "0-2%2")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed "
                    "(Debian: apt-get install shellcheck; .ci/run installs it as root)")
@pytest.mark.parametrize("hpc, training", [
    ({"container": "deepseg.sif", "modules": ["Apptainer/1.3.1"], "account": "nesi12345"},
     {"resume": "auto"}),  # train.sh requeues itself too
    ({"container": "deepseg.sif", "train_nodes": 2, "train_gpus": "A100:2"},
     {"distribute": "multiworker", "resume": "auto"}),
    ({"train_gpus": "A100:2"}, {"distribute": "mirrored"}),
    ({"train_nodes": 2, "train_gpus": "A100:4", "gpus": "A100:1", "array_throttle": 4,
      "env": ["HDF5_USE_FILE_LOCKING=FALSE", "NCCL_SOCKET_IFNAME=^docker0,lo",
              "NCCL_DEBUG=WARN and more", "EMPTY="]},
     {"distribute": "multiworker", "communication": "nccl"}),
])
@pytest.mark.parametrize("hostile", [HOSTILE, "plain"])
def test_generated_scripts_pass_shellcheck(tmp_path, hpc, training, hostile):
    """Every check for plain paths; warnings and errors for hostile ones, whose single quotes
    draw the notes 'expressions don't expand in single quotes', as they must not."""
    _, slurm = hostile_experiment(tmp_path, training, hostile, **hpc)
    scripts = sorted(str(p) for p in slurm.glob("*.sh"))
    level = "warning" if hostile == HOSTILE else "style"
    done = subprocess.run(["shellcheck", f"--severity={level}", *scripts], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout
