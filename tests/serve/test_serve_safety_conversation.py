"""The red-flag screen on whole conversations, kind by kind, in six languages: direct and lay phrasings,
misspellings, negation, history, hypotheticals, education, a third person, several turns and mixed
languages; the response extension's evidence and turn; and its speed on the longest input allowed."""

from __future__ import annotations

import time

import pytest

from mmedkit.serve.safety import SafetyPolicy, screen_conversation

U, A = "user", "assistant"
ASK = "Can you tell me more?"


def _turns(*texts: str) -> list[dict[str, str]]:
    """User turns with an assistant question between them."""
    out: list[dict[str, str]] = []
    for t in texts:
        if out:
            out.append({"role": A, "content": ASK})
        out.append({"role": U, "content": t})
    return out


# (language, kind, user turns, category or None), written for these tests.
CASES = [
    ("en", "direct", ["My husband is having crushing chest pain that goes down his left arm"], "cardiac"),
    ("en", "lay", ["It's like a heavy weight pressing on my chest and I'm drenched in cold sweat"], "cardiac"),
    ("en", "lay", ["mum keeled over in the kitchen and we can't wake her"], "unconscious"),
    ("en", "lay", ["I've been stockpiling my sleeping pills and wrote a goodbye note"], "suicide"),
    ("en", "misspelled", ["my son is unconcious after falling off his bike"], "unconscious"),
    ("en", "negated", ["No chest pain, no shortness of breath, just a runny nose"], None),
    ("en", "negated", ["Her face isn't drooping and her speech sounds normal"], None),
    ("en", "negated", ["Chest pain? No. Trouble breathing? Never. I only want a diet plan"], None),
    ("en", "mild", ["I ate a whole box of chocolates and my throat is sore and a bit swollen"], None),
    ("en", "historical", ["My father had a stroke fifteen years ago; is coffee bad for him?"], None),
    ("en", "hypothetical", ["What should I do if someone near me has a seizure?"], None),
    ("en", "educational", ["For my nursing exam: what are the warning signs of meningitis?"], None),
    ("en", "third_person", ["My grandad suddenly can't lift his right arm and his mouth is crooked"], "stroke"),
    ("en", "multi_turn", ["There's a tightness in my chest since lunch", "Now I'm sweating buckets"], "cardiac"),
    ("en", "multi_turn", ["I have a headache", "Also a bit of a cough"], None),
    ("en", "mixed", ["Tengo dolor en el pecho and I can't breathe properly"], "cardiac"),
    ("fr", "direct", ["Mon mari a une douleur à la poitrine qui irradie dans la mâchoire"], "cardiac"),
    ("fr", "lay", ["Ma mère s'est effondrée et on n'arrive pas à la réveiller"], "unconscious"),
    ("fr", "lay", ["J'ai écrit une lettre d'adieu à ma famille, je veux en finir"], "suicide"),
    ("fr", "misspelled", ["j'ai mal a la poitrine et je suis essouflé"], "cardiac"),
    ("fr", "negated", ["Pas de douleur thoracique ni d'essoufflement, juste de la fatigue"], None),
    ("fr", "historical", ["Mon oncle a fait un AVC il y a dix ans, que doit-il manger ?"], None),
    ("fr", "hypothetical", ["Que faire si quelqu'un fait une crise convulsive au travail ?"], None),
    ("fr", "educational", ["Je prépare un exposé sur la prévention du suicide pour le lycée"], None),
    ("fr", "third_person", ["Mon fils a avalé toute une plaquette de comprimés de sa grand-mère"], "poisoning"),
    ("fr", "multi_turn", ["J'ai une gêne dans la poitrine depuis une heure", "Maintenant j'ai des sueurs froides"],
     "cardiac"),
    ("fr", "mixed", ["My baby is 3 weeks old et il a 38,5 de fièvre"], "infant_fever"),
    ("es", "direct", ["Tengo un dolor en el pecho muy fuerte y me falta el aire"], "cardiac"),
    ("es", "lay", ["A mi madre se le ha caído media cara y habla rarísimo"], "stroke"),
    ("es", "lay", ["Estoy juntando pastillas y ya escribí una carta de despedida"], "suicide"),
    ("es", "misspelled", ["mi hijo tubo una convulsion y no reaciona"], "seizure"),
    ("es", "negated", ["No tengo dolor en el pecho ni falta de aire, solo tos"], None),
    ("es", "historical", ["Mi tío tuvo un infarto hace cinco años, ¿puede hacer deporte?"], None),
    ("es", "hypothetical", ["¿Qué hago si alguien se desmaya en la calle?"], None),
    ("es", "educational", ["Para un trabajo de la escuela: ¿cuáles son los síntomas de un ictus?"], None),
    ("es", "third_person", ["Mi abuelo se agarra el pecho y está sudando frío"], "cardiac"),
    ("es", "multi_turn", ["Me picó una avispa en el brazo", "Ahora se me hinchan los labios y la lengua"],
     "anaphylaxis"),
    ("es", "mixed", ["Mi hermano is unconscious y no se despierta"], "unconscious"),
    ("ru", "direct", ["У мужа сильная боль в груди, отдает в левую руку"], "cardiac"),
    ("ru", "lay", ["Дедушка обмяк на диване, не можем его разбудить"], "unconscious"),
    ("ru", "lay", ["Я коплю снотворное и написала прощальное письмо"], "suicide"),
    ("ru", "misspelled", ["у мамы инсулт, лицо перекосило"], "stroke"),
    ("ru", "negated", ["Боли в груди и одышки нет, просто насморк"], None),
    ("ru", "negated", ["Лицо не перекошено, речь нормальная"], None),
    ("ru", "mild", ["Немного запыхаюсь на лестнице, и сын съел целую пачку печенья"], None),
    ("ru", "historical", ["Пять лет назад перенес инфаркт, можно ли мне в баню?"], None),
    ("ru", "hypothetical", ["Что делать, если у человека судороги на улице?"], None),
    ("ru", "educational", ["Пишу реферат о профилактике суицида для школы"], None),
    ("ru", "third_person", ["Сын проглотил батарейку от часов"], "poisoning"),
    ("ru", "multi_turn", ["С утра давит в груди", "Теперь еще холодный пот выступил"], "cardiac"),
    ("ru", "mixed", ["У мамы face drooping и она не может говорить"], "stroke"),
    ("zh", "direct", ["我爸胸口剧痛，还出了一身冷汗"], "cardiac"),
    ("zh", "lay", ["奶奶突然倒地，怎么叫都叫不醒"], "unconscious"),
    ("zh", "lay", ["我攒了很多安眠药，已经写好遗书了"], "suicide"),
    ("zh", "negated", ["没有胸痛，也没有呼吸困难，就是有点咳嗽"], None),
    ("zh", "historical", ["我爸十年前中风过，现在能喝酒吗？"], None),
    ("zh", "hypothetical", ["如果有人癫痫发作，旁边的人应该怎么做？"], None),
    ("zh", "educational", ["写论文需要：心梗有哪些早期症状？"], None),
    ("zh", "third_person", ["我妈说话突然含糊不清，嘴也歪了"], "stroke"),
    ("zh", "multi_turn", ["被蜜蜂蜇了一下", "现在嘴唇肿起来了，喘不上气"], "anaphylaxis"),
    ("zh", "mixed", ["我儿子 swallowed a button battery，怎么办"], "poisoning"),
    ("ja", "direct", ["父が胸の激痛を訴えていて、冷や汗をかいています"], "cardiac"),
    ("ja", "lay", ["祖父が急に倒れて、呼んでも反応しません"], "unconscious"),
    ("ja", "lay", ["もう消えてしまいたい。遺書も書きました"], "suicide"),
    ("ja", "negated", ["胸の痛みはありません。少し咳が出るだけです"], None),
    ("ja", "historical", ["5年前に脳梗塞をやりましたが、今は元気です。運動してもいいですか"], None),
    ("ja", "hypothetical", ["もし家族がけいれんを起こしたら、どうすればいいですか"], None),
    ("ja", "educational", ["授業のレポートで、心筋梗塞の初期症状について調べています"], None),
    ("ja", "third_person", ["母の顔が急にゆがんで、ろれつが回っていません"], "stroke"),
    ("ja", "multi_turn", ["朝から胸が締めつけられる感じがします", "今は冷や汗が出てきました"], "cardiac"),
    ("ja", "mixed", ["息子が chest pain を訴えていて、息ができないと言っています"], "cardiac"),
]


