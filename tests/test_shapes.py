import numpy as np
import pytest
import torch

from t2i.data.synthetic.shapes import QUADRANTS, ShapesDataModule


def test_shapes_are_deterministic_and_captioned():
    a, b = ShapesDataModule(splits=(50, 10, 10), seed=3), ShapesDataModule(splits=(50, 10, 10), seed=3)
    a.setup(), b.setup()
    assert torch.equal(a.train_set.images, b.train_set.images)
    assert a.train_set.fields["caption"] == b.train_set.fields["caption"]
    c = ShapesDataModule(splits=(50, 10, 10), seed=4)
    c.setup()
    assert not torch.equal(a.train_set.images, c.train_set.images)
    item = a.train_set[0]
    assert item["image"].shape == (1, 64, 64) and item["image"].min() == -1 and item["image"].max() == 1
    words = item["caption"].split()
    assert words[0] == "a" and words[1] in ("small", "large") and words[3] in ("circle", "square")


def test_attributes_match_pixels():
    dm = ShapesDataModule(splits=(200, 10, 10), image_size=64, fill="filled")
    dm.setup()
    imgs = dm.train_set.images.numpy()[:, 0] / 255.0  # coverage per pixel
    attrs = dm.train_set.fields["attributes"].numpy()
    ys, xs = np.mgrid[0:64, 0:64] + 0.5
    for img, (shape, half, cx, cy, filled) in zip(imgs[:50], attrs[:50]):
        # the centre of mass of a filled shape is its centre
        assert abs((xs * img).sum() / img.sum() / 64 - cx) < 0.02
        assert abs((ys * img).sum() / img.sum() / 64 - cy) < 0.02
        area = img.sum() / 64 ** 2
        expected = (4 if shape == 1 else np.pi) * half ** 2
        assert abs(area - expected) / expected < 0.2


@pytest.mark.parametrize("position", ["fixed", "quadrant", "circle_fixed_square_quadrant"])
def test_positions(position):
    dm = ShapesDataModule(splits=(100, 10, 10), position=position, quadrant="bottom right")
    dm.setup()
    targets = dm.train_set.fields["targets"].numpy()
    captions = dm.train_set.fields["caption"]
    if position == "fixed":
        assert (targets[:, 3] == 4).all() and all(c.endswith("in the centre") for c in captions)
    elif position == "quadrant":
        assert (targets[:, 3] == QUADRANTS.index("bottom right")).all()
    else:
        assert ((targets[:, 0] == 0) == (targets[:, 3] == 4)).all()


@pytest.mark.parametrize("kw, message", [
    ({"image_size": 48}, "image_size"), ({"position": "left"}, "position"), ({"shape": "triangle"}, "triangle"),
    ({"splits": (10, 0, 1)}, "splits"), ({"batch_size": 0}, "batch_size"), ({"channels": 3}, "channels"),
])
def test_bad_config_values_fail_fast(kw, message):
    with pytest.raises(ValueError, match=message):
        ShapesDataModule(**kw)
