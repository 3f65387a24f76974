"""Answer extraction from free-text model replies, in all six MMedBench languages."""

from __future__ import annotations

import dataclasses

import pytest

from mmedkit.bench.extract import Extraction, extract_answer

YN = {"A": "yes", "B": "no", "C": "maybe"}
EN = {"A": "Pneumonia", "B": "Asthma", "C": "Pulmonary embolism", "D": "Heart failure"}
ZH = {"A": "青霉素", "B": "头孢曲松", "C": "阿奇霉素", "D": "左氧氟沙星", "E": "万古霉素"}
JA = {"A": "肺炎", "B": "気管支喘息", "C": "肺塞栓症", "D": "心不全", "E": "気胸"}
FR = {"A": "Amoxicilline", "B": "Ceftriaxone", "C": "Doxycycline", "D": "Vancomycine", "E": "Cotrimoxazole"}
RU_YN = {"A": "да", "B": "нет"}
RU = {"A": "амоксициллин", "B": "цефтриаксон", "C": "азитромицин", "D": "ванкомицин"}
ES = {"A": "Furosemida", "B": "Enalapril", "C": "Digoxina", "D": "Amiodarona"}

ECHO = (
    "###Answer: OPTION D IS CORRECT.\n\nBelow is an instruction that describes a task, paired with an "
    "input that provides further context.\n\n### Instruction:\nYou're a English doctor, kindly address "
    "the medical queries according to the patient's account. Answer with the best option directly.\n\n"
    "### Input:\n###Question: A 60-year-old man ... ###Options: A. Pneumonia B. Asthma "
    "C. Pulmonary embolism D. Heart failure\n\n### Response:###Answer: OPTION A IS CORRECT."
)

