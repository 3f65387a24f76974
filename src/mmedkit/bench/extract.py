"""Extract the option letter(s) a model chose from its free-text answer ("generate" mode).

The text is NFKC-normalised first (full-width ``Ｂ``, ``：``, ``，`` and ``（）`` become ASCII), then a
cascade of rules runs; the first rule that yields letters *all among the item's options* wins:

1. ``study``: the study's own form, ``###Answer: OPTION B IS CORRECT.`` / ``OPTION A,C,E IS CORRECT``.
   ``###Answer:`` blocks are tried in order and the first that holds an answer wins (a model that
   keeps generating, or echoes the prompt, writes later blocks). Inside a block, a truncated
   ``###Answer: OPTION B`` also counts as ``study``; a block with another answer form
   (``###Answer: B``, ``###Answer: да``) yields ``answer_label`` / ``option_text`` / ``number``.
   Outside a block, ``OPTION B IS CORRECT`` must be upper case or end its sentence.
2. ``answer_label``: a language-specific answer label followed by letter(s), scanned by position
   (earliest first): en "The correct answer is (B)", zh "答案是B" / "选B", ja "正解はb",
   fr "La bonne réponse est B" / "Réponses : A, C et E", ru "Правильный ответ — В", es
   "Respuesta: C". After a label, option *text* ("Ответ: да") yields ``option_text`` and a
   1-based option number ("La respuesta correcta es 3", as HEAD-QA numbers answers) yields
   ``number``. Then weaker "Option B" / "Opción B" / "选项B" mentions, accepted only when every
   such mention names the same letters.
3. ``bare_letter``: a reply that is only letters ("B", "(B)", "**C**", "A, C"), or that starts with
   "B." / "B)" followed by a newline or by option B's own text. A reply that is only a number
   yields ``number``.
4. ``option_text``: the reply starts with one option's text followed by punctuation or the end
   ("Да, ..."), or it contains exactly one option's text (whole words in space-delimited
   languages, at least two characters) and no other option's.
5. ``none``: nothing could be extracted (``letters`` is None).

Design decisions:

* Letters are matched only as standalone tokens (not inside words, not "B-cell", not "A's") and
  only in rule contexts, so prose such as "A 45-year-old man" or French/Spanish "a", "y" never
  yields an answer. A token that may be a word ("A", "I", Cyrillic "А"/"В"/"С", any lower-case
  letter) after a label must be followed by punctuation, a line end, a continuation word
  ("because", "car", "porque", "потому", ...) or that option's own text.
* Lists are read with commas, "、", "/", "and"/"et"/"y"/"и"/"or"/"ou"/"o"/"или"/"和"/"と"... as
  separators; letters separated only by spaces ("A C E") are a list only for multi-answer items
  (or in a bare reply). All tokens of a list share one case, so "B and a drug" is just B.
* With ``multi_answer=False`` a list is still returned as a set (exact-set scoring marks it wrong).
* Cyrillic letters: Russian exams label options А Б В Г Д Е in *alphabet* order, so Cyrillic
  А, Б, В, Г, Д, Е map to A, B, C, D, E, F (Cyrillic В is C, not the look-alike B). Cyrillic С,
  which is never an option label in that order, is read as its look-alike C. When an item's
  option keys are themselves Cyrillic, the token is matched directly first.
* A list naming any letter outside the options is rejected as a whole and the cascade goes on.

:func:`study_strict` is the study's own scoring (MMedLM ``inference/inference.py`` then
``metrics/accuracy.py``), kept apart from the cascade: the reply up to any ``### Response:``,
stripped, newlines removed, ``###Answer: OPTION `` and ``IS CORRECT.`` (and the EOS text) removed,
must *equal* the gold letter, or as a comma-separated set the gold letters of a multi-answer item.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from mmedkit.languages import get_language
from mmedkit.text import CYRILLIC, GREEK, LATIN, normalize

__all__ = ["STUDY_EOS", "Extraction", "extract_answer", "study_response", "study_strict", "study_strict_decided"]


@dataclass(frozen=True)
class Extraction:
    """The letters extracted from a reply (None when none could be) and the rule that matched."""

    letters: frozenset[str] | None
    rule: str

    @property
    def valid(self) -> bool:
        """Whether an answer was extracted."""
        return self.letters is not None


NONE = Extraction(None, "none")

# Letters and digits of the scripts whose words could run into a letter token.
_ALNUM = f"0-9{LATIN}{GREEK}{CYRILLIC}"
_LETTER_CHARS = "A-Za-zАБВГДЕСабвгдес"
_CYRILLIC = {"А": "A", "Б": "B", "В": "C", "Г": "D", "Д": "E", "Е": "F", "С": "C"}
_AMBIGUOUS_UPPER = frozenset("AIАВС")

_TOKEN = re.compile(
    rf"(?P<open>[(\[【「『\"“‘'*_]*)(?<![{_ALNUM}])"
    rf"(?:(?P<letter>[{_LETTER_CHARS}])|(?P<number>\d{{1,2}}))"
    rf"(?![{_ALNUM}]|[-'’][{_ALNUM}]|[.,]\d)"
    r"(?P<close>[)\]】」』\"”’'*_]*)"
)
_WORDSEP = r"(?i:and|or|et|ou|или)|y|и|o"
_SEP = re.compile(
    rf"\s*(?:[,、;；/&+]|\s(?:{_WORDSEP})(?=\s))\s*(?:(?:{_WORDSEP})\s+)?"
    r"|\s*(?:以及|和|与|與|及|或|および|及び|または|と)\s*"
)
_SPACES = re.compile(r"[ \t]+")
_GAP = re.compile(rf"[ \t]+(?=[{_ALNUM}])")
_WORD = re.compile(rf"[{_ALNUM}]+(?:['’][{_ALNUM}]+)?")

_OPTION_WORD = (
    r"(?:(?i:options?|choices?|letters?|opci[oó]n(?:es)?|propositions?|вариант(?:ы|а)?|пункт)\b"
    r"|选项|選項|選択肢)"
)
_WRAPPERS = r"[\s*_\"“「『【>]*"
_SKIP = re.compile(_WRAPPERS)
_ARG_PREFIX = re.compile(
    rf"{_WRAPPERS}(?:(?i:the|la|le|les|el|las|los)\s+|(?i:l)['’]\s*)?(?:{_OPTION_WORD}\s*:?\s*)?"
    r"(?:(?i:n[úu]mero|number|номер|n[°o]\.?)\s*(?=\d))?"
)

_CONTINUATIONS = frozenset(
    """because since as is was which this that it and or for due given
    car parce puisque est c'est qui et ou donc
    porque ya pues que es y o dado debido
    потому так поскольку это и или т""".split()
)

_ANSWER_BLOCK = re.compile(r"#{2,}\s*answer\s*:", re.IGNORECASE)
_SECTION = re.compile(r"#{2,}")
_STUDY_OPTION = re.compile(r"\b(?i:options?)\b\s*[:.]?\s*")
_IS_CORRECT = re.compile(r"\s*(?i:is|are)\s+(?i:the\s+)?(?i:correct|right)\b")
_SENTENCE_END = re.compile(r"\s*(?:[.!。]|$|\n)")
_WEAK = re.compile(rf"(?<![#\w])(?<!#[ \t])(?<!#[ \t]{{2}}){_OPTION_WORD}\s*:?\s*")
"""A weak "Option B" mention; never a ``### Options:`` header, which echoes the prompt's option list."""
_BARE_PREFIX = re.compile(rf"[\s#>*_`]*(?:{_OPTION_WORD}\s*:?\s*)?")
_BARE_END = re.compile(r"[\s.。!:;)\]*_`]*")
_LEAD = re.compile(
    rf"[\s#>*_`]*\(?(?<![{_ALNUM}])(?P<letter>[{_LETTER_CHARS}])[.:)\]][*_]*[ \t]*"
)

