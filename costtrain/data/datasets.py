"""Datasets decoded once into normalized in-memory tensors.

Search order for the files of a dataset:
1. the ``root`` argument, 2. the ``COSTTRAIN_DATA`` environment variable, 3. ``./data``,
4. (WordNet only) WordNet's own ``WNSEARCHDIR`` environment variable,
5. the Debian/Ubuntu package location (Fashion-MNIST: ``dataset-fashion-mnist``, WordNet:
   ``wordnet-base``),
6. torchvision's download into ``./data`` when ``download=True`` (image datasets only).

``sparse-synthetic`` has no files: it is generated from a seed (:mod:`costtrain.data.sparse`).
``wordnet-supersense`` is read from WordNet 3.0's ``data.noun`` (:mod:`costtrain.data.wordnet`).
"""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import \
    CorruptDataError  # noqa: F401 (costtrain.data.datasets.CorruptDataError, as before)
from ..run.shared import share
from ..utils import CosttrainError, whole

_SHARING = threading.Lock()  # one copy per dataset when runs start at once (see share_memory_)

WORDNET = "wordnet-supersense"  # read from WordNet's data.noun: see costtrain.data.wordnet
DEBIAN_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
               WORDNET: Path("/usr/share/wordnet")}
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# Per-dataset: subfolders to look in below each search root, normalisation, class names.
SPECS = {
    "fashion-mnist": dict(
        subdirs=["", "fashion-mnist", "FashionMNIST/raw", "fashion_mnist"],
        mean=(0.2860,), std=(0.3530,), tv="FashionMNIST",
        classes=["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]),
    "mnist": dict(
        subdirs=["", "mnist", "MNIST/raw"], mean=(0.1307,), std=(0.3081,), tv="MNIST",
        classes=[str(i) for i in range(10)]),
    "cifar10": dict(
        subdirs=["cifar-10-batches-py", "cifar10/cifar-10-batches-py"],
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616), tv="CIFAR10",
        classes=["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]),
}
SPARSE = "sparse-synthetic"  # generated, not read: see costtrain.data.sparse
# WordNet's files: data.noun directly in a search root, or below it (upstream's tarball: dict/)
WORDNET_SUBDIRS = ["", "wordnet", "dict", "WordNet-3.0/dict"]
WORDNET_FILE = "data.noun"
DATASETS = (*SPECS, SPARSE, WORDNET)
# Datasets with settings of their own (keywords of load_dataset besides root, subset, seed...).
WITH_SETTINGS = (SPARSE, WORDNET)


class DataNotFoundError(CosttrainError, FileNotFoundError):
    """No copy of the dataset was found in any searched place."""


@dataclass
class Dataset:
    """Train/test tensors: images float32 (N, C, H, W) normalized, labels int64 (N,).

    Sparse datasets (``features`` set) hold int64 feature ids (N, k) instead of images: each
    sample is a bag of up to ``k`` of ``features`` features (an id may repeat), and
    ``input_shape`` is ``(features,)``, the dimension a model sees. Ids are ``0..features-1``;
    the id ``features`` itself is padding, filling the rows of bags shorter than ``k``
    (:class:`~costtrain.data.sparse.SparseLinear` leaves it out). ``vocabulary`` names the features
    of a text dataset (id ``i`` is word ``vocabulary[i]``).
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""
    info: dict = field(default_factory=dict)
    features: int | None = None
    vocabulary: list[str] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.features is not None:
            return (self.features,)
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def share_memory_(self) -> "Dataset":
        """Move every tensor into memory that worker processes map without a copy; returns self.

        Outside ``/dev/shm`` where possible (see :mod:`costtrain.run.shared`): a container's 64 MB
        there would not hold the data. Safe to call from several threads at once: a second
        copy would replace the first, whose memory file would close while a run started from
        another thread is still handing it to its workers.
        """
        with _SHARING:
            self.train_x, self.train_y = share(self.train_x), share(self.train_y)
            self.test_x, self.test_y = share(self.test_x), share(self.test_y)
        return self

    @property
    def nbytes(self) -> int:
        """Bytes of the four tensors."""
        return sum(t.numel() * t.element_size()
                   for t in (self.train_x, self.train_y, self.test_x, self.test_y))

    def raw_images(self, split: str = "train") -> torch.Tensor:
        """Undo normalisation: uint8 images (N, H, W) or (N, H, W, C) as the files store them."""
        x = self.train_x if split == "train" else self.test_x
        m = torch.tensor(self.mean).view(1, -1, 1, 1)
        s = torch.tensor(self.std).view(1, -1, 1, 1)
        if self.features is not None:
            raise CosttrainError(f"{self.name} holds feature ids, not images.")
        img = (x * s + m).mul(255).round().clamp(0, 255).to(torch.uint8)
        return img[:, 0] if img.shape[1] == 1 else img.permute(0, 2, 3, 1).contiguous()


# ---------------------------------------------------------------- file formats

def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) into a uint8 array; clear error if corrupt."""
    path = Path(path)
    try:
        with _open(path) as f:
            raw = f.read()
    except (EOFError, OSError, gzip.BadGzipFile, zlib.error) as exc:  # zlib: flipped bits
        raise CorruptDataError(f"{path}: cannot read ({exc}); the file is truncated or "
                               "corrupt: delete it and fetch the dataset again.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CorruptDataError(f"{path}: not an unsigned-byte IDX file (bad magic number); "
                               "delete it and fetch the dataset again.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDataError(f"{path}: truncated header; delete it and fetch it again.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise CorruptDataError(f"{path}: {len(raw)} bytes but shape {shape} needs {expected}; "
                               "the file is truncated or corrupt: delete it and fetch it again.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(folder: Path) -> dict[str, Path] | None:
    found = {}
    for key, stem in IDX_FILES.items():
        for cand in (folder / stem, folder / f"{stem}.gz",
                     folder / stem.replace("-idx", ".idx")):
            if cand.is_file():
                found[key] = cand
                break
    return found if len(found) == len(IDX_FILES) else None


def _load_idx_folder(files: dict[str, Path]) -> tuple[np.ndarray, ...]:
    arrays = {k: read_idx(p) for k, p in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise CorruptDataError(
                f"{files[split + '_images']} and {files[split + '_labels']}: images {x.shape} "
                f"and labels {y.shape} do not match; fetch the dataset again.")
    return (arrays["train_images"][:, None], arrays["train_labels"],
            arrays["test_images"][:, None], arrays["test_labels"])


class CifarUnpickler(pickle.Unpickler):
    """Reads a CIFAR-10 batch (a pickled dict) without running code from the file.

    A pickle can call any importable function while it is read; a crafted
    ``./data/cifar-10-batches-py`` folder would run its code. The format needs dicts, lists,
    bytes, strings and numbers (no imports at all) and numpy arrays, so only the functions
    that rebuild a numpy array (and ``_codecs.encode``, which Python 3 writes for bytes in
    protocol 2) may be looked up; anything else is refused before it runs.
    """

    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")})

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it asks to call {module}.{name}, which a CIFAR-10 "
                                         "batch never does (refused, nothing was run)")
        return super().find_class(module, name)


def _load_cifar_folder(folder: Path) -> tuple[np.ndarray, ...]:
    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        path = folder / name
        try:
            with open(path, "rb") as f:
                d = CifarUnpickler(f, encoding="bytes").load()
            x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(d[b"labels"], dtype=np.uint8)
        except Exception as exc:  # unpickling errors come in many types
            raise CorruptDataError(f"{path}: not a readable CIFAR-10 batch ({exc}); "
                                   "delete the folder and fetch the dataset again.") from None
        return x, y
    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    tx, ty = batch("test_batch")
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), tx, ty)


def _has_cifar(folder: Path) -> bool:
    return all((folder / n).is_file() for n in
               [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"])


# ---------------------------------------------------------------- search

def search_paths(name: str, root: str | Path | None = None) -> list[Path]:
    """Folders searched for `name`, in order."""
    bases: list[Path] = []
    if root is not None:
        bases.append(Path(root))
    if os.environ.get("COSTTRAIN_DATA"):
        bases.append(Path(os.environ["COSTTRAIN_DATA"]))
    bases.append(Path("data"))
    subdirs = WORDNET_SUBDIRS if name == WORDNET else SPECS[name]["subdirs"]
    folders = [b / sub if sub else b for b in bases for sub in subdirs]
    if name == WORDNET and os.environ.get("WNSEARCHDIR"):
        folders.append(Path(os.environ["WNSEARCHDIR"]))
    if name in DEBIAN_DIRS:
        folders.append(DEBIAN_DIRS[name])
    return folders


def _locate(name: str, root: str | Path | None) -> Path | None:
    for folder in search_paths(name, root):
        if name == WORDNET and (folder / WORDNET_FILE).is_file():
            return folder
        if name == "cifar10" and _has_cifar(folder):
            return folder
        if name not in ("cifar10", WORDNET) and _find_idx(folder):
            return folder
    return None


def _download(name: str, root: Path) -> Path:
    import torchvision  # imported late: only this path needs it
    cls = getattr(torchvision.datasets, SPECS[name]["tv"])
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:
        raise DataNotFoundError(f"downloading {name} into {root} failed ({exc}).") from exc
    found = _locate(name, root)
    if found is None:
        raise DataNotFoundError(f"torchvision downloaded {name} into {root} but the files "
                                "were not where expected.")
    return found


def _not_found(name: str, root: str | Path | None) -> DataNotFoundError:
    searched = "\n  ".join(str(p.resolve()) if not p.is_absolute() else str(p)
                           for p in search_paths(name, root))
    how = ("  - pass download=True (CLI: --download) to fetch it with torchvision, or\n"
           "  - put the files in ./data or a folder named by COSTTRAIN_DATA (or --data-dir)")
    if name == "fashion-mnist":
        how = ("  - on Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist (offline), or\n"
               + how)
    if name == WORDNET:
        how = ("  - on Debian/Ubuntu: sudo apt-get install wordnet-base (offline; WordNet 3.0), or\n"
               f"  - elsewhere: get WordNet 3.0 and pass the folder holding its {WORDNET_FILE} "
               "(the dict/ folder) as root= (CLI: --data-dir), or name it in COSTTRAIN_DATA or "
               "WNSEARCHDIR\n  (costtrain does not download WordNet)")
    return DataNotFoundError(f"dataset {name!r} not found. Searched:\n  {searched}\n"
                             f"To get it:\n{how}")


# ---------------------------------------------------------------- public API

def _normalize(x: np.ndarray, mean, std) -> torch.Tensor:
    t = torch.from_numpy(np.array(x, dtype=np.float32)).div_(255)
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return t.sub_(m).div_(s)


def stratified_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of `n` samples with class proportions kept, chosen by `seed`."""
    if n >= len(labels):
        return torch.arange(len(labels))
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(labels), generator=g)
    classes = labels.unique()
    per_class = [perm[labels[perm] == c] for c in classes]
    quota = [round(n * len(p) / len(labels)) for p in per_class]
    quota[0] += n - sum(quota)  # rounding remainder
    idx = torch.cat([p[:q] for p, q in zip(per_class, quota)])
    return idx[torch.randperm(len(idx), generator=g)]


def load_dataset(name: str = "fashion-mnist", root: str | Path | None = None, *,
                 subset: int | None = None, test_subset: int | None = None,
                 seed: int = 0, download: bool = False, **generator) -> Dataset:
    """Find, decode and normalise a dataset (or generate ``sparse-synthetic``).

    Args:
        name: one of ``fashion-mnist`` (default), ``mnist``, ``cifar10``, ``sparse-synthetic``,
            ``wordnet-supersense``.
        root: folder to look in first (then ``$COSTTRAIN_DATA``, ``./data``, system folders).
        subset: keep a stratified sample of this many training images (chosen by ``seed``).
        test_subset: likewise for the test set.
        download: allow torchvision to download into ``root`` (or ``./data``) as a last resort.
        generator: ``sparse-synthetic``: ``train``, ``test``, ``features``, ``k``,
            ``classes``, ``zipf``, ``noise`` (see :func:`costtrain.data.sparse.make_sparse_synthetic`)
            and ``data_seed`` (default 0; ``seed`` only picks the subset).
            ``wordnet-supersense``: ``max_tokens`` (default 32, see :mod:`costtrain.data.wordnet`).
    """
    name = name.lower().replace("_", "-")
    if name == "cifar-10":
        name = "cifar10"
    if name not in DATASETS:
        raise CosttrainError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    for label, n in (("subset", subset), ("test_subset", test_subset)):
        if n is not None:
            whole(n, f"{label} (samples)")
    if generator and name not in WITH_SETTINGS:
        raise CosttrainError(f"{', '.join(generator)}: settings are for {SPARSE} (its generator) "
                             f"and {WORDNET} (max_tokens) only, not {name!r}.")
    if name == SPARSE:
        ds = _sparse_synthetic(generator)
    elif name == WORDNET:
        ds = _wordnet(root, generator)
    else:
        ds = _load_files(name, root, download)
    if subset is not None:
        idx = stratified_subset(ds.train_y, subset, seed)
        ds.train_x, ds.train_y = ds.train_x[idx].contiguous(), ds.train_y[idx].contiguous()
    if test_subset is not None:
        idx = stratified_subset(ds.test_y, test_subset, seed)
        ds.test_x, ds.test_y = ds.test_x[idx].contiguous(), ds.test_y[idx].contiguous()
    ds.info = {**ds.info, "train": len(ds.train_y), "test": len(ds.test_y), "subset": subset,
               "test_subset": test_subset, "seed": seed}
    return ds


def _sparse_synthetic(generator: dict) -> Dataset:
    """Generate ``sparse-synthetic`` (imported late: only this dataset needs the module)."""
    from .sparse import SPARSE_DEFAULTS, make_sparse_synthetic
    unknown = sorted(set(generator) - set(SPARSE_DEFAULTS) - {"data_seed"})
    if unknown:
        raise CosttrainError(f"{SPARSE}: unknown generator setting(s) {', '.join(unknown)}; "
                             f"known: {', '.join([*SPARSE_DEFAULTS, 'data_seed'])}.")
    settings = {**SPARSE_DEFAULTS, **{k: v for k, v in generator.items() if v is not None}}
    data_seed = settings.pop("data_seed", 0)
    trx, tr_y, tex, te_y = make_sparse_synthetic(**settings, seed=data_seed)
    return Dataset(name=SPARSE, train_x=trx, train_y=tr_y, test_x=tex, test_y=te_y,
                   classes=[str(c) for c in range(settings["classes"])], mean=(), std=(),
                   source=f"generated (data_seed={data_seed})", features=settings["features"],
                   info=dict(generator=dict(settings, data_seed=data_seed)))


def _check_root(root: str | Path | None) -> None:
    if root is not None and not Path(root).is_dir():
        raise DataNotFoundError(f"data directory {str(root)!r} does not exist; pass an "
                                "existing folder or leave it out to search the usual places.")


def _wordnet(root: str | Path | None, settings: dict) -> Dataset:
    """Find WordNet's ``data.noun`` and read ``wordnet-supersense`` from it (late import)."""
    from .wordnet import read_wordnet
    unknown = sorted(set(settings) - {"max_tokens"})
    if unknown:
        raise CosttrainError(f"{WORDNET}: unknown setting(s) {', '.join(unknown)}; known: "
                             "max_tokens.")
    _check_root(root)
    folder = _locate(WORDNET, root)
    if folder is None:
        raise _not_found(WORDNET, root)
    return Dataset(**read_wordnet(folder / WORDNET_FILE, **{k: v for k, v in settings.items()
                                                            if v is not None}))


def _load_files(name: str, root: str | Path | None, download: bool) -> Dataset:
    """Find and decode the files of an image dataset."""
    _check_root(root)
    spec = SPECS[name]
    folder = _locate(name, root)
    if folder is None:
        if not download:
            raise _not_found(name, root)
        folder = _download(name, Path(root) if root is not None else Path("data"))
    if name == "cifar10":
        arrays = _load_cifar_folder(folder)
    else:
        arrays = _load_idx_folder(_find_idx(folder))  # type: ignore[arg-type]
    trx, tr_y, tex, te_y = arrays
    ds = Dataset(name=name,
                 train_x=_normalize(trx, spec["mean"], spec["std"]),
                 train_y=torch.from_numpy(tr_y.astype(np.int64)),
                 test_x=_normalize(tex, spec["mean"], spec["std"]),
                 test_y=torch.from_numpy(te_y.astype(np.int64)),
                 classes=list(spec["classes"]), mean=spec["mean"], std=spec["std"],
                 source=str(folder))
    return ds


class ClassicImageDataset(torch.utils.data.Dataset):
    """The classic example's data path: PIL image + ToTensor + Normalize for every sample.

    Slow on purpose (it is what most tutorials do); used for the legacy API and benchmarks.
    """

    def __init__(self, ds: Dataset, split: str = "train") -> None:
        self.images = ds.raw_images(split).numpy()
        self.labels = (ds.train_y if split == "train" else ds.test_y).tolist()
        self.mean, self.std = ds.mean, ds.std

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image
        from torchvision.transforms import functional as TF
        img = Image.fromarray(self.images[i])
        x = TF.normalize(TF.to_tensor(img), self.mean, self.std)
        return x, self.labels[i]


def tensor_dataset(ds: Dataset, split: str = "train") -> torch.utils.data.TensorDataset:
    """The in-memory tensors wrapped as a TensorDataset (for the DataLoader-based APIs)."""
    if split == "train":
        return torch.utils.data.TensorDataset(ds.train_x, ds.train_y)
    return torch.utils.data.TensorDataset(ds.test_x, ds.test_y)
