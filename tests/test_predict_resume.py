"""An interrupted `predict_paths` run never loses a record: each photo's record is written with its
outputs, a resumed run predicts exactly the photos without a record, and queued work is
cancelled on the way out."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from skyseg_tf.inference import files
from skyseg_tf.inference.files import RECORDS_CSV, RECORDS_JSONL, predict_paths

NUM_PHOTOS = 12


def brightness(batch):
    return batch[..., :1] / 255.0


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(NUM_PHOTOS):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / f"p{index:02d}.png")
    return folder


def _records(out):
    lines = (out / RECORDS_JSONL).read_text().splitlines()
    return [json.loads(line)["path"] for line in lines if line.strip()]


def _fail_on_call(monkeypatch, number, error):
    """write_outputs raises ``error`` on its ``number``-th call; returns the call counter."""
    real = files.write_outputs
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(files, "write_outputs", flaky)
    return calls


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("error", [KeyboardInterrupt(), cv2.error("not a photo failure")],
                         ids=["ctrl-c", "cv2-error"])
def test_interrupted_run_resumes_with_exactly_one_record_per_photo(photos, tmp_path, monkeypatch, workers, error):
    out = tmp_path / "out"
    calls = _fail_on_call(monkeypatch, 4, error)
    with pytest.raises(type(error)):
        predict_paths(brightness, photos, out, progress=False, workers=workers)
    assert len(calls) < NUM_PHOTOS  # queued work was cancelled, not run on the way out
    first = _records(out)
    assert 0 < len(first) < NUM_PHOTOS
    monkeypatch.undo()
    summary = predict_paths(brightness, photos, out, progress=False, workers=workers)
    assert summary.ok and len(summary.existing) == len(first)
    paths = _records(out)
    assert sorted(paths) == sorted(str(p) for p in photos.glob("*.png"))  # each photo once
    rows = (out / RECORDS_CSV).read_text().splitlines()
    assert len(rows) == 1 + NUM_PHOTOS


def test_a_photo_with_outputs_but_no_record_is_predicted_again(photos, tmp_path):
    out = tmp_path / "out"
    predict_paths(brightness, photos, out, progress=False)
    lines = (out / RECORDS_JSONL).read_text().splitlines()
    (out / RECORDS_JSONL).write_text("\n".join(lines[1:]) + "\n")  # outputs stay, one record lost
    summary = predict_paths(brightness, photos, out, progress=False)
    assert len(summary.succeeded) == 1 and len(_records(out)) == NUM_PHOTOS


def test_a_record_line_cut_short_is_ignored_and_the_next_starts_on_its_own_line(photos, tmp_path):
    out = tmp_path / "out"
    predict_paths(brightness, photos, out, progress=False)
    lines = (out / RECORDS_JSONL).read_text().splitlines()
    (out / RECORDS_JSONL).write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])  # killed mid-line
    summary = predict_paths(brightness, photos, out, progress=False)
    assert len(summary.succeeded) == 1
    text = (out / RECORDS_JSONL).read_text().splitlines()
    parsed = []
    for line in text:
        try:
            parsed.append(json.loads(line)["path"])
        except ValueError:
            assert line == lines[-1][:20]
    assert len(parsed) == NUM_PHOTOS and len(set(parsed)) == NUM_PHOTOS


def test_without_records_resume_goes_by_the_outputs(photos, tmp_path):
    out = tmp_path / "out"
    predict_paths(brightness, photos, out, progress=False, records=False)
    summary = predict_paths(brightness, photos, out, progress=False, records=False)
    assert len(summary.existing) == NUM_PHOTOS and not summary.succeeded


def test_a_recorded_photo_whose_outputs_are_gone_is_predicted_again_and_recorded_once(photos, tmp_path):
    out = tmp_path / "out"
    predict_paths(brightness, photos, out, progress=False)
    (out / "p03_mask.png").unlink()
    summary = predict_paths(brightness, photos, out, progress=False)
    assert [p.name for p in summary.succeeded] == ["p03.png"]
    paths = _records(out)
    assert len(paths) == NUM_PHOTOS and len(set(paths)) == NUM_PHOTOS
    rows = (out / RECORDS_CSV).read_text().splitlines()
    assert len(rows) == 1 + NUM_PHOTOS and sum("p03.png" in row for row in rows) == 1
