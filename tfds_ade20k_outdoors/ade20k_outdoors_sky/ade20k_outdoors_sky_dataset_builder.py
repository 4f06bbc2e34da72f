"""ade20k_outdoors_sky dataset: binary sky / other masks for outdoor ADE20K scenes.

Two sources (see README.md beside this file):

* ``kaggle`` (default): the Kaggle dataset ``residentmario/ade20k-outdoors``
  (about 5,000 outdoor images), placed by hand in TFDS's manual directory.
* ``scene_parse``: the official ``ADEChallengeData2016.zip``, downloaded by TFDS
  (or found in the manual directory) and filtered to the scene categories in
  :data:`OUTDOOR_SCENE_CATEGORIES` with its ``sceneCategories.txt``.

Each source has two builder configs, which differ only in what ADE20K's unlabelled
class 0 becomes (:attr:`Ade20kOutdoorsSkyConfig.unlabelled`): ``kaggle`` and
``scene_parse`` make it "other" (0), as the study did; ``kaggle_void`` and
``scene_parse_void`` make it void (:data:`VOID_LABEL`, 2), a pixel that counts in
no loss and no metric.

All configs give the same features: the RGB ``image``, a ``segmentation_mask`` where
ADE20K class 3 (sky) is 1, every other class is 0 and, in the ``*_void`` configs,
class 0 is 2; the ``file_name`` and the ``sky_fraction``. Train / validation / test
are 60 / 20 / 20 by a stable hash of the file name (:func:`split_for_file_name`),
not by a random seed.

Example:
    >>> import tensorflow_datasets as tfds
    >>> import tfds_ade20k_outdoors  # registers the builder
    >>> builder = tfds.builder("ade20k_outdoors_sky")  # doctest: +SKIP
    >>> builder.download_and_prepare()  # doctest: +SKIP
    >>> ds = builder.as_dataset(split="train", as_supervised=True)  # doctest: +SKIP
    >>> ds = tfds.load("ade20k_outdoors_sky/kaggle_void", split="train")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
from typing import Iterable, Iterator

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

logger = logging.getLogger(__name__)

SKY_CLASS_INDEX = 3
"""ADE20K SceneParsing (objectInfo150) index of the ``sky`` class."""

UNLABELLED_CLASS_INDEX = 0
"""ADE20K SceneParsing index of unlabelled pixels (no object class)."""

SKY_LABEL = 1
"""Value of sky pixels in ``segmentation_mask``; labelled non-sky pixels are 0."""

VOID_LABEL = 2  # equals skyseg_tf.data.spec.VOID_LABEL; this package must import on its own
"""Value in ``segmentation_mask`` of unlabelled pixels (ADE20K class 0) in the
``*_void`` configs: they count in no loss and no metric. The other configs never use it."""

UNLABELLED_CHOICES = ("other", "void")
"""Values of :attr:`Ade20kOutdoorsSkyConfig.unlabelled`: ADE20K class 0 becomes 0 or
:data:`VOID_LABEL`."""

KAGGLE_DATASET = "residentmario/ade20k-outdoors"
KAGGLE_ARCHIVE_NAMES = ("ade20k-outdoors.zip", "archive.zip", "ade20k_outdoors.zip")
"""Names the Kaggle archive gets from the Kaggle CLI, the web page, or a rename."""
KAGGLE_FOLDER_NAMES = ("ade20k_outdoors", "ade20k-outdoors", "archive")
"""Folder names accepted for an extracted Kaggle archive in the manual directory."""

ADE_CHALLENGE_URL = "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip"
ADE_CHALLENGE_ARCHIVE_NAME = "ADEChallengeData2016.zip"
ADE_CHALLENGE_FOLDER_NAME = "ADEChallengeData2016"
SCENE_CATEGORIES_FILE_NAME = "sceneCategories.txt"

SPLIT_PERCENTAGES = (("train", 60), ("validation", 20), ("test", 20))
"""Split names and their share of the hash buckets ``0..99``, in bucket order."""

ON_BAD_EXAMPLE_CHOICES = ("skip", "fail")
SOURCE_CHOICES = ("kaggle", "scene_parse")

_SOURCE_DESCRIPTIONS = {
    "kaggle": (
        f"Kaggle {KAGGLE_DATASET} (about 5,000 outdoor ADE20K images), read from "
        "the manual directory; training and validation images are pooled."
    ),
    "scene_parse": (
        f"Official {ADE_CHALLENGE_ARCHIVE_NAME} (20,210 training + 2,000 validation "
        "images), keeping the images whose scene category is in OUTDOOR_SCENE_CATEGORIES."
    ),
}
_UNLABELLED_DESCRIPTIONS = {
    "other": "Unlabelled pixels (ADE20K class 0) are other (0), as in the study.",
    "void": (
        f"Unlabelled pixels (ADE20K class 0) are void ({VOID_LABEL}): they count in no loss "
        "and no metric."
    ),
}
_MASK_DOCS = {
    "other": (
        f"{SKY_LABEL} = sky (ADE20K class {SKY_CLASS_INDEX}), 0 = other (every other class, "
        f"unlabelled class {UNLABELLED_CLASS_INDEX} included)."
    ),
    "void": (
        f"{SKY_LABEL} = sky (ADE20K class {SKY_CLASS_INDEX}), 0 = other labelled classes, "
        f"{VOID_LABEL} = void (unlabelled, ADE20K class {UNLABELLED_CLASS_INDEX}): counts in "
        "no loss and no metric."
    ),
}

_IMAGE_SUFFIXES = (".jpg", ".jpeg")
_MASK_SUFFIX = ".png"
_MASK_MODES = ("L", "P", "I", "I;16")  # single-channel modes that can hold class indices
_JPEG_QUALITY = 95  # only for images that are not RGB JPEGs already (grayscale, CMYK, ...)
_IGNORED_DIR_NAMES = ("__MACOSX",)

OUTDOOR_SCENE_CATEGORIES = frozenset({
    # Urban and built-up scenes.
    "access_road", "airfield", "alley", "amusement_park", "apartment_building_outdoor",
    "boardwalk", "bridge", "building_facade", "castle", "church_outdoor", "city",
    "construction_site", "courtyard", "crosswalk", "downtown", "freeway", "gas_station",
    "golf_course", "harbor", "highway", "industrial_area", "lighthouse", "market_outdoor",
    "one-way_street", "pagoda", "palace", "park", "parking_lot", "parkway", "pier", "playground",
    "plaza", "railroad_track", "residential_neighborhood", "road", "roundabout", "ruin", "runway",
    "skyscraper", "street", "tower", "train_railway", "viaduct", "village", "wind_farm",
    # Natural scenes and countryside.
    "badlands", "beach", "butte", "campsite", "canyon", "cliff", "coast", "coast_road",
    "corn_field", "country_road", "creek", "desert_road", "farm", "field_road", "forest_path",
    "forest_road", "glacier", "hayfield", "heath", "hill", "ice_shelf", "iceberg", "islet",
    "marsh", "meadow", "mesa", "mountain", "mountain_path", "mountain_road", "mountain_snowy",
    "ocean", "orchard", "pasture", "rice_paddy", "river", "savanna", "sea_cliff", "sky",
    "snowfield", "swamp", "tundra", "valley", "vineyard", "volcano", "wave", "wheat_field",
})
"""Scene categories of ``sceneCategories.txt`` kept by the ``scene_parse`` config.

