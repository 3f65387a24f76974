"""The image pipeline before OCR: a scanned page made clean, upright, black-on-white and at a set text height.

Steps, with OpenCV (headless):
grayscale; text height measured from the connected components of a rough binarization and the page
scaled so that the median character is ``target_height`` pixels high (a 150-dpi scan is enlarged, a
600-dpi one reduced); denoising (median filter at the native resolution, before grain is enlarged);
uneven lighting removed by dividing by the background (a large morphological closing); adaptive
(Gaussian-window) binarization; dark borders touching the page edge and specks removed; skew measured
on the cleaned mask (projection profile; the ``deskew`` package's Hough transform is the measured
alternative); one rotate-and-scale resampling; table rules removed; text columns found (gutters).
Tesseract gets the cleaned, lighting-normalized gray page (``Prepared.gray``): measured on grainy
pages it reads that far better than our binarization (en grain 200 dpi: 0.0% vs 32% CER).
Orientation (90/180/270°) is left to Tesseract's OSD in :mod:`mmedkit.corpus.ocr.engines`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TARGET_HEIGHT = 30  # median connected-component height in pixels Tesseract reads best (measured: bench_ocr.py)
MIN_SCALE, MAX_SCALE = 0.5, 3.0
MIN_MEDIAN_HEIGHT = 12  # characters smaller than this (about 100 dpi) lose strokes to a 3x3 median filter
_MAX_SKEW = 10.0  # degrees; larger estimates are layout artifacts (tables, figures), not paper skew


@dataclass(frozen=True)
class Prepared:
    """A page ready for OCR: ``binary`` (0 ink / 255 paper) and ``gray`` (lighting-normalized), with what was done."""

    binary: Any
    gray: Any
    scale: float
    skew: float
    ink: float  # fraction of ink pixels in ``binary`` after cleanup (0 on a blank page)
    char_height: float = TARGET_HEIGHT  # median character height in ``gray``, pixels
    ruled: int = 0  # table rules (long horizontal/vertical lines) removed
    columns: tuple[tuple[int, int], ...] = ()  # x ranges of text columns when a gutter splits the page
    noise: float = 0.0  # paper noise (gray levels) after the median filter and lighting normalization


def to_gray(image: Any) -> Any:
    """A PIL image or array as a 2-D uint8 array (alpha flattened onto white)."""
    import cv2

    if not isinstance(image, np.ndarray):
        if image.mode in ("RGBA", "LA", "P"):
            image = image.convert("RGBA")
            from PIL import Image

            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        image = np.asarray(image.convert("L"))
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2GRAY if image.shape[2] == 4 else cv2.COLOR_RGB2GRAY)
    if image.dtype != np.uint8:
        image = image.astype(np.uint8) if image.dtype != bool else (image * 255).astype(np.uint8)
    return image


def text_height(gray: Any) -> float | None:
    """Median height (pixels) of character-like connected components, or None when there are too few."""
    import cv2

    smooth = cv2.medianBlur(gray, 3)
    _, ink = cv2.threshold(smooth, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    h, w, area = stats[1:, cv2.CC_STAT_HEIGHT], stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_AREA]
    letters = (h >= 4) & (h <= gray.shape[0] / 20) & (w <= 3 * h) & (area >= 8)
    if letters.sum() < 20:
        return None
    return float(np.median(h[letters]))


def deskew_angle(ink: Any, method: str = "projection") -> float:
    """The rotation (degrees, counter-clockwise positive) that straightens the text of an ink mask (ink 255).

    ``projection`` (OpenCV): the angle whose rotation makes the row sums of a reduced mask most peaked (0.5°
    steps over ±10°, then 0.05°). ``hough``: the ``deskew`` package (Hough transform, 0.1° resolution; not a
    dependency, ``pip install deskew`` to compare).
    Measured on the 45 bench pages of en/ru/zh (15 degradations, skew 0-3°): projection exact on all, 0.23 s
    a page; hough off by up to 1.3° (two columns, grain) on 4 pages, 1.0 s a page. Hence the default.
    """
    import cv2

    small = ink
    if max(ink.shape) > 1000:
        f = 1000 / max(ink.shape)
        small = cv2.resize(ink, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    if method == "hough":
        try:
            from deskew import determine_skew
        except ImportError as exc:
            raise ImportError("skew method 'hough' needs the deskew package (pip install deskew)") from exc

        angle = determine_skew(small, min_deviation=0.1, min_angle=-_MAX_SKEW, max_angle=_MAX_SKEW)
        return float(angle) if angle is not None and np.isfinite(angle) and abs(angle) <= _MAX_SKEW else 0.0
    h, w = small.shape
    centre = (w / 2, h / 2)

    def score(angle: float) -> float:
        rotated = cv2.warpAffine(small, cv2.getRotationMatrix2D(centre, angle, 1.0), (w, h))
        rows = rotated.sum(axis=1, dtype=np.float64)
        return float(np.square(np.diff(rows)).sum())

    if not small.any():
        return 0.0
    best = max(np.arange(-_MAX_SKEW, _MAX_SKEW + 0.01, 0.5), key=score)
    best = max(np.arange(best - 0.5, best + 0.51, 0.05), key=score)
    return float(round(best, 2))


def rotate_scale(gray: Any, angle: float, scale: float) -> Any:
    """``gray`` rotated by ``angle`` degrees and scaled by ``scale`` in one resampling; new corners white."""
    import cv2

    h, w = gray.shape
    nw, nh = round(w * scale), round(h * scale)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    matrix[:, 2] += (nw / 2 - w / 2, nh / 2 - h / 2)
    flags = cv2.INTER_CUBIC if scale >= 1 else cv2.INTER_AREA
    return cv2.warpAffine(gray, matrix, (nw, nh), flags=flags, borderValue=255)


def normalize_lighting(gray: Any, char_height: float) -> Any:
    """``gray`` divided by its background (a closing wider than a character, on a reduced copy): even white paper."""
    import cv2

    f = min(1.0, 8 / max(char_height, 1))
    small = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else gray
    k = max(5, int(char_height * f * 2.5) | 1)
    background = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    background = cv2.GaussianBlur(background, (0, 0), k / 2)
    if f < 1:
        background = cv2.resize(background, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.divide(gray, np.maximum(background, 1), scale=255)


def paper_noise(gray: Any) -> float:
    """The page's noise in gray levels: median minus 16th percentile (one sigma from the lower half of the
    distribution, which survives paper clipped at white)."""
    sample = gray[::4, ::4]
    return float(np.median(sample) - np.percentile(sample, 16))


def binarize(gray: Any, char_height: float) -> Any:
    """Adaptive threshold over a window of about three characters (ink 0, paper 255): ink is darker than its
    surroundings by five times the paper's noise (:func:`paper_noise`), within 15-40 gray levels."""
    import cv2

    block = max(15, int(char_height * 3) | 1)
    return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block,
                                 float(np.clip(5 * paper_noise(gray), 15, 40)))


