"""Job scripts a cluster user submits unchanged (issue 27): hpc.env exported quoted, the
throttle and size of the arrays, shards that fit the raster's tile rows, and the gradient
exchange of multi-worker training."""

from __future__ import annotations

import os
import subprocess

import pytest

from deepseg_core.config import load_experiment
from deepseg_core.errors import ConfigError, DeepSegError
from deepseg_core.hpc.arrays import check_arrays, max_array_size
from deepseg_core.hpc.scripts import write_scripts
from tests.support.cli import invoke
from tests.support.hpc import HPC, bash, tiny_experiment

ENV = ["HDF5_USE_FILE_LOCKING=FALSE", "NCCL_SOCKET_IFNAME=ib0",
       "ODD=a b$(touch PWNED)`touch PWNED`;'q\"=", "EMPTY="]


def test_env_lines_are_exported_quoted_in_every_script(tmp_path):
    exp = load_experiment(tiny_experiment(tmp_path, size=40, folds=2, hpc={
        **HPC, "env": ENV, "crossval_array": True}))
    scripts = write_scripts(exp, ["dataprep", "train", "crossval", "predict"])
    assert list(scripts) == ["dataprep", "train", "crossval", "crossval-report", "predict",
                             "merge"]
    for job, path in scripts.items():
        text = path.read_text()
        for line in ("export HDF5_USE_FILE_LOCKING=FALSE\n", "export NCCL_SOCKET_IFNAME=ib0\n",
                     "export ODD='a b$(touch PWNED)`touch PWNED`;'\"'\"'q\"='\n",
                     "export EMPTY=''\n"):
            assert line in text, (job, line)
    stub = {"BASH_FUNC_deepseg%%": '() { printf "[%s]\\n" "$HDF5_USE_FILE_LOCKING" "$ODD" '
            '"$EMPTY"; }'}
    done = bash(scripts["dataprep"], **stub)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("[FALSE]\n[a b$(touch PWNED)`touch PWNED`;'q\"=]\n[]\n")
    assert not list(tmp_path.rglob("PWNED"))


@pytest.mark.parametrize("entry, message", [
    ("HDF5_USE_FILE_LOCKING", "'HDF5_USE_FILE_LOCKING' is not an environment line; expected "
                              "NAME=value with NAME letters, digits and '_' (not first a "
                              "digit), such as 'HDF5_USE_FILE_LOCKING=FALSE'"),
    ("1X=a", "'1X=a' is not an environment line"),
    ("NCCL-DEBUG=INFO", "'NCCL-DEBUG=INFO' is not an environment line"),
    ("X;touch PWNED=1", "'X;touch PWNED=1' is not an environment line"),
    ("=FALSE", "'=FALSE' is not an environment line"),
    ("X=a\ntouch PWNED", "'X=a\\ntouch PWNED' holds the control character '\\n'"),
    ("X=a\tb", "'X=a\\tb' holds the control character '\\t'"),
])
def test_bad_env_lines_give_one_line_each(tmp_path, entry, message):
    path = tiny_experiment(tmp_path, size=40, hpc={**HPC, "env": ["OK=1", entry]})
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    [line] = err.value.problems
    assert line.startswith(f"{path}: hpc.env: {message}"), line


def test_arrays_take_the_throttle(tmp_path):
    exp = load_experiment(tiny_experiment(tmp_path, size=40, folds=3, hpc={
        **HPC, "array_throttle": 2, "crossval_array": True}))
    scripts = write_scripts(exp, ["crossval", "predict"], shards=2)
    assert "#SBATCH --array=0-1%2\n" in scripts["predict"].read_text()
    assert "#SBATCH --array=0,1,2%2\n" in scripts["crossval"].read_text()
    assert "--array" not in scripts["merge"].read_text()
    path = tiny_experiment(tmp_path / "bad", size=40, hpc={**HPC, "array_throttle": 0})
    with pytest.raises(ConfigError, match="hpc.array_throttle: Input should be greater than"):
        load_experiment(path)


def test_shards_are_capped_by_the_tile_rows_with_a_notice(tmp_path):
    path = tiny_experiment(tmp_path, size=96)  # 32 px tiles, overlap 8: 4 tile rows
    result = invoke("sbatch", str(path), "--stages", "predict", "--shards", "1000")
    assert result.exit_code == 0, result.output
    assert result.stderr == ("notice: 1000 prediction shards asked for, but the raster has 4 "
                             "tile row(s) and a shard is whole tile rows: writing 4 shard(s)\n")
    text = (load_experiment(path).outdir / "slurm" / "predict.sh").read_text()
    assert "#SBATCH --array=0-3\n" in text and "SHARDS=4\n" in text
    result = invoke("sbatch", str(path), "--stages", "predict", "--shards", "4")
    assert result.exit_code == 0 and result.stderr == ""


