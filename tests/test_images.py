"""t2i.images: the one set of [-1, 1] <-> uint8 / [0, 1] conversions every picture and metric uses."""
import torch

from t2i.images import from_uint8, grid, to_pil, to_uint8, to_unit


def test_uint8_round_trip_is_exact_and_out_of_range_values_clamp():
    every = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(to_uint8(from_uint8(every.clone())), every)
    assert to_uint8(torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0])).tolist() == [0, 0, 128, 255, 255]
    assert to_unit(torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0])).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_pil_and_grid_keep_the_pixels():
    grey = torch.linspace(-1, 1, 16).view(1, 1, 4, 4)
    assert to_pil(grey[0]).mode == "L" and to_pil(grey[0].expand(3, -1, -1)).mode == "RGB"
    assert list(to_pil(grey[0]).getdata()) == to_uint8(grey).flatten().tolist()
    sheet = grid(torch.cat([grey, -grey]), nrow=2)  # 2 images side by side, 2 px padding of grey 0.5
    assert sheet.shape == (3, 8, 14)
    assert torch.allclose(sheet[0, 2:6, 2:6], to_unit(grey[0, 0])) and sheet[0, 0, 0] == 0.5