def clean_borders(binary: Any) -> Any:
    """Remove ink components that touch the page edge and are larger than a character (scanner shadows, book
    gutters, punched holes); text near the edge is kept."""
    import cv2

    ink = 255 - binary
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    h, w = binary.shape
    x, y, bw, bh = (stats[:, k] for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    touches = (x == 0) | (y == 0) | (x + bw >= w) | (y + bh >= h)
    remove = touches & ((bh > h / 20) | (bw > w / 20))
    remove[0] = False
    out = binary.copy()
    out[remove[labels]] = 255
    return out


def despeckle(binary: Any, char_height: float) -> Any:
    """Remove isolated ink specks much smaller than a character's dot (grain left after thresholding)."""
    import cv2

    ink = 255 - binary
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < max(3, (char_height / 12) ** 2)
    small[0] = False
    out = binary.copy()
    out[small[labels]] = 255
    return out


def remove_rules(gray: Any, char_height: float) -> tuple[Any, int]:
    """Table rules and underlines (ink runs longer than five characters, straight) whitened; returns their count.

    Tesseract takes a ruled table for a picture and reads none of it; without the rules the cells are text.
    """
    import cv2

    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    length = max(15, int(5 * char_height))
    rules = np.zeros_like(ink)
    count = 0
    for kernel in ((length, 1), (1, length)):
        found = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        count += cv2.connectedComponents(found)[0] - 1
        rules |= found
    if not count:
        return gray, 0
    rules = cv2.dilate(rules, np.ones((3, 3), np.uint8))
    return np.where(rules > 0, 255, gray).astype(np.uint8), count


def text_columns(gray: Any, char_height: float) -> tuple[tuple[int, int], ...]:
    """x ranges of the page's text columns: split at vertical gutters at least 1.5 characters wide that run
    through the whole text block (empty tuple for one column)."""
    import cv2

    _, ink = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    cols = ink.sum(axis=0) / 255
    inked = np.flatnonzero(cols > 0)
    if inked.size == 0:
        return ()
    left, right = int(inked[0]), int(inked[-1]) + 1
    width = right - left
    empty = cols[left:right] == 0
    gutters: list[tuple[int, int]] = []
    start = None
    for x, is_empty in enumerate(np.append(empty, False)):
        if is_empty and start is None:
            start = x
        elif not is_empty and start is not None:
            if x - start >= 1.5 * char_height and start > 0.2 * width and x < 0.8 * width:
                gutters.append((left + start, left + x))
            start = None
    if not gutters:
        return ()
    edges = [left, *[g for gutter in gutters for g in gutter], right]
    return tuple((edges[i], edges[i + 1]) for i in range(0, len(edges), 2))


def prepare(image: Any, dpi: float | None = None, target_height: int = TARGET_HEIGHT, deskew: bool = True,
            skew_method: str = "projection") -> Prepared:
    """Run the pipeline on a page image; ``dpi`` (when known) is the fallback for the text height; no scaling when
    ``target_height`` is 0 (engines that scale the page themselves).

    Analysis (text height, lighting, binarization, skew, borders) runs at the native resolution; the page is
    then rotated and scaled in one resampling.
    """
    import cv2

    gray = to_gray(image)
    height = text_height(gray) or 11 * (dpi or 300) / 72 * 0.5  # blank page: assume 11 pt body text
    if height >= MIN_MEDIAN_HEIGHT:  # grain, at the native resolution before it is enlarged
        gray = cv2.medianBlur(gray, 3)
    scale = float(np.clip(target_height / height, MIN_SCALE, MAX_SCALE)) if target_height else 1.0
    gray = normalize_lighting(gray, height)
    noise = paper_noise(gray)
    binary = binarize(gray, height)
    cleaned = despeckle(clean_borders(binary), height)
    gray = np.where((binary == 0) & (cleaned == 255), 255, gray).astype(np.uint8)  # borders and specks: paper
    angle = deskew_angle(255 - cleaned, skew_method) if deskew else 0.0
    ink = float((cleaned == 0).mean())
    if abs(angle) < 0.1 and abs(scale - 1) < 0.1:
        angle, scale = 0.0, 1.0
    else:
        gray = rotate_scale(gray, angle, scale)
    char_h = height * scale
    gray, ruled = remove_rules(gray, char_h)
    _, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return Prepared(binary=binary, gray=gray, scale=scale, skew=angle, ink=ink, char_height=char_h, ruled=ruled,
                    columns=text_columns(gray, char_h), noise=noise)
