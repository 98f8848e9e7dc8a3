"""The on-disk commit protocol of training checkpoints (model/state.json is the commit record).

After each epoch the chief

1. saves the model to ``last.pending.keras`` (and copies it to ``best.pending.keras`` when
   the monitored metric improved), fsyncs them, and fsyncs ``logs/training.csv``;
2. writes ``state.json`` -- epoch count, the SHA-256 of the ``last`` and ``best`` files it
   commits, the CSV length, the callbacks' counters and the run's key and settings
   (``reuse.run_settings``: what a resume must match) -- to a temporary name, fsyncs it,
   renames it over the old record and fsyncs the folder: this rename is the commit;
3. renames the pending files to ``last.keras`` / ``best.keras``.

A kill before step 2 leaves the old record, whose files are still in place: the resumed run
redoes the epoch. A kill during or after step 2 leaves the new record and the data it names
(complete: fsynced first), either at the final name or still pending; whoever reads picks the
file whose hash the record names, and the chief finishes the renames. A half-written file
never matches a hash, so it is never taken for a checkpoint. Predict picks its weights the same
way (``models.folder.pick_weights``) and checks that model.json names the record's run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import DeepSegError
from ..io.atomic import fsync_file as fsync_path
from ..io.atomic import write_text as write_atomic
from ..io.fingerprint import content_hash

STATE = "state.json"
FILES = ("last.keras", "best.keras")


def pending(path: Path) -> Path:
    """Where a checkpoint is written before its commit (Keras wants the .keras suffix)."""
    return path.with_name(path.stem + ".pending.keras")


AFRESH = "train afresh with training.resume: false (the folder is moved to previous/)"


def read_state(model_dir: Path) -> dict | None:
    """The last committed record, or None when there is none."""
    path = model_dir / STATE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        int(record["epoch"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise DeepSegError(f"{path}: not a checkpoint record ({type(exc).__name__}); "
                           f"{AFRESH}") from None
    return record


def committed(model_dir: Path, record: dict, name: str) -> Path | None:
    """The file holding the committed ``name`` (final or still pending), None if not committed."""
    final = model_dir / name
    want = record.get("files", {}).get(name)
    if want is None:  # a record from before hashes were kept: the file is the checkpoint
        return final if "files" not in record and final.exists() else None
    for path in (final, pending(final)):
        if path.exists() and content_hash(path) == want:
            return path
    raise DeepSegError(f"{final}: does not match the checkpoint record {model_dir / STATE} "
                       f"(damaged or replaced); {AFRESH}")


def roll_forward(model_dir: Path, record: dict | None) -> None:
    """Finish the renames of a commit that a kill interrupted (the chief only)."""
    if not record:
        return
    moved = False
    for name in FILES:
        path = committed(model_dir, record, name)
        if path is not None and path != model_dir / name:
            os.replace(path, model_dir / name)
            moved = True
        pending(model_dir / name).unlink(missing_ok=True)  # uncommitted: never used
    if moved:
        fsync_path(model_dir)


def commit(model_dir: Path, record: dict, files: dict[str, Path]) -> None:
    """Commit ``record`` for the fsynced pending ``files`` (name -> path), then rename them."""
    write_atomic(model_dir / STATE, json.dumps(record, indent=1))
    for name, path in files.items():
        os.replace(path, model_dir / name)
    fsync_path(model_dir)


def rekey(model_dir: Path, record: dict, identity: dict) -> dict:
    """``record`` committed again under this run's ``identity`` (run key and settings) when a
    resume changed what the key holds but not the weights (more epochs); the old key goes to
    ``earlier``, which predict accepts for a model.json not yet rewritten."""
    earlier = [k for k in dict.fromkeys([*record.get("earlier", []), record["run"]])
               if k != identity["run"]]
    new = {**record, **identity, **({"earlier": earlier} if earlier else {})}
    write_atomic(model_dir / STATE, json.dumps(new, indent=1))
    return new
