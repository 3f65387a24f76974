"""BLEU / ROUGE on segmented tokens: equal to sacrebleu and rouge-score, hand-checked in zh, ja, ru."""

from __future__ import annotations

import random

import pytest

from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.rationale.ngram import bleu, lcs_length, rouge_l, rouge_n, text_metrics
from mmedkit.bench.rationale.study import study_available, study_scores
from mmedkit.bench.rationale.text import extract_rationale, tokenize
from mmedkit.languages import DictionarySegmenter, get_language, segment_cjk

sacrebleu = pytest.importorskip("sacrebleu")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

EN_HYPOTHESES = [
    "Inferior leads II, III and aVF point to the right coronary artery, which supplies the inferior wall.",
    "The right coronary artery is occluded.",
    "Aspirin is the best answer because it inhibits platelets.",
    "",
    "Furosemide acts on the thick ascending limb of the loop of Henle by blocking NKCC2.",
]


class _Given:
    """A rouge-score tokenizer that returns the tokens it is given (space-joined)."""

    def tokenize(self, text: str) -> list[str]:
        return text.split()


def _english_pairs() -> list[tuple[list[str], list[str]]]:
    refs = [it.rationale for it in load_benchmark("demo", split="train", langs="en") if it.rationale]
    return [(tokenize(h, "en"), tokenize(r, "en")) for h in EN_HYPOTHESES for r in refs[:4]]


@pytest.mark.parametrize("smoothing", ["exp", "floor", "add-k", "none"])
def test_english_bleu_equals_sacrebleu_on_the_same_tokens(smoothing: str) -> None:
    for hyp, ref in _english_pairs():
        for n in (1, 2, 3, 4):
            metric = sacrebleu.metrics.BLEU(max_ngram_order=n, tokenize="none", effective_order=True,
                                            smooth_method=smoothing)
            want = metric.sentence_score(" ".join(hyp), [" ".join(ref)]).score
            assert bleu(hyp, ref, n, smoothing=smoothing) == pytest.approx(want, abs=1e-9), (n, hyp)


def test_english_rouge_equals_rouge_score_on_the_same_tokens() -> None:
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=_Given())
    nonzero = 0
    for hyp, ref in _english_pairs():
        want = scorer.score(" ".join(ref), " ".join(hyp))
        got = text_metrics(hyp, ref)
        assert got["rouge-1"] == pytest.approx(100 * want["rouge1"].fmeasure, abs=1e-9)
        assert got["rouge-2"] == pytest.approx(100 * want["rouge2"].fmeasure, abs=1e-9)
        assert got["rouge-L"] == pytest.approx(100 * want["rougeL"].fmeasure, abs=1e-9)
        nonzero += got["rouge-L"] > 0
    assert nonzero >= 4


def test_bleu_and_rouge_match_the_references_on_random_token_lists() -> None:
    rng = random.Random(7)
    vocab = ["боль", "в", "груди", "患者", "发热", "fièvre", "the", "of", "a"]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=_Given())
    for _ in range(300):
        hyp = [rng.choice(vocab) for _ in range(rng.randint(0, 15))]
        ref = [rng.choice(vocab) for _ in range(rng.randint(1, 15))]
        want = sacrebleu.metrics.BLEU(tokenize="none", effective_order=True).sentence_score(
            " ".join(hyp), [" ".join(ref)]).score
        assert bleu(hyp, ref, 4) == pytest.approx(want, abs=1e-9)
        rs = scorer.score(" ".join(ref), " ".join(hyp))
        assert rouge_l(hyp, ref) == pytest.approx(100 * rs["rougeL"].fmeasure, abs=1e-9)
        assert rouge_n(hyp, ref, 2) == pytest.approx(100 * rs["rouge2"].fmeasure, abs=1e-9)


def test_bit_parallel_lcs_equals_dynamic_programming() -> None:
    rng = random.Random(3)
    for _ in range(200):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 70))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 70))]
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
        assert lcs_length(a, b) == table[-1][-1]


def test_chinese_pair_hand_checked() -> None:
    hyp, ref = tokenize("患者发热咳嗽，考虑肺炎。", "zh"), tokenize("患者咳嗽发热，诊断为肺炎。", "zh")
    assert hyp == ["患者", "发热", "咳嗽", "考虑", "肺炎"]
    assert ref == ["患者", "咳嗽", "发热", "诊断", "为", "肺炎"]
    m = text_metrics(hyp, ref)
    # 4 of 5 words match; brevity penalty exp(1 - 6/5); no bigram matches: exp smoothing gives 1/(2*4)
    assert m["bleu-1"] == pytest.approx(100 * 0.8 * 0.818730753, abs=1e-6)
    assert m["bleu-2"] == pytest.approx(100 * 0.818730753 * (0.8 * 0.125) ** 0.5, abs=1e-6)
    assert m["rouge-1"] == pytest.approx(100 * 2 * (4 / 5) * (4 / 6) / (4 / 5 + 4 / 6), abs=1e-9)
    assert m["rouge-2"] == 0.0
    # LCS 患者 发热 肺炎 = 3: P 3/5, R 3/6
    assert m["rouge-L"] == pytest.approx(100 * 2 * 0.6 * 0.5 / 1.1, abs=1e-9)