def fake_scontrol(folder, answer: str) -> str:
    folder.mkdir()
    tool = folder / "scontrol"
    tool.write_text(f"#!/bin/bash\n{answer}\n")
    tool.chmod(0o755)
    return f"{folder}:{os.environ['PATH']}"


def test_an_array_over_max_array_size_is_one_line(tmp_path, monkeypatch):
    path = tiny_experiment(tmp_path, size=96)
    monkeypatch.setenv("PATH", fake_scontrol(tmp_path / "bin", "echo 'ClusterName = x'; "
                                             "echo 'MaxArraySize            = 3'"))
    assert max_array_size() == 3
    result = invoke("sbatch", str(path), "--stages", "predict", "--shards", "4")
    assert result.exit_code != 0
    assert result.stderr == ("error: hpc.shards (4): the array's last task id would be 3, but "
                             "Slurm's MaxArraySize is 3 (task ids 0-2); use fewer\n")
    assert not (load_experiment(path).outdir / "slurm").exists()
    assert invoke("sbatch", str(path), "--stages", "predict", "--shards", "3").exit_code == 0
    exp = load_experiment(tiny_experiment(tmp_path / "folds", size=40, folds=5,
                                          hpc={**HPC, "crossval_array": True}))
    with pytest.raises(DeepSegError, match=r"^crossval.folds \(one array task each\): the "
                       r"array's last task id would be 4, but Slurm's MaxArraySize is 3"):
        check_arrays(exp, ["crossval"], 1, 3)


def test_max_array_size_is_slurms_default_without_an_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no scontrol
    assert max_array_size() == 1001
    monkeypatch.setenv("PATH", fake_scontrol(tmp_path / "bin", "echo 'no controller' >&2; "
                                             "exit 1"))
    assert max_array_size() == 1001


@pytest.mark.parametrize("communication, implementation", [
    ("auto", "AUTO"), ("ring", "RING"), ("nccl", "NCCL")])
def test_communication_picks_tensorflows_collective(tmp_path, communication, implementation):
    tf = pytest.importorskip("tensorflow")
    from deepseg_core.training.backend_tf import communication_options

    exp = load_experiment(tiny_experiment(tmp_path, size=40, training={
        "distribute": "multiworker", "communication": communication}))
    options = communication_options(exp.training.communication)
    kinds = tf.distribute.experimental.CommunicationImplementation
    assert options.implementation == getattr(kinds, implementation)


def test_an_unknown_communication_is_one_line(tmp_path):
    path = tiny_experiment(tmp_path, size=40, training={"communication": "grpc"})
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    [line] = err.value.problems
    assert line.startswith(f"{path}: training.communication: Input should be 'auto', 'ring' "
                           "or 'nccl'"), line


def test_multiworker_crossval_folds_run_on_the_workers_the_report_alone(tmp_path):
    exp = load_experiment(tiny_experiment(tmp_path, size=40, folds=2, training={
        "distribute": "multiworker"}, hpc={**HPC, "train_nodes": 2, "crossval_array": True}))
    scripts = write_scripts(exp, ["train", "crossval"])
    folds, report = scripts["crossval"].read_text(), scripts["crossval-report"].read_text()
    for line in ("--nodes=2", "--ntasks-per-node=1", "--exclusive", "--array=0,1"):
        assert f"#SBATCH {line}\n" in folds, line
    folder = exp.outdir.resolve() / "slurm"
    assert (f'    srun --kill-on-bad-exit=1 --cpus-per-task=1 --cpu-bind=cores deepseg crossval '
            f'{folder}/"fold$fold.yaml"\n') in folds
    assert "srun" not in report and "--nodes" not in report  # no fold: no workers
    assert f"\ndeepseg crossval {folder}/crossval-report.yaml\n" in report
    # without Slurm: one process per fold, which TF_CONFIG would join to the others
    assert '  else  # without Slurm' in folds
    assert f'\n    deepseg crossval {folder}/"fold$fold.yaml"\n  fi\ndone\n' in folds
    assert subprocess.run(["bash", "-n"], input=folds, text=True).returncode == 0
