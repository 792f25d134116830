"""Benchmark datasets (RITM layout: ``images/`` beside ``masks/``, paired by file stem) and single pairs.

Where the data comes from, in order:

1. the ``root`` argument: a folder holding ``berkeley/``, ``grabcut/``, ... (or the dataset folder
   itself);
2. the environment variable ``IISLIB_DATA`` (same meaning);
3. a download of the official zip with pooch into ``data/`` at the top of the checkout
   (``iislib.paths.DATA``; ``$IISLIB_HOME/data`` for an installed package), every extracted
   file checked against the SHA256 manifest shipped in ``iislib/experiment/manifests/``.

``python -m iislib data`` (``make data``) fetches and verifies Berkeley, GrabCut and DAVIS and prints
where they are.

Mask rules (``MaskRule``; a dataset's own by default, or ``mask_rule=`` / ``object=``):

=========== ==================================================================================
threshold   one channel, > 128 is foreground (Berkeley's)
grabcut     0 background, 255 foreground, grey (64 < v < 192, the 128 band) ignored (GrabCut's)
nonzero     every non-zero label is foreground, objects merged into one (DAVIS's)
object=L    the pixels labelled L are foreground, every other label background, 255 (void, as
            in PASCAL VOC) ignored
binary      any other folder, ``load_pair`` and the demo: a mask of at most two values (0/255,
            0/1 labels, black and one colour); a mask with more values is refused, naming
            them: a label map or a grey-level mask needs one of the rules above
=========== ==================================================================================

Files are read as image viewers show them: an EXIF Orientation tag (a phone photo) is applied,
to images and masks alike (``upright``). Within a folder every stem names one image and one mask:
two files of one stem (``x.jpg`` and ``x.png``) are refused.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from iislib import paths

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}

URLS: dict[str, str] = {
    "berkeley": "https://github.com/saic-vul/fbrs_interactive_segmentation/releases/download/v1.0/Berkeley.zip",
    "grabcut": "https://github.com/saic-vul/fbrs_interactive_segmentation/releases/download/v1.0/GrabCut.zip",
    "davis": "https://github.com/saic-vul/fbrs_interactive_segmentation/releases/download/v1.0/DAVIS.zip",
}
DATASET_NAMES: tuple[str, ...] = tuple(URLS)
MANIFESTS = Path(__file__).parent / "manifests"


def resolve_datasets(datasets: str | Sequence[str], what: str = "datasets") -> list[str]:
    """``"all"`` (``DATASET_NAMES``: Berkeley, GrabCut, DAVIS), a comma list or a sequence of
    benchmark names -> the names, in order, without repeats. ValueError for an unknown name or
    none, naming the option (``what``)."""
    names = (list(DATASET_NAMES) if datasets == "all" else
             [d.strip() for d in datasets.split(",") if d.strip()] if isinstance(datasets, str)
             else list(datasets))  # fmt: skip
    unknown = [d for d in names if d not in DATASET_NAMES]
    if unknown or not names:
        raise ValueError(f"{what} must name some of {', '.join(DATASET_NAMES)}, got "
                         f"{datasets!r} ('all': the {len(DATASET_NAMES)})")  # fmt: skip
    return list(dict.fromkeys(names))


class DataError(ValueError):
    """A dataset or file that cannot be used, with the path and the reason."""


@dataclass(frozen=True)
class Sample:
    """One evaluation instance.

    Attributes:
        name: the file stem, unique within its dataset.
        image: uint8 (H, W, 3) RGB.
        gt: bool (H, W) foreground.
        ignore: bool (H, W) pixels left out of scores and clicks, or None.
    """

    name: str
    image: np.ndarray
    gt: np.ndarray
    ignore: np.ndarray | None = None

    def digest(self) -> str:
        """SHA256 (32 hex digits) of what a result on this sample depends on: the image, the
        ground truth and the ignored pixels (shapes and dtypes included), not the name.

        The content digest of a sample held in memory (``load_pair``, arrays), for a cache
        key; a dataset's samples are keyed by their files (``Dataset.content_key``).
        """
        h = hashlib.sha256()
        for a in (self.image, self.gt, self.ignore):
            if a is None:
                h.update(b"none;")
                continue
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape};".encode())
            h.update(a.tobytes())
        return h.hexdigest()[:32]


# ----------------------------------------------------------------------------------------------
# reading files

# Grey images deeper than 8 bits, by PIL mode. PIL's own convert("RGB") clips these at 255
# instead of scaling them (a 16-bit photo became all white), so they are scaled here.
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


@contextmanager
def open_image(source: str | Path | bytes, what: str) -> Iterator[Image.Image]:
    """A PIL image opened lazily (only the header is read), for ``with``.

    ``source`` is a path or the file's bytes; ``what`` names it in errors. Raises DataError when
    it is no image, cannot be read (OSError), or is a decompression bomb: PIL's warning (over
    ``Image.MAX_IMAGE_PIXELS``) is an error here too, as such a file would fill the memory.
    """
    if isinstance(source, bytes):
        if not source:
            raise DataError(f"{what}: the file is empty")
        stream: Any = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{what}: no such file")
        stream = path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as im:
                yield im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{what}: refused as a decompression bomb ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(
            f"{what}: not a readable image (not an image file PIL decodes, such as PNG, JPEG, "
            f"BMP, TIFF, or a damaged one; {type(e).__name__}: {e})"
        ) from None


ORIENTATION = 0x0112  # the EXIF tag (274) a camera writes instead of rotating the pixels


def orientation(im: Image.Image, header_only: bool = False) -> int:
    """The EXIF Orientation of ``im`` (1..8; 1, upright, when absent or out of range).

    ``header_only``: never decode the pixels to find it. PIL decodes a whole PNG to look for an
    eXIf chunk placed after its pixels, and sizes are checked before anything is decoded; a
    PNG's eXIf before its pixels (where PIL and cameras write it) is seen either way.
    """
    if header_only and im.format == "PNG" and "exif" not in im.info:
        return 1
    value = im.getexif().get(ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) as a viewer shows ``im``: swapped for the orientations that turn it a
    quarter (5-8); from the header, nothing decoded."""
    w, h = im.size
    return (h, w) if orientation(im, header_only=True) >= 5 else (w, h)


