"""Datasets: shapes, ranges, fixed disjoint deterministic splits, readers, clean errors."""
from __future__ import annotations

import gzip
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import csbench.datasets.fashion_mnist as fashion_module
from csbench.datasets import DATASETS, dataset_signature, load_dataset
from csbench.datasets.idx import read_idx, read_standard_splits
from csbench.datasets.packaged import load_packaged_npz
from csbench.datasets.random_net import RandomNet, RandomReluGenerator, expansive_widths
from csbench.datasets.splits import stratified_order
from csbench.errors import CsbenchError
from csbench.rng import numpy_generator

SPLITS = ("train", "validation", "test")
DEBIAN_DIR = fashion_module.DEBIAN_DIR  # before the autouse fixture hides it
IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}


@pytest.fixture(autouse=True)
def no_user_data(monkeypatch, tmp_path):
    """Tests see only the shipped data unless they point somewhere themselves."""
    monkeypatch.delenv("CSBENCH_MNIST_DIR", raising=False)
    monkeypatch.delenv("CSBENCH_FASHION_MNIST_DIR", raising=False)
    monkeypatch.setattr(fashion_module, "DEBIAN_DIR", str(tmp_path / "no-debian-package"))


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, IDX_CODES[array.dtype], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def write_idx_directory(directory: Path, n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(exist_ok=True)
    for i, (stem, array) in enumerate(arrays.items()):
        compress = i % 2 == 0  # mix .gz and plain files
        write_idx(directory / (f"{stem}.gz" if compress else stem), array, compress)
    return arrays


def make_png_folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    Image.fromarray(np.full((30, 40), 100, np.uint8)).save(root / "a_gray.png")
    Image.fromarray(np.full((50, 30, 3), [200, 10, 50], np.uint8)).save(root / "sub" / "b_rgb.png")
    Image.fromarray(np.full((20, 20, 3), 255, np.uint8)).save(root / "sub" / "c.JPG")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture
def folder(tmp_path):
    return make_png_folder(tmp_path / "images")


def spec_for(name: str, folder: Path) -> str:
    return f"folder:{folder}" if name == "folder" else name


# ---- contract shared by every dataset -------------------------------------------------

@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_yields_declared_float32_images(name, folder):
    dataset = load_dataset(spec_for(name, folder))
    assert dataset.description and dataset.provenance
    for which in SPLITS:
        if name == "fashion-mnist" and which == "train":
            continue  # shipped subset has no train split (checked below)
        x = dataset.split(which, 1)
        assert x.dtype == torch.float32 and x.shape == (1, *dataset.shape)
        assert torch.isfinite(x).all() and x.min() >= 0
        if name != "random-net":
            assert x.max() <= 1
    assert torch.equal(load_dataset(spec_for(name, folder)).split("test"), dataset.split("test"))
    assert dataset.split("test", 0).shape == (0, *dataset.shape)


OPENED: list[Path] = []    # files opened while a test records them (RECORDING)
RECORDING = [False]


def _record_open(event: str, args: tuple) -> None:
    if event == "open" and RECORDING[0] and isinstance(args[0], (str, Path)):
        OPENED.append(Path(args[0]).resolve())


sys.addaudithook(_record_open)


@pytest.mark.parametrize("name, idx_directory", [(name, False) for name in sorted(DATASETS)]
                         + [("mnist", True), ("fashion-mnist", True)])
def test_a_datasets_signature_covers_every_file_it_reads(name, idx_directory, folder, tmp_path, monkeypatch):
    """dataset_signature (what a worker keys its loaded copy by) names every file the loader opens
    to give all of its splits: shipped .npz, IDX files through the environment, a folder's images."""
    if idx_directory:
        write_idx_directory(tmp_path / "idx", n_train=5010, n_test=4)
        monkeypatch.setenv(f"CSBENCH_{name.upper().replace('-', '_')}_DIR", str(tmp_path / "idx"))
    spec = spec_for(name, folder)
    OPENED.clear()
    RECORDING[0] = True
    try:
        dataset = load_dataset(spec)
        for which in SPLITS:
            if which != "train" or name != "fashion-mnist" or idx_directory:
                dataset.split(which)
    finally:
        RECORDING[0] = False
    read = {path for path in OPENED if path.suffix not in (".py", ".pyc")}
    signed = {Path(path).resolve() for path, _, _ in dataset_signature(spec)}
    assert read <= signed and bool(read) == bool(signed) == (name != "random-net")
    if idx_directory:
        assert signed == {path.resolve() for path in (tmp_path / "idx").iterdir()}


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_bad_requests_raise_one_line_errors(name, folder):
    dataset = load_dataset(spec_for(name, folder))
    for call in (lambda: dataset.split("testing"), lambda: dataset.split("test", -1),
                 lambda: dataset.split("test", dataset.size("test") + 1), lambda: dataset.size("dev")):
        with pytest.raises(CsbenchError) as error:
            call()
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("spec", ["nope", "mnist[foo=1]", "folder", "folder:/no/such/dir", "MNIST",
                                  "random-net[k=0]", "random-net[depth=two]", "folder[size=0]:/tmp"])
def test_bad_dataset_names_raise_csbench_error(spec):
    with pytest.raises(CsbenchError):
        load_dataset(spec)


# ---- mnist -----------------------------------------------------------------------------

def test_mnist_splits_are_fixed_disjoint_and_cover_the_10000_digits():
    arrays = load_packaged_npz("mnist", "mnist.npz")
    assert arrays["images"].shape == (10000, 28, 28) and arrays["images"].dtype == np.uint8
    indices = [arrays[f"split_{w}"] for w in SPLITS]
    assert [len(i) for i in indices] == [8000, 1000, 1000]
    assert np.array_equal(np.sort(np.concatenate(indices)), np.arange(10000))
    # the shipped indices are the recipe's seeded stratified order, cut test | validation | train
    order = stratified_order(arrays["labels"], numpy_generator("mnist", "split", 0))
    assert np.array_equal(np.concatenate(indices[::-1]), order)
    dataset = load_dataset("mnist")
    assert torch.equal(dataset.split("test", 5), torch.from_numpy(arrays["images"][indices[2][:5]] / np.float32(255))[:, None])


def test_mnist_splits_and_their_prefixes_are_stratified():
    dataset, labels = load_dataset("mnist"), load_packaged_npz("mnist", "mnist.npz")["labels"]
    share = np.bincount(labels) / len(labels)
    # prefix of length L of the stratified order: |count_c - L share_c| < 1 + C share_c (see stratified_order)
    prefix_bound = 1 + 10 * share
    for n in (10, 100, 1000):
        counts = np.bincount(dataset.labels("test", n).numpy(), minlength=10)
        assert np.all(np.abs(counts - n * share) < prefix_bound)
    for which, bound in (("validation", 2 * prefix_bound), ("train", 2 * prefix_bound)):
        counts = np.bincount(dataset.labels(which).numpy(), minlength=10)
        assert np.all(np.abs(counts - dataset.size(which) * share) < bound)


def test_mnist_reads_full_idx_files_from_path_or_environment(tmp_path, monkeypatch):
    arrays = write_idx_directory(tmp_path / "idx", n_train=5003, n_test=7)
    train_images, train_labels = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    by_path = load_dataset(f"mnist[path={tmp_path / 'idx'}]")
    monkeypatch.setenv("CSBENCH_MNIST_DIR", str(tmp_path / "idx"))
    by_env = load_dataset("mnist")
    for dataset in (by_path, by_env):
        assert [dataset.size(w) for w in SPLITS] == [3, 5000, 7]
        assert torch.equal(dataset.split("train"), torch.from_numpy(train_images[:3] / np.float32(255))[:, None])
        assert torch.equal(dataset.split("validation", 2) * 255, torch.from_numpy(train_images[3:5]).float()[:, None])
        assert torch.equal(dataset.labels("validation"), torch.from_numpy(train_labels[3:]).long())
        assert torch.equal(dataset.split("test") * 255, torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float()[:, None])


def test_idx_directory_problems_name_the_file(tmp_path):
    write_idx_directory(tmp_path, n_train=5001, n_test=2)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(CsbenchError, match="t10k-labels-idx1-ubyte"):
        load_dataset(f"mnist[path={tmp_path}]")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))  # 3 labels for 2 images
    with pytest.raises(CsbenchError, match="t10k-labels-idx1-ubyte"):
        read_standard_splits(tmp_path)


