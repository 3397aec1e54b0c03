"""colour_accuracy: the HSV rule on solid colours, which captions count, the three numbers."""
import torch

from t2i.evaluation.colour import COLOURS, accuracy, caption_colour, colour_metrics, dominant_colours
from t2i.evaluation.pictures import colour_grouped_items

RGB = {"red": (0.9, 0.1, 0.1), "orange": (1.0, 0.55, 0.0), "yellow": (0.95, 0.9, 0.1), "green": (0.1, 0.7, 0.2),
       "blue": (0.1, 0.2, 0.9), "purple": (0.5, 0.1, 0.8), "pink": (1.0, 0.6, 0.75), "white": (0.97, 0.97, 0.95),
       "black": (0.05, 0.05, 0.05), "brown": (0.4, 0.22, 0.05)}


def solid(rgb, side: int = 16) -> torch.Tensor:
    return torch.tensor(rgb).view(3, 1, 1).expand(3, side, side) * 2 - 1


def test_solid_colour_images_get_their_colour():
    assert set(RGB) == set(COLOURS)
    images = torch.stack([solid(v) for v in RGB.values()])
    assert dominant_colours(images) == list(RGB)
    assert dominant_colours(solid((0.5, 0.5, 0.5))[None]) == [None]  # grey: no colour


def test_the_centre_decides():
    image = solid(RGB["green"], 32).clone()
    image[:, 10:22, 10:22] = solid(RGB["yellow"], 12)  # a yellow flower on leaves
    assert dominant_colours(image[None]) == ["yellow"]


def test_captions_naming_zero_or_two_colours_are_left_out():
    assert caption_colour("this flower has bright Yellow petals.") == "yellow"
    assert caption_colour("a red, red flower") == "red"  # one colour named twice
    assert caption_colour("petals that are long and thin") is None
    assert caption_colour("yellow petals and a green stem") is None
    assert caption_colour("yellowish petals") is None  # whole words only
    seen = ["yellow", "red", "green"]
    assert accuracy(seen, ["a yellow flower", "red and white petals", "green leaves"]) == (1.0, 2)
    assert accuracy(seen, ["a blue flower", "no colour here", "green leaves"]) == (0.5, 2)


def test_ceiling_and_floor():
    names = ["red", "yellow", "blue", "white"] * 5
    real = torch.stack([solid(RGB[n]) for n in names])
    captions = [f"a {n} flower" for n in names] + ["a flower with long petals"]
    real = torch.cat([real, solid(RGB["pink"])[None]])
    shuffled = torch.roll(torch.arange(len(captions)), 1)
    out = colour_metrics(real, real, captions, shuffled)
    assert out["colour_accuracy"] == out["colour_accuracy_real"] == 1.0
    assert out["colour_captions"] == 20 and "20 of 21 captions" in out["colour_protocol"]
    assert out["colour_accuracy_shuffled"] == 0.0  # every neighbour has another colour


def test_captions_picture_groups_rows_by_colour_word():
    words = ["red", "yellow", "blue", "pink"]
    dataset = [{"caption": f"flower {i} is {words[i % 4]}" if i % 5 else f"flower {i} has long petals",
                "image": torch.zeros(3, 8, 8)} for i in range(40)]
    items = colour_grouped_items(dataset, 8)
    named = [caption_colour(it["caption"]) for it in items]
    assert len(items) == 8 and None not in named
    assert [named[i] == named[i + 1] for i in range(0, 8, 2)] == [True] * 4  # two rows per colour, together
    few = colour_grouped_items(dataset[:3], 3)  # too few colour captions: topped up with the others
    assert len(few) == 3 and len({it["caption"] for it in few}) == 3
    by_class = [{"caption": f"flower {i} is {'red' if i < 50 else 'yellow'}", "image": torch.zeros(3, 8, 8)}
                for i in range(100)]  # a split sorted by class: the scan must reach the second class
    assert {caption_colour(it["caption"]) for it in colour_grouped_items(by_class, 4, scan=10)} == {"red", "yellow"}
