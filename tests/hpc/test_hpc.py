"""The cluster path without Slurm: hpc settings, job scripts run by bash, local shards,
multi-GPU training on CPU, and the bounded file count of an experiment."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from deepseg_core.config import load_experiment
from deepseg_core.errors import ConfigError, DeepSegError
from deepseg_core.hpc.files import count_files
from deepseg_core.hpc.local import run_shards
from deepseg_core.hpc.scripts import write_scripts
from deepseg_core.hpc.submit import submit_all
from deepseg_core.stages import dataprep, predict, train
from deepseg_core.store.identity import store_path
from deepseg_core.training.fit import setup_runtime
from tests.support.cli import SITE, deepseg, environment, invoke
from tests.support.hpc import HPC, band, bash, tiny_experiment
from tests.support.models import save_untrained
from tests.support.synthetic import squares_scene, write_experiment, write_raster


@pytest.mark.parametrize("hpc, message", [
    ({"partion": "gpu"}, "hpc.partion: unknown key; did you mean 'partition'?"),
    ({"train_time": 43200}, "hpc.train_time: write the time in quotes, such as '12:00:00'"),
    ({"predict_time": "2 hours"}, "hpc.predict_time: expected a Slurm time such as"),
    ({"mem": "16 GB"}, "hpc.mem: expected a Slurm memory size such as '16G'"),
    ({"gpus": "A100"}, "hpc.gpus: expected GPUs as 'TYPE:N' such as 'A100:1', or a count"),
    ({"shards": 0}, "hpc.shards: Input should be greater than or equal to 1"),
    ({"extra_sbatch": ["qos=debug"]}, "hpc.extra_sbatch: expected sbatch options such as"),
])
def test_bad_hpc_settings_give_one_line_each(tmp_path, hpc, message):
    path = tiny_experiment(tmp_path, size=40, hpc=hpc)
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    [line] = err.value.problems
    assert line.startswith(f"{path}: {message}")


def test_scripts_hold_the_resources_and_pass_bash_n(tmp_path):
    hpc = {"account": "nesi12345", "partition": "milan", "train_time": "1-00:00:00",
           "predict_time": "00:30:00", "mem": "32G", "cpus_per_task": 8, "gpus": "A100:1",
           "train_gpus": "A100:2", "modules": ["Apptainer/1.3.1"], "container": "deepseg.sif",
           "extra_sbatch": ["--qos=debug", "#SBATCH --mail-type=FAIL"], "shards": 7,
           "crossval_array": True}
    exp = load_experiment(tiny_experiment(tmp_path, size=40, folds=3, hpc=hpc,
                                          training={"distribute": True}))
    scripts = write_scripts(exp, ["dataprep", "train", "crossval", "predict"])
    assert list(scripts) == ["dataprep", "train", "crossval", "crossval-report", "predict",
                             "merge"]
    folder = exp.outdir.resolve() / "slurm"
    for path in [*scripts.values(), folder / "submit.sh"]:
        assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    text = {job: path.read_text() for job, path in scripts.items()}
    for line in ("--account=nesi12345", "--partition=milan", "--mem=32G", "--cpus-per-task=8",
                 "--qos=debug", "--mail-type=FAIL"):
        assert all(f"#SBATCH {line}\n" in t for t in text.values()), line
    logs = exp.outdir.resolve() / "slurm-logs"
    assert logs.is_dir()
    train_sh, predict_sh = text["train"], text["predict"]
    assert "#SBATCH --time=1-00:00:00\n#SBATCH" in train_sh
    assert "#SBATCH --gpus-per-node=A100:2\n" in train_sh and "MirroredStrategy" in train_sh
    assert 'deepseg run "$EXPERIMENT" --stages train\n' in train_sh
    assert 'deepseg dataprep "$EXPERIMENT"\n' in text["dataprep"]
    assert "gpus-per-node" not in text["dataprep"] and "--exclusive" not in train_sh
    for line in ("--time=00:30:00", "--gpus-per-node=A100:1", "--array=0-6", "--requeue",
                 f"--output={logs}/%x-%A_%a.out"):
        assert f"#SBATCH {line}\n" in predict_sh, line
    assert 'deepseg predict "$EXPERIMENT" --shard "$shard/$SHARDS"' in predict_sh
    assert "#SBATCH --array=0,1,2\n" in text["crossval"]
    assert "gpus-per-node" not in text["merge"] and "module load Apptainer/1.3.1" in text["merge"]
    assert f"apptainer exec --nv --bind {tmp_path} \"$IMAGE\" deepseg" in text["merge"]
    assert f"IMAGE={tmp_path / 'deepseg.sif'}\n" in text["merge"]
    submit = (folder / "submit.sh").read_text()
    assert ("predict=$(sbatch --parsable --dependency=afterok:\"${train%%;*}\" "
            "--kill-on-invalid-dep=yes predict.sh)") in submit
    assert "crossval_report=$(sbatch --parsable --dependency=afterok:\"${crossval%%;*}\"" in submit
    assert "dataprep=$(sbatch --parsable dataprep.sh)" in submit
    assert ("train=$(sbatch --parsable --dependency=afterok:\"${dataprep%%;*}\" "
            "--kill-on-invalid-dep=yes train.sh)") in submit
    assert ("crossval=$(sbatch --parsable --dependency=afterok:\"${dataprep%%;*}\":"
            "\"${train%%;*}\" --kill-on-invalid-dep=yes crossval.sh)") in submit


def test_array_scripts_pick_their_task_and_crossval_folds_extend_the_experiment(tmp_path):
    exp = load_experiment(tiny_experiment(tmp_path, size=40, folds=3,
                                          hpc={**HPC, "crossval_array": True}))
    scripts = write_scripts(exp, ["crossval", "predict"], shards=4)
    echo = {"BASH_FUNC_deepseg%%": '() { echo "deepseg $*"; }'}  # prints the commands
    runs = {name: bash(scripts[job], *args, **echo, **env).stdout for name, job, args, env in [
        ("task", "predict", [], {"SLURM_ARRAY_TASK_ID": "2"}), ("all", "predict", [], {}),
        ("arg", "predict", ["3"], {}), ("folds", "crossval", [], {}),
        ("report", "crossval-report", [], {})]}
    source = exp.source.resolve()
    assert runs["task"].count("deepseg predict") == 1
    assert f"deepseg predict {source} --shard 2/4\n" in runs["task"]
    assert [f"--shard {i}/4" in runs["all"] for i in range(4)] == [True] * 4
    assert runs["arg"].count("deepseg predict") == 1 and "--shard 3/4" in runs["arg"]
    assert runs["folds"].count("deepseg crossval") == 3
    for name, folds in [("fold1", [1]), ("crossval-report", [])]:
        derived = load_experiment(exp.outdir / "slurm" / f"{name}.yaml")
        assert derived.crossval.folds == folds
        assert derived.outdir.resolve() == exp.outdir.resolve()
        assert store_path(derived) == store_path(exp)


def test_scripts_run_with_bash_and_give_the_single_run_raster(tmp_path, registry):
    # a NumPy test model: the scripts' processes start without TensorFlow
    exp = load_experiment(tiny_experiment(tmp_path, model="numpyfcn"))
    save_untrained(exp, registry)
    single = band(predict.run(exp, registry))
    out = predict.output_path(exp)
    out.unlink()
    result = deepseg("sbatch", exp.source, "--stages", "predict", "--shards", "2",
                     test_models=True)
    assert result.returncode == 0, result.stderr
    assert "without Slurm: cd" in result.stdout
    folder = exp.outdir / "slurm"
    paths = environment(test_models=True)["PYTHONPATH"]  # where the test models are found
    done = bash(folder / "predict.sh", PYTHONPATH=paths)  # no SLURM_ARRAY_TASK_ID: all shards
    assert done.returncode == 0, done.stderr
    assert "shard 0/2 done" in done.stdout and "shard 1/2 done" in done.stdout
    assert not out.exists()
    done = bash(folder / "merge.sh", PYTHONPATH=paths)
    assert done.returncode == 0, done.stderr
    assert np.array_equal(band(out), single)


def test_process_pool_shards_give_the_single_run_raster(tmp_path, registry, monkeypatch):
    # the spawned workers take this sys.path: they find the NumPy test model's entry point
    monkeypatch.syspath_prepend(str(SITE))
    exp = load_experiment(tiny_experiment(tmp_path, model="numpyfcn"))
    save_untrained(exp, registry)
    single = band(predict.run(exp, registry))
    predict.output_path(exp).unlink()
    out = run_shards(exp, registry, shards=3, workers=2)
    assert np.array_equal(band(out), single)
    assert not list(out.parent.glob("*.part-*"))


def test_distributed_training_runs_on_one_cpu_replica(tmp_path, registry):
    import tensorflow as tf

    exp = load_experiment(tiny_experiment(tmp_path, training={"distribute": True}))
    strategy = setup_runtime(exp).strategy
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    assert strategy.num_replicas_in_sync == 1
    dataprep.run(exp, registry)
    train.run(exp, registry)
    for name in ("best.keras", "last.keras", "model.json", "state.json"):
        assert (exp.outdir / "model" / name).exists()


def test_thousands_of_tiles_create_as_many_files_as_ten(tmp_path, registry):
    entries = {}
    for size in (40, 544):  # 9 tiles of 16 px, and 2,025
        folder = tmp_path / f"scene{size}"
        img, gpkg, truth = squares_scene(folder, size=size, nsquares=size // 8)
        labels = write_raster(folder / "truth.tif", truth[None])
        exp = load_experiment(write_experiment(
            folder, img, gpkg, tilesize=16, overlap=4, training={"batch_size": 256},
            labels={"path": None, "class_field": None, "raster": str(labels)},
            classes=[{"name": "background"}, {"name": "square"}],
            model={"name": "unet64", "filters": 2, "depth": 1}))
        dataprep.run(exp, registry)
        save_untrained(exp, registry)
        predict.run(exp, registry)
        entries[size] = count_files(exp)
    assert entries[40] == entries[544]
    assert entries[544]["total"] <= 10 and entries[544]["store"] == 1


def test_files_command_and_submission_without_slurm(tmp_path, monkeypatch):
    path = tiny_experiment(tmp_path, size=40)
    result = invoke("files", str(path))
    assert result.exit_code == 0 and "total" in result.output
    result = invoke("sbatch", str(path), "--stages", "predikt")
    assert result.exit_code == 2
    assert result.stderr == ("error: --stages: unknown stage(s) predikt; expected some of "
                             "dataprep, train, crossval, predict\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    exp = load_experiment(path)
    with pytest.raises(DeepSegError, match="sbatch: command not found"):
        submit_all(write_scripts(exp, ["predict"]))


def test_multi_node_training_job_runs_one_worker_per_gpu_with_srun(tmp_path):
    hpc = {"gpus": "A100:1", "train_gpus": "A100:4", "train_nodes": 2, "container": "d.sif"}
    exp = load_experiment(tiny_experiment(tmp_path, size=40, hpc=hpc,
                                          training={"distribute": "multiworker"}))
    scripts = write_scripts(exp, ["dataprep", "train", "crossval", "predict"])
    text = scripts["train"].read_text()
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=A100:4", "--exclusive"):
        assert f"#SBATCH {line}\n" in text, line
    assert "deepseg dataprep" not in text  # its own CPU job, before this one
    assert 'deepseg dataprep "$EXPERIMENT"' in scripts["dataprep"].read_text()
    assert "export SRUN_CPUS_PER_TASK=4\n" in text  # srun does not inherit it (Slurm 22.05)
    assert ("  srun --kill-on-bad-exit=1 --cpus-per-task=4 --cpu-bind=cores --gpus-per-task=1 "
            "--gpu-bind=none apptainer exec --nv --bind ") in text
    assert '"$IMAGE" deepseg train "$EXPERIMENT"' in text
    # crossval trains its folds on the same workers: a step of its own, never the batch step
    assert '"$IMAGE" deepseg crossval "$EXPERIMENT"' in text
    assert text.count("  srun --kill-on-bad-exit=1 ") == 2
    assert 'deepseg run "$EXPERIMENT"' not in text
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    # more than one node needs the multi-worker strategy
    path = tiny_experiment(tmp_path, size=40, hpc={"train_nodes": 2})
    result = deepseg("sbatch", str(path), "--stages", "train")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(
        "hpc.train_nodes is 2 but training.distribute is none: set it to multiworker to "
        "train across nodes")


@pytest.mark.parametrize("gpus, tasks, shares", [
    (["0", "1", "2", "3"], 4, [["0"], ["1"], ["2"], ["3"]]),
    (["0", "1", "2", "3"], 2, [["0", "1"], ["2", "3"]]),
    (["5"], 2, [["5"], ["5"]]),  # Slurm bound each task to its GPU already
    (["0", "1"], 3, [["0"], ["1"], ["0"]]),
    ([], 2, [[], []]),
])
def test_each_task_on_a_node_gets_its_own_gpus(gpus, tasks, shares):
    from deepseg_core.hpc.gpus import gpu_share

    assert [gpu_share(gpus, rank, tasks) for rank in range(tasks)] == shares
