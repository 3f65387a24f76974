"""LLM-as-judge ranking end to end against a real OpenAI-compatible server process on 127.0.0.1."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import ServerProcess
from test_rationale_run import LIMIT, derive_run, session_runs

from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import target
from mmedkit.bench.rationale.judge import JUDGE_JSON, JUDGEMENTS, JudgeConfig, judge_prompt, judge_runs, parse_verdict
from mmedkit.bench.rationale.ranking import bootstrap_bt, bradley_terry, ranking, win_rates
from mmedkit.models.openai_backend import OpenAIModel

N_ITEMS = 6 * LIMIT


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = ServerProcess(["--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32"],
                      tmp_path_factory.mktemp("judge-server") / "server.log", module="mmedkit.serve.openai_api")
    try:
        s.wait_ready()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    return session_runs(tmp_path_factory, tiny_model_dir)


@pytest.fixture
def client(server: ServerProcess, tiny_model_dir: Path) -> Iterator[OpenAIModel]:
    model = OpenAIModel("tiny", base_url=server.url, tokenizer=str(tiny_model_dir), concurrency=4)
    yield model
    model.close()


@pytest.mark.slow
def test_judge_end_to_end_with_swap_consistency_and_cache(runs: dict[str, Path], client: OpenAIModel,
                                                          tmp_path: Path) -> None:
    three = [runs["tiny"], runs["reference"], runs["shuffled"]]
    cfg = JudgeConfig(judge_model="tiny", verdict="loglikelihood", bootstrap=200)
    out = tmp_path / "judge"
    summary = judge_runs(three, out, cfg, model=client)
    c = summary["counts"]
    assert c["items"] == N_ITEMS and c["pairs"] == 3 * N_ITEMS
    assert c["judged_pairs"] + c["decided_without_judge"] == c["pairs"]
    assert c["judged_pairs"] >= 2 * N_ITEMS  # reference vs shuffled always differ; tiny vs both too
    assert c["asked_this_run"] == c["judgements"] == 2 * c["judged_pairs"] and c["unreadable_verdicts"] == 0
    rows = [json.loads(x) for x in (out / JUDGEMENTS).read_text(encoding="utf-8").splitlines()]
    judged = [r for r in rows if r["rule"] == "judge"]
    consistent = sum(r["verdict_ab"] == {"1": "2", "2": "1"}[r["verdict_ba"]] for r in judged)
    assert summary["swap_consistency"] == pytest.approx(round(consistent / len(judged), 4))
    assert 0.0 <= summary["swap_consistency"] <= 1.0
    for r in judged:  # a disagreement between the two orders is a tie
        if not r["consistent"]:
            assert r["winner"] == "tie"
    saved = json.loads((out / JUDGE_JSON).read_text(encoding="utf-8"))
    assert saved["judge"]["model"] == "tiny" and len(saved["judge"]["prompt_hash"]) == 16
    assert {r["model"] for r in saved["ranking"]} == {"tiny", "reference", "shuffled"}
    assert len(saved["win_rate"]) == 3 and saved["win_rate"][0][0] is None
    assert "Swap consistency" in (out / "judge.md").read_text(encoding="utf-8")

    again = judge_runs(three, out, cfg, model=client)
    assert again["counts"]["asked_this_run"] == 0 and again["ranking"] == summary["ranking"]

    copy = derive_run(runs["reference"], tmp_path / "copy", "same texts as reference",
                      {it.id: target(it, True) for it in load_benchmark("demo", limit=LIMIT)})
    same = judge_runs([*three, copy], out, cfg, model=client)  # judgements are cached by content
    assert same["counts"]["asked_this_run"] == 0 and same["counts"]["pairs"] == 6 * N_ITEMS

    halves = derive_run(runs["tiny"], tmp_path / "halves", "first half of the reference",
                        {it.id: (it.rationale or "")[:len(it.rationale or "") // 2]
                         for it in load_benchmark("demo", limit=LIMIT)})
    grown = judge_runs([*three, halves], out, cfg, model=client)
    assert grown["counts"]["pairs"] == 6 * N_ITEMS
    assert grown["counts"]["asked_this_run"] == grown["counts"]["judgements"] - summary["counts"]["judgements"]
    assert grown["counts"]["asked_this_run"] == 2 * 3 * N_ITEMS - 2 * grown["counts"]["decided_without_judge"] + \
        2 * summary["counts"]["decided_without_judge"]
    assert {r["model"] for r in grown["ranking"]} == {"tiny", "reference", "shuffled", "halves"}


def test_generated_verdicts_through_chat_completions(runs: dict[str, Path], client: OpenAIModel,
                                                     tmp_path: Path) -> None:
    cfg = JudgeConfig(judge_model="tiny", verdict="generate", max_new_tokens=8, limit=1, bootstrap=50)
    summary = judge_runs([runs["reference"], runs["shuffled"]], tmp_path / "gen", cfg, model=client)
    assert summary["counts"]["pairs"] == 6 and summary["counts"]["asked_this_run"] == 12
    # the tiny random model writes no [[1]]/[[2]] mark: every verdict is unreadable and each pair a tie
    assert summary["counts"]["unreadable_verdicts"] == 12 and summary["tie_rate"] == 1.0
    assert summary["swap_consistency"] is None


def test_hf_backend_judge(runs: dict[str, Path], tiny_model_dir: Path, tmp_path: Path) -> None:
    cfg = JudgeConfig(judge_model=str(tiny_model_dir), backend="hf", verdict="loglikelihood", langs="zh,ru", limit=2,
                      bootstrap=50, model_options={"device": "cpu", "dtype": "float32"})
    summary = judge_runs([runs["reference"], runs["shuffled"]], tmp_path / "hf", cfg)
    assert summary["counts"]["items"] == 4 and summary["counts"]["asked_this_run"] == 8
    assert summary["swap_consistency"] is not None


def test_prompt_is_in_the_items_language_context() -> None:
    it = next(i for i in load_benchmark("demo", langs="ja", limit=1))
    msgs = judge_prompt(it, "説明A", "説明B", JudgeConfig(judge_model="m"))
    assert "Japanese" in msgs[0]["content"] and "Japanese medical exam question" in msgs[1]["content"]
    assert it.question.strip() in msgs[1]["content"] and "### Reference explanation" in msgs[1]["content"]
    assert "[[1]]" in msgs[1]["content"]
    no_ref = judge_prompt(it, "a", "b", JudgeConfig(judge_model="m", include_reference=False))
    assert "Reference explanation" not in no_ref[1]["content"]
    assert JudgeConfig(judge_model="m").prompt_hash() != JudgeConfig(judge_model="m", include_reference=False) \
        .prompt_hash()
    assert parse_verdict("Explanation 2 is better. [[2]]") == "2"
    assert parse_verdict("[[ TIE ]]") == "tie" and parse_verdict("1") is None


def test_bradley_terry_recovers_strengths_with_intervals() -> None:
    rng = random.Random(1)
    strengths = [1.0, 0.0, -1.0]
    verdicts = []
    for item in range(300):
        for i in range(3):
            for j in range(i + 1, 3):
                p = 1 / (1 + 2.718281828 ** (strengths[j] - strengths[i]))
                u = rng.random()
                verdicts.append((str(item), i, j, 1.0 if u < p * 0.9 else 0.5 if u < p * 0.9 + 0.1 else 0.0))
    theta = bradley_terry(verdicts, 3, prior=0.0)
    assert list(theta.argsort()[::-1]) == [0, 1, 2]
    lo, hi = bootstrap_bt(verdicts, 3, reps=100)
    assert all(lo[k] <= theta[k] <= hi[k] for k in range(3))
    rate, counts = win_rates(verdicts, 3)
    assert rate[0][2] > 0.75 and rate[2][0] == pytest.approx(1 - rate[0][2]) and counts[0][1] == 300
    swept = ranking(["a", "b", "c"], [("x", 0, 1, 1.0), ("x", 1, 2, 1.0)], reps=20)  # finite thanks to the prior
    assert [r["model"] for r in swept["ranking"]] == ["a", "b", "c"]
    assert all(abs(r["score"]) < 10 for r in swept["ranking"])