# (text, options, language, multi_answer, expected letters or None, expected rule or None)
CASES = [
    # ---- English ----
    ("###Rationale: Fever, productive cough and a lobar consolidation; option A is the usual "
     "pick but here the wheeze points elsewhere.\n###Answer: OPTION B IS CORRECT.",
     EN, "en", False, "B", "study"),
    ("###Answer: OPTION C IS CORRECT.\n\n###Answer: OPTION A IS CORRECT.", EN, "en", False, "C", "study"),
    (ECHO, EN, "en", False, "D", "study"),
    # a "### Options:" header continues the prompt's option list: not an answer (SmolLM2 under --protocol study)
    ("\n### Options: A. Pneumonia B. Asthma C. Pulmonary embolism D.", EN, "en", False, None, None),
    ("\n### Options: A. 青霉素 B. 头孢曲松 C. 阿奇霉素 D.", ZH, "zh", False, None, None),
    ("###Answer: OPTION B", EN, "en", False, "B", "study"),
    ("###Answer: option b is correct.", EN, "en", False, "B", "study"),
    ("The correct answer is (B).", EN, "en", False, "B", "answer_label"),
    ("Answer: B and D", EN, "en", False, "BD", "answer_label"),
    ("Answer: A because the patient is febrile.", EN, "en", False, "A", "answer_label"),
    ("The most likely diagnosis is heart failure, so the answer is D.", EN, "en", False, "D", "answer_label"),
    ("Answer: F. Sorry, the correct answer is C.", EN, "en", False, "C", "answer_label"),
    ("B", EN, "en", False, "B", "bare_letter"),
    ("**C**", EN, "en", False, "C", "bare_letter"),
    ("B.", EN, "en", False, "B", "bare_letter"),
    ("B. Asthma\n\nAsthma presents with episodic wheeze.", EN, "en", False, "B", "bare_letter"),
    ("I think it's asthma.", EN, "en", False, "B", "option_text"),
    ("Yes, because the trial showed no benefit of the placebo.", YN, "en", False, "A", "option_text"),
    ("**Answer:** (D) Heart failure", EN, "en", False, "D", "answer_label"),
    ("A 45-year-old woman presents with fever and cough for three days.", EN, "en", False, None, "none"),
    ("The answer is a bacterial infection of the lower airways.", EN, "en", False, None, "none"),
    ("Answer: A patient like this needs further work-up.", EN, "en", False, None, "none"),
    ("Answer: B-cell lymphoma is unlikely here.", EN, "en", False, None, "none"),
    ("Option A is wrong, and option B is wrong too.", EN, "en", False, None, "none"),
    ("###Answer: OPTION E IS CORRECT.", EN, "en", False, None, "none"),
    ("Pneumonia or asthma; hard to say.", EN, "en", False, None, "none"),
    ("", EN, "en", False, None, "none"),
    # ---- Chinese ----
    ("答案：B", ZH, "zh", False, "B", "answer_label"),
    ("答案是Ｂ", ZH, "zh", False, "B", "answer_label"),
    ("正确答案为 C。", ZH, "zh", False, "C", "answer_label"),
    ("根据患者的症状和体征，本题选A。", ZH, "zh", False, "A", "answer_label"),
    ("答案：B、D", ZH, "zh", True, "BD", "answer_label"),
    ("答案是A和C", ZH, "zh", True, "AC", "answer_label"),
    ("###Rationale: 患者为耐甲氧西林金黄色葡萄球菌感染，故首选万古霉素。\n###Answer: OPTION E IS CORRECT.",
     ZH, "zh", False, "E", "study"),
    ("###Answer：OPTION D IS CORRECT。###Answer：OPTION A IS CORRECT。", ZH, "zh", False, "D", "study"),
    ("（Ｂ）", ZH, "zh", False, "B", "bare_letter"),
    ("应使用头孢曲松治疗。", ZH, "zh", False, "B", "option_text"),
    ("答案：F", ZH, "zh", False, None, "none"),
    ("我无法确定，需要更多信息。", ZH, "zh", False, None, "none"),
    # ---- Japanese (exam answers use lowercase letters) ----
    ("正解はb", JA, "ja", False, "B", "answer_label"),
    ("答え：C", JA, "ja", False, "C", "answer_label"),
    ("解答: a, c", JA, "ja", True, "AC", "answer_label"),
    ("正解はbとeです。", JA, "ja", True, "BE", "answer_label"),
    ("選択肢cが正しい。", JA, "ja", False, "C", "answer_label"),
    ("ｃ", JA, "ja", False, "C", "bare_letter"),
    ("###Answer: OPTION D IS CORRECT.", JA, "ja", False, "D", "study"),
    ("###Rationale: 突然の呼吸困難と胸痛、長時間の飛行歴から肺塞栓症と気胸を考える。\n"
     "###Answer: OPTION C,E IS CORRECT.", JA, "ja", True, "CE", "study"),
    ("正解はf", JA, "ja", False, None, "none"),
    ("わかりません。", JA, "ja", False, None, "none"),
    # ---- French (multi-answer, FrenchMedMCQA) ----
    ("Réponse : A, C", FR, "fr", True, "AC", "answer_label"),
    ("La bonne réponse est B.", FR, "fr", False, "B", "answer_label"),
    ("Réponses: A et D", FR, "fr", True, "AD", "answer_label"),
    ("Les réponses correctes sont A, C et E.", FR, "fr", True, "ACE", "answer_label"),
    ("Réponses : A C E", FR, "fr", True, "ACE", "answer_label"),
    ("###Answer: OPTION A,C,E IS CORRECT.", FR, "fr", True, "ACE", "study"),
    ("###Rationale: Le patient a une pneumonie à germes intracellulaires, la doxycycline et le "
     "cotrimoxazole sont actifs.\n###Answer: OPTION C, E IS CORRECT.", FR, "fr", True, "CE", "study"),
    ("###Answer: OPTION B,D IS CORRECT.\n###Answer: OPTION A,B IS CORRECT.", FR, "fr", True, "BD", "study"),
    ("A, C, E", FR, "fr", True, "ACE", "bare_letter"),
    ("Réponse : A, C et F", FR, "fr", True, None, "none"),
    ("Le patient a une fièvre à 39 °C depuis trois jours.", FR, "fr", True, None, "none"),
    ("La réponse a été difficile à trouver.", FR, "fr", True, None, "none"),
    # ---- Russian ----
    ("Ответ: да", RU_YN, "ru", False, "A", "option_text"),
    ("Ответ: нет.", RU_YN, "ru", False, "B", "option_text"),
    ("Да.", RU_YN, "ru", False, "A", "option_text"),
    ("Нет, препарат не показан при беременности.", RU_YN, "ru", False, "B", "option_text"),
    ("###Answer: OPTION A IS CORRECT.", RU_YN, "ru", False, "A", "study"),
    ("Ответ: Б", RU, "ru", False, "B", "answer_label"),
    ("Правильный ответ — В, так как азитромицин активен против атипичной флоры.", RU, "ru", False, "C",
     "answer_label"),
    ("Ответ: С", RU, "ru", False, "C", "answer_label"),
    ("Ответ: А и Г", RU, "ru", True, "AD", "answer_label"),
    ("###Rationale: У пациента MRSA, поэтому нужен ванкомицин.\n###Answer: OPTION D IS CORRECT.",
     RU, "ru", False, "D", "study"),
    ("В соответствии с рекомендациями препарат выбора — амоксициллин.", RU, "ru", False, "A", "option_text"),
    ("Ответ: Е", RU, "ru", False, None, "none"),
    ("Не знаю.", RU_YN, "ru", False, None, "none"),
    # ---- Spanish (HEAD-QA numbers its answers) ----
    ("Respuesta: C", ES, "es", False, "C", "answer_label"),
    ("La respuesta correcta es 3", ES, "es", False, "C", "number"),
    ("Respuesta: 2.", ES, "es", False, "B", "number"),
    ("3", ES, "es", False, "C", "number"),
    ("Opción B", ES, "es", False, "B", "answer_label"),
    ("La respuesta correcta es la opción D, ya que es el antiarrítmico indicado.", ES, "es", False, "D",
     "answer_label"),
    ("Respuestas: A y C", ES, "es", True, "AC", "answer_label"),
    ("###Answer: OPTION A IS CORRECT.\n###Answer: OPTION B IS CORRECT.", ES, "es", False, "A", "study"),
    ("La respuesta correcta es 5", ES, "es", False, None, "none"),
    ("La respuesta correcta es 3 mg cada 8 horas.", ES, "es", False, None, "none"),
    ("Respuesta: a la paciente se le debe ajustar la dosis.", ES, "es", False, None, "none"),
    ("A una paciente de 45 años se le pauta tratamiento y acude a urgencias.", ES, "es", False, None, "none"),
    ("La opción A es incorrecta y la opción C también.", ES, "es", False, None, "none"),
]


