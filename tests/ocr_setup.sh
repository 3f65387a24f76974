#!/usr/bin/env bash
# Install Tesseract 5, the six language packs and the fonts used by the OCR tests (Debian/Ubuntu, as root).
set -euo pipefail
packages=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-jpn tesseract-ocr-fra
          tesseract-ocr-rus tesseract-ocr-spa fonts-noto-cjk fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
tesseract --version | head -1
tesseract --list-langs
# Python side (corpus extra): OpenCV for the image pipeline, RapidOCR (PP-OCR models inside the wheel) for Chinese
python3 -c "import cv2, rapidocr_onnxruntime" 2>/dev/null \
  || echo "note: pip install 'mmedkit[corpus]' for opencv-python-headless and rapidocr-onnxruntime"
