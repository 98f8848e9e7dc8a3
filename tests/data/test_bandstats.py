"""Streaming band statistics: chunked and merged results equal numpy over all valid pixels."""

import numpy as np
import pytest

from deepseg_core.data.bandstats import BandStats


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_chunks_and_merges_equal_numpy(dtype):
    rng = np.random.default_rng(4)
    data = rng.normal(300, 80, (3, 90, 70)).clip(0, 255 if dtype == "uint8" else None)
    data = data.astype(dtype)
    valid = rng.random((90, 70)) > 0.2
    left, right = BandStats(3), BandStats(3)
    for r in range(0, 90, 16):  # many small chunks, never the whole array
        target = left if r < 48 else right
        target.update(data[:, r:r + 16], valid[r:r + 16])
    left.merge(right)
    values = data[:, valid].astype(np.float64)
    assert left.count.tolist() == [valid.sum()] * 3
    assert np.allclose(left.mean, values.mean(axis=1), rtol=1e-9)
    assert np.allclose(left.std, values.std(axis=1), rtol=1e-9)
    assert left.min.tolist() == values.min(axis=1).tolist()
    stats = left.as_dict()
    if dtype == "float32":
        assert "p2" not in stats
    else:
        for q, key in ((2, "p2"), (98, "p98")):
            expected = np.percentile(values, q, axis=1, method="inverted_cdf")
            assert stats[key].tolist() == expected.tolist()