Outdoor scenes where the sky is usually in view. Every name is a category of the
SceneParsing release. Names that ADE20K shortens to an ambiguous last word (``wild``
for field/wild, ``natural`` for lake/natural or canal/natural, ``sand``, ``water``) are
left out, and so are underwater scenes (``ocean_deep``, ``coral_reef``). How many
images this keeps is not known offline; the build logs the count.
"""

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Configs `kaggle` (the default) and `kaggle_void` read the Kaggle dataset
{KAGGLE_DATASET}, which Kaggle serves only to signed-in users, so TFDS cannot
download it for you:

1. Install the Kaggle CLI and put your API token in ~/.kaggle/kaggle.json
   (https://www.kaggle.com/docs/api):
     pip install kaggle
2. Download the archive into TFDS's manual directory:
     kaggle datasets download -d {KAGGLE_DATASET} -p ~/tensorflow_datasets/downloads/manual/
   This writes `ade20k-outdoors.zip`; the web page's Download button gives `archive.zip`.
   Both names are accepted, and so is the extracted folder (`ade20k_outdoors/` or
   `ade20k-outdoors/` holding `images/` and `annotations/`).
3. Build (without `/kaggle`, `tfds build` builds every config, scene_parse included;
   `/kaggle_void` builds the config that marks unlabelled pixels void):
     tfds build --imports tfds_ade20k_outdoors ade20k_outdoors_sky/kaggle
   To keep the archive elsewhere, pass its folder with `--manual_dir DIR`
   (Python: `download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=DIR))`).

Configs `scene_parse` and `scene_parse_void` need nothing by hand: it downloads {ADE_CHALLENGE_ARCHIVE_NAME}
(967 MB) itself. To reuse a copy, put `{ADE_CHALLENGE_ARCHIVE_NAME}` or its extracted
`{ADE_CHALLENGE_FOLDER_NAME}/` folder in the manual directory.
"""


