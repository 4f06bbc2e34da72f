"""Prediction of files: per-photo records, alpha/rgba mattes, resume without overwrite, patterns,
overlapped reading and writing, draft decoding of large JPEGs."""

import csv
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402

from skyseg_tf.inference import predict_image, predict_paths  # noqa: E402
from skyseg_tf.inference.facts import sky_facts, sky_skyline  # noqa: E402
from skyseg_tf.inference.files import RECORD_COLUMNS, collect_inputs  # noqa: E402
from skyseg_tf.preprocessing import Preprocessing, attach  # noqa: E402


def blue_sky_model(short_side=None):
    """Pointwise stub: sky probability = blue minus red, scaled (blue sky above, warm ground below)."""
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(lambda x: keras.ops.clip((x[..., 2:3] - x[..., :1]) / 128.0 + 0.5, 0.0, 1.0))(inputs)
    model = keras.Model(inputs, outputs, name="blue_sky")
    if short_side:
        attach(model, Preprocessing("short_side", (short_side, short_side)))
    return model


def scene(height, width, horizon, seed=0):
    """A photo with blue sky above a jagged horizon and brown ground below, plus noise."""
    rng = np.random.default_rng(seed)
    rows = np.arange(height)[:, None]
    line = horizon + (np.sin(np.arange(width) / 7.0) * 4).astype(int)
    sky = rows < line[None, :]
    image = np.where(sky[..., None], np.array([70, 130, 230]), np.array([120, 80, 40])).astype(np.int16)
    image += rng.integers(-10, 11, image.shape, dtype=np.int16)
    return np.clip(image, 0, 255).astype(np.uint8), sky


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, (height, width) in enumerate([(60, 80), (90, 70), (64, 64)]):
        Image.fromarray(scene(height, width, height // 2, index)[0]).save(folder / f"p{index}.png")
    return folder


def test_sky_facts_by_hand():
    probability = np.array([[0.9, 0.9, 0.1], [0.8, 0.2, 0.1], [0.1, 0.6, 0.1]], np.float32)
    facts = sky_facts(probability, threshold=0.5, has_sky_fraction=0.5)
    assert facts["sky_fraction"] == round(4 / 9, 4)
    assert facts["has_sky"] is False  # 0.44 < 0.5
    assert facts["skyline"] == [2, 1, 0]  # column 1: rows 0 sky, 1 not; column 2: top not sky
    assert (facts["skyline_min"], facts["skyline_max"]) == (0, 2)
    assert facts["mean_confidence"] == round(float(np.mean(np.maximum(probability, 1 - probability))), 4)
    assert sky_facts(np.zeros((2, 2), np.float32))["has_sky"] is False
    assert sky_skyline(np.ones((3, 2), bool)).tolist() == [3, 3]
    with pytest.raises(ValueError, match="threshold"):
        sky_facts(probability, threshold=1.5)


def test_records_alpha_and_rgba(photos, tmp_path):
    out = tmp_path / "out"
    summary = predict_paths(blue_sky_model(32), photos, out, save=("mask", "alpha", "rgba"), progress=False)
    assert summary.ok and len(summary.succeeded) == 3
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert sorted(r["path"] for r in lines) == sorted(str(p) for p in photos.iterdir())
    for record in lines:
        photo = np.asarray(Image.open(record["path"]))
        height, width = photo.shape[:2]
        assert (record["height"], record["width"]) == (height, width)
        assert len(record["skyline"]) == width
        # The horizon of the scene is at height // 2 +- 4: the skyline follows it.
        assert abs(np.median(record["skyline"]) - height // 2) <= 5
        assert 0.3 < record["sky_fraction"] < 0.7 and record["has_sky"] is True
        assert record["mean_confidence"] > 0.8 and record["seconds"] > 0
        stem = out / record["path"].rsplit("/", 1)[1].rsplit(".", 1)[0]
        alpha = np.asarray(Image.open(f"{stem}_alpha.png"))
        rgba = np.asarray(Image.open(f"{stem}_rgba.png"))
        mask = np.asarray(Image.open(f"{stem}_mask.png"))
        assert alpha.shape == (height, width) and rgba.shape == (height, width, 4)
        np.testing.assert_array_equal(rgba[..., :3], photo)
        np.testing.assert_array_equal(rgba[..., 3], 255 - alpha)  # sky transparent
        assert alpha[mask == 255].mean() > 200 and alpha[mask == 0].mean() < 55
    with open(out / "predictions.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert tuple(rows[0]) == RECORD_COLUMNS and len(rows) == 3
    assert {row["path"]: row["sky_fraction"] for row in rows} == {
        r["path"]: str(r["sky_fraction"]) for r in lines}


def test_existing_outputs_are_kept_unless_overwrite(photos, tmp_path):
    out = tmp_path / "out"
    model = blue_sky_model(32)
    predict_paths(model, photos, out, save=("mask",), progress=False)
    mask = out / "p0_mask.png"
    mask.write_bytes(b"kept")  # a result the user has: never overwritten silently
    (out / "p1_mask.png").unlink()  # as if a run stopped before p1
    again = predict_paths(model, photos, out, save=("mask",), progress=False)
    assert [p.name for p in again.succeeded] == ["p1.png"] and len(again.existing) == 2
    assert mask.read_bytes() == b"kept" and "--overwrite" in str(again)
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3  # one per photo: p1's old one dropped
    forced = predict_paths(model, photos, out, save=("mask",), progress=False, overwrite=True)
    assert len(forced.succeeded) == 3 and mask.read_bytes()[:4] == b"\x89PNG"
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3  # a new run's records
    assert len((out / "predictions.csv").read_text().splitlines()) == 1 + 3
    assert not list(out.glob(".*partial"))


def test_patterns_and_a_bad_photo_among_good_ones(photos, tmp_path):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    summary = predict_paths(blue_sky_model(32), str(photos / "*.png"), tmp_path / "a", save=("mask",),
                            progress=False)
    assert len(summary.succeeded) == 3 and not summary.failed
    summary = predict_paths(blue_sky_model(32), photos, tmp_path / "b", save=("mask",), progress=False)
    assert [p.name for p, _ in summary.failed] == ["broken.jpg"] and len(summary.succeeded) == 3
    assert "broken.jpg" in summary.failed[0][1]
    with pytest.raises(FileNotFoundError, match="matches no file"):
        collect_inputs(str(photos / "*.tif"))


def test_overlapped_run_writes_what_the_serial_run_writes(photos, tmp_path):
    model = blue_sky_model(32)
    save = ("mask", "probability", "overlay", "alpha")
    serial = predict_paths(model, photos, tmp_path / "serial", save=save, progress=False, workers=0)
    overlapped = predict_paths(model, photos, tmp_path / "overlapped", save=save, progress=False, workers=2)
    assert sorted(p.name for p in serial.written) == sorted(p.name for p in overlapped.written)
    for path in serial.written:
        assert path.read_bytes() == (tmp_path / "overlapped" / path.name).read_bytes(), path.name


def test_draft_decoding_of_a_large_jpeg_keeps_the_mask(tmp_path):
    image, sky = scene(1200, 1600, 500)
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(image).save(folder / "big.jpg", quality=92)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: displayed 1200 wide, 1600 high
    Image.fromarray(image).save(folder / "rotated.jpg", quality=92, exif=exif)
    model = blue_sky_model(64)
    full = predict_paths(model, folder, tmp_path / "full", save=("mask",), progress=False, draft=False)
    fast = predict_paths(model, folder, tmp_path / "fast", save=("mask",), progress=False, draft=True)
    assert fast.records[0]["width"] in (1200, 1600)
    assert full.ok and fast.ok
    for name, shape in (("big", (1200, 1600)), ("rotated", (1600, 1200))):
        reference = np.asarray(Image.open(tmp_path / "full" / f"{name}_mask.png")) > 0
        drafted = np.asarray(Image.open(tmp_path / "fast" / f"{name}_mask.png")) > 0
        assert reference.shape == drafted.shape == shape
        iou = np.logical_and(reference, drafted).sum() / np.logical_or(reference, drafted).sum()
        assert iou >= 0.999, (name, iou)
    reference = np.asarray(Image.open(tmp_path / "full" / "big_mask.png")) > 0
    assert np.logical_and(reference, sky).sum() / np.logical_or(reference, sky).sum() > 0.97


def test_output_size_needs_resize_mode_without_refinement():
    model = blue_sky_model(16)
    image = scene(40, 60, 20)[0]
    assert predict_image(model, image, output_size=(80, 120)).shape == (80, 120)
    with pytest.raises(ValueError, match="output_size"):
        predict_image(model, image, output_size=(80, 120), refine="guided")


def test_cli_predict_alpha_pattern_and_resume(photos, tmp_path):
    from skyseg_tf.cli import main

    import skyseg_tf

    path = tmp_path / "model.keras"
    skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None).save(path)
    out = tmp_path / "out"
    arguments = ["predict", str(photos / "p*.png"), "--model", str(path), "--out", str(out),
                 "--save", "mask,alpha", "--no-optimize"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert (out / "p0_alpha.png").exists() and (out / "predictions.csv").exists()
    again = CliRunner().invoke(main, arguments)
    assert again.exit_code == 0 and "3 image(s) already had their outputs" in again.output
    missing = CliRunner().invoke(main, ["predict", str(photos / "*.tif"), "--model", str(path), "--out", str(out)])
    assert missing.exit_code != 0 and "matches no file" in missing.output


def test_patterns_keep_sub_folders_and_clashing_names_are_refused(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / "shots" / folder).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "shots" / folder / "x.jpg")
    items, _ = collect_inputs(str(tmp_path / "shots" / "**" / "*.jpg"), recursive=True)
    assert sorted(stem.as_posix() for _, stem in items) == ["a/x", "b/x"]
    Image.new("RGB", (8, 8)).save(tmp_path / "shots" / "a" / "x.png")
    items, _ = collect_inputs([tmp_path / "shots" / "a"])
    assert sorted(stem.as_posix() for _, stem in items) == ["x.jpg", "x.png"]
    with pytest.raises(ValueError, match="same output files"):
        collect_inputs([tmp_path / "shots" / "a" / "x.jpg", tmp_path / "shots" / "b" / "x.jpg"])