_EN_VERB = r"(?:is|are|would\s+be|should\s+be|will\s+be)"
_DASH = r"[:=\-–—]"
_LABELS = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        # English
        rf"\b(?:correct|right|best|final|most\s+(?:likely|appropriate|accurate))\s+"
        rf"(?:answer|option|choice|response)s?(?:\s*{_EN_VERB}\b)?\s*{_DASH}?",
        rf"\banswers?\s*(?:{_EN_VERB}\b\s*{_DASH}?|{_DASH})",
        # French
        r"\b(?:bonnes?\s+|meilleures?\s+|seules?\s+)?réponses?"
        r"(?:\s+(?:correctes?|exactes?|justes?|finales?))?"
        rf"\s*(?:(?:est|sont|serait|seraient)\b\s*{_DASH}?|{_DASH})",
        # Spanish
        r"\brespuestas?(?:\s+(?:correctas?|adecuadas?|acertadas?|finales?|verdaderas?))?"
        rf"\s*(?:(?:es|son|sería|serían)\b\s*{_DASH}?|{_DASH})",
        rf"\bopci[oó]n(?:es)?\s+(?:correctas?|adecuadas?|verdaderas?|acertadas?)\s*(?:(?:es|son|sería)\b)?"
        rf"\s*{_DASH}?",
        # Russian
        rf"\b(?:(?:правильн|верн)\w*\s+)?ответ\w*\s*(?:(?:это|является|будет)\b\s*{_DASH}?|{_DASH})?",
        rf"\b(?:правильн|верн)\w*\s+вариант\w*\s*(?:(?:это|является|будет)\b\s*{_DASH}?|{_DASH})?",
        # Chinese
        r"答案\s*(?:应该?|應該?|应当|應當)?\s*(?:是|为|為|选|選)?\s*:?",
        r"(?:正确|正確|最佳|最合适|最合適|最恰当|最恰當)的?(?:选项|選項|选择|選擇)\s*(?:应该?|應該?)?"
        r"\s*(?:是|为|為)?\s*:?",
        r"(?:应|應|故|所以|因此|本题|本題|我)?(?:选|選)(?:择|擇)?\s*:?",
        r"答\s*:",
        # Japanese
        r"(?:正解|答え|解答|回答|正答)\s*(?:は|:)",
        r"正しい(?:の|選択肢|答え)?は",
    )
)


