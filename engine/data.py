"""Shipped data: MNIST (Yann LeCun, Corinna Cortes, Christopher J.C. Burges; CC BY-SA 3.0) and a
few public-domain sample photos.

The four original IDX files ship gzip-compressed in ``cache/datasets/mnist/MNIST/raw``.
``load_mnist`` verifies the MD5 of their uncompressed bytes, unpacks them next to the .gz files
(the names ``torchvision.datasets.MNIST`` reads) and parses the IDX format with numpy, never
downloading: reading them through torchvision would import torchvision, 165 MB of resident
memory and 1.1 CPU-s in every server for a 12-byte header (measured on this CPU; the tests check
the arrays against torchvision's reader). Images come back as float32 (N, 1, 28, 28) in [0, 1],
labels as int64 (N,).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / "cache"
MNIST_DIR = CACHE_DIR / "datasets" / "mnist"
PHOTOS_DIR = CACHE_DIR / "datasets" / "photos"

MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


class DataError(RuntimeError):
    """Shipped data missing or corrupt; the message names the path."""


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # (N, 1, 28, 28) float32 in [0, 1]
    labels: torch.Tensor  # (N,) int64


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _prepare_raw(root: Path) -> Path:
    raw = root / "MNIST" / "raw"
    for name, md5 in MNIST_MD5.items():
        plain, packed = raw / name, raw / f"{name}.gz"
        if plain.exists() and _md5(plain.read_bytes()) == md5:
            continue
        if not packed.exists():
            raise DataError(
                f"MNIST file missing: {packed}. Restore it from the repository "
                "(git checkout -- cache/datasets/mnist)."
            )
        try:
            data = gzip.decompress(packed.read_bytes())
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; bad deflate data is not
            raise DataError(f"MNIST file corrupt (not valid gzip): {packed}: {e}") from e
        if _md5(data) != md5:
            raise DataError(f"MNIST file corrupt (checksum mismatch): {packed}")
        tmp = plain.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, plain)
    return raw


FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: Path) -> np.ndarray:
    """An unsigned-byte IDX file (LeCun's format: two zero bytes, type 0x08, the number of
    dimensions, big-endian uint32 sizes, then the data) as a read-only uint8 array."""
    data = path.read_bytes()
    if len(data) < 4 or data[:3] != b"\0\0\x08":
        raise DataError(f"not an unsigned-byte IDX file: {path}")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(dims)):
        raise DataError(f"IDX file truncated: {path} holds {array.size} values, its header says {dims}")
    return array.reshape(dims)


def mnist_bytes(split: str = "train", root: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` as stored: uint8 images (N, 28, 28) and labels (N,), checksums verified."""
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    raw = _prepare_raw(Path(root) if root else MNIST_DIR)
    images, labels = (read_idx(raw / name) for name in FILES[split])
    return images, labels


@lru_cache(maxsize=4)
def load_mnist(split: str = "train", root: str | None = None) -> Split:
    """MNIST ``split`` ("train" or "test") from the shipped files, checksums verified."""
    images, labels = mnist_bytes(split, root)
    pixels = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255.0)
    return Split(pixels, torch.from_numpy(labels.astype(np.int64)))


@lru_cache(maxsize=2)
def mnist_mean_image(root: str | None = None) -> torch.Tensor:
    """The training-set mean image (1, 28, 28): what a pure-noise denoiser should learn. Summed
    exactly from the bytes: no float copy of the 60 000 images is made or kept."""
    images, _ = mnist_bytes("train", root)
    total = torch.from_numpy(images.sum(0, dtype=np.int64)).double()
    return (total / (255.0 * images.shape[0])).float().unsqueeze(0)


def list_photos() -> list[str]:
    return sorted(p.stem for p in PHOTOS_DIR.glob("*.png"))


def load_photo(name: str) -> torch.Tensor:
    """A shipped 64x64 sample photo as float32 (3, 64, 64) in [0, 1]."""
    from PIL import Image

    if name not in list_photos():
        raise ValueError(f"unknown sample photo {name!r}; choose from {list_photos()}")
    with Image.open(PHOTOS_DIR / f"{name}.png") as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()