def _id(case: tuple) -> str:
    return f"{case[2]}:{case[0][:40]!r}"


@pytest.mark.parametrize(("text", "options", "language", "multi", "letters", "rule"), CASES,
                         ids=[_id(c) for c in CASES])
def test_extract_answer(text: str, options: dict[str, str], language: str, multi: bool,
                        letters: str | None, rule: str | None) -> None:
    got = extract_answer(text, options, language, multi_answer=multi)
    assert got.letters == (frozenset(letters) if letters is not None else None)
    if rule is not None:
        assert got.rule == rule
    if got.letters is not None:
        assert got.letters <= set(options)


@pytest.mark.parametrize("language", ["en", "zh", "ja", "fr", "ru", "es"])
def test_every_language_has_enough_cases(language: str) -> None:
    assert sum(1 for c in CASES if c[2] == language) >= 8


def test_multi_answer_controls_space_separated_lists() -> None:
    assert extract_answer("Answer: A C E", FR, "fr", multi_answer=True).letters == frozenset("ACE")
    assert extract_answer("Answer: B D", FR, "fr", multi_answer=False).letters == frozenset("B")


def test_cyrillic_letters_follow_alphabet_order() -> None:
    opts = {k: f"option {k}" for k in "ABCDE"}
    got = [extract_answer(f"Ответ: {c}", opts, "ru").letters for c in "АБВГД"]
    assert got == [frozenset(x) for x in "ABCDE"]


def test_extraction_is_frozen_and_reports_validity() -> None:
    ex = extract_answer("B", EN, "en")
    assert ex == Extraction(frozenset("B"), "bare_letter") and ex.valid
    assert not extract_answer("no idea", EN, "en").valid
    with pytest.raises(dataclasses.FrozenInstanceError):
        ex.rule = "other"  # type: ignore[misc]


def test_unknown_language_is_an_error() -> None:
    with pytest.raises(KeyError):
        extract_answer("B", EN, "xx")