def test_japanese_pair_hand_checked() -> None:
    hyp, ref = tokenize("頭痛とめまいがある。", "ja"), tokenize("めまいと頭痛がある。", "ja")
    assert hyp == ["頭痛", "と", "めまい", "が", "ある"] and sorted(ref) == sorted(hyp)
    m = text_metrics(hyp, ref)
    assert m["bleu-1"] == pytest.approx(100.0)  # same words, same length
    assert m["bleu-2"] == pytest.approx(50.0)  # 1 of 4 bigrams (が ある): sqrt(1 * 1/4)
    assert m["rouge-2"] == pytest.approx(25.0)
    assert m["rouge-L"] == pytest.approx(60.0)  # LCS と が ある


def test_russian_pair_hand_checked_with_case_folding() -> None:
    hyp, ref = tokenize("Боль в груди и одышка.", "ru"), tokenize("Одышка и боль в груди.", "ru")
    assert hyp == ["боль", "в", "груди", "и", "одышка"]
    m = text_metrics(hyp, ref)
    assert m["bleu-1"] == pytest.approx(100.0)
    assert m["bleu-2"] == pytest.approx(100 * 0.5 ** 0.5)  # боль в, в груди: 2 of 4 bigrams
    assert m["rouge-2"] == pytest.approx(50.0)
    assert m["rouge-L"] == pytest.approx(60.0)  # LCS боль в груди
    assert text_metrics(tokenize("Боль", "ru", casefold=False), tokenize("боль", "ru", casefold=False))["bleu-1"] == 0


def test_common_rouge_tooling_drops_non_ascii_ours_does_not() -> None:
    default = rouge_scorer.RougeScorer(["rouge1"])  # rouge-score's own tokenizer keeps [a-z0-9] only
    hyp, ref = "Боль в груди и одышка.", "Одышка и боль в груди."
    assert default.score(ref, hyp)["rouge1"].fmeasure == 0.0
    assert rouge_n(tokenize(hyp, "ru"), tokenize(ref, "ru"), 1) == pytest.approx(100.0)


def test_accents_and_cyrillic_survive_tokenisation() -> None:
    assert tokenize("L'artère fémorale est bloquée à gauche.", "fr") == [
        "l'artère", "fémorale", "est", "bloquée", "à", "gauche"]
    assert tokenize("Niño con fiebre y tos; sospecha de neumonía.", "es") == [
        "niño", "con", "fiebre", "y", "tos", "sospecha", "de", "neumonía"]
    assert tokenize("Ёлочная аллергия: Отёк Квинке!", "ru") == ["ёлочная", "аллергия", "отёк", "квинке"]
    assert tokenize("Ёлочная", "ru", casefold=False) == ["Ёлочная"]


def test_segmenters_fall_back_to_characters_without_their_package() -> None:
    missing = DictionarySegmenter("no_such_segmenter_pkg", lambda: __import__("no_such_segmenter_pkg"), segment_cjk)
    assert missing("患者发热") == ["患", "者", "发", "热"]
    assert not missing.available and "segment_cjk (fallback: no_such_segmenter_pkg" in missing.name
    with pytest.raises(ImportError, match="pip install no_such_segmenter_pkg"):
        missing.raw("患者")
    assert get_language("zh").segmenter_name.startswith("jieba ")
    assert get_language("ja").segmenter_name.startswith("janome ")


@pytest.mark.parametrize(("output", "expected"), [
    ("###Rationale: Leads II, III and aVF are inferior.\n###Answer: OPTION C IS CORRECT.",
     "Leads II, III and aVF are inferior."),
    ("  ### Rationale : 二尖瓣狭窄。###Answer: OPTION A IS CORRECT.", "二尖瓣狭窄。"),
    ("La ADH actúa en el túbulo colector. OPTION D IS CORRECT.", "La ADH actúa en el túbulo colector."),
    ("Ответ обоснован.\n\n### Instruction:\nYou're a doctor", "Ответ обоснован."),
    ("###Answer: OPTION B IS CORRECT.", ""),
    (None, ""),
])
def test_extract_rationale(output: str | None, expected: str) -> None:
    assert extract_rationale(output) == expected


@pytest.mark.skipif(study_available() is not None, reason="the study's libraries (nltk, rouge) are not installed")
def test_study_variants_are_bleu4_and_rouge_l_under_other_names() -> None:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    hyp = "The right coronary artery supplies the inferior wall of the heart."
    ref = "The inferior wall of the heart is supplied by the right coronary artery."
    got = study_scores(hyp, ref, "en")
    h, r = hyp.replace(".", " .").split(), ref.replace(".", " .").split()
    assert got["study_bleu"] == pytest.approx(100 * sentence_bleu([r], h, smoothing_function=SmoothingFunction()
                                                                 .method1))
    ours = text_metrics(tokenize(hyp, "en"), tokenize(ref, "en"))
    assert got["study_bleu"] < 60 < ours["bleu-1"]  # the study's "BLEU-1" is a 4-gram score
    zh = study_scores("患者发热咳嗽，考虑肺炎。", "患者咳嗽发热，诊断为肺炎。", "zh")
    assert 0 < zh["study_bleu"] < 100 and 0 < zh["study_rouge"] < 100