@dataclass(frozen=True)
class _Tok:
    raw: str
    kind: str  # "letter" or "number"
    ambiguous: bool
    end: int  # after the closing wrappers


def _norm_option(text: str) -> str:
    return normalize(text).rstrip(".。").strip()


class _Extractor:
    def __init__(self, text: str, options: dict[str, str], spaced: bool, multi: bool) -> None:
        self.text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n")
        self.options = options
        self.keys = list(options)
        self.spaced = spaced
        self.multi = multi
        self.norms = {k: n for k, v in options.items() if (n := _norm_option(str(v)))}

    # -- tokens and lists ---------------------------------------------------------------------

    def _token(self, pos: int) -> _Tok | None:
        m = _TOKEN.match(self.text, pos)
        if not m:
            return None
        kind = "letter" if m.group("letter") else "number"
        raw = m.group(kind)
        wrapped = bool(m.group("open") or m.group("close"))
        ambiguous = not wrapped and (kind == "number" or raw.islower() or raw in _AMBIGUOUS_UPPER)
        return _Tok(raw, kind, ambiguous, m.end())

    def _tokens(self, pos: int, allow_space: bool) -> list[_Tok]:
        first = self._token(pos)
        if first is None:
            return []
        toks = [first]
        while True:
            end = toks[-1].end
            nxt = None
            sep = _SEP.match(self.text, end)
            if sep:
                nxt = self._token(sep.end())
            if nxt is None and allow_space and (sp := _SPACES.match(self.text, end)):
                nxt = self._token(sp.end())
            if nxt is None or nxt.kind != first.kind:
                break
            if first.kind == "letter" and nxt.raw.isupper() != first.raw.isupper():
                break
            toks.append(nxt)
        return toks

    def _letter(self, tok: _Tok) -> str | None:
        if tok.kind == "number":
            n = int(tok.raw)
            return self.keys[n - 1] if 1 <= n <= len(self.keys) else None
        up = tok.raw.upper()
        if up in self.options:
            return up
        lat = _CYRILLIC.get(up)
        return lat if lat in self.options else None

    def _resolve(self, toks: list[_Tok]) -> frozenset[str] | None:
        letters = [self._letter(t) for t in toks]
        if not letters or any(x is None for x in letters):
            return None
        return frozenset(x for x in letters if x is not None)

    def _tail_ok(self, tok: _Tok) -> bool:
        """Whether an ambiguous token is followed by something that makes it an answer."""
        if not tok.ambiguous:
            return True
        if tok.kind == "number" and self.text[tok.end:tok.end + 1] in ("%", "°"):
            return False
        gap = _GAP.match(self.text, tok.end)
        if not gap:
            return True  # end, line end, punctuation or a CJK character
        word = _WORD.match(self.text, gap.end())
        if word and word.group(0).casefold() in _CONTINUATIONS:
            return True
        letter = self._letter(tok)
        return letter is not None and self._option_at(gap.end()) == letter

    def _list_at(self, pos: int, *, prose: bool, allow_space: bool) -> tuple[frozenset[str], str] | None:
        toks = self._tokens(pos, allow_space)
        if prose:
            while toks and not self._tail_ok(toks[-1]):
                toks.pop()
        letters = self._resolve(toks)
        if letters is None:
            return None
        return letters, ("number" if toks[0].kind == "number" else "answer_label")

    def _option_at(self, pos: int) -> str | None:
        """The option whose text starts at ``pos`` (the longest, when several do)."""
        longest = max((len(n) for n in self.norms.values()), default=0)
        window = normalize(self.text[pos:pos + 2 * longest + 64], form=None).lstrip("*_\"“「『【(> ")
        best: str | None = None
        for key, n in self.norms.items():
            if not window.startswith(n):
                continue
            if self.spaced and re.match(r"\w", window[len(n):len(n) + 1]):
                continue
            if best is None or len(n) > len(self.norms[best]):
                best = key
        return best

    def _argument(self, pos: int) -> Extraction | None:
        """What follows an answer label: letters, else option text, else an option number."""
        prefixed, skipped = _ARG_PREFIX.match(self.text, pos).end(), _SKIP.match(self.text, pos).end()
        starts = list(dict.fromkeys([prefixed, skipped]))
        number: Extraction | None = None
        for start in starts:
            found = self._list_at(start, prose=True, allow_space=self.multi)
            if found and found[1] == "answer_label":
                return Extraction(*found)
            if found and number is None:
                number = Extraction(*found)
        for start in reversed(starts):
            key = self._option_at(start)
            if key is not None:
                return Extraction(frozenset({key}), "option_text")
        return number

    # -- the cascade ----------------------------------------------------------------------------

    def _study_at(self, match: re.Match[str], in_block: bool) -> frozenset[str] | None:
        toks = self._tokens(match.end(), allow_space=True)
        if not toks or toks[0].kind != "letter":
            return None
        correct = _IS_CORRECT.match(self.text, toks[-1].end)
        if not correct:
            return None
        if not in_block and not match.group(0).startswith("OPTION") and not _SENTENCE_END.match(
            self.text, correct.end()
        ):
            return None
        return self._resolve(toks)

    def answer_blocks(self) -> Extraction | None:
        for block in _ANSWER_BLOCK.finditer(self.text):
            nxt = _SECTION.search(self.text, block.end())
            stop = nxt.start() if nxt else len(self.text)
            for m in _STUDY_OPTION.finditer(self.text, block.end(), stop):
                letters = self._study_at(m, in_block=True)
                if letters is not None:
                    return Extraction(letters, "study")
            found = self._argument(block.end())
            if found is not None:
                truncated = re.match(r"\s*(?i:options?)\b", self.text[block.end():])
                if truncated and found.rule == "answer_label":
                    return Extraction(found.letters, "study")
                return found
        return None

    def study(self) -> Extraction | None:
        for m in _STUDY_OPTION.finditer(self.text):
            letters = self._study_at(m, in_block=False)
            if letters is not None:
                return Extraction(letters, "study")
        return None

    def labels(self) -> Extraction | None:
        spans = sorted({(m.start(), -m.end()) for rx in _LABELS for m in rx.finditer(self.text)})
        for _, neg_end in spans:
            found = self._argument(-neg_end)
            if found is not None:
                return found
        seen: set[tuple[frozenset[str], str]] = set()
        for m in _WEAK.finditer(self.text):
            found = self._list_at(m.end(), prose=True, allow_space=self.multi)
            if found:
                seen.add(found)
        if len({letters for letters, _ in seen}) == 1:
            return Extraction(*sorted(seen, key=lambda x: x[1])[0])
        return None

    def bare(self) -> Extraction | None:
        start = _BARE_PREFIX.match(self.text).end()
        toks = self._tokens(start, allow_space=True)
        if toks and _BARE_END.fullmatch(self.text, toks[-1].end):
            letters = self._resolve(toks)
            if letters is not None:
                return Extraction(letters, "number" if toks[0].kind == "number" else "bare_letter")
        lead = _LEAD.match(self.text)
        if lead:
            letter = self._letter(_Tok(lead.group("letter"), "letter", False, lead.end()))
            if letter is None:
                return None
            rest = self.text[lead.end():]
            if not rest.strip() or rest.startswith("\n"):
                return Extraction(frozenset({letter}), "bare_letter")
            if self._option_at(lead.end()) == letter and not self._enumerates_others(letter):
                return Extraction(frozenset({letter}), "bare_letter")
        return None

    def _enumerates_others(self, letter: str) -> bool:
        """Whether the reply lists another option as "C. its text" (an echo of the options)."""
        body = normalize(self.text, form=None)
        for key, n in self.norms.items():
            if key != letter and re.search(
                rf"(?<![{_ALNUM}]){re.escape(key.casefold())}[.:)]\s*{re.escape(n)}", body
            ):
                return True
        return False

    def option_text(self) -> Extraction | None:
        body = normalize(self.text, form=None).lstrip("*_#\"“「『【(> ")
        starts = [k for k, n in self.norms.items()
                  if body.startswith(n) and re.fullmatch(r"|[^\w\s].*", body[len(n):], re.DOTALL)]
        if starts:
            key = max(starts, key=lambda k: len(self.norms[k]))
            return Extraction(frozenset({key}), "option_text")
        spans: list[tuple[int, int, str]] = []
        for key, n in self.norms.items():
            if len(n) < 2:
                continue
            pattern = rf"(?<!\w){re.escape(n)}(?!\w)" if self.spaced else re.escape(n)
            spans.extend((m.start(), m.end(), key) for m in re.finditer(pattern, body))
        kept = {
            key for s, e, key in spans
            if not any(k2 != key and s2 <= s and e <= e2 and e2 - s2 > e - s for s2, e2, k2 in spans)
        }
        if len(kept) == 1:
            return Extraction(frozenset(kept), "option_text")
        return None