def split_for_file_name(file_name: str) -> str:
    """Returns the split (``train``, ``validation`` or ``test``) of an image, by file name.

    The bucket is the first 8 bytes of the SHA-256 of the file stem (the name without
    directories and extension, UTF-8), read as a big-endian unsigned integer, modulo 100.
    Buckets 0-59 are ``train``, 60-79 ``validation`` and 80-99 ``test``. The result
    depends only on the stem, so it is the same on every machine, for every source
    and whatever other files are present.

    Args:
        file_name: an image file name or path, e.g. ``"ADE_train_00000001.jpg"``; only
            its stem is used, so ``"ADE_train_00000001"`` gives the same split.

    Returns:
        The split name.

    Raises:
        TypeError: if ``file_name`` is not a string.
        ValueError: if ``file_name`` has an empty stem.

    Example:
        >>> split_for_file_name("ADE_train_00000001.jpg")
        'train'
        >>> split_for_file_name("images/training/ADE_train_00000001")
        'train'
        >>> split_for_file_name("ADE_train_00000005.jpg"), split_for_file_name("ADE_train_00000006.jpg")
        ('validation', 'test')
    """
    if not isinstance(file_name, str):
        raise TypeError(
            f"file_name: expected a str such as 'ADE_train_00000001.jpg', received "
            f"{type(file_name).__name__} {file_name!r}. Pass str(path) for a path object."
        )
    name = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = name.rpartition(".")[0] if "." in name else name
    if not stem:
        raise ValueError(
            f"file_name: expected a file name with a non-empty stem, received {file_name!r}."
        )
    digest = hashlib.sha256(stem.encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    upper = 0
    for split, percentage in SPLIT_PERCENTAGES:
        upper += percentage
        if bucket < upper:
            return split
    raise AssertionError("SPLIT_PERCENTAGES must add up to 100")  # pragma: no cover


def _check_choice(argument: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(
            f"{argument}: expected one of {', '.join(repr(c) for c in choices)}, "
            f"received {value!r}."
        )


@dataclasses.dataclass
class Ade20kOutdoorsSkyConfig(tfds.core.BuilderConfig):
    """BuilderConfig for ``ade20k_outdoors_sky``.

    Attributes:
        source: ``"kaggle"`` (Kaggle ``residentmario/ade20k-outdoors`` from the manual
            directory) or ``"scene_parse"`` (``ADEChallengeData2016.zip`` filtered to
            :data:`OUTDOOR_SCENE_CATEGORIES`).
        on_bad_example: ``"skip"`` (log a warning naming the file and leave it out) or
            ``"fail"`` (raise ``ValueError`` naming the file) for a corrupt image, a
            corrupt or missized mask, or an image without a mask. The builder kwarg
            ``on_bad_example`` overrides it.
        unlabelled: what ADE20K's unlabelled class 0 becomes in ``segmentation_mask``:
            ``"other"`` (0, the default, as in the study) or ``"void"``
            (:data:`VOID_LABEL`, 2: counts in no loss and no metric).

    Example:
        >>> config = Ade20kOutdoorsSkyConfig(name="kaggle_strict", source="kaggle",
        ...                                  on_bad_example="fail")
        >>> config.on_bad_example, config.unlabelled
        ('fail', 'other')
    """

    source: str = "kaggle"
    on_bad_example: str = "skip"
    unlabelled: str = "other"

    def __post_init__(self):
        _check_choice("source", self.source, SOURCE_CHOICES)
        _check_choice("on_bad_example", self.on_bad_example, ON_BAD_EXAMPLE_CHOICES)
        _check_choice("unlabelled", self.unlabelled, UNLABELLED_CHOICES)


@dataclasses.dataclass(frozen=True)
class _SourceExample:
    """One image of the source and the annotation PNG expected beside it."""

    key: str  # path relative to the images/ folder, e.g. "training/ADE_train_00000001.jpg"
    image_path: epath.Path
    mask_path: epath.Path  # may not exist

    @property
    def file_name(self) -> str:
        return self.image_path.name


class _BadExampleError(Exception):
    """An example that cannot be written; the message says why."""


class Builder(tfds.core.GeneratorBasedBuilder):
    """Binary sky segmentation on outdoor ADE20K images (``ade20k_outdoors_sky``).

    Builder kwargs:
        on_bad_example: ``"skip"`` or ``"fail"``; overrides the config's value.

    Example:
        >>> import tensorflow_datasets as tfds
        >>> builder = tfds.builder("ade20k_outdoors_sky", config="scene_parse",
        ...                        on_bad_example="fail")  # doctest: +SKIP
        >>> builder = tfds.builder("ade20k_outdoors_sky/kaggle_void")  # doctest: +SKIP
    """

    # The *_void configs came later without a version bump: kaggle and scene_parse still
    # write the data of 1.0.0, so copies prepared before stay valid.
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: configs kaggle and scene_parse, hash split 60/20/20.",
    }
    BUILDER_CONFIGS = [
        Ade20kOutdoorsSkyConfig(
            name=source if unlabelled == "other" else f"{source}_{unlabelled}",
            source=source,
            unlabelled=unlabelled,
            description=(
                f"{_SOURCE_DESCRIPTIONS[source]} {_UNLABELLED_DESCRIPTIONS[unlabelled]}"
            ),
        )
        for unlabelled in UNLABELLED_CHOICES
        for source in SOURCE_CHOICES
    ]
    """kaggle, scene_parse (unlabelled = other), kaggle_void, scene_parse_void."""
    DEFAULT_CONFIG_NAME = "kaggle"
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

    def __init__(self, *, on_bad_example: str | None = None, **kwargs):
        if on_bad_example is not None:
            _check_choice("on_bad_example", on_bad_example, ON_BAD_EXAMPLE_CHOICES)
        super().__init__(**kwargs)
        self._on_bad_example = on_bad_example or self.builder_config.on_bad_example
        self._original_state["on_bad_example"] = on_bad_example  # kept when pickled

    @property
    def on_bad_example(self) -> str:
        """What this builder does with a bad example: ``"skip"`` or ``"fail"``."""
        return self._on_bad_example

    def _info(self) -> tfds.core.DatasetInfo:
        if self.builder_config.source == "kaggle":
            homepage = f"https://www.kaggle.com/datasets/{KAGGLE_DATASET}"
        else:
            homepage = "http://sceneparsing.csail.mit.edu/"
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(
                    shape=(None, None, 3), dtype=np.uint8, encoding_format="jpeg",
                    doc="RGB image.",
                ),
                "segmentation_mask": tfds.features.Image(
                    shape=(None, None, 1), dtype=np.uint8, encoding_format="png",
                    doc=_MASK_DOCS[self.builder_config.unlabelled],
                ),
                "file_name": tfds.features.Text(doc="Image file name, e.g. ADE_train_00000001.jpg."),
                "sky_fraction": tfds.features.Scalar(
                    dtype=np.float32,
                    doc="Share of sky among the labelled (not void) pixels, in [0, 1].",
                ),
            }),
            supervised_keys=("image", "segmentation_mask"),
            homepage=homepage,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        if self.builder_config.source == "kaggle":
            data_dir = _find_kaggle_data_dir(dl_manager)
            examples = _list_examples(data_dir)
        else:
            data_dir = _find_ade_challenge_data_dir(dl_manager)
            examples = _keep_outdoor_scenes(_list_examples(data_dir), data_dir)
        by_split = {split: [] for split, _ in SPLIT_PERCENTAGES}
        for example in examples:
            by_split[split_for_file_name(example.file_name)].append(example)
        logger.info(
            "ade20k_outdoors_sky/%s: %d images from %s, split %s.",
            self.builder_config.name, len(examples), data_dir,
            {split: len(items) for split, items in by_split.items()},
        )
        return {
            split: self._generate_examples(items, split) for split, items in by_split.items()
        }

    def _generate_examples(self, examples: Iterable[_SourceExample], split: str):
        bad_files = []
        for example in examples:
            try:
                record = _make_record(example, unlabelled=self.builder_config.unlabelled)
            except _BadExampleError as error:
                if self._on_bad_example == "fail":
                    raise ValueError(
                        f"Bad example {example.image_path}: {error}. Fix or remove the file, "
                        "or build with on_bad_example='skip' to leave such files out."
                    ) from None
                logger.warning("Skipping bad example %s: %s.", example.image_path, error)
                bad_files.append(example.file_name)
                continue
            yield example.key, record
        if bad_files:
            logger.warning(
                "Split %r: skipped %d bad example(s): %s.", split, len(bad_files),
                ", ".join(bad_files),
            )


