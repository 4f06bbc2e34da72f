"""Sky from below end to end: a model on a fisheye photo or a panorama, its sky view factor,
the polar plot, and `skyseg predict --lens`."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from skyseg_tf.hemisphere import FisheyeLens, ImageCircle, circle_mask, polar_angles, polar_plot, predict_hemisphere


def brightness(batch):
    """A stand-in model: sky probability = brightness."""
    return batch[..., :1] / 255.0


def _fisheye_photo(zenith_limit_degrees, lens=FisheyeLens(), size=400, radius=180):
    """Sky (white) up to a zenith angle, buildings (grey) beyond it, black outside the circle."""
    circle = ImageCircle(size / 2 + 7, size / 2 - 5, radius)
    zenith, _ = polar_angles((size, size), circle, lens)
    photo = np.zeros((size, size, 3), np.uint8)
    inside = ~np.isnan(zenith)
    photo[inside] = 70
    photo[inside & (zenith < np.radians(zenith_limit_degrees))] = 250
    return photo, circle


@pytest.mark.parametrize("projection", ["equidistant", "equisolid"])
def test_fisheye_photo_svf_matches_the_analytic_value_with_a_found_circle(projection):
    lens = FisheyeLens(projection, 180)
    photo, circle = _fisheye_photo(50, lens)
    result = predict_hemisphere(brightness, photo, fisheye_lens=lens)
    assert result.circle.radius == pytest.approx(circle.radius, abs=2)
    assert result.figures["svf"] == pytest.approx(np.sin(np.radians(50)) ** 2, abs=0.01)
    assert result.figures["canopy_openness"] == pytest.approx(1 - np.cos(np.radians(50)), abs=0.01)
    # Nothing outside the circle is sky, whatever the model says there.
    outside = ~circle_mask(photo.shape, result.circle)
    assert result.probability[outside].max() == 0 and result.probability.max() > 0.9


def test_a_given_circle_is_used_as_it_is():
    photo, circle = _fisheye_photo(40)
    result = predict_hemisphere(brightness, photo, circle=(circle.cx, circle.cy, circle.radius))
    assert result.circle == circle
    assert result.figures["svf"] == pytest.approx(np.sin(np.radians(40)) ** 2, abs=0.01)


def test_panorama_svf_is_cos_squared_of_the_skyline_elevation():
    height = 256
    panorama = np.full((height, 2 * height, 3), 60, np.uint8)
    elevation = 30.0
    rows = int(round((90 - elevation) / 180 * height))
    panorama[:rows] = 245
    result = predict_hemisphere(brightness, panorama, lens="panorama", fisheye_size=512, view_size=128)
    assert result.probability.shape == (height, 2 * height)
    assert result.figures["svf"] == pytest.approx(np.cos(np.radians(elevation)) ** 2, abs=0.015)


def test_bad_options_name_the_argument():
    photo, _ = _fisheye_photo(40)
    with pytest.raises(ValueError, match="lens"):
        predict_hemisphere(brightness, photo, lens="photo")
    with pytest.raises(ValueError, match="circle"):
        predict_hemisphere(brightness, np.zeros((64, 128, 3), np.uint8), lens="panorama", circle=(1, 2, 3))
    with pytest.raises(ValueError, match="panorama"):
        predict_hemisphere(brightness, photo, lens="panorama")


def test_polar_plot_shows_sky_inside_the_circle_only():
    photo, circle = _fisheye_photo(45)
    result = predict_hemisphere(brightness, photo, circle=circle)
    plot = polar_plot(result.fisheye, result.circle, result.lens, size=256)
    assert plot.shape == (256, 256, 3)
    centre = plot[115, 135]  # between the rings and spokes near the zenith
    assert tuple(centre) == (150, 205, 250)  # sky colour at the zenith
    assert tuple(plot[2, 2]) == (255, 255, 255)  # outside


def test_cli_predict_lens_fisheye_writes_polar_plot_and_svf_records(tiny_model_path, tmp_path):
    from skyseg_tf.cli import main

    photo, _ = _fisheye_photo(45, size=160, radius=70)
    Image.fromarray(photo).save(tmp_path / "up.png")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "up.png"), "--model", str(tiny_model_path),
                                       "--lens", "fisheye", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert Image.open(out / "up_polar.png").size == (512, 512)
    record = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert len(record["gap_fraction_by_ring"]) == 9
    # The record's SVF is the written mask's, measured on the recorded circle.
    from skyseg_tf.hemisphere import hemisphere_figures

    written = np.asarray(Image.open(out / "up_mask.png")) > 127
    circle = ImageCircle.from_dict(record["circle"])
    expected = hemisphere_figures(written, circle, FisheyeLens(), rings=int(min(90, circle.radius // 3)))
    assert record["svf"] == pytest.approx(expected["svf"], abs=1e-9)
    assert record["circle"]["radius"] == pytest.approx(70, abs=2)
    header = (out / "predictions.csv").read_text().splitlines()[0].split(",")
    assert "svf" in header and "canopy_openness" in header
    mask = np.asarray(Image.open(out / "up_mask.png"))
    assert mask[0, 0] == 0 and mask[-1, -1] == 0  # outside the circle: never sky


def test_cli_lens_mistakes_are_one_line(tiny_model_path, tmp_path):
    from skyseg_tf.cli import main

    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "p.png")
    common = ["predict", str(tmp_path / "p.png"), "--model", str(tiny_model_path), "--out", str(tmp_path / "o")]
    bad_circle = CliRunner().invoke(main, common + ["--lens", "fisheye", "--circle", "1,2"])
    assert bad_circle.exit_code == 2 and "--circle" in bad_circle.output and "Traceback" not in bad_circle.output
    stray_circle = CliRunner().invoke(main, common + ["--circle", "1,2,3"])
    assert stray_circle.exit_code == 2 and "--lens fisheye" in stray_circle.output
    not_a_panorama = CliRunner().invoke(main, common + ["--lens", "panorama"])
    assert not_a_panorama.exit_code == 1 and "2:1" in not_a_panorama.output.replace("2 : 1", "2:1") or \
        "panorama" in not_a_panorama.output


def test_a_photo_without_the_whole_hemisphere_gets_its_mask_but_no_svf():
    photo, circle = _fisheye_photo(40, size=300, radius=140)
    cropped = photo[40:260]  # the circle runs past the top and bottom of the frame
    result = predict_hemisphere(brightness, cropped, circle=(circle.cx, circle.cy - 40, circle.radius))
    assert result.probability.shape == cropped.shape[:2] and result.probability.max() > 0.9
    assert result.figures["svf"] is None and "hemisphere" in result.figures["note"]
    assert result.polar_plot(cropped).shape == (512, 512, 3)
    narrow = predict_hemisphere(brightness, photo, circle=circle, fisheye_lens=FisheyeLens("equidistant", 150))
    assert narrow.figures["svf"] is None


def test_panorama_takes_predict_image_options_with_the_same_names():
    """predict_paths passes predict_image's options (tile overlap in pixels among them) to panoramas."""
    panorama = np.full((64, 128, 3), 60, np.uint8)
    panorama[:24] = 245
    result = predict_hemisphere(brightness, panorama, lens="panorama", fisheye_size=128, view_size=32,
                                overlap=64, tile_size=512, mode="auto")
    assert result.figures["svf"] > 0.5
