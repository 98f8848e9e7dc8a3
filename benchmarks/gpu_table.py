"""gpu.py's markdown report from its results."""

from __future__ import annotations


def _table(head: list[str], rows: list[list]) -> list[str]:
    def cell(v):
        if v is None:
            return "–"
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *["| " + " | ".join(cell(v) for v in row) + " |" for row in rows], ""]


def markdown(r: dict) -> str:
    """Every figure of a gpu.py run as markdown tables."""
    gpus = ", ".join(r["gpus"]) or "none (small version on the CPU)"
    lines = [f"# DeepSeg GPU benchmark ({r['mode']})", "",
             f"GPU: {gpus}; Keras backend {r['backend']} {r['backend_version']}, Keras "
             f"{r['keras']}; "
             f"tiles {r['sizes']['tilesize']} px; {r['seconds']:.0f} s in all.", "",
             *(["Small version: tiny models, tiles and rasters; the figures show that every "
                "step runs, not how fast DeepSeg is.", ""] if r["mode"] == "small" else []),
             "## Bare predict (tiles already on the host)", ""]
    lines += _table(["model", "precision", "batch", "tiles/s"],
                    [[b["model"], b["precision"], b["batch"], b["tiles_per_s"]]
                     for b in r["bare_predict"]])
    lines += [f"## End to end: `deepseg predict` on {r['sizes']['raster']}² px", ""]
    lines += ["tiles/s: the whole run (model load and compile included); steady: after the "
              "first batch; cost: bare / end to end (goal: e2e >= 0.95 x bare, i.e. cost <= "
              "1.05).", ""]
    lines += _table(["model", "precision", "readers", "batch", "tiles", "tiles/s",
                     "first batch s", "steady tiles/s", "bare tiles/s", "cost", "steady cost",
                     "model waited on readers (s)",
                     "GPU util mean %", "GPU util max %", "GPU memory max MiB"],
                    [[e["model"], e["precision"], e["readers"], e["batch"], e["tiles"],
                      e["tiles_per_s"], e.get("first_batch_s"), e.get("steady_tiles_per_s"),
                      e["bare_tiles_per_s"], e["pipeline_cost"], e.get("steady_pipeline_cost"),
                      e["model_waited_s"], e["gpu_util_mean"], e["gpu_util_max"],
                      e["gpu_mem_max_mib"]] for e in r["end_to_end"]])
    backbone = r["sizes"]["maskrcnn"]["backbone"]
    lines += [f"## Mask R-CNN ({backbone}), `deepseg predict` with stitching", "",
              "Without pyogrio and shapely (the kit does not carry them) the row is the model's "
              "own predict_tiles (detection, masks, unmolding), stitching not included.", ""]
    lines += _table(["precision", "stitching", "tiles", "tiles/s", "first batch s",
                     "steady tiles/s", "model waited on readers (s)", "GPU util mean %",
                     "GPU memory max MiB"],
                    [[m["precision"], m.get("stitching", True), m.get("tiles"),
                      m["tiles_per_s"], m.get("first_batch_s"), m.get("steady_tiles_per_s"),
                      m.get("model_waited_s"), m.get("gpu_util_mean"),
                      m.get("gpu_mem_max_mib")] for m in r["maskrcnn"]])
    lines += ["## One training epoch (UNet64 from the HDF5 store)", ""]
    lines += _table(["precision", "tiles", "batch", "seconds", "tiles/s"],
                    [[t["precision"], t["tiles"], t["batch"], t["seconds"], t["tiles_per_s"]]
                     for t in r["train"]])
    lines += ["## The 59,210-tile tree job (146,400 × 237,600 px) at these rates", ""]
    lines += _table(["model", "precision", "hours on 1 GPU", "minutes on 16 GPUs",
                     "Gpx/h per GPU", "Gpx/h per GPU, steady"],
                    [[t["model"], t["precision"], t["hours_1_gpu"], t["minutes_16_gpus"],
                      t["gpx_per_h_per_gpu"], t.get("gpx_per_h_per_gpu_steady")]
                     for t in r["tree_job"]])
    if r.get("skipped"):
        lines += ["Skipped to stay within --budget: " + "; ".join(r["skipped"]), ""]
    lines += ["Peers (published): " + "; ".join(f"{k} ≈ {v} Gpx/h"
                                               for k, v in r["peers_gpx_per_h"].items()), ""]
    return "\n".join(lines)
