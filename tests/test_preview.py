"""Tests for contact sheets (skyseg_tf.data.preview)."""

import sys

import matplotlib
import numpy as np
import pytest
from PIL import Image

from skyseg_tf.data.preview import contact_sheet
from skyseg_tf.data.synthetic import synthetic_sky


def _element(sky_rows, name="x.png", size=(20, 30)):
    image = np.full(size + (3,), 128, np.uint8)
    mask = np.zeros(size + (1,), np.uint8)
    mask[:sky_rows] = 1
    return {"image": image, "segmentation_mask": mask, "file_name": name.encode(),
            "sky_fraction": np.float32(mask.mean())}


def _magenta_share(png):
    pixels = np.asarray(Image.open(png).convert("RGB"), np.int32)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return ((r - g > 40) & (b - g > 40)).mean()


def test_sheet_of_a_dataset_is_a_png_of_the_expected_size(tmp_path):
    backend = matplotlib.get_backend()
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    out = contact_sheet(synthetic_sky(5, (48, 64)), tmp_path / "sub" / "sheet.png", num=5,
                        columns=3, panel_inches=1.0, dpi=50)
    assert out == tmp_path / "sub" / "sheet.png"
    with Image.open(out) as sheet:
        assert sheet.format == "PNG"
        width, height = sheet.size
    assert abs(width - 3 * 50) <= 2  # 3 panels of 1 inch at 50 dpi
    assert abs(height - 2.61 * 50) <= 3  # 2 rows of panel + caption, a top margin
    assert _magenta_share(out) > 0.02  # the sky overlay is drawn
    assert matplotlib.get_backend() == backend  # nothing global changed
    assert ("matplotlib.pyplot" in sys.modules) == pyplot_loaded


def test_pair_layout_doubles_the_width_and_shows_a_white_mask(tmp_path):
    elements = [_element(10, f"e{i}.png") for i in range(3)]
    overlay = contact_sheet(elements, tmp_path / "overlay.png", columns=3, dpi=40)
    pair = contact_sheet(elements, tmp_path / "pair.png", columns=3, dpi=40, layout="pair")
    assert Image.open(pair).size[0] == pytest.approx(2 * Image.open(overlay).size[0], abs=2)
    assert _magenta_share(pair) == 0  # no tint in the pair layout
    assert (np.asarray(Image.open(pair).convert("L")) == 255).mean() > 0.1


def test_tuples_float_images_batches_and_num(tmp_path):
    image = np.full((2, 16, 16, 3), 0.5, np.float32)  # a batch of [0, 1] images
    mask = np.zeros((2, 16, 16, 1), np.float32)
    mask[:, :8] = 1.0
    out = contact_sheet([(image, mask), (image, mask)], tmp_path / "t.png", num=3, columns=3,
                        panel_inches=1.0, dpi=40)
    assert Image.open(out).size[0] == pytest.approx(3 * 40, abs=2)  # 3 of the 4 elements
    out = contact_sheet(synthetic_sky(4, (32, 32)).batch(2), tmp_path / "b.png", num=4,
                        columns=4, panel_inches=1.0, dpi=40)
    assert Image.open(out).size[0] == pytest.approx(4 * 40, abs=2)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"source": []}, ValueError, "yielded no elements"),
        ({"out_path": "sheet.gif"}, ValueError, "out_path: received .*sheet.gif.*'.png'"),
        ({"layout": "grid"}, ValueError, "layout: received 'grid'"),
        ({"num": 0}, ValueError, "num: received 0"),
        ({"overlay_color": (300, 0, 0)}, ValueError, "overlay_color: received"),
        ({"source": [np.zeros((4, 4, 3))]}, TypeError, "elements must be dicts"),
        ({"source": {"image": np.zeros((4, 4, 3))}}, TypeError, "source: received dict"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, match):
    arguments = {"source": [_element(5)], "out_path": tmp_path / "s.png", **kwargs}
    if not str(arguments["out_path"]).startswith(str(tmp_path)):
        arguments["out_path"] = tmp_path / arguments["out_path"]
    with pytest.raises(error, match=match):
        contact_sheet(**arguments)
