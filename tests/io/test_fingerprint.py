"""Input fingerprints (io/fingerprint.py): cheap for huge files, changed by a new acquisition."""

import os

from deepseg_core.io import fingerprint as fp


def big(path, size, byte=0):
    with open(path, "wb") as handle:
        handle.truncate(size)  # sparse: a 64 MiB file without writing it
        handle.seek(size // 2)
        handle.write(bytes([byte]))
    return path


def test_a_changed_sample_a_size_or_an_mtime_changes_the_fingerprint(tmp_path):
    path = big(tmp_path / "a.tif", 64 << 20)
    first = fp.fingerprint(path)
    assert first[:2] == [str(path), 64 << 20] and len(first) == 4
    stat = os.stat(path)
    assert fp.fingerprint(path) == first  # stable
    with open(path, "r+b") as handle:  # a byte inside the first MiB, mtime restored
        handle.write(b"\1")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fp.fingerprint(path)[3] != first[3]
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert fp.fingerprint(path)[2] != first[2]


def test_a_huge_file_is_sampled_not_read_whole(tmp_path, monkeypatch):
    path = big(tmp_path / "huge.tif", 100 << 30)  # 100 GiB, sparse
    read = []
    original = os.pread
    monkeypatch.setattr(fp.os, "pread", lambda fd, n, off: read.append(n) or original(fd, n,
                                                                                        off))
    fp.fingerprint(path)
    assert sum(read) == 2 * fp.EDGE + fp.SAMPLES * fp.SAMPLE  # 3 MiB of 100 GiB


def test_virtual_and_missing_paths_are_named_only(tmp_path):
    assert fp.fingerprint("/vsicurl/https://example.org/a.tif") == [
        "/vsicurl/https://example.org/a.tif"]
    assert fp.fingerprint(tmp_path / "none.tif") == [str(tmp_path / "none.tif")]


def test_a_content_hash_reads_every_byte(tmp_path):
    a, b = tmp_path / "a.keras", tmp_path / "b.keras"
    a.write_bytes(b"x" * 5_000_000)
    b.write_bytes(b"x" * 4_999_999 + b"y")
    assert fp.content_hash(a) != fp.content_hash(b)
