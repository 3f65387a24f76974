"""The OCR image pipeline and engines on pages drawn here: skew, lighting, borders, rules, columns, orientation.

The pipeline tests need OpenCV and the Debian fonts; the engine tests need ``tesseract`` (``tests/ocr_setup.sh``)
and rapidocr-onnxruntime; each is skipped with the reason when its part is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (corpus extra) missing")

from mmedkit.corpus.ocr import image as im  # noqa: E402
from mmedkit.corpus.ocr.engines import _reading_order  # noqa: E402
from mmedkit.corpus.ocr.synth import FONT_FILES, Degradation, character_error_rate, degrade, render_page  # noqa: E402

pytestmark = pytest.mark.skipif(any(not Path(p).exists() for p, _ in FONT_FILES.values()),
                                reason="fonts missing (run tests/ocr_setup.sh)")
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract missing (tests/ocr_setup.sh)")

EN = ["Hypertension is a common chronic condition in which the blood pressure in the arteries is persistently "
      "elevated. Long-term high blood pressure is a major risk factor for stroke and heart failure.",
      "First-line treatment includes lifestyle changes such as reducing salt intake, regular physical exercise "
      "and weight loss; thiazide diuretics or ACE inhibitors follow when these are not enough."]


@pytest.mark.parametrize("skew", [-2.5, 1.2, 3.0])
def test_skew_is_measured_and_removed(skew: float) -> None:
    page, _ = render_page(EN, "en")
    scan = degrade(page, Degradation("s", dpi=150, skew=skew, grain=20), seed=1)
    prepared = im.prepare(scan, 150)
    assert abs(prepared.skew + skew) <= 0.1  # the correction is the opposite rotation
    assert 1.5 < prepared.scale < 2.5  # 150 dpi text enlarged to the target height
    assert abs(im.text_height(prepared.gray) - im.TARGET_HEIGHT) <= 0.2 * im.TARGET_HEIGHT


def test_uneven_lighting_is_flattened() -> None:
    page, _ = render_page(EN, "en")
    scan = np.asarray(degrade(page, Degradation("l", dpi=150, lighting=0.6), seed=0))
    paper = scan[-200:, -200:]  # the dark corner, no text there
    assert paper.mean() < 160
    flat = im.normalize_lighting(scan, im.text_height(scan))
    assert flat[-200:, -200:].mean() > 245 and flat[:200, :200].mean() > 245


def test_dark_border_is_removed_but_text_kept() -> None:
    page, _ = render_page(EN, "en")
    scan = np.asarray(degrade(page, Degradation("b", dpi=150), seed=0)).copy()
    scan[:, :40] = 30  # a scanner shadow along the left edge
    binary = im.binarize(scan, 14)
    cleaned = im.clean_borders(binary)
    assert (cleaned[:, :40] == 255).all()
    assert (cleaned == 0).sum() > 0.8 * (binary[:, 40:] == 0).sum()


def test_table_rules_removed_and_columns_found() -> None:
    table, _ = render_page(EN, "en", "table")
    gray = np.asarray(table)
    cleaned, rules = im.remove_rules(gray, im.text_height(gray))
    assert rules >= 6 + 4  # six horizontal and four vertical rules
    assert im.remove_rules(np.asarray(render_page(EN, "en")[0]), 30)[1] == 0
    columns, _ = render_page(EN, "en", "two_columns")
    found = im.text_columns(np.asarray(columns), 30)
    assert len(found) == 2 and found[0][1] < columns.width / 2 < found[1][0]
    assert im.text_columns(np.asarray(render_page(EN, "en")[0]), 30) == ()


def test_blank_page_is_blank() -> None:
    from PIL import Image

    from mmedkit.corpus.ocr.page import MIN_INK, read_page

    blank = degrade(Image.new("L", (2480, 3508), 255), Degradation("g", dpi=150, grain=25), seed=0)
    assert im.prepare(blank, 150).ink < MIN_INK
    assert read_page(blank, "en", 150).status == "blank"


def test_reading_order_goes_down_each_column() -> None:
    lines = [(600, 100, 1000, 130, "right one", 0.9), (100, 100, 500, 130, "left one", 0.9),
             (100, 150, 500, 180, "left two", 0.9), (600, 150, 1000, 180, "right two", 0.9)]
    order = [[b[4] for b in col] for col in _reading_order(lines)]
    assert order == [["left one", "left two"], ["right one", "right two"]]


@needs_tesseract
def test_tesseract_text_and_confidence() -> None:
    from mmedkit.corpus.ocr.engines import tesseract

    page, reference = render_page(EN, "en")
    result = tesseract(im.prepare(degrade(page, Degradation("c", dpi=200), seed=0), 200).gray, "eng")
    assert result.confidence > 85 and character_error_rate(reference, result.text) < 0.02
    assert "\n\n" in result.text  # paragraphs stay apart (Tesseract may also split off a short last line)


@needs_tesseract
@pytest.mark.slow
def test_upside_down_page_is_turned_by_osd_retry() -> None:
    from mmedkit.corpus.ocr.page import read_page

    page, reference = render_page(EN * 3, "en")
    scan = degrade(page, Degradation("u", dpi=200), seed=0).rotate(180)
    reading = read_page(scan, "en", 200)
    assert reading.settings.get("rotated") == 180 and len(reading.attempts) > 1
    assert reading.status == "ok" and character_error_rate(reference, reading.text) < 0.03


@pytest.mark.slow
def test_rapidocr_reads_chinese_offline() -> None:
    pytest.importorskip("rapidocr_onnxruntime")
    from mmedkit.corpus.ocr.engines import rapidocr

    zh = ["高血压是一种常见的慢性疾病，指动脉血压持续升高。",
          "治疗首先包括改变生活方式，例如减少食盐摄入、规律运动和控制体重。"]
    page, reference = render_page(zh, "zh", "two_columns")
    result = rapidocr(im.prepare(degrade(page, Degradation("z", dpi=150, skew=1.0), seed=0), 150, target_height=0).gray)
    assert result.engine == "rapidocr" and result.confidence > 80
    assert character_error_rate(reference, result.text, cjk=True) < 0.05