def extract_answer(text: str, options: dict[str, str], language: str,
                   multi_answer: bool = False) -> Extraction:
    """The option letter(s) chosen in ``text``, a model's reply to a multiple-choice item.

    ``options`` maps upper-case letters to option texts in presentation order; ``language`` is an
    ISO code (or a name) from :mod:`mmedkit.languages`. Returns uppercase Latin letters, always
    among ``options``, and the name of the rule that matched (see the module docstring), or
    ``Extraction(None, "none")``.
    """
    lang = get_language(language)
    ex = _Extractor(text or "", options, lang.space_delimited, multi_answer)
    for rule in (ex.answer_blocks, ex.study, ex.labels, ex.bare, ex.option_text):
        found = rule()
        if found is not None and found.letters:
            return found
    return NONE


STUDY_EOS = ("</s>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>", "<|im_end|>")
"""EOS texts removed from a reply before the study's comparison (its script removes ``IS CORRECT.</s>``,
the Llama 2 EOS; mmedkit's backends return text without special tokens, so any of these is removed)."""


def study_response(text: str, eos: tuple[str, ...] = STUDY_EOS) -> str:
    """What the study compares with the gold answer: ``text`` up to any ``### Response:``, stripped, without
    newlines, ``###Answer: OPTION ``, ``IS CORRECT.`` and EOS texts."""
    response = (text or "").split("### Response:")[0].strip().replace("\n", "")
    for token in eos:
        response = response.replace(token, "")
    return response.replace("###Answer: OPTION ", "").replace("IS CORRECT.", "").strip()


