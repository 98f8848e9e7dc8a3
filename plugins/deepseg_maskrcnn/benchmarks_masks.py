"""Memory of one tile's Mask R-CNN results: box-sized masks against full-tile masks.

    python plugins/deepseg_maskrcnn/benchmarks_masks.py [--tilesize 1024] [--instances 300]

An untrained tiny Mask R-CNN with a confidence floor of 1e-6 fills all ``max_instances`` slots of a
tile of noise; the instances ``predict_tiles`` returns keep box-sized masks
(``Instance.origin``), where a full-tile mask each would take ``tilesize``² bytes.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tilesize", type=int, default=1024)
    parser.add_argument("--instances", type=int, default=300)
    args = parser.parse_args()

    from deepseg_maskrcnn.plugin import MaskRCNNPlugin

    params = {"backbone": "resnet_tiny", "fpn_channels": 16, "head_fc": 32, "mask_channels": 8,
              "max_instances": args.instances, "proposals_infer": 2 * args.instances,
              "detection_min_confidence": 1e-6, "detection_nms_threshold": 0.95}
    plugin = MaskRCNNPlugin()
    model = plugin.build(3, 2, args.tilesize, params)
    image = np.random.default_rng(0).normal(size=(1, args.tilesize, args.tilesize, 3))
    [result] = plugin.predict_tiles(model, image.astype(np.float32))
    n = len(result.instances)
    kept = sum(i.mask.nbytes for i in result.instances)
    full = n * args.tilesize ** 2
    print(f"{n} instances on a {args.tilesize} px tile: box-sized masks {kept / 2**20:.1f} MiB, "
          f"full-tile masks would be {full / 2**20:.1f} MiB ({full / max(kept, 1):.0f}x)")


if __name__ == "__main__":
    main()