def _find_data_dir(base: epath.Path, max_depth: int) -> epath.Path | None:
    """Returns the first folder at most `max_depth` below `base` holding images/ + annotations/."""
    level = [base]
    for _ in range(max_depth + 1):
        next_level = []
        for folder in level:
            if (folder / "images").is_dir() and (folder / "annotations").is_dir():
                return folder
            next_level.extend(
                child for child in sorted(folder.iterdir())
                if child.is_dir() and not _is_ignored(child)
            )
        level = next_level
    return None


def _find_kaggle_data_dir(dl_manager: tfds.download.DownloadManager) -> epath.Path:
    """Finds the Kaggle data in the manual directory, extracting the archive if needed."""
    manual_dir = dl_manager.manual_dir  # TFDS raises with our instructions if missing or empty
    if (manual_dir / "images").is_dir() and (manual_dir / "annotations").is_dir():
        return manual_dir
    for name in KAGGLE_FOLDER_NAMES:
        if (manual_dir / name).is_dir():
            found = _find_data_dir(manual_dir / name, max_depth=2)
            if found is not None:
                return found
    for name in KAGGLE_ARCHIVE_NAMES:
        archive = manual_dir / name
        if archive.exists():
            found = _find_data_dir(epath.Path(dl_manager.extract(archive)), max_depth=2)
            if found is None:
                raise FileNotFoundError(
                    f"{archive} has no images/ and annotations/ folders (looked two levels "
                    f"deep). Download {KAGGLE_DATASET} again; instructions:\n"
                    f"{MANUAL_DOWNLOAD_INSTRUCTIONS}"
                )
            return found
    raise FileNotFoundError(
        f"No ADE20K-Outdoors data in the manual directory {manual_dir}: expected one of "
        f"{', '.join(KAGGLE_ARCHIVE_NAMES)}, a folder {' or '.join(KAGGLE_FOLDER_NAMES)} "
        "with images/ and annotations/, or images/ and annotations/ directly in it. "
        f"Instructions:\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
    )


