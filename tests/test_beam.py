"""Batch prediction on Apache Beam (skyseg_tf.beam): the same outputs as `skyseg predict`.

One pipeline runs on the DirectRunner in multi-process mode with two workers (module fixture);
the tests read what it wrote. Skipped when apache_beam is not installed (the `beam` extra).
"""

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("apache_beam", reason="needs the beam extra: pip install 'skyseg-tf[beam]'")

from skyseg_tf import beam as skybeam  # noqa: E402
from skyseg_tf.inference import OUTPUT_SUFFIXES, predict_paths  # noqa: E402
from skyseg_tf.inference.files import RECORD_COLUMNS, RECORDS_CSV, RECORDS_JSONL  # noqa: E402

TWO_WORKERS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
GOOD = {"street": (120, 160), "tall": (150, 90), "rotated": (80, 110)}  # stem: (height, width) as shown
BAD = ("truncated.jpg", "not_an_image.png")


def _scene(height, width, seed):
    """A photo-like scene: a blue gradient sky above a darker, noisy ground with a ragged skyline."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    sky = (np.array([70, 130, 230]) * (1 - 0.4 * rows) + np.array([160, 190, 240]) * 0.4 * rows)
    image = np.broadcast_to(sky, (height, width, 3)).copy()
    skyline = (height * (0.45 + 0.1 * np.sin(np.arange(width) / 7.0 + seed))).astype(int)
    ground = rng.normal([70, 80, 50], 20, (height, width, 3))
    below = np.arange(height)[:, None] >= skyline[None, :]
    image[below] = ground[below]
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(_scene(*GOOD["street"], 0)).save(folder / "street.jpg", quality=92)
    Image.fromarray(_scene(*GOOD["tall"], 1)).save(folder / "tall.png")
    # Stored 110 wide x 80 high... as displayed; EXIF orientation 6 (rotate 90 degrees on display).
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(_scene(*GOOD["rotated"], 2), k=1)))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(folder / "rotated.jpg", exif=exif, quality=92)
    (folder / "truncated.jpg").write_bytes((folder / "street.jpg").read_bytes()[:400])
    (folder / "not_an_image.png").write_text("these are words, not pixels\n")
    (folder / "notes.txt").write_text("a file that is not an image by its suffix\n")
    return folder


@pytest.fixture(scope="module")
def runs(photos, tmp_path_factory):
    """The Beam run (two worker processes) and `predict_paths` on the same photos, same (default) model."""
    out = tmp_path_factory.mktemp("beam") / "out"
    summary = skybeam.predict_pipeline(str(photos), str(out), beam_options=TWO_WORKERS)
    local_out = tmp_path_factory.mktemp("local")
    local = predict_paths(None, photos, local_out, progress=False)
    return summary, out, local, local_out


def _read(path):
    return np.asarray(Image.open(path)).astype(np.int16)


def test_outputs_match_predict_paths(runs):
    summary, out, local, local_out = runs
    assert summary.predicted == len(GOOD) == len(local.succeeded)
    for stem, shape in GOOD.items():
        for kind, suffix in OUTPUT_SUFFIXES.items():
            if kind not in ("mask", "probability", "overlay"):
                continue
            beam_pixels, local_pixels = _read(out / (stem + suffix)), _read(local_out / (stem + suffix))
            assert beam_pixels.shape[:2] == shape, (stem, kind)
            if kind == "mask":
                np.testing.assert_array_equal(beam_pixels, local_pixels, err_msg=stem)
            else:
                assert np.abs(beam_pixels - local_pixels).max() <= 1, (stem, kind)
        mask = _read(out / f"{stem}_mask.png")
        assert set(np.unique(mask)) <= {0, 255} and 0.2 < (mask == 255).mean() < 0.8, stem  # sky found


def test_bad_photos_go_to_dead_letters_and_the_run_goes_on(runs, photos):
    summary, out, local, _ = runs
    letters = [json.loads(line) for line in (out / skybeam.FAILED_JSONL).read_text().splitlines()]
    assert sorted(os.path.basename(r["path"]) for r in letters) == sorted(BAD)
    for record in letters:
        assert record["stage"] == "read" and "cannot be read as an image" in record["reason"], record
    assert not summary.ok and sorted(r["path"] for r in summary.failed) == sorted(r["path"] for r in letters)
    assert sorted(map(str, (p for p, _ in local.failed))) == sorted(str(photos / name) for name in BAD)
    assert [os.path.basename(p) for p in summary.skipped] == ["notes.txt"]
    assert "2 failed" in str(summary) and "truncated.jpg" in str(summary)


def test_one_record_per_photo_as_predict_paths_writes_it(runs):
    summary, out, local, local_out = runs
    records = {os.path.basename(r["path"]): r for r in map(json.loads, (out / RECORDS_JSONL).read_text().splitlines())}
    local_records = {os.path.basename(r["path"]): r
                     for r in map(json.loads, (local_out / RECORDS_JSONL).read_text().splitlines())}
    assert sorted(records) == sorted(local_records) == sorted(["street.jpg", "tall.png", "rotated.jpg"])
    for name, record in records.items():
        assert set(record) == set(local_records[name])
        assert (record["height"], record["width"]) == GOOD[os.path.splitext(name)[0]]
        for field in ("sky_fraction", "mean_confidence"):
            assert record[field] == pytest.approx(local_records[name][field], abs=2e-4), (name, field)
        assert record["has_sky"] is True and record["seconds"] > 0
        assert sorted(os.path.basename(p) for p in record["outputs"]) == sorted(
            os.path.basename(p) for p in local_records[name]["outputs"])
    with open(out / RECORDS_CSV, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == RECORD_COLUMNS and sorted(os.path.basename(r["path"]) for r in rows) == sorted(records)


def test_refuses_an_output_folder_with_results(runs, photos):
    _, out, _, _ = runs
    with pytest.raises(FileExistsError, match="already holds results.*overwrite=True"):
        skybeam.predict_pipeline(str(photos), str(out), beam_options=TWO_WORKERS)


def test_a_pattern_that_matches_nothing_is_an_error_before_the_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="matches no file"):
        skybeam.predict_pipeline(str(tmp_path / "nowhere" / "*.jpg"), str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        skybeam.predict_pipeline(str(tmp_path / "missing.jpg"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_options_are_checked_before_the_run(photos, tmp_path):
    with pytest.raises(ValueError, match="save: received"):
        skybeam.predict_pipeline(str(photos), str(tmp_path / "out"), save=("masks",))
    with pytest.raises(FileNotFoundError, match="neither a file or folder nor a preset"):
        skybeam.predict_pipeline(str(photos), str(tmp_path / "out"), model="no_such_model.keras")
    with pytest.raises(TypeError, match="beam_options"):
        skybeam.predict_pipeline(str(photos), str(tmp_path / "out"), beam_options=3)


def test_output_names_follow_skyseg_predict(tmp_path):
    for name in ("a.jpg", "a.png", "b.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "sub" / "c.jpg")
    found = skybeam.list_inputs(str(tmp_path), recursive=True)
    assert sorted(stem for _, stem in found.items) == ["a.jpg", "a.png", "b", "sub/c"]
    found = skybeam.list_inputs(str(tmp_path / "*.jpg"))
    assert sorted(stem for _, stem in found.items) == ["a", "b"]


def test_cli_runner_beam(photos, tmp_path):
    from click.testing import CliRunner

    from skyseg_tf.cli import main

    good = tmp_path / "good"
    good.mkdir()
    for name in ("street.jpg", "tall.png"):
        (good / name).write_bytes((photos / name).read_bytes())
    out = tmp_path / "out"
    command = ["predict", str(good), "--out", str(out), "--runner", "beam", "--save", "mask",
               "--beam-options", "--direct_running_mode=in_memory"]
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    assert "2 image(s) predicted, 0 failed" in result.output
    assert sorted(p.name for p in out.glob("*_mask.png")) == ["street_mask.png", "tall_mask.png"]
    again = CliRunner().invoke(main, command)
    assert again.exit_code == 2 and "already holds results" in again.output


def test_lens_fisheye_writes_what_skyseg_predict_writes(tmp_path):
    """--lens fisheye on Beam: the polar plot, and the same SVF records as predict_paths."""
    import skyseg_tf

    model_path = tmp_path / "tiny.keras"
    skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None).save(str(model_path))
    folder = tmp_path / "up"
    folder.mkdir()
    photo = np.zeros((120, 120, 3), np.uint8)
    yy, xx = np.mgrid[:120, :120]
    photo[(yy - 60) ** 2 + (xx - 60) ** 2 < 50 ** 2] = (150, 190, 240)
    Image.fromarray(photo).save(folder / "up.png")
    out = tmp_path / "beam"
    summary = skybeam.predict_pipeline(str(folder), str(out), model=str(model_path), lens="fisheye")
    assert summary.ok, summary
    assert (out / "up_polar.png").is_file()
    local = predict_paths(str(model_path), folder, tmp_path / "local", lens="fisheye", progress=False)
    beam_record = json.loads((out / RECORDS_JSONL).read_text().splitlines()[0])
    local_record = local.records[0]
    assert beam_record["svf"] == pytest.approx(local_record["svf"], abs=1e-6)
    assert beam_record["circle"] == local_record["circle"]
    header = (out / RECORDS_CSV).read_text().splitlines()[0].split(",")
    assert header[-3:] == ["svf", "canopy_openness", "seconds"]
    with pytest.raises(ValueError, match="circle"):
        skybeam.predict_pipeline(str(folder), str(tmp_path / "x"), model=str(model_path), circle=(1, 2, 3))


@pytest.mark.parametrize("pattern", ["photos/**/*.jpg", "photos/*/*.jpg", "photos/a/*.jpg", "{root}/photos/**/*.jpg"])
def test_output_names_of_patterns_match_skyseg_predict(tmp_path, monkeypatch, pattern):
    """One naming rule: a file matched by a glob pattern keeps the folders below the pattern's
    fixed part, on Beam as in `skyseg predict` (Beam used to keep only the file name)."""
    from skyseg_tf.inference.files import collect_inputs

    monkeypatch.chdir(tmp_path)
    for relative in ("photos/a/y.jpg", "photos/a/b/x.jpg", "photos/c/y.jpg", "photos/top.jpg"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / relative)
    pattern = pattern.format(root=tmp_path)
    local, _ = collect_inputs(pattern, recursive=True)
    found = skybeam.list_inputs(pattern)
    expected = {os.path.abspath(path): stem.as_posix() for path, stem in local}
    named = {os.path.abspath(path): stem for path, stem in found.items}
    # Beam's '**' needs at least one folder ('photos/top.jpg' is not matched); Python's glob does
    # not: the names of the photos both match are the same.
    common = set(expected) & set(named)
    assert len(common) >= min(2, len(expected)) and set(named) <= set(expected)
    assert {path: named[path] for path in common} == {path: expected[path] for path in common}
    assert any("/" in named[path] for path in common) == ("*/" in pattern)


def test_outputs_are_renamed_into_place_leaving_no_partial_files(runs):
    _, out, _, _ = runs
    assert not [p.name for p in out.rglob(".*")]  # every output was written whole, then renamed


def test_a_remote_model_copy_is_removed_once_loaded(tmp_path, monkeypatch):
    """Workers copy a remote model to a temporary folder; it is gone once the model is loaded."""
    import skyseg_tf

    model_path = tmp_path / "m.keras"
    skyseg_tf.build_model("unet_mobilenet_v3_large", encoder_weights=None).save(str(model_path))
    copies = []
    real_copy = skybeam._local_copy

    def as_if_remote(path):
        target = os.path.join(str(tmp_path / "copy"), "m.keras")
        os.makedirs(os.path.dirname(target))
        with open(path, "rb") as source, open(target, "wb") as copy:
            copy.write(source.read())
        copies.append(target)
        return target

    monkeypatch.setattr(skybeam, "_local_copy", as_if_remote)
    model = skybeam.load_model_source(str(model_path))
    assert model is not None and copies and not os.path.exists(os.path.dirname(copies[0]))
    assert real_copy(str(model_path)) == str(model_path)  # a local model is read where it is