def upright(im: Image.Image) -> Image.Image:
    """``im`` as image viewers show it: its EXIF Orientation applied (``ImageOps.exif_transpose``),
    so that a mask drawn on the upright photo lines up with it. ``im`` itself when upright."""
    if orientation(im) == 1:
        return im
    out = ImageOps.exif_transpose(im)
    out.format = im.format  # _deep_grey reads 32-bit PNG grey by its format
    return out


def _deep_grey(im: Image.Image, what: str, mask: bool = False) -> tuple[np.ndarray, float] | None:
    """(values, full scale) of a grey image deeper than 8 bits; None for 8-bit modes.

    16-bit grey (PIL modes I;16*, and mode I when read from a PNG, as older Pillows do) has full
    scale 65535; 32-bit float (mode F) is accepted in [0, 1]; other 32-bit integers have no
    defined range and are refused, except in a ``mask`` whose values are all in 0..255 (a label
    map).
    """
    if im.mode in SIXTEEN_BIT_MODES or (im.mode == "I" and im.format == "PNG"):
        return np.asarray(im).astype(np.float64), 65535.0
    if im.mode == "I" and mask:
        a = np.asarray(im)
        if a.size and 0 <= a.min() and a.max() <= 255:
            return a.astype(np.float64), 255.0
    if im.mode == "I":
        raise DataError(
            f"{what}: 32-bit integer pixels (PIL mode I) have no defined range; save the image "
            "with 8 or 16 bits per channel"
        )
    if im.mode == "F":
        a = np.asarray(im).astype(np.float64)
        if not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0:
            raise DataError(
                f"{what}: 32-bit float pixels (PIL mode F) must be finite and in [0, 1]; "
                f"found {np.nanmin(a):g} to {np.nanmax(a):g}"
            )
        return a, 1.0
    return None


def _to_uint8(values: np.ndarray, full_scale: float) -> np.ndarray:
    """Values in [0, full_scale] -> uint8 0..255, rounded (65535 -> 255, 32896 -> 128)."""
    return np.rint(values * (255.0 / full_scale)).astype(np.uint8)


def _labels_as_255(a: np.ndarray) -> np.ndarray:
    """A mask whose values are all 0 or 1 (labels, not grey levels) scaled to 0/255.

    Such a mask read as grey levels is entirely below any threshold and would be called empty;
    a mask of only 0 stays empty. Other masks are returned unchanged.
    """
    if a.dtype != np.bool_ and a.size and int(np.count_nonzero((a == 0) | (a == 1))) == a.size:
        return a.astype(np.uint8) * np.uint8(255)
    return a


def image_rgb(im: Image.Image, what: str = "image") -> np.ndarray:
    """A PIL image as uint8 (H, W, 3) RGB: 16-bit grey scaled (v / 257), float in [0, 1] x 255.

    The EXIF orientation is applied (``upright``). Raises DataError for modes without a defined
    range (32-bit integer, float outside [0, 1]) or that PIL cannot convert.
    """
    im = upright(im)
    deep = _deep_grey(im, what)
    if deep is not None:
        grey = _to_uint8(*deep)
        return np.repeat(grey[..., None], 3, axis=-1)
    try:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except ValueError as e:  # modes such as LAB or HSV
        raise DataError(f"{what}: PIL mode {im.mode} cannot be read as RGB ({e})") from None


