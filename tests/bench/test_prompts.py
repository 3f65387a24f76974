"""Prompt formats and candidate answer sets."""

from __future__ import annotations

from mmedkit.bench.loader import load_benchmark
from mmedkit.bench.prompts import (
    PromptConfig,
    build_prompt,
    candidates,
    loglikelihood_request,
    select_exemplars,
    target,
)


def test_study_prompt_matches_the_study_layout() -> None:
    item = next(it for it in load_benchmark("demo", langs="fr"))
    text = build_prompt(item, PromptConfig())
    assert isinstance(text, str)
    assert text.startswith("Below is an instruction that describes a task, paired with an input")
    assert "### Instruction:\nYou're a French doctor, kindly address the medical queries" in text
    assert f"### Input:\n###Question: {item.question} Which of the following" in text
    assert "###Options: A. " in text and text.endswith("### Response:")
    assert target(item, rationale=False).startswith("###Answer: OPTION ")
    assert target(item, rationale=True).startswith("###Rationale: ")


def test_candidates_single_and_multi() -> None:
    items = load_benchmark("demo")
    en = next(it for it in items if it.language == "en" and len(it.options) == 4)
    fr = next(it for it in items if it.language == "fr" and len(it.options) == 5)
    assert [sorted(c) for c in candidates(en)] == [["A"], ["B"], ["C"], ["D"]]
    fr_c = candidates(fr)
    assert len(fr_c) == 31 and len(set(fr_c)) == 31 and frozenset("ABCDE") in fr_c
    req, cands = loglikelihood_request(fr, PromptConfig())
    assert req.context.endswith("### Response:###Answer: OPTION")
    assert " A,C,E" in req.continuations and len(cands) == 31


def test_fewshot_is_deterministic_same_language_and_excludes_item() -> None:
    train = load_benchmark("demo", split="train")
    test = load_benchmark("demo", langs="ja")
    item = test[0]
    a = select_exemplars(train, item, 3, seed=7)
    b = select_exemplars(list(reversed(train)), item, 3, seed=7)
    assert {x.id for x in a} == {x.id for x in b} and len(a) == 3
    assert all(x.language == "ja" for x in a)
    assert {x.id for x in select_exemplars(train, item, 3, seed=8)} != {x.id for x in a} or len(train) < 4
    msgs = build_prompt(item, PromptConfig(format="chat", fewshot=3), a)
    assert [m["role"] for m in msgs] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    text = build_prompt(item, PromptConfig(fewshot=3), a)
    assert text.count("### Response:") == 4


def test_japanese_choose_k_narrows_candidates_and_survives_round_trip(tmp_path) -> None:
    import json

    from mmedkit.bench.loader import load_benchmark as load

    root = tmp_path / "Test"
    root.mkdir()
    opts = {k: f"選択肢{k}" for k in "ABCDE"}
    recs = [{"question": "正しいのはどれか。2つ選べ。", "options": opts, "answer_idx": ["A", "C"]},
            {"question": "正しいのはどれか。", "options": opts, "answer_idx": "B"},
            {"question": "誤っているのはどれか。３つ選べ。", "options": opts, "answer_idx": "A,B,E"}]
    (root / "Japanese.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in recs), encoding="utf-8")
    two, one, three = load(tmp_path, langs="ja")
    assert (two.n_answers, two.multi_answer, len(candidates(two))) == (2, True, 10)
    assert (three.n_answers, len(candidates(three))) == (3, 10)
    assert one.n_answers is None and one.multi_answer  # same file as multi-answer items: any subset
    assert len(candidates(one)) == 31
    from mmedkit.bench.loader import write_benchmark

    write_benchmark([two, one, three], tmp_path / "copy")
    again = load(tmp_path / "copy", langs="ja")
    assert [(x.multi_answer, x.n_answers) for x in again] == [(True, 2), (True, None), (True, 3)]


# Golden strings: the study's released inference script (MMedLM inference/inference.py) builds
#   options += f"{key}. {content} "   and   PROMPT_DICT["prompt_input"].format_map(...)
_GOLDEN_ITEM = dict(id="g1", language="fr", question="Quel organe produit l'insuline ?",
                    options={"A": "Le foie", "B": "Le pancréas", "C": "La rate"}, answer=frozenset("B"))
_GOLDEN_HEAD = ("Below is an instruction that describes a task, paired with an input that provides further context. "
                "Write a response that appropriately completes the request.\n\n### Instruction:\n")
_GOLDEN_INPUT = ("\n\n### Input:\n###Question: Quel organe produit l'insuline ? Which of the following is the best "
                 "treatment for this patient? ###Options: A. Le foie B. Le pancréas C. La rate \n\n### Response:")


def test_study_prompt_is_byte_exact_answer_variant() -> None:
    from mmedkit.bench.items import Item

    text = build_prompt(Item(**_GOLDEN_ITEM), PromptConfig())
    assert text == (_GOLDEN_HEAD + "You're a French doctor, kindly address the medical queries according to the "
                    "patient's account. Answer with the best option directly." + _GOLDEN_INPUT)


def test_study_prompt_is_byte_exact_rationale_variant() -> None:
    from mmedkit.bench.items import Item

    item = Item(**_GOLDEN_ITEM, rationale="Les cellules bêta.")
    instr = ("You're a French doctor, kindly address the medical queries according to the patient's account in "
             "French. Let’s solve this step-by-step.{gap}You should first give the reason in French for your "
             "choice. Then you should give the right answer index of the question.")
    assert build_prompt(item, PromptConfig(rationale=True)) == _GOLDEN_HEAD + instr.format(gap="  ") + _GOLDEN_INPUT
    # the study's fine-tuning script (finetune/train.py) has one space there
    trained = build_prompt(item, PromptConfig(rationale=True), training=True)
    assert trained == _GOLDEN_HEAD + instr.format(gap=" ") + _GOLDEN_INPUT
    assert target(item, rationale=True) == "###Rationale: Les cellules bêta.\n###Answer: OPTION B IS CORRECT."