def _find_ade_challenge_data_dir(dl_manager: tfds.download.DownloadManager) -> epath.Path:
    """Finds ADEChallengeData2016 in the manual directory, or downloads it."""
    try:
        manual_dir = dl_manager.manual_dir
    except AssertionError:  # no manual directory, or an empty one: download instead
        manual_dir = None
    if manual_dir is not None and (manual_dir / ADE_CHALLENGE_FOLDER_NAME).is_dir():
        root = manual_dir / ADE_CHALLENGE_FOLDER_NAME
    elif manual_dir is not None and (manual_dir / ADE_CHALLENGE_ARCHIVE_NAME).exists():
        root = epath.Path(dl_manager.extract(manual_dir / ADE_CHALLENGE_ARCHIVE_NAME))
    else:
        root = epath.Path(dl_manager.download_and_extract(ADE_CHALLENGE_URL))
    found = _find_data_dir(root, max_depth=2)
    if found is None:
        raise FileNotFoundError(
            f"{root} has no images/ and annotations/ folders (looked two levels deep). "
            f"Delete it and download {ADE_CHALLENGE_URL} again."
        )
    return found


def _is_ignored(path: epath.Path) -> bool:
    return path.name.startswith(".") or path.name in _IGNORED_DIR_NAMES


def _walk_files(folder: epath.Path) -> Iterator[epath.Path]:
    """Yields the files under `folder`, sorted, skipping hidden files and folders.

    epath's rglob refuses `**` (it would be slow on GCS); these trees are two levels deep.
    """
    for child in sorted(folder.iterdir()):
        if _is_ignored(child):
            continue
        if child.is_dir():
            yield from _walk_files(child)
        else:
            yield child


def _list_examples(data_dir: epath.Path) -> list[_SourceExample]:
    """Lists the JPEG images under data_dir/images/ with their expected annotation PNGs.

    Images may sit in images/ itself or in any sub-folder (training/, validation/); the
    annotation of images/<sub>/<stem>.jpg is annotations/<sub>/<stem>.png.
    """
    images_dir = data_dir / "images"
    annotations_dir = data_dir / "annotations"
    examples = []
    for image_path in _walk_files(images_dir):
        if image_path.suffix.lower() not in _IMAGE_SUFFIXES:
            continue
        relative = image_path.relative_to(images_dir)
        examples.append(_SourceExample(
            key=relative.as_posix(),
            image_path=image_path,
            mask_path=annotations_dir / relative.with_suffix(_MASK_SUFFIX),
        ))
    if not examples:
        raise FileNotFoundError(
            f"No JPEG images (*.jpg) under {images_dir}. The folder should look like "
            "images/training/ADE_train_00000001.jpg with "
            "annotations/training/ADE_train_00000001.png."
        )
    return examples


