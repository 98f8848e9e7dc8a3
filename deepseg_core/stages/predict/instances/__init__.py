"""Instance prediction: stitching tiles into objects, shard candidates and their merge."""
