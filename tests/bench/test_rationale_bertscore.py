"""BERTScore with a tiny local BERT (WordPiece trained here): batched, equal to the bert-score package."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_bert import build_tiny_bert

from mmedkit.bench.rationale.bertscore import (
    PRF,
    Baseline,
    BERTScorer,
    estimate_baseline,
    find_baseline,
    read_baseline,
)

CANDIDATES = [
    "The right coronary artery supplies the inferior wall.",
    "二尖瓣狭窄的典型体征是舒张期杂音。",
    "頭痛とめまいがある。",
    "Боль в груди, одышка.",
    "L'artère fémorale est bloquée.",
    "Fiebre y tos desde hace tres días.",
    "x",
]
REFERENCES = [
    "Leads II, III and aVF look at the inferior wall, supplied by the right coronary artery.",
    "风湿性心脏病患者心尖区舒张期隆隆样杂音伴第一心音亢进，是二尖瓣狭窄的典型体征。",
    "めまいと頭痛がある。",
    "Одышка и боль в груди.",
    "L'artère fémorale est obstruée.",
    "El paciente tiene fiebre y tos.",
    "Rest.",
]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")


@pytest.fixture(scope="module")
def scorer(bert_dir: Path) -> BERTScorer:
    return BERTScorer(str(bert_dir), device="cpu", batch_size=3)


def test_equals_the_bert_score_package(scorer: BERTScorer, bert_dir: Path) -> None:
    bert_score = pytest.importorskip("bert_score")
    p, r, f = bert_score.score(CANDIDATES, REFERENCES, model_type=str(bert_dir), num_layers=scorer.layer,
                               batch_size=1, device="cpu")
    got = scorer.score(CANDIDATES, REFERENCES)
    assert [g.p for g in got] == pytest.approx(p.tolist(), abs=1e-5)
    assert [g.r for g in got] == pytest.approx(r.tolist(), abs=1e-5)
    assert [g.f for g in got] == pytest.approx(f.tolist(), abs=1e-5)


def test_batching_does_not_change_scores(scorer: BERTScorer, bert_dir: Path) -> None:
    one = BERTScorer(str(bert_dir), device="cpu", batch_size=1)
    batched = scorer.score(CANDIDATES, REFERENCES)
    single = [one.score([c], [r])[0] for c, r in zip(CANDIDATES, REFERENCES, strict=True)]
    for a, b in zip(batched, single, strict=True):
        assert (a.p, a.r, a.f) == pytest.approx((b.p, b.r, b.f), abs=1e-5)
    same = scorer.score(REFERENCES, REFERENCES)
    assert all(s.f == pytest.approx(1.0, abs=1e-5) for s in same)
    assert all(0 < s.f < 1 for s in batched)


def test_layer_choice_and_errors(bert_dir: Path, tmp_path: Path) -> None:
    assert BERTScorer(str(bert_dir), layer=1).info()["layer"] == 1
    with pytest.raises(ValueError, match="layer 5 is out of range"):
        BERTScorer(str(bert_dir), layer=5)
    from mmedkit.models.base import BackendError

    with pytest.raises(BackendError, match="could not load BERTScore model"):
        BERTScorer(str(tmp_path / "missing"))


def test_baseline_rescaling(scorer: BERTScorer, tmp_path: Path) -> None:
    folder = tmp_path / "baselines" / "zh"
    folder.mkdir(parents=True)
    (folder / "tiny-bert.tsv").write_text("LAYER,P,R,F\n0,0.1,0.1,0.1\n2,0.5,0.6,0.55\n", encoding="utf-8")
    base = find_baseline(tmp_path / "baselines", "zh", "/some/where/tiny-bert", 2)
    assert (base.p, base.r, base.f) == (0.5, 0.6, 0.55)
    assert base.rescale(PRF(0.75, 0.8, 0.775)) == PRF(pytest.approx(0.5), pytest.approx(0.5), pytest.approx(0.5))
    with pytest.raises(ValueError, match="no row for layer 7"):
        read_baseline(folder / "tiny-bert.tsv", 7)
    with pytest.raises(ValueError, match="--rescale auto"):
        find_baseline(tmp_path / "baselines", "ja", "tiny-bert", 2)
    est = estimate_baseline(scorer, REFERENCES, pairs=20, seed=1)
    assert est == estimate_baseline(scorer, REFERENCES, pairs=20, seed=1)
    assert 0 < est.f < 1 and "20 random pairs of 7 distinct references" in est.source
    raw = scorer.score(CANDIDATES, REFERENCES)
    rescaled = scorer.score(CANDIDATES, REFERENCES, baseline=est)
    assert rescaled[0].f == pytest.approx((raw[0].f - est.f) / (1 - est.f))
    with pytest.raises(ValueError, match="two different"):
        estimate_baseline(scorer, ["same", "same"])
    assert isinstance(est, Baseline)
