"""OCR quality and speed of the PDF reader: character error rate per language on image-only PDF pages.

Known medical text in each of the six languages is rendered with Debian fonts (DejaVu Sans, Noto Sans
CJK) onto A4 pages at 300 dpi and saved as a PDF without a text layer; ``PdfReader`` reads it (OCR with
Tesseract in the given language) and the output is compared with the source text.

    .venv/bin/python benchmarks/bench_ocr.py [--dpi 300] [--languages en,zh,...] [--detect]

``--detect`` leaves the language to the reader (first OCR pass + language ID) instead of passing it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

SAMPLES: dict[str, list[str]] = {
    "en": ["Hypertension is a common chronic condition in which the blood pressure in the arteries is "
           "persistently elevated. Long-term high blood pressure is a major risk factor for stroke, coronary "
           "artery disease, heart failure, atrial fibrillation and chronic kidney disease.",
           "First-line treatment includes lifestyle changes such as reducing salt intake, regular physical "
           "exercise and weight loss. When these are not enough, thiazide diuretics, calcium channel blockers "
           "or ACE inhibitors are usually prescribed."],
    "fr": ["Le diabète de type 2 est une maladie métabolique caractérisée par une hyperglycémie chronique due "
           "à une résistance à l'insuline. Les symptômes classiques sont la soif excessive, des mictions "
           "fréquentes et une fatigue inexpliquée.",
           "Le traitement repose d'abord sur l'alimentation équilibrée et l'activité physique ; la metformine "
           "est le médicament de première intention lorsque l'objectif glycémique n'est pas atteint."],
    "es": ["La neumonía es una infección que inflama los sacos aéreos de uno o ambos pulmones, que pueden "
           "llenarse de líquido. Los síntomas más frecuentes son tos con flema, fiebre, escalofríos y "
           "dificultad para respirar.",
           "El diagnóstico se confirma con una radiografía de tórax. En los adultos sanos, la neumonía "
           "bacteriana adquirida en la comunidad suele tratarse con antibióticos orales durante cinco días."],
    "ru": ["Бронхиальная астма — хроническое воспалительное заболевание дыхательных путей, которое "
           "проявляется приступами удушья, кашлем и свистящими хрипами. Течение болезни зависит от "
           "контроля над воспалением.",
           "Основу лечения составляют ингаляционные глюкокортикостероиды. Для быстрого облегчения симптомов "
           "применяют короткодействующие бета-агонисты, а пациента обучают правильной технике ингаляции."],
    "zh": ["高血压是一种常见的慢性疾病，指动脉血压持续升高。长期血压升高是脑卒中、冠心病、心力衰竭和慢性肾脏病的"
           "主要危险因素。",
           "治疗首先包括改变生活方式，例如减少食盐摄入、规律运动和控制体重。如果效果不佳，医生通常会开具利尿剂、"
           "钙通道阻滞剂或血管紧张素转换酶抑制剂。"],
    "ja": ["糖尿病は、インスリンの作用が不足することによって血糖値が慢性的に高くなる病気です。初期には自覚症状が"
           "少なく、健康診断で見つかることが多くあります。",
           "治療の基本は食事療法と運動療法であり、必要に応じて内服薬やインスリン注射を用います。合併症を防ぐため"
           "に、定期的な検査を続けることが大切です。"],
}


def measure(language: str, workdir: Path, dpi: int = 300, detect: bool = False) -> dict[str, float | str]:
    """Render the ``language`` sample into an image-only PDF, read it back, and return CER and timing."""
    from mmedkit.corpus.pdf import PdfReader, character_error_rate, write_image_pdf

    folder = workdir / language
    folder.mkdir(parents=True, exist_ok=True)
    pages = write_image_pdf(str(folder / "sample.pdf"), SAMPLES[language], language, dpi=dpi)
    reader = PdfReader(str(folder), language=None if detect else language, dpi=dpi, matter=False)
    start = time.perf_counter()
    docs = list(reader.run())
    seconds = time.perf_counter() - start
    assert len(docs) == 1, f"{language}: expected one document, got {len(docs)}"
    doc = docs[0]
    cer = character_error_rate("\n".join(SAMPLES[language]), doc.text, cjk=language in ("zh", "ja"))
    return {"language": language, "detected": doc.metadata.get("language", "?"), "pages": pages,
            "text_source": doc.metadata["text_source"], "cer": cer, "seconds": seconds, "pages_per_s": pages / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--languages", default=",".join(SAMPLES))
    parser.add_argument("--detect", action="store_true", help="let the reader detect the language")
    args = parser.parse_args()
    print(f"{'lang':5} {'detected':9} {'source':7} {'pages':>5} {'CER':>7} {'pages/s':>8}")
    total_pages = total_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for lang in args.languages.split(","):
            row = measure(lang, Path(tmp), args.dpi, args.detect)
            total_pages += row["pages"]
            total_s += row["seconds"]
            print(f"{lang:5} {row['detected']:9} {row['text_source']:7} {row['pages']:>5} {row['cer']:>7.2%} "
                  f"{row['pages_per_s']:>8.2f}")
    print(f"all: {total_pages:.0f} pages in {total_s:.1f} s = {total_pages / total_s:.2f} pages/s at {args.dpi} dpi")


if __name__ == "__main__":
    main()
