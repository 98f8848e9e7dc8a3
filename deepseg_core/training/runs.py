"""Which run a training continues, and the previous run's files moved aside before a fresh one.

A run's files are ``<run dir>/model/`` (model.json, checkpoints, state.json) and
``<run dir>/logs/`` (training.csv, curves.png, TensorBoard events); the run dir is the
experiment's folder, or a crossval fold's. ``training.resume`` decides what a run starts from:

- ``false``: a fresh run. Before it writes anything, the previous run's ``model/`` and ``logs/``
  move to ``previous/`` (replacing the run kept there: one earlier run is kept, so the file
  count stays bounded). A run that ended before its first checkpoint has nothing worth keeping:
  its files are deleted and ``previous/`` stays as it was.
- ``true``: continue the committed run (model/state.json) whose key matches this run's
  (``reuse.run_settings``), else stop with one line saying what differs or that there is none.
- ``auto``: continue it when there is one, else a fresh run as for ``false``.

Raising ``epochs`` (or lowering it to no fewer than the epochs done) continues a run whose
rate does not depend on the epoch count (``lr_schedule: constant``): on CPU the result equals
an uninterrupted run of the new length. ``training.workers`` does not change the weights.

How the previous run is moved aside, crash-safe, is aside.py's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DeepSegError
from ..io.lock import Lock
from . import checkpoint
from .aside import DROPPING, KEEPING, PREVIOUS, finish_move, set_aside
from .reuse import key_of

if TYPE_CHECKING:
    from ..config.schema import Experiment
    from ..store.reader import Store

log = logging.getLogger(__name__)

TOLERATED = {"training.workers"}  # settings that never change the weights
_HELD: set[Path] = set()  # run dirs whose lock this process holds


@contextlib.contextmanager
def writing(outdir: Path, chief: bool = True) -> Iterator[None]:
    """The chief as the one writer of the run dir ``outdir`` (``<outdir>/model.lock``) for the
    block; a second writer fails at once naming the holder. Nested blocks hold it once."""
    where = Path(outdir).resolve()
    if not chief or where in _HELD:
        yield
        return
    with Lock(Path(outdir) / "model", "the training run"):
        _HELD.add(where)
        try:
            yield
        finally:
            _HELD.discard(where)


def start(exp: Experiment, outdir: Path, settings: dict[str, Any],
          chief: bool) -> dict[str, Any] | None:
    """The committed record this run continues, None for a fresh run (the chief then moves the
    previous run aside); one line when ``resume: true`` cannot continue."""
    if chief:
        finish_move(outdir)
    record = continued(exp, outdir, settings)
    if record is None and chief:
        set_aside(outdir)
    return record


def name_run(exp: Experiment, store: Store, model_dir: Path, record: dict[str, Any] | None,
             identity: dict[str, Any]) -> dict[str, Any] | None:
    """model.json (and the record of a continued run) naming this run's key, before its first
    epoch (the chief's); returns the record. A continued run whose key changed (more epochs)
    commits its record under the new key first: a model.json of the old key stays valid."""
    from ..models.folder import ModelInfo, write_model_info

    if record is not None and record.get("run") != identity["run"]:
        record = checkpoint.rekey(model_dir, record, identity)
    try:
        named = ModelInfo.read(model_dir / "model.json").run if record is not None else None
    except DeepSegError:
        named = None  # none or unreadable: written again
    if named != identity["run"]:
        write_model_info(exp, store, model_dir, run=identity["run"])
    return record


def committed_record(outdir: Path) -> dict[str, Any] | None:
    """model/state.json, or None where there is none or the run is on its way out."""
    if (outdir / KEEPING).exists() or (outdir / DROPPING).exists():
        return None
    return checkpoint.read_state(outdir / "model")


def continued(exp: Experiment, outdir: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The decision of ``training.resume`` (module docstring), the same on every worker."""
    mode = exp.training.resume
    if mode is False:
        return None
    fresh = "set training.resume: auto (or false) to train afresh"
    record = committed_record(outdir)
    if record is None:
        if mode == "auto":
            return None
        kept = (f" (the last run with one is in {outdir / PREVIOUS})"
                if (outdir / PREVIOUS / "model" / checkpoint.STATE).exists() else "")
        raise DeepSegError(f"{exp.source}: training.resume: true, but there is no checkpoint "
                           f"to resume from in {outdir / 'model'}{kept}; {fresh}")
    why = differences(record, settings)
    if not why:
        return record
    state = outdir / "model" / checkpoint.STATE
    if mode == "auto":
        log.info(f"training.resume: auto: the run in {state.parent} is not this one ({why}): "
                 "training afresh")
        return None
    back = "set them back to continue it, or " if "run" in record else ""
    raise DeepSegError(f"{state}: training.resume: true, but the committed run is not this "
                       f"one: {why}; {back}{fresh} (which moves it to {outdir / PREVIOUS})")


def differences(record: dict[str, Any], settings: dict[str, Any]) -> str:
    """What keeps this run from continuing ``record`` ('' when nothing does)."""
    if "run" not in record:
        return "the record predates run keys, so it cannot be matched to these settings"
    if record["run"] == key_of(settings):
        return ""
    old = record.get("settings")
    if not isinstance(old, dict):
        return f"run key {str(record['run'])[:12]}, this run's {key_of(settings)[:12]}"
    changed = [k for k in sorted(set(_flat(old)) | set(_flat(settings)))
               if _flat(old).get(k) != _flat(settings).get(k) and k not in TOLERATED]
    done, epochs = int(record["epoch"]), settings["epochs"]
    words = []
    for key in changed:
        if key == "epochs":
            if settings["training"]["lr_schedule"] != "constant":
                words.append(f"epochs {old['epochs']} -> {epochs} (lr_schedule: "
                             f"{settings['training']['lr_schedule']} spreads the rate over all "
                             "epochs)")
            elif done > epochs:
                words.append(f"epochs {epochs}, but the run has trained {done}")
            continue
        words.append(_changed(key, _flat(old).get(key), _flat(settings).get(key)))
    return ", ".join(words[:4]) + (f" and {len(words) - 4} more" if len(words) > 4 else "")


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}".replace("model.params.", "model.")
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[name] = value
    return out


def _changed(key: str, old: Any, new: Any) -> str:
    if key == "store":
        return "the store (data settings or input files)"
    if key == "tiles":
        return "the training tiles (folds)"
    if key == "backend":
        return f"the Keras backend {old or 'tensorflow'} -> {new or 'tensorflow'}"

    def shown(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."

    return f"{key} {shown(old)} -> {shown(new)}"
