"""Writes the synthetic dummy_data/ trees of ade20k_outdoors_sky, and helpers for tests.

The trees mirror the real archives with tiny 32x24 images:

* ``ade20k_outdoors/images/training/ADE_train_XXXXXXXX.jpg`` and
  ``ade20k_outdoors/annotations/training/ADE_train_XXXXXXXX.png``: the Kaggle
  ``residentmario/ade20k-outdoors`` data as extracted into the manual directory.
* ``scene_parse/ADEChallengeData2016/{images,annotations}/{training,validation}/`` and
  ``scene_parse/ADEChallengeData2016/sceneCategories.txt``: what TFDS extracts from
  ``ADEChallengeData2016.zip``.

Annotation PNGs hold ADE20K class indices (0 = unlabeled, 1..150; sky = 3): the top
``sky_rows`` rows are sky and the rest is drawn from other classes.

Regenerate (the outputs are committed, about 30 kB):

    python tfds_ade20k_outdoors/ade20k_outdoors_sky/dummy_data/make_dummy_data.py
"""

from __future__ import annotations

import io
import pathlib
import shutil

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 32, 24
SKY_CLASS_INDEX = 3
_OTHER_CLASSES = np.array([0, 1, 2, 4, 5, 7, 13, 17, 150], dtype=np.uint8)

# (stem, sky rows, JPEG mode) of the Kaggle tree; "L" checks grayscale JPEG -> RGB.
KAGGLE_EXAMPLES = [
    ("ADE_train_00000001", 8, "RGB"),
    ("ADE_train_00000002", 0, "RGB"),
    ("ADE_train_00000003", 12, "RGB"),
    ("ADE_train_00000004", 6, "L"),
    ("ADE_train_00000005", 24, "RGB"),
    ("ADE_train_00000006", 10, "RGB"),
    ("ADE_train_00000007", 4, "RGB"),
    ("ADE_train_00000008", 9, "RGB"),
    ("ADE_train_00000009", 3, "RGB"),
    ("ADE_train_00000010", 15, "RGB"),
]

# (subfolder, stem, scene category, sky rows) of the ADEChallengeData2016 tree.
ADE_CHALLENGE_EXAMPLES = [
    ("training", "ADE_train_00000001", "airport_terminal", 0),
    ("training", "ADE_train_00000002", "street", 7),
    ("training", "ADE_train_00000003", "bathroom", 0),
    ("training", "ADE_train_00000004", "mountain", 11),
    ("training", "ADE_train_00000005", "coast", 9),
    ("training", "ADE_train_00000006", "highway", 8),
    ("training", "ADE_train_00000007", "kitchen", 0),
    ("training", "ADE_train_00000008", "skyscraper", 13),
    ("validation", "ADE_val_00000001", "beach", 10),
    ("validation", "ADE_val_00000002", "living_room", 0),
    ("validation", "ADE_val_00000003", "forest_path", 2),
    ("validation", "ADE_val_00000004", "bedroom", 0),
]


def _seed(stem: str) -> int:
    return sum(stem.encode("utf-8"))


def encode_jpeg(stem: str, mode: str = "RGB", size: tuple[int, int] = (WIDTH, HEIGHT)) -> bytes:
    """Returns a JPEG of a smooth random image (``mode`` "RGB", "L" or "CMYK", size WxH).

    Example:
        >>> Image.open(io.BytesIO(encode_jpeg("ADE_train_00000001"))).size
        (32, 24)
    """
    rng = np.random.default_rng(_seed(stem))
    width, height = size
    base = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    pixels = base + rng.uniform(0, 55, size=(height, width, 3))
    image = Image.fromarray(pixels.astype(np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def class_indices(stem: str, sky_rows: int, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    """Returns a uint8 HxW class-index map whose top ``sky_rows`` rows are sky (3).

    Example:
        >>> int((class_indices("ADE_train_00000001", 8) == 3).sum())
        256
    """
    rng = np.random.default_rng(_seed(stem) + 1)
    width, height = size
    indices = rng.choice(_OTHER_CLASSES, size=(height, width)).astype(np.uint8)
    indices[:sky_rows] = SKY_CLASS_INDEX
    return indices


def encode_png(indices: np.ndarray) -> bytes:
    """Returns ``indices`` (uint8 HxW) as an 8-bit grayscale PNG, as ADE20K stores them.

    Example:
        >>> encode_png(np.zeros((2, 2), np.uint8))[:4]
        b'\\x89PNG'
    """
    buffer = io.BytesIO()
    Image.fromarray(indices).save(buffer, format="PNG")
    return buffer.getvalue()


def write_pair(data_dir: pathlib.Path, subfolder: str, stem: str, sky_rows: int,
               mode: str = "RGB") -> None:
    """Writes images/<subfolder>/<stem>.jpg and annotations/<subfolder>/<stem>.png."""
    image_path = data_dir / "images" / subfolder / f"{stem}.jpg"
    mask_path = data_dir / "annotations" / subfolder / f"{stem}.png"
    image_path.parent.mkdir(parents=True, exist_ok=True)
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    image_path.write_bytes(encode_jpeg(stem, mode))
    mask_path.write_bytes(encode_png(class_indices(stem, sky_rows)))


def write_kaggle_tree(root: pathlib.Path) -> pathlib.Path:
    """Writes the Kaggle layout under ``root/ade20k_outdoors`` and returns that folder."""
    data_dir = root / "ade20k_outdoors"
    for stem, sky_rows, mode in KAGGLE_EXAMPLES:
        write_pair(data_dir, "training", stem, sky_rows, mode)
    return data_dir


def write_ade_challenge_tree(root: pathlib.Path) -> pathlib.Path:
    """Writes the ADEChallengeData2016 layout under ``root`` and returns its folder."""
    data_dir = root / "ADEChallengeData2016"
    lines = []
    for subfolder, stem, category, sky_rows in ADE_CHALLENGE_EXAMPLES:
        write_pair(data_dir, subfolder, stem, sky_rows)
        lines.append(f"{stem} {category}\n")
    (data_dir / "sceneCategories.txt").write_text("".join(lines))
    return data_dir


def main() -> None:
    here = pathlib.Path(__file__).resolve().parent
    for name in ("ade20k_outdoors", "scene_parse"):
        shutil.rmtree(here / name, ignore_errors=True)
    write_kaggle_tree(here)
    write_ade_challenge_tree(here / "scene_parse")


if __name__ == "__main__":
    main()
