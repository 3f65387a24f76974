"""OCR of scanned pages: image pipeline (:mod:`.image`), engines (:mod:`.engines`), one page to text with
retries and a verdict (:mod:`.page`), and scans made here from known text for measuring it (:mod:`.synth`).

Used by :class:`mmedkit.corpus.pdf.PdfReader`; measured by ``benchmarks/bench_ocr.py``.
"""