def _read_scene_categories(path: epath.Path) -> dict[str, str]:
    """Parses sceneCategories.txt lines like ``ADE_train_00000001 airport_terminal``."""
    categories = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 2:
            categories[fields[0]] = fields[1]
    return categories


def _keep_outdoor_scenes(
    examples: list[_SourceExample], data_dir: epath.Path
) -> list[_SourceExample]:
    """Keeps the examples whose scene category is in OUTDOOR_SCENE_CATEGORIES."""
    path = data_dir / SCENE_CATEGORIES_FILE_NAME
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: the scene_parse config needs it to keep the outdoor images. "
            f"Use the official {ADE_CHALLENGE_ARCHIVE_NAME}, which has it, or the kaggle config."
        )
    categories = _read_scene_categories(path)
    kept = [
        example for example in examples
        if categories.get(example.image_path.stem) in OUTDOOR_SCENE_CATEGORIES
    ]
    logger.info(
        "scene_parse: kept %d of %d images whose scene category is outdoor (%d categories).",
        len(kept), len(examples), len(OUTDOOR_SCENE_CATEGORIES),
    )
    return kept


def _make_record(example: _SourceExample, *, unlabelled: str = "other") -> dict:
    """Decodes one image + annotation pair into a feature dict, or raises _BadExampleError.

    `unlabelled` is the config's: ``"void"`` writes ADE20K class 0 as VOID_LABEL.
    """
    PIL_Image = tfds.core.lazy_imports.PIL_Image  # pylint: disable=invalid-name
    image_bytes = example.image_path.read_bytes()
    try:
        with PIL_Image.open(io.BytesIO(image_bytes)) as image:
            image.load()
            image_size = image.size
            if image.format == "JPEG" and image.mode == "RGB":
                encoded_image = image_bytes
            else:  # grayscale, CMYK, palette or a non-JPEG file named .jpg
                buffer = io.BytesIO()
                image.convert("RGB").save(buffer, format="JPEG", quality=_JPEG_QUALITY)
                encoded_image = buffer.getvalue()
    except (OSError, SyntaxError, ValueError, PIL_Image.DecompressionBombError) as error:
        raise _BadExampleError(f"cannot decode the image ({error})") from None

    if not example.mask_path.exists():
        raise _BadExampleError(f"no annotation at {example.mask_path}")
    try:
        with PIL_Image.open(io.BytesIO(example.mask_path.read_bytes())) as mask_image:
            mask_image.load()
            mask_mode, mask_size = mask_image.mode, mask_image.size
            class_indices = np.asarray(mask_image)
    except (OSError, SyntaxError, ValueError, PIL_Image.DecompressionBombError) as error:
        raise _BadExampleError(
            f"cannot decode the annotation {example.mask_path.name} ({error})"
        ) from None
    if mask_mode not in _MASK_MODES:
        raise _BadExampleError(
            f"the annotation {example.mask_path.name} is a {mask_mode} image; expected a "
            "single-channel PNG of class indices"
        )
    if mask_size != image_size:
        raise _BadExampleError(
            f"the annotation {example.mask_path.name} is {mask_size[0]}x{mask_size[1]} (WxH) "
            f"but the image is {image_size[0]}x{image_size[1]}"
        )

    mask = (class_indices == SKY_CLASS_INDEX).astype(np.uint8) * SKY_LABEL
    if unlabelled == "void":
        mask[class_indices == UNLABELLED_CLASS_INDEX] = VOID_LABEL
    labelled = np.count_nonzero(mask != VOID_LABEL)
    sky_fraction = np.count_nonzero(mask == SKY_LABEL) / labelled if labelled else 0.0
    buffer = io.BytesIO()
    PIL_Image.fromarray(mask).save(buffer, format="PNG")
    return {
        "image": encoded_image,
        "segmentation_mask": buffer.getvalue(),
        "file_name": example.file_name,
        "sky_fraction": np.float32(sky_fraction),
    }