# ---- idx reader ------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("array", [
    np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    np.array([-7, 0, 1, 70000], dtype=np.int32),
    np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2),
])
def test_idx_round_trip(tmp_path, array, compress):
    path = tmp_path / "array.idx"
    write_idx(path, array, compress)
    result = read_idx(path)
    assert result.dtype == array.dtype and np.array_equal(result, array)


@pytest.mark.parametrize("content", [b"", b"\x01\x00\x08\x01", b"\x00\x00\x42\x01\x00\x00\x00\x01\x00",
                                     b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", b"\x1f\x8bnot gzip"])
def test_idx_reader_rejects_bad_files(tmp_path, content):
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(CsbenchError, match="bad-idx"):
        read_idx(path)
    with pytest.raises(CsbenchError, match="missing-idx"):
        read_idx(tmp_path / "missing-idx")


# ---- fashion-mnist ---------------------------------------------------------------------

def test_fashion_subset_without_full_files():
    dataset = load_dataset("fashion-mnist")
    assert dataset.size("validation") == dataset.size("test") == 1000
    assert not torch.equal(dataset.split("validation", 10), dataset.split("test", 10))
    assert set(dataset.labels("test").tolist()) == set(range(10))
    for call in (lambda: dataset.split("train"), lambda: dataset.size("train")):
        with pytest.raises(CsbenchError, match="dataset-fashion-mnist.*CSBENCH_FASHION_MNIST_DIR"):
            call()


def test_fashion_reads_full_idx_files_from_environment(tmp_path, monkeypatch):
    arrays = write_idx_directory(tmp_path / "fashion", n_train=5010, n_test=4, seed=1)
    monkeypatch.setenv("CSBENCH_FASHION_MNIST_DIR", str(tmp_path / "fashion"))
    dataset = load_dataset("fashion-mnist")
    assert [dataset.size(w) for w in SPLITS] == [10, 5000, 4]
    assert torch.equal(dataset.split("train") * 255, torch.from_numpy(arrays["train-images-idx3-ubyte"][:10]).float()[:, None])


@pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(),
                    reason=f"full Fashion-MNIST absent: apt-get install {fashion_module.DEBIAN_PACKAGE}")
def test_fashion_shipped_subset_equals_full_files():
    full = load_dataset(f"fashion-mnist[path={DEBIAN_DIR}]")
    subset = load_dataset("fashion-mnist")
    assert [full.size(w) for w in SPLITS] == [55000, 5000, 10000]
    for which in ("validation", "test"):
        assert torch.equal(subset.split(which), full.split(which, 1000))
        assert torch.equal(subset.labels(which), full.labels(which, 1000))


# ---- random-net ------------------------------------------------------------------------

def test_random_relu_generator_weights_have_variance_one_over_output_width():
    generator = RandomReluGenerator((400, 2500), seed=3)
    weight = generator.weights[0]
    assert weight.shape == (2500, 400) and generator.latent_dim == 400
    count = weight.numel()
    # sample variance of 10^6 N(0, 1/2500) draws: relative standard error sqrt(2 / 10^6) = 0.0014
    assert abs(weight.var().item() * 2500 - 1) < 7 * math.sqrt(2 / count)
    assert abs(weight.mean().item()) < 7 / math.sqrt(2500 * count)
    assert not any(p.requires_grad for p in generator.buffers())


def test_random_relu_generator_forward_and_seed():
    generator = RandomReluGenerator((4, 30, 50), seed=0)
    z = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    w1, w2 = generator.weights
    assert torch.allclose(generator(z), torch.relu(torch.relu(z @ w1.T) @ w2.T))
    assert torch.equal(RandomReluGenerator((4, 30, 50), seed=0).weights[1], w2)
    assert not torch.equal(RandomReluGenerator((4, 30, 50), seed=1).weights[1], w2)
    with pytest.raises(CsbenchError):
        RandomReluGenerator((5,))


def test_random_net_dataset_is_g_of_latents_and_deterministic():
    dataset = load_dataset("random-net[k=8,depth=3,width=200,net_seed=2]")
    assert dataset.generator.widths == expansive_widths(8, 3, 200) == (8, 200, 396, 784)
    assert "synthetic" in dataset.provenance
    z = dataset.latents("test", 50)
    x = dataset.split("test", 50)
    assert torch.equal(x, dataset.generator(z).reshape(50, 1, 28, 28))
    assert torch.equal(x, RandomNet(k=8, depth=3, width=200, net_seed=2).split("test", 50))
    assert torch.equal(dataset.latents("test", 5), z[:5])  # prefixes are consistent
    latents = [dataset.latents(w) for w in SPLITS]
    assert not any(torch.equal(a, b) for a in latents[0][:5] for b in latents[2])


def test_random_net_energy_halves_per_layer():
    # E ||relu(W h)||^2 = ||W h||^2 / 2 in expectation, so E ||G(z)||^2 = E ||z||^2 / 2^d = k / 2^d
    dataset = RandomNet(k=10, depth=2)
    energy = dataset.split("train", 2000).flatten(1).pow(2).sum(1).mean().item()
    assert abs(energy / (10 / 4) - 1) < 0.1


# ---- folder ----------------------------------------------------------------------------

def test_folder_mixed_gray_and_rgb_defaults_to_rgb(folder):
    dataset = load_dataset(f"folder:{folder}")
    assert dataset.shape == (3, 64, 64) and len(dataset.files) == 3
    assert [dataset.size(w) for w in SPLITS] == [1, 1, 1]
    images = torch.cat([dataset.split(w) for w in SPLITS])
    assert images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
    colours = sorted(tuple(round(v) for v in (img.mean((1, 2)) * 255).tolist()) for img in images)
    assert colours == [(100, 100, 100), (200, 10, 50), (255, 255, 255)]


def test_folder_options_and_gray_default(tmp_path):
    root = tmp_path / "gray"
    root.mkdir()
    stripes = np.zeros((10, 30), np.uint8)
    stripes[:, 10:20] = 255  # centre third white: the centre square crop is all white
    for i in range(10):
        Image.fromarray(stripes).save(root / f"{i:02d}.png")
    dataset = load_dataset(f"folder:{root}")
    assert dataset.shape == (1, 64, 64)
    assert [dataset.size(w) for w in SPLITS] == [8, 1, 1]
    assert sorted(np.concatenate(list(dataset.indices.values())).tolist()) == list(range(10))
    small = load_dataset(f"folder[size=10,channels=3]:{root}")
    x = small.split("train")
    assert x.shape == (8, 3, 10, 10) and torch.allclose(x, torch.ones_like(x))


def test_folder_without_usable_images_raises(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CsbenchError, match="no PNG/JPEG"):
        load_dataset(f"folder:{empty}")
    (empty / "broken.png").write_bytes(b"not a png")
    with pytest.raises(CsbenchError, match="broken.png"):
        load_dataset(f"folder:{empty}")
    with pytest.raises(CsbenchError):
        load_dataset(f"folder[channels=2]:{empty}")
