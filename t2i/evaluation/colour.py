"""`colour_accuracy`: does an image show the colour its caption names? No learned network,
so a person can check every decision by eye.

A caption counts when it names exactly one colour of COLOURS (as a whole word: "yellow",
not "yellowish"); captions naming none or two or more are left out, and how many counted
is reported (`colour_captions`). An image's dominant colour is read from the centre
square (CENTRE of the side: where a flower or a bird usually is) in HSV:

- value < DARK (0.2): black; saturation < GREY_SAT (0.15): white when value > LIGHT (0.65),
  else no colour (grey);
- brown: hue 10-45 degrees (orange/red) with value < BROWN_VALUE (0.5);
- pink: hue 315-360 or 0-15 with saturation < PINK_SAT (0.55: light reds and magentas);
- else by hue: red 345-15, orange 15-40, yellow 40-70, green 70-160, blue 160-235,
  purple 235-315, pink 315-345.

Each pixel votes for one colour; green votes count GREEN_WEIGHT (0.25: leaves and stems fill
the background of most flower photos, the petals are what captions name); the colour with
most votes is the image's. The same rule scores real test images (the ceiling), generated
images (`colour_accuracy`) and generated images against shuffled captions (the floor).
The thresholds were chosen on Oxford-102's train split (scripts/colour_calibration.py,
docs/evaluation.md)."""
from __future__ import annotations

import re

import torch

from t2i.images import centre_square, to_unit

COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "white", "black", "brown")
CENTRE = 0.5        # side of the centre square, as a fraction of the image side
DARK = 0.2          # value below: black
LIGHT = 0.65        # value above (with low saturation): white
GREY_SAT = 0.15     # saturation below: white, black or grey, not a hue (pale petals keep their hue)
BROWN_VALUE = 0.5   # orange/red hues darker than this: brown
PINK_SAT = 0.55     # red/magenta hues paler than this: pink
GREEN_WEIGHT = 0.25  # a green pixel's vote
BLUE_END = 235      # hue (degrees) where blue gives way to purple
PURPLE_END = 315    # hue (degrees) where purple gives way to pink


def hues() -> tuple[tuple[float, str], ...]:
    """(upper bound in degrees, colour), in order."""
    return ((15, "red"), (40, "orange"), (70, "yellow"), (160, "green"), (BLUE_END, "blue"), (PURPLE_END, "purple"),
            (345, "pink"), (360, "red"))
WORD = re.compile(r"[a-z]+")


def caption_colour(caption: str) -> str | None:
    """The one colour of COLOURS the caption names, or None (none or several)."""
    named = {w for w in WORD.findall(caption.lower()) if w in COLOURS}
    return named.pop() if len(named) == 1 else None


def hsv(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RGB in [-1, 1] (N, 3, H, W) -> hue in degrees [0, 360), saturation, value in [0, 1]."""
    rgb = to_unit(images)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    value, arg = rgb.max(1)
    chroma = value - rgb.min(1).values
    safe = chroma.clamp_min(1e-6)
    hue = torch.where(arg == 0, ((g - b) / safe) % 6, torch.where(arg == 1, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = torch.where(chroma > 0, hue * 60, torch.zeros_like(hue)) % 360
    saturation = torch.where(value > 0, chroma / value.clamp_min(1e-6), torch.zeros_like(value))
    return hue, saturation, value


def pixel_colours(images: torch.Tensor) -> torch.Tensor:
    """Each pixel's colour index into COLOURS, -1 for grey (N, H, W)."""
    hue, sat, val = hsv(images)
    out = torch.full(hue.shape, -1, dtype=torch.long)
    lower = 0.0
    for upper, name in hues():
        out[(hue >= lower) & (hue < upper)] = COLOURS.index(name)
        lower = upper
    reddish = (hue < 15) | (hue >= PURPLE_END)
    out[reddish & (sat < PINK_SAT)] = COLOURS.index("pink")
    out[(hue >= 10) & (hue < 45) & (val < BROWN_VALUE)] = COLOURS.index("brown")
    grey = sat < GREY_SAT
    out[grey] = -1
    out[grey & (val > LIGHT)] = COLOURS.index("white")
    out[val < DARK] = COLOURS.index("black")
    return out


def dominant_colours(images: torch.Tensor, batch_size: int = 500) -> list[str | None]:
    """Each image's dominant colour in its centre square (None when it is all grey)."""
    weights = torch.ones(len(COLOURS))
    weights[COLOURS.index("green")] = GREEN_WEIGHT
    names: list[str | None] = []
    for s in range(0, len(images), batch_size):
        part = images[s:s + batch_size]
        colours = pixel_colours(centre_square(part, CENTRE)).flatten(1)
        votes = torch.zeros(len(part), len(COLOURS) + 1).scatter_add_(1, colours + 1, torch.ones_like(colours,
                                                                                                  dtype=torch.float))
        votes = votes[:, 1:] * weights
        best = votes.argmax(1)
        names += [COLOURS[int(i)] if float(v) > 0 else None for i, v in zip(best, votes.max(1).values)]
    return names


def accuracy(image_colours: list[str | None], captions: list[str]) -> tuple[float | None, int]:
    """Fraction of the captions naming one colour whose image shows it, and how many there are."""
    pairs = [(seen, named) for seen, named in zip(image_colours, (caption_colour(c) for c in captions)) if named]
    return (sum(seen == named for seen, named in pairs) / len(pairs) if pairs else None), len(pairs)


PROTOCOL = (f"dominant HSV colour of the centre {CENTRE:.0%} square vs the one colour a caption names "
            f"({', '.join(COLOURS)}; captions naming 0 or 2+ are left out), t2i.evaluation.colour")


def colour_metrics(fake: torch.Tensor, real: torch.Tensor, captions: list[str], shuffled: torch.Tensor) -> dict:
    """colour_accuracy of generated images, of the real images (ceiling) and of generated
    images against the captions `shuffled` (a derangement: image i gets caption shuffled[i])."""
    fake_colours = dominant_colours(fake)
    ours, covered = accuracy(fake_colours, captions)
    ceiling, _ = accuracy(dominant_colours(real), captions)
    floor, _ = accuracy(fake_colours, [captions[int(j)] for j in shuffled])
    return {"colour_accuracy": ours, "colour_accuracy_real": ceiling, "colour_accuracy_shuffled": floor,
            "colour_captions": covered, "colour_protocol": f"{PROTOCOL} | {covered} of {len(captions)} captions"}