def mask_pixels(im: Image.Image, what: str = "mask") -> np.ndarray:
    """A mask file's pixels for the binary rule of a pair: uint8 (H, W) grey or (H, W, 3) RGB.

    The EXIF orientation is applied (``upright``); labels 0/1 become 0/255, 16-bit grey is
    scaled as in ``image_rgb``. A mask of more than two values (grey levels, colours or palette
    indices) is refused with a DataError naming them (``check_binary``): it needs a stated
    rule (``load_pair(..., mask_rule=...)``).
    """
    im = upright(im)
    if im.mode == "P":  # the indices are the labels: name them, not their colours
        check_binary(np.asarray(im), what, "palette indices")
    if im.mode in SIXTEEN_BIT_MODES or im.mode in ("I", "F", "L", "1"):
        deep = _deep_grey(im, what, mask=True)
        if deep is None:
            out = _labels_as_255(np.asarray(im.convert("L")))
        else:
            values, full = deep
            labels = _labels_as_255(values)
            out = labels if labels is not values else _to_uint8(values, full)
    else:
        out = _labels_as_255(image_rgb(im, what))
    check_binary(out, what)
    return out


def read_image(path: str | Path) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB, upright; DataError naming the file if unreadable.

    8-bit files are converted by PIL (grey repeated, alpha dropped, palette applied); 16-bit
    grey is scaled to 8 bits; see ``image_rgb`` for the modes that are refused.
    """
    with open_image(path, str(path)) as im:
        return image_rgb(im, str(path))


def mask_values(im: Image.Image, what: str = "mask", labels: bool = False) -> np.ndarray:
    """A mask's values as (H, W), upright: the grey level, the palette index or the first channel.

    uint8, except with ``labels`` (the label rules: nonzero, object) for a 16- or 32-bit integer
    mask, whose values are kept as int32 labels. Otherwise 16-bit grey is scaled to 8 bits, except
    0/1 labels, which are kept as they are (the rules then read 0/1 as labels).
    """
    im = upright(im)
    if im.mode == "1":
        return np.asarray(im).astype(np.uint8) * np.uint8(255)
    if labels and (im.mode in SIXTEEN_BIT_MODES or im.mode == "I"):
        return np.asarray(im).astype(np.int32)
    deep = _deep_grey(im, what, mask=True)
    if deep is not None:
        values, full = deep
        if _labels_as_255(values) is not values:
            return values.astype(np.uint8)
        return _to_uint8(values, full)
    a = np.asarray(im)
    return a[..., 0] if a.ndim == 3 else a


def read_mask_values(path: str | Path, labels: bool = False) -> np.ndarray:
    """A mask file as (H, W) values (``mask_values``); DataError naming the file if unreadable."""
    with open_image(path, f"{path} (mask)") as im:
        return mask_values(im, f"{path} (mask)", labels)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file as viewers show it (EXIF orientation applied), from its
    header (nothing decoded); DataError if unreadable."""
    with open_image(path, str(path)) as im:
        return upright_size(im)


@functools.lru_cache(maxsize=16384)
def _file_digest(path: str, size: int, mtime_ns: int, ctime_ns: int = 0, inode: int = 0) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