def study_strict(text: str, options: dict[str, str], gold: frozenset[str]) -> Extraction:
    """The study's strict reading of ``text`` (rule ``study_strict``; ``none`` when the response is not a
    comma-separated list of option letters). The answer is correct exactly when its letters equal ``gold``.

    As in its script, a one-letter gold answer must be matched exactly ("B", not "B,B"), a multi-letter one
    as a set ("C,A" and "A,C,A" match A,C).
    """
    parts = study_response(text).split(",")
    if not all(p in options for p in parts) or (len(gold) == 1 and len(set(parts)) < len(parts)):
        return NONE
    return Extraction(frozenset(parts), "study_strict")


_STUDY_MARKERS = ("### Response:", "###Answer: OPTION ", "IS CORRECT.", *STUDY_EOS)
_MARKER_SPAN = max(len(m) for m in _STUDY_MARKERS)


def study_strict_decided(text: str, options: dict[str, str]) -> bool:
    """Whether the strict reading of a generation cut off at a token cap is the one the full generation gets.

    True when the generation ended (empty text: EOS first), when it holds ``### Response:`` (nothing after it
    counts), or when its response, short of the last characters a marker could still complete, holds a
    character no answer has (anything but option letters and commas): more text cannot make it valid.
    """
    if not text or "### Response:" in text:
        return True
    body = study_response(text)[:-_MARKER_SPAN]
    return any(ch != "," and ch not in options for ch in body)