@pytest.mark.parametrize(("lang", "kind", "turns", "category"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_each_kind_in_every_language(policy: SafetyPolicy, lang: str, kind: str, turns: list[str],
                                     category: str | None) -> None:
    verdict = policy.screen_conversation(_turns(*turns))
    got = None if verdict is None else verdict.category
    assert got == category, f"{lang} {kind}: {turns} -> {verdict}"


def test_every_kind_is_covered_in_every_language() -> None:
    kinds = {"direct", "lay", "negated", "historical", "hypothetical", "educational", "third_person",
             "multi_turn", "mixed"}
    for lang in ("en", "fr", "es", "ru", "zh", "ja"):
        assert {k for c, k, *_ in CASES if c == lang} >= kinds, lang


def test_verdict_names_category_evidence_and_turn(policy: SafetyPolicy) -> None:
    messages = _turns("Since this morning I've had pain in my chest", "Now I'm also short of breath")
    verdict = screen_conversation(messages)
    assert verdict is not None and (verdict.category, verdict.language, verdict.turn) == ("cardiac", "en", 2)
    assert "chest" in verdict.evidence and "short of breath" in verdict.evidence
    assert [e.turn for e in verdict.found] == [0, 2]  # the symptom two turns back counts
    assert verdict.message == policy.emergency_message("cardiac", "en") and "911" in verdict.message


def test_a_later_negation_withdraws_an_earlier_symptom(policy: SafetyPolicy) -> None:
    assert policy.screen_conversation(_turns("I have chest pain", "Sorry, no chest pain now, just short of breath"
                                             " after running")) is None


def test_an_answered_emergency_is_not_raised_again(policy: SafetyPolicy) -> None:
    first = [{"role": U, "content": "Mon père ne respire plus"}]
    verdict = policy.screen_conversation(first)
    assert verdict is not None and verdict.category == "breathing"
    later = [*first, {"role": A, "content": verdict.message}, {"role": U, "content": "Les secours arrivent, merci"}]
    assert policy.screen_conversation(later) is None
    worse = [*later[:-1], {"role": U, "content": "Il est inconscient maintenant"}]
    assert policy.screen_conversation(worse).category == "unconscious"


def test_system_and_assistant_text_is_not_screened(policy: SafetyPolicy) -> None:
    messages = [{"role": "system", "content": "Call 911 if someone has a stroke or stops breathing."},
                {"role": U, "content": "Which vitamins help with a cold?"},
                {"role": A, "content": "Chest pain with shortness of breath needs urgent care."},
                {"role": U, "content": "Thanks!"}]
    assert policy.screen_conversation(messages) is None


def test_the_longest_inputs_are_screened_quickly(policy: SafetyPolicy) -> None:
    ordinary = ("I have had a mild cough and a runny nose for three days, no fever. J'ai un peu mal à la gorge. "
                "Me duele un poco la cabeza. Немного болит горло. 喉咙有点痛。少し頭が痛いです。")
    long_message = [{"role": U, "content": (ordinary * 60)[:8000]}]
    conversation = _turns(*[f"{ordinary} ({i})" for i in range(40)])
    for messages in (long_message, conversation):
        policy.findings.cache_clear()
        start = time.perf_counter()
        assert policy.screen_conversation(messages) is None
        assert time.perf_counter() - start < 3.0  # measured about 0.1-0.2 s on one CPU core


def test_spelling_fixes_misspellings_but_never_real_words(policy: SafetyPolicy) -> None:
    fix = policy.speller.fix_word
    fixed = [fix(w) for w in ("unconcious", "swalowed", "fevr", "грди")]
    assert fixed == ["unconscious", "swallowed", "fever", "груди"]
    assert fix("инсулт").startswith("инсульт")
    for word in ("painted", "chess", "hace", "galletas", "запыхаюсь", "tablets"):
        assert fix(word) == word


# More messages written for these tests (emergencies, then ordinary questions), one user turn each.
MORE_EMERGENCIES = [
    'my wife collapsed in the shower and is not breathing properly',
    "my dad's speech suddenly became garbled and he can't lift his left arm",
    'my toddler chewed on a dishwasher tablet',
    "I'm bleeding through my pad every 20 minutes and feel faint",
    'I want to go to sleep and never wake up',
    'Mon bébé de 2 mois est brûlant et ne boit plus',
    'Elle a la gorge qui gonfle et siffle en respirant après une piqûre de guêpe',
    'Il a avalé des piles bouton',
    'Me duele muchísimo el pecho y me cuesta respirar',
    'Mi abuelo está inconsciente en el suelo',
    'Ребенок проглотил магниты',
    'Сильно давит в груди и отдает в челюсть',
    '我儿子从高处摔下来，昏迷不醒',
    '我妈妈嘴歪眼斜，手脚无力',
    '血一直流，止不住',
    '胸が痛くて息ができません',
    '子どもが灯油を飲んでしまいました',
    'もう死にたいです',
    "my husband is drooling from one side of his mouth and can't hold his cup",
    'I think my son drank some of the weed killer from the shed',
    "she's turning blue and making choking noises",
    'my chest is on fire and the pain is moving into my jaw',
    'I have been cutting myself and tonight I want to end everything',
    'Mon père est tout pâle, il a mal dans la poitrine et il a du mal à respirer',
    'Ma femme ne se réveille pas et respire très lentement',
    'Mi hijo de 6 semanas está ardiendo de fiebre, 38,2',
    'Tengo ganas de tirarme por el balcón',
    'Бабушка потеряла сознание на кухне',
    'Муж говорит невнятно и улыбка кривая',
    '我不想再活下去了，想结束这一切',
    '孩子被鱼刺卡住喉咙，喘不过气',
    '呼吸が止まっているみたいで、呼んでも起きません',
    '胸がぎゅっと締めつけられて、左腕がしびれています',
    'my neighbour just dropped to the floor and is twitching all over',
    'my 4 month old has a temperature of 39.4 and is very floppy',
    "I can't stop the bleeding from my thigh, it's soaking through everything",
    "my dad's left side went numb and his words are coming out wrong",
    'I was stung by a bee and now my whole face is swelling and my throat feels tight',
    "I don't see any reason to keep living, I have the rope ready",
    "Depuis une heure j'ai une douleur écrasante dans le thorax qui part dans l'épaule gauche",
    "Ma fille de 3 ans a bu de l'eau de Javel",
    'Mon frère fait une crise, il tremble et ne répond plus',
    'Je saigne énormément de la tête après une chute',
    'Tengo la garganta cerrada y no puedo tragar después de una picadura',
    'Mi madre se desplomó y no respira',
    'Mi pareja se ha tomado un frasco entero de antidepresivos',
    'Siento que el pecho me va a estallar y estoy sudando a chorros',
    'Отца парализовало с одной стороны, не может говорить',
    'Ребенок не дышит, губы синие',
    'У мужа страшная давящая боль в груди уже полчаса',
    'Хочу умереть, уже написала записку',
    '孩子抽搐，口吐白沫，叫不醒',
    '我胸口痛得受不了，左手臂也麻了',
    '我老婆吃了很多安眠药，现在叫不醒',
    '宝宝才20天，发烧38.5度',
    '腕から血が噴き出して止まりません',
    '祖母が急に話せなくなって、右手も動きません',
    '息ができなくて唇が紫になっています',
    'もう生きていたくない、今夜死ぬつもりです',
    "my mother is sweating and says her chest feels like it's in a vice",
    "my brother was found on the floor, he's breathing but we can't get him to respond",
    "my son's face went lopsided and he's slurring since 10 minutes",
    'I swallowed all my blood pressure tablets an hour ago',
    "there's a deep cut on his leg and it's pumping blood",
    "Mon mari se plaint d'un poids sur la poitrine, il est livide et en sueur",
    "Ma grand-mère a le visage qui tombe d'un côté et elle parle bizarrement",
    'Mon fils a bu du produit pour déboucher les toilettes',
    "Je n'en peux plus, j'ai décidé de mettre fin à mes jours ce soir",
    'Mon bébé de 5 semaines a 38,7 de fièvre',
    'Mi marido tiene un dolor en el pecho que le baja por el brazo izquierdo',
    'Mi padre está tirado en el suelo y no responde',
    'A mi hija se le hinchó la cara y la garganta tras comer nueces y le cuesta respirar',
    'Me corté con un cristal y sale muchísima sangre, no para',
    'Mi hermano dice que se quiere matar',
    'Муж схватился за грудь, весь в поту, говорит что жжет',
    'Папа упал и не приходит в себя',
    'У дочки отекли губы и язык после укуса пчелы, ей трудно дышать',
    'Дочь выпила средство для мытья посуды',
    'Не вижу смысла жить, собираюсь уйти навсегда',
    '爷爷突然一边脸歪了，话也说不清楚',
    '我老公胸口疼得厉害，全身冒冷汗',
    '孩子喝了半瓶洗洁精',
    '她割腕了，血止不住',
    '妈妈晕倒在地上，叫她没有反应',
    '夫が胸をおさえて苦しんでいて、汗びっしょりです',
    '母の口がゆがんで、うまく話せません',
    '子どもが漂白剤を少し飲んだかもしれない',
    '息子が意識を失って倒れています',
    '首が硬くて高熱が出ています',
    'my dad is clutching his chest and gasping, he looks grey',
    'there is something crushing my chest and my left arm is numb',
    "my wife suddenly can't speak and one side of her face has fallen",
    'my toddler got into the medicine cabinet and ate a handful of pills',
    "my friend took a bunch of sleeping pills with vodka and won't wake up",
    "I've got my pills lined up and I'm going to take them all tonight",
    'I keep thinking everyone would be better off if I was gone',
    "he cut his wrist deeply and there's blood everywhere",
    'my mouth and tongue are swelling after eating shrimp and I feel faint',
    "my 2 week old is burning hot and won't feed",
    "my daughter has a fever and a rash of purple spots that won't fade",
    "grandpa fell and he isn't responding to us at all",
    "she's having a fit and her lips are turning blue",
    "J'ai une barre dans la poitrine et je transpire à grosses gouttes",
    "Mon père a la bouche tordue et n'arrive plus à lever le bras",
    "Ma copine a pris toute sa boîte d'antidépresseurs",
    'Mon bébé de 10 jours est brûlant, 38,6',
    'Il ne respire plus et ne réagit pas',
    'Siento una opresión en el pecho y sudor frío',
    'A mi abuela se le torció la boca y no puede hablar',
    'Mi hijo se tomó todas las pastillas de mi madre',
    'Quiero quitarme la vida, ya no aguanto más',
    'Mi bebé de 15 días tiene 38,3 de fiebre',
    'Давит за грудиной, холодный пот и тошнит',
    'У бабушки онемела правая рука и речь стала невнятной',
    'Сын наглотался таблеток бабушки',
    'Хочу покончить с собой, больше не могу',
    'Младенцу 2 недели, температура 38,4',
    '胸口像被什么压着，喘不上气，满头大汗',
    '我妈突然半边身子动不了，说话也不清楚',
    '孩子把一整盒药都吃了',
    '我真的不想活了，已经准备好了药',
    '胸が苦しくて冷や汗が止まらない',
    '父の右半身が動かなくて、言葉が出てこない',
    '子どもが薬を一箱全部飲んでしまった',
    'もう死にたい、薬を全部飲むつもりです',
]
NOT_EMERGENCIES = [
    'How much paracetamol is safe for an adult per day?',
    'My son fainted once at school two years ago after standing too long',
    'What should be in a home first aid kit?',
    "J'ai de l'asthme léger, quand dois-je utiliser ma ventoline ?",
    '¿Es normal tener dolor de pecho al toser con un resfriado fuerte?',
    'Как часто можно давать ребенку жаропонижающее?',
    '小时候得过脑膜炎，现在会有后遗症吗？',
    '熱中症を予防するにはどうすればいいですか',
    'What vaccines does a 2 month old baby need?',
    'My grandmother survived a heart attack in 2015, what exercise is safe for her?',
    'How do I store medicines safely away from children?',
    'Tengo acidez y ardor en el estómago después de comer',
    "Ma mère a eu un AVC l'an dernier, quelle rééducation conseillez-vous ?",
    'Ребенок подавился водой, откашлялся и сейчас все хорошо',
    '宝宝三个月大，打完疫苗有点低烧吗？',
    '以前、アナフィラキシーを起こしたことがあるので、エピペンの使い方を知りたい',
    'What is the normal resting heart rate for adults?',
    'My father had a heart attack in 2010 and now takes statins; can he eat eggs?',
    'Should I learn CPR in case someone collapses at work?',
    "J'ai fait une réaction allergique aux arachides quand j'étais petit",
    'Comment reconnaître un AVC chez une personne âgée ?',
    'Mi abuela tuvo convulsiones de niña pero ya no',
    '¿Qué hago si mi hijo tiene fiebre alta por la noche?',
    'В детстве у меня была аллергия на пчел, сейчас нет',
    'Что делать, если у ребенка температура 38?',
    '他以前得过心梗，现在能跑步吗？',
    '如果孩子误吞了硬币怎么办？',
    '子どもの頃にけいれんを起こしたことがあります',
    '胸の痛みはなく、少し胃がもたれるだけです',
    'Is it safe to exercise after a heart attack that happened 3 years ago?',
    'Which foods lower the risk of stroke?',
    'I do first aid training next week, how do I put someone in the recovery position?',
    "Je n'ai pas de douleur thoracique, juste des brûlures d'estomac",
    'Si mon enfant avale une pile, que dois-je faire ?',
    '¿Cuáles son las señales de alarma de una meningitis?',
    'Mi padre tuvo un ictus hace años y camina con bastón',
    'Лицо не перекошено, рука не немеет, просто устал',
    'Если ребенок проглотит батарейку, что делать?',
    '我爷爷五年前中风过，现在恢复得不错',
    '胸口没有疼，也没有出冷汗',
    '以前有过过敏性休克，现在出门要带什么？',
    '心筋梗塞の前兆について知りたいです',
    '昔けいれんを起こしたことがありますが、今は大丈夫です',
    'I had chest pain last year, the tests were normal; what diet is good for the heart?',
    'What are the signs of a heart attack in women?',
    'If my child swallows a coin, what should I do?',
    "I'm writing a story where a character overdoses, is that realistic?",
    'My friend attempted suicide years ago and is fine now, how do I talk about it?',
    'No fever, no stiff neck, just a headache from stress',
    "J'ai eu un AVC il y a cinq ans, puis-je reprendre le vélo ?",
    "Quels sont les symptômes d'une méningite ?",
    'No tengo fiebre ni rigidez de nuca',
    'Hace años tuve una sobredosis, ahora estoy bien',
    'Какие признаки инсульта у пожилых?',
    'Три года назад было отравление грибами, сейчас все хорошо',
    '心梗的症状有哪些？',
    '我没有胸痛，也不喘',
    '脳卒中の症状を教えてください',
    '胸の痛みも息苦しさもありません',
]


@pytest.mark.parametrize("text", MORE_EMERGENCIES)
def test_more_emergencies(policy: SafetyPolicy, text: str) -> None:
    assert policy.screen_conversation(_turns(text)) is not None, text


@pytest.mark.parametrize("text", NOT_EMERGENCIES)
def test_more_ordinary_questions(policy: SafetyPolicy, text: str) -> None:
    verdict = policy.screen_conversation(_turns(text))
    assert verdict is None, f"{text} -> {verdict}"


MORE_CONVERSATIONS = [  # (user turns, emergency?)
    (("My dad is 70", "He's complaining of pressure in his chest", "and now he's cold and clammy"), True),
    (("Mi hija tiene fiebre desde ayer", "ahora tiene el cuello rígido y le molesta la luz"), True),
    (("У меня аллергия на орехи", "Съела салат с орехами, теперь задыхаюсь"), True),
    (("孩子刚满月", "现在体温38.3度"), True),
    (("彼女が急に倒れました", "体がけいれんしています"), True),
    (("I feel so hopeless lately", "I've written letters to my family and I'm ready to go"), True),
    (("Mon fils de 2 ans a trouvé mes médicaments", "il en manque beaucoup dans la boîte"), True),
    (("J'ai mal à la tête", "and now my face feels numb on one side and I can't talk properly"), True),
    (("I had a cough last week", "Now it's much better, no fever"), False),
    (("Can you explain what a stroke is?", "Thanks, and what are the risk factors?"), False),
]


@pytest.mark.parametrize(("turns", "emergency"), MORE_CONVERSATIONS)
def test_more_conversations(policy: SafetyPolicy, turns: tuple[str, ...], emergency: bool) -> None:
    verdict = policy.screen_conversation(_turns(*turns))
    assert (verdict is not None) == emergency, f"{turns} -> {verdict}"
