"""The shipped MNIST files: loaded without downloading, checksums verified, clear errors."""

import gzip
import os

import pytest
import torch

from engine.data import MNIST_DIR, MNIST_MD5, DataError, list_photos, load_mnist, load_photo

RAW = MNIST_DIR / "MNIST" / "raw"


def test_train_split():
    split = load_mnist("train")
    assert split.images.shape == (60000, 1, 28, 28) and split.images.dtype == torch.float32
    assert split.labels.shape == (60000,) and split.labels.dtype == torch.int64
    assert split.images.min() == 0.0 and split.images.max() == 1.0
    assert split.labels.tolist()[:5] == [5, 0, 4, 1, 9]  # the well-known first MNIST labels
    assert torch.bincount(split.labels).tolist()[1] == 6742  # '1' is the most common digit


def test_test_split():
    split = load_mnist("test")
    assert split.images.shape == (10000, 1, 28, 28) and split.labels.shape == (10000,)
    assert split.labels.dtype == torch.int64 and split.images.dtype == torch.float32
    assert split.images.min() >= 0.0 and split.images.max() <= 1.0
    assert split.labels.tolist()[:5] == [7, 2, 1, 0, 4]
    assert sorted(set(split.labels.tolist())) == list(range(10))


@pytest.mark.parametrize("split", ["train", "test"])
def test_the_idx_reader_matches_torchvision(split):
    """engine.data parses the IDX files itself (torchvision costs the server 165 MB to import);
    every byte and label must be what torchvision's MNIST reads, and the mean image exact."""
    from torchvision.datasets import MNIST

    from engine.data import mnist_mean_image

    ours = load_mnist(split)
    ref = MNIST(str(MNIST_DIR), train=split == "train", download=False)
    assert torch.equal(ours.images, ref.data.unsqueeze(1).float() / 255.0)
    assert torch.equal(ours.labels, ref.targets.long())
    if split == "train":
        assert torch.allclose(mnist_mean_image(), ours.images.double().mean(0).float(), atol=1e-6)


def test_a_truncated_idx_file_is_refused(tmp_path):
    from engine.data import read_idx

    data = (RAW / "t10k-labels-idx1-ubyte").read_bytes()
    (tmp_path / "short").write_bytes(data[:100])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(DataError, match="not an unsigned-byte IDX"):
        read_idx(tmp_path / "text")


def test_unknown_split():
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_mnist("validation")


DAMAGED = "t10k-labels-idx1-ubyte"


@pytest.fixture
def raw_copy(tmp_path):
    """A private MNIST root of links to the shipped files (cheap); files a test edits are replaced,
    never written through. Only DAMAGED starts without its unpacked file."""
    load_mnist("test")  # the shipped root is unpacked
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_MD5:
        os.symlink(RAW / f"{name}.gz", raw / f"{name}.gz")
        if name != DAMAGED:
            os.symlink(RAW / name, raw / name)
    return tmp_path, raw


def _replace(raw, name, data: bytes):
    target = raw / f"{name}.gz"
    target.unlink()
    target.write_bytes(data)
    return target


def test_private_copy_loads(raw_copy):
    root, raw = raw_copy
    split = load_mnist("test", str(root))
    assert split.images.shape == (10000, 1, 28, 28)
    assert (raw / DAMAGED).is_file() and not (raw / DAMAGED).is_symlink()  # unpacked next to the .gz


@pytest.mark.parametrize(
    "damage", ["missing", "truncated", "bit flip 100", "bit flip middle", "wrong content"]
)
def test_damaged_file_names_the_path(raw_copy, damage):
    root, raw = raw_copy
    name = DAMAGED
    good = (RAW / f"{name}.gz").read_bytes()
    if damage == "missing":
        (raw / f"{name}.gz").unlink()
        target = raw / f"{name}.gz"
    elif damage == "truncated":
        target = _replace(raw, name, good[: len(good) // 2])
    elif damage.startswith("bit flip"):
        # byte 100 breaks the deflate stream (zlib.error), the middle the gzip CRC (BadGzipFile)
        pos = len(good) // 2 if damage.endswith("middle") else int(damage.split()[-1])
        data = bytearray(good)
        data[pos] ^= 0xFF
        target = _replace(raw, name, bytes(data))
    else:
        target = _replace(raw, name, gzip.compress(b"not mnist at all"))
    with pytest.raises(DataError) as err:
        load_mnist("test", str(root))
    assert str(target) in str(err.value)
    assert ("missing" if damage == "missing" else "corrupt") in str(err.value)


def test_a_corrupt_unpacked_file_is_rebuilt_from_the_gz(raw_copy):
    root, raw = raw_copy
    plain = raw / DAMAGED
    plain.write_bytes(b"garbage")  # a plain file, not a link
    split = load_mnist("test", str(root))
    assert split.labels.tolist()[:5] == [7, 2, 1, 0, 4]
    assert plain.stat().st_size == 10008


def test_no_download_is_attempted(raw_copy, monkeypatch):
    root, raw = raw_copy
    (raw / f"{DAMAGED}.gz").unlink()

    def no_network(*a, **k):
        raise AssertionError("tried to download")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with pytest.raises(DataError, match="missing"):
        load_mnist("test", str(root))


def test_photos():
    names = list_photos()
    if not names:
        pytest.skip("no sample photos shipped")
    img = load_photo(names[0])
    assert img.shape == (3, 64, 64) and img.dtype == torch.float32
    assert img.min() >= 0 and img.max() <= 1
    with pytest.raises(ValueError, match="unknown sample photo"):
        load_photo("no-such-photo")
