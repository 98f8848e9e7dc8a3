"""The ``hpc:`` section of experiment.yaml: Slurm resources and job environment (docs/cluster.md).

Defaults suit NeSI: one A100 per GPU job (NeSI picks the partition from the request), a
longer limit for training than for a prediction shard, no GPU for the merge job. Every value
ends up in a job script: none may hold a newline, and the ones written bare into ``#SBATCH``
lines are limited to what Slurm names look like.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .safety import one_line

TIME = re.compile(r"\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2}")
MEMORY = re.compile(r"\d+[KMGT]?")
GPUS = re.compile(r"([A-Za-z0-9_.-]+:)?\d+")
SLURM_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # accounts and partitions (a list: comma-separated)
SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what bash takes as a variable name


def seconds(time: str) -> int:
    """The seconds of a Slurm time (TIME): 'M', 'M:S', 'H:M:S', 'D-H', 'D-H:M', 'D-H:M:S'."""
    days, _, rest = time.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    if days:  # D-H[:M[:S]]
        h, m, s = (parts + [0, 0])[:3]
        return ((int(days) * 24 + h) * 60 + m) * 60 + s
    if len(parts) == 3:
        return (parts[0] * 60 + parts[1]) * 60 + parts[2]
    return parts[0] * 60 + (parts[1] if len(parts) == 2 else 0)


class HPC(BaseModel):
    """Slurm settings used by ``deepseg sbatch``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    account: str | None = Field(None, description="project to charge (NeSI: nesi12345)")
    partition: str | None = Field(None, description="partition (default: the cluster picks)")
    train_time: str = Field("12:00:00", description="time limit of the training job "
                                                    "and of each crossval fold")
    predict_time: str = Field("04:00:00", description="time limit of each prediction shard")
    merge_time: str = Field("01:00:00", description="time limit of the merge and report jobs")
    dataprep_time: str = Field("04:00:00", description="time limit of the dataprep job (CPU "
                                                       "only, before the training job)")
    mem: str = Field("16G", description="memory per job, e.g. 16G")
    cpus_per_task: int = Field(4, gt=0, description="CPU cores per job (data loading, merge)")
    gpus: str | None = Field("A100:1", description="GPUs per train/predict job, 'TYPE:N' or N "
                                                   "(--gpus-per-node); null: CPU only")
    train_gpus: str | None = Field(None, description="GPUs of the training job when it "
                                                     "differs (multi-GPU: 'A100:2')")
    train_nodes: int = Field(1, ge=1, description="nodes of the training job (more than one: "
                                                 "training.distribute: multiworker)")
    train_tasks_per_node: int | None = Field(None, gt=0, description="training workers per "
                                             "node with multiworker (default: one per GPU)")
    modules: list[str] = Field(default_factory=list, description="environment modules to "
                                                                 "'module load'")
    container: str | None = Field(None, description="Apptainer image: commands run as "
                                                    "'apptainer exec --nv IMAGE deepseg ...'")
    venv: str | None = Field(None, description="virtual environment to activate (default: "
                                               "the one running 'deepseg sbatch', if any)")
    extra_sbatch: list[str] = Field(default_factory=list, description="extra '#SBATCH' "
                                    "options for every job, e.g. '--qos=debug'")
    shards: int = Field(4, ge=1, description="prediction array size (tasks; at most the "
                                             "raster's tile rows)")
    array_throttle: int | None = Field(None, ge=1, description="array tasks running at once "
                                       "('%N' of --array; default: as many as Slurm starts)")
    env: list[str] = Field(default_factory=list, description="environment lines "
                           "'NAME=value' exported in every job, e.g. "
                           "'HDF5_USE_FILE_LOCKING=FALSE' (the value is taken literally)")
    logs: str | None = Field(None, description="log folder (default: <outdir>/slurm-logs)")
    crossval_array: bool = Field(False, description="one array task per crossval fold, then a "
                                                    "report job")
    signal_seconds: int | None = Field(120, ge=1, le=65535, description="Slurm signals the "
                                       "train, predict and merge jobs this long before their "
                                       "time limit, and they requeue themselves (null: no "
                                       "signal; they time out)")

    @field_validator("train_time", "predict_time", "merge_time", "dataprep_time", mode="before")
    @classmethod
    def _time(cls, value):
        if not isinstance(value, str):  # YAML reads an unquoted 12:00:00 as 43200
            raise ValueError("write the time in quotes, such as '12:00:00'")
        if not TIME.fullmatch(value):
            raise ValueError("expected a Slurm time such as '30', '02:00:00' or '1-12:00:00'")
        return value

    @field_validator("mem", mode="before")
    @classmethod
    def _mem(cls, value):
        if not MEMORY.fullmatch(str(value)):
            raise ValueError("expected a Slurm memory size such as '16G' or '4000M'")
        return str(value)

    @field_validator("gpus", "train_gpus", mode="before")
    @classmethod
    def _gpus(cls, value):
        if value is not None and not GPUS.fullmatch(str(value)):
            raise ValueError("expected GPUs as 'TYPE:N' such as 'A100:1', or a count")
        return None if value is None else str(value)

    @field_validator("account", "partition")
    @classmethod
    def _slurm_names(cls, value, info):
        names = [] if value is None else value.split(",") if info.field_name == "partition" \
            else [value]
        if any(not SLURM_NAME.fullmatch(n) for n in names):
            example = "'milan' or 'milan,genoa'" if info.field_name == "partition" \
                else "'nesi12345'"
            raise ValueError(f"{value!r} is not a Slurm {info.field_name} name; expected "
                             f"letters, digits, '_', '.' and '-', such as {example}")
        return value

    @field_validator("modules")
    @classmethod
    def _modules(cls, value):
        for name in value:
            if not name or name.startswith("-") or any(c.isspace() for c in name):
                raise ValueError(f"{name!r} is not a module name; expected names such as "
                                 "'Python/3.11.6-foss-2023a'")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value):
        for line in value:
            name = line.split("=", 1)[0]
            if "=" not in line or not SHELL_NAME.fullmatch(name):
                raise ValueError(f"{line!r} is not an environment line; expected NAME=value "
                                 "with NAME letters, digits and '_' (not first a digit), such "
                                 "as 'HDF5_USE_FILE_LOCKING=FALSE'")
        return value

    @field_validator("extra_sbatch")
    @classmethod
    def _extra(cls, value):
        lines = []
        for line in value:
            option = line.strip().removeprefix("#SBATCH").strip()
            if not option.startswith("-") or "\n" in option:
                raise ValueError(f"expected sbatch options such as '--qos=debug', got {line!r}")
            lines.append(option)
        return lines

    @model_validator(mode="after")
    def _signal_before_limit(self):
        if self.signal_seconds is None:
            return self
        for key in ("train_time", "predict_time", "merge_time"):
            limit = seconds(getattr(self, key))
            if self.signal_seconds >= limit:
                raise ValueError(f"signal_seconds ({self.signal_seconds}) must be shorter than "
                                 f"{key} ({getattr(self, key)!r}: {limit} s): the job would "
                                 "be signalled, and requeued, as it starts; lower it or set "
                                 "it to null")
        return self

    @field_validator("*", mode="before")
    @classmethod
    def _one_line(cls, value):  # defined last: pydantic runs it before the validators above
        return one_line(value)
