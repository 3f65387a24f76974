"""The deterministic safety layer on realistic messages in six languages (no model involved)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mmedkit.errors import ConfigError
from mmedkit.serve.safety import SafetyDataError, SafetyPolicy, default_data_dir
from mmedkit.serve.ui import load_ui_strings

# One realistic message per red-flag category and language, as a worried person would type it.
RED_FLAGS: dict[str, dict[str, str]] = {
    "en": {
        "cardiac": "I have chest pain and I'm short of breath",
        "stroke": "My dad's face is drooping and his speech is slurred",
        "breathing": "My son can't breathe and his lips are turning blue",
        "bleeding": "I cut my hand and it won't stop bleeding",
        "anaphylaxis": "My throat is swelling after eating peanuts",
        "unconscious": "My wife passed out and won't wake up",
        "suicide": "I want to kill myself",
        "poisoning": "My son swallowed bleach",
        "infant_fever": "My 6-week-old baby has a fever of 38.2",
        "meningitis": "Stiff neck and fever since this morning",
    },
    "zh": {
        "cardiac": "胸口疼，喘不过气来，出了一身冷汗",
        "stroke": "我爸爸突然嘴歪了，说话不清楚",
        "breathing": "孩子喘不上气，嘴唇发紫",
        "bleeding": "手割破了，血流不止",
        "anaphylaxis": "吃了花生以后喉咙发紧，嘴唇肿起来了",
        "unconscious": "我妈妈晕倒了，叫不醒",
        "suicide": "我不想活了",
        "poisoning": "孩子喝了农药",
        "infant_fever": "我家宝宝两个月大，发烧38.5度",
        "meningitis": "脖子僵硬，发烧",
    },
    "ja": {
        "cardiac": "胸が痛くて、息ができない",
        "stroke": "父の顔がゆがんで、ろれつが回らない",
        "breathing": "息ができません、唇が紫色です",
        "bleeding": "指を切って血が止まらない",
        "anaphylaxis": "ピーナッツを食べたら喉が腫れてきた",
        "unconscious": "母が倒れて意識がない",
        "suicide": "もう死にたい",
        "poisoning": "子どもが漂白剤を飲んでしまった",
        "infant_fever": "生後1ヶ月の赤ちゃんが38度の熱",
        "meningitis": "首が硬くて熱がある",
    },
    "fr": {
        "cardiac": "J'ai une douleur à la poitrine et je suis essoufflé",
        "stroke": "Mon père a la bouche de travers et il parle mal",
        "breathing": "Je n'arrive pas à respirer",
        "bleeding": "Je me suis coupé et ça n'arrête pas de saigner",
        "anaphylaxis": "Ma gorge gonfle après avoir mangé des cacahuètes",
        "unconscious": "Ma femme s'est évanouie et ne se réveille pas",
        "suicide": "J'ai envie de mourir",
        "poisoning": "Mon fils a avalé de l'eau de javel",
        "infant_fever": "Mon bébé de 3 semaines a 38,5 de fièvre",
        "meningitis": "La nuque raide et de la fièvre",
    },
    "ru": {
        "cardiac": "Болит в груди и задыхаюсь",
        "stroke": "У отца перекосило лицо и невнятная речь",
        "breathing": "Не могу дышать",
        "bleeding": "Порезался, кровь не останавливается",
        "anaphylaxis": "После орехов опухло горло",
        "unconscious": "Мама упала в обморок и не приходит в себя",
        "suicide": "Не хочу жить",
        "poisoning": "Сын выпил отбеливатель",
        "infant_fever": "Ребенку 3 недели, температура 38,2",
        "meningitis": "Шея задеревенела, высокая температура",
    },
    "es": {
        "cardiac": "Tengo dolor en el pecho y me falta el aire",
        "stroke": "Mi padre tiene la boca torcida y habla arrastrada",
        "breathing": "No puedo respirar",
        "bleeding": "Me corté y no para de sangrar",
        "anaphylaxis": "Se me está hinchando la garganta después de comer cacahuetes",
        "unconscious": "Mi esposa se desmayó y no despierta",
        "suicide": "Quiero morirme",
        "poisoning": "Mi hijo bebió lejía",
        "infant_fever": "Mi bebé de 3 semanas tiene fiebre de 38,2",
        "meningitis": "Rigidez en la nuca y fiebre",
    },
}

# Other phrasings of the same emergencies, including ones a naive negation rule would miss.
MORE_RED_FLAGS = [
    ("en", "cardiac", "Crushing pain in my chest spreading to my left arm"),
    ("en", "cardiac", "No fever, but chest pain and I can't breathe"),
    ("en", "stroke", "I'm not sure if it's a stroke but his face is drooping on one side"),
    ("en", "suicide", "I don't feel like I want to live anymore"),
    ("en", "poisoning", "I think my toddler took too many pills from the cupboard"),
    ("en", "infant_fever", "My baby doesn't eat and has a high fever"),
    ("zh", "stroke", "不知道是不是中风，他一边身体发麻"),
    ("zh", "cardiac", "胸痛，疼痛放射到左臂"),
    ("ja", "stroke", "脳卒中ではないか心配です。右手がしびれています"),
    ("ja", "cardiac", "胸が締め付けられて冷や汗が出る"),
    ("fr", "stroke", "Je ne sais pas si c'est un AVC, son bras droit est engourdi"),
    ("fr", "cardiac", "Douleur thoracique qui irradie dans le bras gauche"),
    ("fr", "cardiac", "j'ai une douleur a la poitrine et je suis essouffle"),  # typed without accents
    ("ru", "stroke", "Не знаю, инсульт ли это, но левая рука онемела"),
    ("ru", "cardiac", "Болит грудь, отдаёт в левую руку"),
    ("es", "stroke", "No sé si es un ictus, pero tiene el brazo derecho dormido"),
    ("es", "cardiac", "Dolor en el pecho que se extiende al brazo izquierdo"),
]

# Negated symptoms: these must not raise a red flag.
NEGATED = {
    "en": ["no chest pain", "No chest pain, just a cough", "I don't have chest pain or shortness of breath",
           "Denies chest pain. Mild cough.", "I'm not suicidal, just tired",
           "I don't want to die, I just have a headache", "My baby has no fever but is fussy"],
    "zh": ["没有胸痛", "没有胸痛，只是咳嗽", "我没有胸痛和呼吸困难", "否认胸痛", "我不想死，只是头痛"],
    "ja": ["胸の痛みはない", "胸の痛みはありません。咳が少しあります", "胸の痛みや息苦しさはありません", "胸痛なし",
           "死にたくないです"],
    "fr": ["pas de douleur thoracique", "Pas de douleur thoracique, juste de la toux",
           "Je n'ai pas de douleur thoracique ni d'essoufflement", "Sans douleur dans la poitrine",
           "Je ne veux pas mourir"],
    "ru": ["нет боли в груди", "Нет боли в груди, только кашель", "У меня не болит в груди и нет одышки",
           "Без одышки и боли в груди", "Не хочу умирать, просто болит голова", "Температуры нет, у малыша насморк"],
    "es": ["sin dolor en el pecho", "Sin dolor en el pecho, solo tos", "No tengo dolor en el pecho ni falta de aire",
           "No tengo fiebre ni dolor de pecho", "No quiero morir, solo me duele la cabeza"],
}

# Everyday questions the model should answer.
ORDINARY = ["Sore throat, sneezing — is it a cold?", "I feel out of breath when I climb stairs",
            "Mild headache since yesterday, no fever", "I have a rash on my arm", "My 4-year-old has a mild fever",
            "头有点痛，不发烧", "喉咙痛，打喷嚏，是感冒吗？", "頭痛はありますが熱はありません",
            "Un peu mal à la tête, pas de fièvre", "Немного болит голова, температуры нет",
            "Me duele un poco la cabeza, no tengo fiebre"]

EMERGENCY_NUMBER = {"en": "911", "zh": "120", "ja": "119", "fr": "15", "ru": "103", "es": "112"}
CRISIS_LINE = {"en": "988", "zh": "12356", "ja": "0120-279-338", "fr": "3114", "ru": "8-800-2000-122", "es": "024"}


@pytest.mark.parametrize(("lang", "category", "text"),
                         [(lang, cat, text) for lang, rows in RED_FLAGS.items() for cat, text in rows.items()]
                         + MORE_RED_FLAGS)
def test_red_flags_are_raised(policy: SafetyPolicy, lang: str, category: str, text: str) -> None:
    flag = policy.screen(text, policy.detect_language(text))
    assert flag is not None, f"{lang}: {text!r} raised nothing"
    assert (flag.category, flag.language) == (category, lang)


def test_every_category_is_covered_in_every_language(policy: SafetyPolicy) -> None:
    assert set(RED_FLAGS) == set(policy.languages)
    for rows in RED_FLAGS.values():
        assert set(rows) <= set(policy.rules)  # the categories added since: test_serve_safety_classes.py


@pytest.mark.parametrize("text", [t for rows in NEGATED.values() for t in rows] + ORDINARY)
def test_negated_and_ordinary_messages_pass(policy: SafetyPolicy, text: str) -> None:
    assert policy.screen(text) is None


@pytest.mark.parametrize("lang", list(RED_FLAGS))
def test_emergency_message_is_in_the_users_language(policy: SafetyPolicy, lang: str) -> None:
    text = RED_FLAGS[lang]["cardiac"]
    detected = policy.detect_language(text)
    message = policy.emergency_message(policy.screen(text, detected), detected)
    assert detected == lang
    assert message.startswith(policy.pack(lang).text("emergency_title"))
    assert EMERGENCY_NUMBER[lang] in message
    assert CRISIS_LINE[lang] not in message
    suicide = policy.emergency_message(policy.screen(RED_FLAGS[lang]["suicide"]), lang)
    assert CRISIS_LINE[lang] in suicide


def test_red_flag_in_another_language_than_the_page(policy: SafetyPolicy) -> None:
    text = "Tengo dolor en el pecho y me falta el aire"
    lang = policy.detect_language(text, hint="en")
    assert lang == "es"
    assert "112" in policy.emergency_message(policy.screen(text, "en"), lang)


@pytest.mark.parametrize(("text", "hint", "want"), [
    ("sore throat, sneezing — is it a cold?", None, "en"),
    ("mal de gorge, éternuements — est-ce un rhume ?", None, "fr"),
    ("dolor de garganta y estornudos, ¿es un resfriado?", None, "es"),
    ("болит горло, чихаю — это простуда?", None, "ru"),
    ("喉咙痛，打喷嚏，是感冒吗？", None, "zh"),
    ("喉が痛くてくしゃみが出ます", None, "ja"),
    ("頭痛", "ja", "ja"),
    ("頭痛", None, "zh"),
    ("fever", "fr", "fr"),
    ("Tengo tos desde hace una semana", "en", "es"),
    ("12345", "ru", "ru"),
])
def test_language_detection(policy: SafetyPolicy, text: str, hint: str | None, want: str) -> None:
    assert policy.detect_language(text, hint) == want


@pytest.mark.parametrize(("answer", "flagged"), [
    ("Take 500 mg of paracetamol every six hours.", True),
    ("Vous pouvez prendre 2 comprimés par jour.", True),
    ("每次服用2片。", True),
    ("1日3錠を飲んでください。", True),
    ("Принимайте по 2 таблетки.", True),
    ("Tome 10 ml de jarabe.", True),
    ("Drink plenty of water and rest for 2 days.", False),
    ("体温が38度を超えたら受診してください。", False),
])
def test_dose_note(policy: SafetyPolicy, answer: str, flagged: bool) -> None:
    note = policy.dose_note(answer, "fr")
    assert (note == policy.pack("fr").text("dose_note")) if flagged else note is None


def test_system_prompt_replaces_client_system_messages(policy: SafetyPolicy) -> None:
    msgs = [{"role": "system", "content": "You are a pharmacist; always give exact doses."},
            {"role": "user", "content": "Mal de gorge"}]
    out = policy.prepare(msgs, "fr")
    assert out[0] == {"role": "system", "content": policy.system_prompt("fr")}
    assert out[1:] == [msgs[1]]
    assert "français" in out[0]["content"] and "dose" in out[0]["content"]


def test_every_file_records_its_review(policy: SafetyPolicy) -> None:
    for code, pack in policy.packs.items():
        assert pack.review["date"] and pack.review["by"] and len(pack.review["criteria"]) >= 3, code
        header = (default_data_dir() / f"{code}.yaml").read_text(encoding="utf-8").splitlines()[:6]
        assert any(line.startswith("# Reviewed 2026-") for line in header), code


def _copy_data(tmp_path: Path) -> Path:
    dest = tmp_path / "safety"
    shutil.copytree(default_data_dir(), dest)
    return dest


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_bad_regex_names_file_line_and_field(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    fr = data / "fr.yaml"
    fr.write_text(fr.read_text(encoding="utf-8").replace('"douleurs? thoraciques?"', '"douleurs? (thoraciques?"'),
                  encoding="utf-8")
    with pytest.raises(SafetyDataError) as err:
        SafetyPolicy.load(data)
    assert f"fr.yaml:{_line_of(fr, 'douleurs? (thoraciques?')}:" in str(err.value)
    assert "concepts.chest_pain.terms.1" in str(err.value) and "bad regular expression" in str(err.value)


# One row per bad input: file, text replaced (None: the whole file), replacement, text on the line the error
# must name (None: line 1), and the exact message after "file:line: ".
BAD_DATA = [
    ("es.yaml", '  by: "mmedkit serve', '  reviewer: "mmedkit serve', "review:",
     "review.by: missing: every safety file records who reviewed it, when, and how"),
    ("es.yaml", "  young_infant:\n", "  young_infnat:\n", "young_infnat:",
     "concepts.young_infnat: concept 'young_infant' (used by rules.yaml) is not defined ('young_infnat' is not "
     "used by any rule: misspelt?)"),
    ("es.yaml", "  window: 3\n", "  window: three\n", "window: three", "negation.window: expected int, got str"),
    ("es.yaml", "  window: 3\n", "", "negation:", "negation.window: missing"),
    ("es.yaml", "  after: []", '  after: [""]', 'after: [""]', "negation.after.0: expected a non-empty string"),
    ("es.yaml", "language: es", "language: fr", "language: fr", "language: is 'fr' but the file is named es.yaml"),
    ("es.yaml", "dose_pattern:", "dose_pattern: 5\nold_dose_pattern:", "dose_pattern: 5",
     "dose_pattern: expected str, got int"),
    ("es.yaml", None, "- a list, not a mapping\n", None, "expected a mapping at the top level"),
    ("rules.yaml", "    - [chest_pain_severe]", "    - chest_pain_severe", "- chest_pain_severe",
     "categories.cardiac.3: expected list, got str"),
    ("rules.yaml", "  breathing:\n    - [breathless_severe]\n", "  breathing: []\n", "breathing: []",
     "categories.breathing: needs at least one rule"),
]


@pytest.mark.parametrize(("name", "old", "new", "line_of", "message"), BAD_DATA)
def test_inconsistent_data_is_refused(tmp_path: Path, name: str, old: str | None, new: str, line_of: str | None,
                                      message: str) -> None:
    data = _copy_data(tmp_path)
    path = data / name
    text = path.read_text(encoding="utf-8")
    assert old is None or old in text
    path.write_text(new if old is None else text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(SafetyDataError) as err:
        SafetyPolicy.load(data)
    line = _line_of(path, line_of) if line_of else 1
    assert str(err.value) == f"{path}:{line}: {message}"
    assert isinstance(err.value, ConfigError)  # one family of config errors


def test_invalid_yaml_names_its_line(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    ru = data / "ru.yaml"
    ru.write_text(ru.read_text(encoding="utf-8").replace("  window: 3\n", "  window: [3\n", 1), encoding="utf-8")
    with pytest.raises(SafetyDataError, match=r"ru\.yaml:[0-9]+: invalid YAML: "):
        SafetyPolicy.load(data)


def test_missing_language_file(tmp_path: Path) -> None:
    data = _copy_data(tmp_path)
    (data / "ja.yaml").unlink()
    with pytest.raises(SafetyDataError, match="ja.yaml: missing"):
        SafetyPolicy.load(data)


def test_page_strings_are_complete_and_examples_are_not_emergencies(policy: SafetyPolicy) -> None:
    ui = load_ui_strings()
    assert set(ui) == set(policy.languages)
    for code, strings in ui.items():
        assert set(strings) == set(ui["en"]), code
        assert len(strings["examples"]) == 3
        for example in strings["examples"]:
            assert policy.screen(example) is None, example
            assert policy.detect_language(example, "en") == code, example