def file_digest(path: str | Path) -> str:
    """SHA256 (32 hex digits) of a file's bytes, computed once per (path, size, mtime, ctime,
    inode).

    A file rewritten in place gets a new mtime, so it is hashed again; so does one written with
    its old mtime restored (``cp -p``, ``os.utime``: its ctime changes) or replaced by another
    file (its inode changes). The same bytes give the same digest whatever their mtime or folder.
    """
    p = Path(path).resolve()
    st = p.stat()
    return _file_digest(str(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def fit_side(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is ``max_side`` (unchanged if it fits)."""
    longer = max(width, height)
    if longer <= max_side:
        return width, height
    scale = max_side / longer
    return max(1, round(width * scale)), max(1, round(height * scale))


def largest_side_within(width: int, height: int, max_pixels: int) -> int:
    """The largest longer side that brings a ``width`` x ``height`` image within ``max_pixels``."""
    longer = max(width, height)

    def fits(side: int) -> bool:
        w, h = fit_side(width, height, side)
        return w * h <= max_pixels

    # The square-root guess is off by rounding either way; the pixel count grows with the side.
    side = min(longer, max(1, int(longer * (max_pixels / (width * height)) ** 0.5)))
    while side > 1 and not fits(side):
        side -= 1
    while side < longer and fits(side + 1):
        side += 1
    return side


def check_pixels(width: int, height: int, max_pixels: int | None, what: str) -> None:
    """DataError when ``width * height`` is over ``max_pixels`` (None: no limit), saying how to
    downscale."""
    if max_pixels is None or width * height <= max_pixels:
        return
    side = largest_side_within(width, height, max_pixels)
    raise DataError(
        f"{what}: {width}x{height} is {width * height / 1e6:.3g} megapixels, over the limit of "
        f"{max_pixels / 1e6:g} megapixels (iislib.experiment.demo.MAX_PIXELS: larger images are slow and "
        f"may run out of memory); downscale it to a longer side of at most {side} "
        f"pixels (iislib demo --max-side {side})"
    )


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) resized to ``size`` = (width, height) with Lanczos filtering."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def resize_nearest_pixels(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) mask pixels resized to ``size`` = (width, height), nearest
    neighbour (no value that is not in the mask appears)."""
    if (values.shape[1], values.shape[0]) == tuple(size):
        return values
    return np.asarray(Image.fromarray(values).resize(size, Image.Resampling.NEAREST))


def rule_threshold(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Berkeley's rule: > 128 is foreground, nothing ignored."""
    return values > 128, None


def rule_grabcut(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """GrabCut's rule: >= 192 foreground, the grey band (64 < v < 192) ignored."""
    ignore = (values > 64) & (values < 192)
    return values >= 192, (ignore if ignore.any() else None)


def rule_nonzero(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """DAVIS's rule: every non-zero label is foreground."""
    return values > 0, None


VOID = 255
"""The label of pixels left out (PASCAL VOC's void border) under ``object=LABEL``."""


def rule_object(values: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray | None]:
    """One object of a label map: the pixels labelled ``label`` are foreground, every other
    label background, ``VOID`` (255) ignored unless it is the object's label."""
    ignore = (values == VOID) if label != VOID else None
    return values == label, (ignore if ignore is not None and ignore.any() else None)


def _more_than_two(values: np.ndarray) -> bool:
    """Whether (H, W) or (H, W, C) ``values`` hold more than two distinct values (colours)."""
    flat = values.reshape(-1, values.shape[-1]) if values.ndim == 3 else values.reshape(-1)
    if flat.ndim == 2:  # one integer per colour
        flat = flat.astype(np.int64) @ (256 ** np.arange(flat.shape[1], dtype=np.int64))[::-1]
    if flat.size == 0:
        return False
    rest = flat[flat != flat[0]]
    return bool(rest.size) and bool((rest != rest[0]).any())


def _values_found(values: np.ndarray, kind: str = "values", limit: int = 8) -> str:
    """How many distinct values (colours as (r, g, b)) ``values`` hold, and the first ``limit``."""
    if values.ndim == 3:
        found = [tuple(int(c) for c in v) for v in np.unique(values.reshape(-1, values.shape[-1]),
                                                             axis=0)]  # fmt: skip
    else:
        found = [int(v) for v in np.unique(values)]
    text = ", ".join(str(v) for v in found[:limit])
    return f"{len(found)} distinct {kind}: {text}{', ...' if len(found) > limit else ''}"


RULE_HELP = (
    "say how to read it: mask_rule='nonzero' (every non-zero label is the object), "
    "object=LABEL (one label is the object, 255 is ignored as void), mask_rule='threshold' "
    "(a grey-level mask: > 128 is foreground) or mask_rule='grabcut' (128 is ignored); on the "
    "command line --mask-rule RULE or --object LABEL"
)


def check_binary(values: np.ndarray, what: str | None = None, kind: str = "values") -> None:
    """DataError naming the values found when ``values`` hold more than two (a label map, a
    grey-level or a JPEG mask): reading such a mask by a threshold nobody chose gave silently
    wrong ground truths (a palette mask of objects 1 and 2 and a void border 255 became the
    border alone)."""
    if not _more_than_two(values):
        return
    raise DataError(
        f"{what + ': ' if what else ''}the mask has "
        + _values_found(values, kind)
        + f", not the two of a binary mask; {RULE_HELP}"
    )


RULE_NAMES: tuple[str, ...] = ("binary", "threshold", "grabcut", "nonzero", "object")


@dataclass(frozen=True)
class MaskRule:
    """How a mask's values become (gt, ignore); ``str(rule)`` names it (and enters the cache key).

    ``name`` is one of ``RULE_NAMES``: ``binary`` (at most two values, > 128 is foreground;
    more are refused), ``threshold`` (> 128), ``grabcut`` (128 ignored), ``nonzero`` (every
    non-zero label), ``object`` (the pixels labelled ``label``; 255 ignored). Values that are
    all 0 or 1 are labels (1 is foreground) under every rule but ``object``.
    """

    name: str
    label: int | None = None

    def __post_init__(self) -> None:
        if self.name not in RULE_NAMES:
            raise DataError(f"unknown mask rule {self.name!r}; known: {', '.join(RULE_NAMES)}")
        if (self.name == "object") != (self.label is not None):
            raise DataError("a label goes with the object rule only: object=LABEL")
        if self.label is not None and (
            isinstance(self.label, bool) or not isinstance(self.label, int | np.integer)
            or self.label < 0
        ):  # fmt: skip
            raise DataError(f"object must be a label >= 0 (an integer), got {self.label!r}")

    def __str__(self) -> str:
        return f"object={self.label}" if self.name == "object" else self.name

    @property
    def reads_labels(self) -> bool:
        """Whether the rule reads labels (16-bit values kept as they are, not scaled)."""
        return self.name in ("nonzero", "object")

    def __call__(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(H, W) values -> (bool gt, bool ignore or None); DataError for ``binary`` on more than
        two values."""
        if self.name == "object":
            assert self.label is not None
            return rule_object(values, int(self.label))
        values = _labels_as_255(values)
        if self.name == "binary":
            check_binary(values)
            return rule_threshold(values)
        return {"threshold": rule_threshold, "grabcut": rule_grabcut,
                "nonzero": rule_nonzero}[self.name](values)  # fmt: skip


RuleFunction = Callable[[np.ndarray], tuple[np.ndarray, "np.ndarray | None"]]
RULES: dict[str, MaskRule] = {
    "berkeley": MaskRule("threshold"),
    "grabcut": MaskRule("grabcut"),
    "davis": MaskRule("nonzero"),
    "folder": MaskRule("binary"),
}


def get_rule(mask_rule: str | MaskRule | None = None, object: int | None = None) -> MaskRule | None:
    """The rule a user states: ``mask_rule`` (a name of ``RULE_NAMES`` or a MaskRule) or
    ``object=LABEL``; None when neither is given (the dataset's own rule applies)."""
    if object is not None:
        if mask_rule not in (None, "object"):
            raise DataError(f"give mask_rule={mask_rule!r} or object={object!r}, not both")
        return MaskRule("object", object)
    if mask_rule is None or isinstance(mask_rule, MaskRule):
        return mask_rule
    if mask_rule == "object":
        raise DataError("mask_rule='object' needs the object's label: object=LABEL")
    return MaskRule(str(mask_rule))


@functools.lru_cache(maxsize=4)
def _benchmark_masks(manifests: str) -> dict[str, str]:
    """{SHA256 prefix (32 hex digits, as ``file_digest``) of every mask file listed in the
    shipped manifests under ``manifests``: its dataset's name}."""
    out = {}
    for mf in sorted(Path(manifests).glob("*.txt")):
        for rel, digest in read_manifest(mf).items():
            if rel.startswith("masks/") and mf.stem in RULES:
                out[digest[:32]] = mf.stem
    return out


def benchmark_rule(mask_path: str | Path) -> MaskRule | None:
    """The rule of the benchmark whose mask ``mask_path`` is, byte for byte (a file listed in a
    shipped SHA256 manifest: a copy of Berkeley or GrabCut in any folder), or None."""
    name = _benchmark_masks(str(MANIFESTS)).get(file_digest(mask_path))
    return RULES[name] if name else None


def rule_name(rule: MaskRule | RuleFunction) -> str:
    """A rule's name for the cache key: ``str(rule)``, or a plain function's qualified name."""
    if isinstance(rule, MaskRule):
        return str(rule)
    return f"{getattr(rule, '__module__', '')}.{getattr(rule, '__qualname__', repr(rule))}"


def apply_rule(
    rule: MaskRule | RuleFunction, values: np.ndarray, what: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """``rule`` on (H, W) mask ``values``; a refusal names the mask (``what``). A plain function
    sees 0/1 labels as 0/255, as the shipped rules do."""
    try:
        return rule(values) if isinstance(rule, MaskRule) else rule(_labels_as_255(values))
    except DataError as e:
        raise DataError(f"{what}: {e}") from None


def check_pair(image: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None, what: str) -> None:
    """Raise DataError when a sample cannot be evaluated (``what`` names it in the message)."""
    if image.shape[:2] != gt.shape:
        raise DataError(
            f"{what}: image is {image.shape[1]}x{image.shape[0]} (WxH) but mask is "
            f"{gt.shape[1]}x{gt.shape[0]}"
        )
    valid = ~ignore if ignore is not None else np.ones(gt.shape, dtype=bool)
    if not gt[valid].any():
        raise DataError(f"{what}: the mask is empty (no foreground pixel)")
    if gt[valid].all():
        raise DataError(f"{what}: the mask is all foreground (no background pixel)")


def load_sample(
    image_path: str | Path,
    mask_path: str | Path,
    rule: MaskRule | RuleFunction = RULES["folder"],
    name: str | None = None,
) -> Sample:
    """Read and check one (image, mask) pair with a dataset's mask ``rule``.

    A mask whose values are all 0 or 1 is read as labels (1 is foreground) under every rule
    but ``object``; both files are read upright (EXIF orientation applied). Under ``binary``, a
    benchmark's own mask file (``benchmark_rule``) is read by its benchmark's rule.
    """
    image = read_image(image_path)
    if isinstance(rule, MaskRule) and rule.name == "binary":
        rule = benchmark_rule(mask_path) or rule
    labels = isinstance(rule, MaskRule) and rule.reads_labels
    gt, ignore = apply_rule(rule, read_mask_values(mask_path, labels), str(mask_path))
    check_pair(image, gt, ignore, f"{image_path} / {mask_path}")
    return Sample(name or Path(image_path).stem, image, gt, ignore)


def mask_from_array(mask: np.ndarray) -> np.ndarray:
    """The binary rule of a pair on a decoded mask: pixels whose channel mean is < 128 are
    background.

    bool masks are taken as they are; masks whose values are all 0 or 1 are labels (1 is
    foreground), so a 0/1 PNG is not read as an empty mask. A mask of more than two values
    (grey levels or colours) is refused with a DataError naming them (``check_binary``).
    """
    a = np.asarray(mask)
    if a.ndim not in (2, 3):
        raise DataError(f"a mask must be (H, W) or (H, W, C), got shape {a.shape}")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * np.uint8(255)
    else:
        a = _labels_as_255(a)
        check_binary(a)
    if a.ndim == 3:
        a = a[..., :3].mean(axis=-1) if a.shape[-1] >= 3 else a[..., 0]
    return a >= 128


def load_pair(
    image_path: str | Path,
    mask_path: str | Path,
    *,
    max_side: int | None = None,
    max_pixels: int | None = None,
    mask_rule: str | MaskRule | None = None,
    object: int | None = None,
) -> Sample:
    """An image and a mask from any two files, read upright (EXIF orientation applied).

    By default the mask must be binary (at most two values, grey levels or colours): pixels
    whose channel mean is below 128 are background, the others foreground; a mask of 0/1
    labels has 1 as foreground. A mask of more values is refused, naming them, unless a rule
    is stated: ``mask_rule`` or ``object`` (see ``MaskRule``); a benchmark's own mask file
    (``benchmark_rule``) is read by its benchmark's rule. Sizes are checked from the file
    headers before anything is decoded.

    Args:
        image_path, mask_path: the two files (any format PIL reads; 16-bit grey is scaled).
        max_side: downscale both so that the longer side is at most this (the image with a
            Lanczos filter, the mask by nearest neighbour), or None.
        max_pixels: refuse a pair larger than this after ``max_side`` (None: no limit).
        mask_rule: "threshold", "grabcut", "nonzero" or "binary" (the default), as in
            ``load_dataset``; the sample's ``ignore`` is set by the rules that ignore pixels.
        object: the label of the object in a label map (255 is then ignored as void).

    Raises:
        DataError naming the file and the problem: unreadable file or decompression bomb,
        sizes differ (after EXIF orientation), over ``max_pixels``, a mask of more than two
        values without a rule, mask empty or all foreground.
    """
    rule = get_rule(mask_rule, object)
    if (rule is None or rule.name == "binary") and Path(mask_path).is_file():
        rule = benchmark_rule(mask_path) or rule
    what = f"{image_path} / {mask_path}"
    with open_image(image_path, str(image_path)) as im, open_image(mask_path, str(mask_path)) as mk:
        (w, h), (mw, mh) = upright_size(im), upright_size(mk)
        if (w, h) != (mw, mh):
            turned = [f"{n} {o}" for n, o in (("image", orientation(im, header_only=True)),
                                              ("mask", orientation(mk, header_only=True)))
                      if o != 1]  # fmt: skip
            note = f" (EXIF orientation applied: {', '.join(turned)})" if turned else ""
            raise DataError(f"{what}: image is {w}x{h} (WxH) but mask is {mw}x{mh}{note}")
        size = fit_side(w, h, max_side) if max_side is not None else (w, h)
        check_pixels(*size, max_pixels, str(image_path))
        image = resize_rgb(image_rgb(im, str(image_path)), size)
        if rule is None or rule.name == "binary":
            values = resize_nearest_pixels(mask_pixels(mk, str(mask_path)), size)
            gt, ignore = mask_from_array(values), None
        else:
            values = mask_values(mk, str(mask_path), labels=rule.reads_labels)
            gt, ignore = apply_rule(rule, resize_nearest_pixels(values, size), str(mask_path))
    check_pair(image, gt, ignore, what)
    return Sample(Path(image_path).stem, image, gt, ignore)


# ----------------------------------------------------------------------------------------------
# datasets


class Dataset:
    """A folder of (image, mask) pairs, read lazily one sample at a time.

    ``len(ds)``, ``ds[i]`` (a Sample), ``ds.names`` and iteration; ``ds.subset(n)`` keeps the first n.
    ``ds.content_key(name)`` is what a result on a sample depends on (its files' digests and the
    mask rule), for the sweep's cache key.
    """

    def __init__(
        self,
        folder: str | Path,
        rule: MaskRule | RuleFunction = RULES["folder"],
        name: str | None = None,
    ):
        folder = Path(folder)
        images, masks = folder / "images", folder / "masks"
        for d in (images, masks):
            if not d.is_dir():
                raise DataError(f"{folder}: missing folder {d.name}/ (expected images/ and masks/)")
        imgs, msks = _one_file_per_stem(folder, images), _one_file_per_stem(folder, masks)
        unpaired = sorted(set(imgs) ^ set(msks))
        if unpaired:
            raise DataError(
                f"{folder}: {len(unpaired)} file(s) without a partner in images/ and masks/: "
                + ", ".join(unpaired[:5])
            )
        if not imgs:
            raise DataError(f"{folder}: no images in {images}")
        self.folder = folder
        self.name = name or folder.name
        self.rule = rule
        self._pairs = [(stem, imgs[stem], msks[stem]) for stem in sorted(imgs)]

    @property
    def names(self) -> list[str]:
        return [stem for stem, _, _ in self._pairs]

    def __len__(self) -> int:
        return len(self._pairs)

    def _paths(self, name: str) -> tuple[Path, Path]:
        """(image, mask) files of the sample ``name``."""
        index = self.__dict__.get("_by_name")
        if index is None or index[0] is not self._pairs:  # built once per list of pairs
            index = (self._pairs, {stem: (i, m) for stem, i, m in self._pairs})
            self._by_name = index
        try:
            return index[1][name]
        except KeyError:
            raise ValueError(f"dataset {self.name!r} has no image named {name}") from None

    def content_key(self, name: str) -> str:
        """What a result on sample ``name`` depends on, for a cache key: the reader's revision,
        the mask rule and the SHA256 of the image and mask files (``file_digest``: hashed once
        per file, size and mtime). The same bytes give the same key, whatever their mtime."""
        image, mask = self._paths(name)
        return (f"read{READER_REVISION}:{rule_name(self.rule)}:{file_digest(image)}:"
                f"{file_digest(mask)}")  # fmt: skip

    def __getitem__(self, i: int | str) -> Sample:
        if isinstance(i, str):
            i = self.names.index(i)
        stem, img, msk = self._pairs[i]
        return load_sample(img, msk, self.rule, name=stem)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def subset(self, n: int | None) -> Dataset:
        """The first ``n`` samples (all when n is None)."""
        out = object.__new__(Dataset)
        out.__dict__.update(self.__dict__)
        out._pairs = self._pairs[:n] if n is not None else list(self._pairs)
        return out

    def select(self, names: Sequence[str]) -> Dataset:
        """The samples named ``names`` (image stems, e.g. "12003"), in that order.

        A "dataset/stem" name (a click record's image id) is accepted when its dataset part is
        this dataset's name. ValueError names the ones this dataset lacks.
        """
        by_name = {p[0]: p for p in self._pairs}
        stems = [n.split("/", 1)[1] if n.startswith(f"{self.name}/") else n for n in names]
        missing = [n for n, s in zip(names, stems, strict=True) if s not in by_name]
        if missing:
            raise ValueError(f"dataset {self.name!r} has no image named {', '.join(missing)}")
        out = object.__new__(Dataset)
        out.__dict__.update(self.__dict__)
        out._pairs = [by_name[s] for s in stems]
        return out

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self)} samples, {self.folder})"


READER_REVISION = 2
"""Raised when the reading of a file changes what it gives (2: EXIF orientation applied, mask
rules stated), so that results cached on the earlier reading are not reused."""


def _one_file_per_stem(folder: Path, sub: Path) -> dict[str, Path]:
    """{stem: file} of the images in ``sub``; DataError naming the files of every stem that has
    more than one (images/x.jpg and images/x.png: which one goes with masks/x.png?)."""
    by_stem: dict[str, list[Path]] = {}
    for p in sorted(sub.iterdir()):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            by_stem.setdefault(p.stem, []).append(p)
    twice = {stem: ps for stem, ps in by_stem.items() if len(ps) > 1}
    if twice:
        named = "; ".join(", ".join(f"{sub.name}/{p.name}" for p in ps) for ps in twice.values())
        raise DataError(
            f"{folder}: {len(twice)} name(s) with more than one file in {sub.name}/, so which one "
            f"is meant is ambiguous: {named}; keep one file per name"
        )
    return {stem: ps[0] for stem, ps in by_stem.items()}


def data_root(root: str | Path | None = None) -> Path | None:
    """The local data root: ``root``, else ``$IISLIB_DATA``, else None (download)."""
    if root is not None:
        return Path(root)
    env = os.environ.get("IISLIB_DATA")
    return Path(env) if env else None


def _find_layout(base: Path, name: str) -> Path | None:
    """The folder holding images/ and masks/ for ``name`` under ``base`` (case-insensitive)."""
    if (base / "images").is_dir() and (base / "masks").is_dir() and base.name.lower() == name:
        return base
    for cand in (base / name, base / name.capitalize(), base / name.upper(), base / "GrabCut"):
        if cand.name.lower() == name and (cand / "images").is_dir():
            return cand
    for cand in base.rglob("images"):
        if cand.parent.name.lower() == name and (cand.parent / "masks").is_dir():
            return cand.parent
    return None


def load_dataset(
    name_or_path: str | Path,
    root: str | Path | None = None,
    *,
    mask_rule: str | MaskRule | None = None,
    object: int | None = None,
) -> Dataset:
    """A benchmark by name (``berkeley``, ``grabcut``, ``davis``) or any folder in the same layout.

    Args:
        name_or_path: a dataset name, or the path of a folder with images/ and masks/.
        root: folder holding the named datasets; default ``$IISLIB_DATA``, else download.
        mask_rule: how masks are read (``MaskRule``): "threshold", "grabcut", "nonzero" or
            "binary"; default the benchmark's own rule, "binary" for any other folder (a
            mask of more than two values is then refused, naming them).
        object: read label maps as this one object (255 ignored as void), instead of a rule.

    Raises:
        DataError: an unknown name, a missing or ambiguous folder, two files of one stem, an
            unknown rule (the samples' own errors come when they are read).
    """
    rule = get_rule(mask_rule, object)
    key = str(name_or_path)
    if key.lower() in URLS:
        name = key.lower()
        base = data_root(root)
        if base is not None:
            if base.exists() and not base.is_dir():
                raise DataError(
                    f"data root {base} is a file, not a folder (from root= or IISLIB_DATA: "
                    "the folder holding berkeley/, grabcut/, ...)"
                )
            if not base.is_dir():
                raise DataError(f"data root {base} does not exist (from root= or IISLIB_DATA)")
            folder = _find_layout(base, name)
            if folder is None:
                raise DataError(f"{base}: no {name}/ folder with images/ and masks/ in it")
        else:
            folder = download(name)
        return Dataset(folder, rule or RULES[name], name=name)
    path = Path(key)
    if path.is_dir():
        return Dataset(path, rule or RULES["folder"], name=path.name)
    raise DataError(
        f"unknown dataset {key!r}: not one of {', '.join(DATASET_NAMES)} and not a folder"
    )


# ----------------------------------------------------------------------------------------------
# download (pooch) and verification


def read_manifest(path: str | Path) -> dict[str, str]:
    """``sha256sum`` format (``HASH  relative/path``) -> {relative path: hash}."""
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            out[rel.strip().removeprefix("./")] = digest
    return out


def verify_folder(folder: Path, manifest: dict[str, str]) -> None:
    """Raise DataError listing every file of ``manifest`` missing or with another SHA256."""
    import pooch

    bad = []
    for rel, digest in manifest.items():
        f = folder / rel
        if not f.is_file():
            bad.append(f"{rel} (missing)")
        elif pooch.file_hash(str(f)) != digest:
            bad.append(f"{rel} (checksum differs)")
    if bad:
        raise DataError(f"{folder}: {len(bad)} file(s) fail verification: " + ", ".join(bad[:5]))


def download(
    name: str,
    url: str | None = None,
    manifest: dict[str, str] | None = None,
    cache: str | Path | None = None,
) -> Path:
    """Download and unzip dataset ``name`` into the cache; verify it; return its folder.

    Args:
        name: dataset name (folder name inside the zip, case-insensitive).
        url: zip address (default: the official one in ``URLS``).
        manifest: {relative path: sha256} (default: the shipped one, ``MANIFESTS/<name>.txt``;
            a name without one is warned about, its files not checked).
        cache: where to keep it (default ``iislib.paths.DATA``, the checkout's ``data/``).
    """
    import pooch

    url = url or URLS[name]
    cache = Path(cache) if cache is not None else paths.DATA  # read on use: IISLIB_HOME, tests
    if manifest is None:
        mf = MANIFESTS / f"{name}.txt"
        manifest = read_manifest(mf) if mf.is_file() else None
    extract_dir = cache / name
    files = pooch.retrieve(
        url,
        known_hash=None,
        fname=f"{name}.zip",
        path=cache,
        processor=pooch.Unzip(extract_dir=str(extract_dir)),
        progressbar=False,
    )
    if not files:
        raise DataError(f"{url}: the archive is empty")
    folder = _find_layout(extract_dir, name)
    if folder is None:
        raise DataError(f"{url}: the archive has no {name}/images and masks/ folders")
    if manifest is None:
        warnings.warn(f"no SHA256 manifest for {name}: files not verified", stacklevel=2)
    else:
        verify_folder(folder, manifest)
    return folder


@dataclass(frozen=True)
class Fetched:
    """A dataset found (or downloaded) and verified by ``fetch``."""

    name: str
    folder: Path
    images: int
    verified: bool  # False: no manifest ships for it, files not checked


def fetch(
    names: tuple[str, ...] = DATASET_NAMES,
    root: str | Path | None = None,
    cache: str | Path | None = None,
) -> list[Fetched]:
    """Find or download each dataset of ``names`` and check every file against its manifest.

    Args:
        names: dataset names (``DATASET_NAMES``).
        root: a local data root (default ``$IISLIB_DATA``); None downloads into ``cache``.
        cache: the download folder (default ``iislib.paths.DATA``).
    Raises:
        DataError: an unknown name, a missing folder, or files that fail verification (listed).
    """
    out = []
    for name in names:
        if name not in URLS:
            raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}")
        base = data_root(root)
        if base is None:
            folder = download(name, cache=cache)
        else:
            folder = load_dataset(name, root=base).folder
        mf = MANIFESTS / f"{name}.txt"
        if mf.is_file():
            verify_folder(folder, read_manifest(mf))
        out.append(
            Fetched(name, folder, len(Dataset(folder, RULES[name], name=name)), mf.is_file())
        )
    return out
