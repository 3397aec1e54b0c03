"""MNIST and CIFAR-10 read from their original file formats; clear errors when absent."""
import pickle

import pytest
import torch

from t2i.data.base import DatasetNotFoundError
from t2i.data.vision import CIFAR10DataModule, MNISTDataModule
from tests.fixtures import cifar10, mnist


def test_mnist_reads_idx_files_and_pads_to_32(tmp_path):
    mnist.write(tmp_path)
    dm = MNISTDataModule(root=tmp_path, val_size=50, batch_size=16)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (250, 50, 100)
    item = dm.train_set[0]
    assert item["image"].shape == (1, 32, 32)
    # 28x28 digits padded by 2 black pixels on each side
    assert torch.all(item["image"][:, :2] == -1) and torch.all(item["image"][:, :, -2:] == -1)
    # the fixture's label k is a bar at columns 2+2k..4+2k (+2 padding): labels match pixels
    col = int(item["image"][0, 16].argmax()) - 2
    assert (col - 2) // 2 == int(item["label"])
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (16, 1, 32, 32) and batch["targets"].shape == (16, 1)


def test_mnist_resize_to_64(tmp_path):
    mnist.write(tmp_path)
    dm = MNISTDataModule(root=tmp_path, val_size=10, image_size=64, resize=True)
    dm.setup()
    assert dm.train_set[0]["image"].shape == (1, 64, 64)


def test_cifar_reads_python_batches(tmp_path):
    cifar10.write(tmp_path, per_batch=20)
    dm = CIFAR10DataModule(root=tmp_path, val_size=10)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (90, 10, 20)
    item = dm.test_set[3]
    assert item["image"].shape == (3, 32, 32) and 0 <= int(item["label"]) < 10


def test_cifar_pixel_order_is_channel_first(tmp_path):
    """A row of the real format is 1024 red, then 1024 green, then 1024 blue values."""

    cifar10.write(tmp_path, per_batch=4)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    entry = pickle.load(open(path, "rb"), encoding="latin1")
    entry["data"][0] = 0
    entry["data"][0][:1024] = 255  # a pure red image
    pickle.dump(entry, open(path, "wb"), protocol=2)
    dm = CIFAR10DataModule(root=tmp_path, val_size=4)
    dm.setup()
    image = dm.test_set[0]["image"]
    assert torch.all(image[0] == 1) and torch.all(image[1:] == -1)


@pytest.mark.parametrize("module, expected", [(MNISTDataModule, "train-images-idx3-ubyte"),
                                              (CIFAR10DataModule, "data_batch_1")])
def test_missing_dataset_names_files_and_fix(tmp_path, module, expected):
    with pytest.raises(DatasetNotFoundError) as err:
        module(root=tmp_path / "nowhere").setup()
    message = str(err.value)
    assert expected in message and "download=true" in message and "data.root" in message


def test_corrupt_mnist_file_is_reported(tmp_path):
    mnist.write(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(DatasetNotFoundError, match="unreadable"):
        MNISTDataModule(root=tmp_path, val_size=10).setup()


def test_val_size_checked(tmp_path):
    mnist.write(tmp_path)
    with pytest.raises(ValueError, match="val_size"):
        MNISTDataModule(root=tmp_path, val_size=10_000).setup()
