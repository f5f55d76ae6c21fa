"""Deterministic grounding checks shared by the answer pipeline and the evaluation judge.

``support(sentence, passage)`` says whether a passage backs a sentence: every number and name
of the sentence must occur in the passage, and (when both are in the same language) enough of
its content words too. It also returns the passage sentence that backs it best (the quote).

Example: support("It opened on September 13 [1].", "... starting on September 13th. ...")
-> supported (13 and September occur; content words overlap).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .chunking import sentence_spans

STOPWORDS = set("""
a an the and or but if of to in on at by for with from as is are was were be been being it its
this that these those which who whom whose what when where why how there their they them he she
his her we our you your i me my not no nor so than then too very can could will would shall should
may might must do does did done have has had having also into about over after before such other
some any all each both more most many much only own same just while during under between through
il lo la le gli i un una uno di da in con su per tra fra e ed o che chi cui non del della dei
delle al alla ai alle nel nella sul sulla è sono ha hanno come anche più questo questa quello
""".split())

CJK = re.compile(r"[\u4e00-\u9fff]")  # Chinese characters
_NUM = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"}


_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "«": '"', "»": '"'})


def normalize(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed, citation markers removed (eval-format.md)."""
    text = _MARKER.sub("", unicodedata.normalize("NFKC", text))
    return " ".join(text.casefold().split())


def _plain(text: str) -> str:
    """For comparing a sentence with a passage: curly quotes straightened as well."""
    return normalize(text).translate(_QUOTES)


MONTH_NUMBERS = {m: str(i + 1) for i, m in enumerate(
    "january february march april may june july august september october november december".split())}
MONTH_NUMBERS.update({m: str(i + 1) for i, m in enumerate(
    "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre".split())})


def numbers(text: str) -> set[str]:
    """Numbers, plus the number of any month named (so "September 13" matches "9月13日")."""
    out = {n.replace(",", "") for n in _NUM.findall(text)}
    out.update(MONTH_NUMBERS[w] for w in re.findall(r"[^\W\d_]+", text.casefold()) if w in MONTH_NUMBERS)
    return out


def names(text: str) -> set[str]:
    """Capitalised words that do not open a sentence, and acronyms; case-folded."""
    out = set()
    for s, e in sentence_spans(text):
        sent = text[s:e]
        for i, m in enumerate(_WORD.finditer(sent)):
            w = re.sub(r"['’]s$", "", m.group()).strip("'’-")  # "Alibaba's" -> "alibaba"
            if len(w) < 2:
                continue
            if (i > 0 and w[0].isupper()) or (len(w) > 1 and w.isupper()):
                if w.casefold() not in STOPWORDS:
                    out.add(w.casefold())
    return out


def content_words(text: str) -> set[str]:
    words = (w.casefold().translate(_QUOTES) for w in _WORD.findall(text))
    return {w for w in words if len(w) > 3 and w not in STOPWORDS}


def _stem(w: str) -> str:
    for suf in ("ing", "ed", "es", "s"):
        if w.endswith(suf) and len(w) - len(suf) >= 4:
            return w[: -len(suf)]
    return w


@dataclass
class Support:
    supported: bool
    score: float  # fraction of the sentence's checks that the passage satisfies
    missing: list[str]  # names/numbers absent from the passage
    quote: tuple[int, int]  # best-backing sentence span inside the passage text


def support(sentence: str, passage: str, same_language: bool = True) -> Support:
    sentence = _MARKER.sub("", sentence)
    p_norm = _plain(passage)
    p_nums = numbers(passage)
    missing = [n for n in numbers(sentence) if n not in p_nums]
    missing += [w for w in names(sentence) if w.translate(_QUOTES) not in p_norm]
    words = {_stem(w) for w in content_words(sentence)}
    p_words = {_stem(w) for w in content_words(passage)}
    overlap = len(words & p_words) / len(words) if words else 1.0
    checks = len(numbers(sentence)) + len(names(sentence))
    key_score = 1.0 - (len(missing) / checks) if checks else 1.0
    if same_language:
        supported = not missing and overlap >= 0.5
        score = (key_score + overlap) / 2
    else:  # only names and numbers can be compared across languages
        supported = not missing and checks > 0
        score = key_score if checks else 0.0
    return Support(supported, round(score, 3), missing, best_sentence(sentence, passage))


def best_sentence(sentence: str, passage: str) -> tuple[int, int]:
    """Span of the passage sentence sharing most words/numbers with ``sentence``."""
    want = {_stem(w) for w in content_words(sentence)} | numbers(sentence) | names(sentence)
    best, best_score = (0, len(passage)), -1.0
    for s, e in sentence_spans(passage):
        part = passage[s:e]
        have = {_stem(w) for w in content_words(part)} | numbers(part) | names(part)
        score = len(want & have)
        if score > best_score:
            best, best_score = (s, e), score
    return best


def split_sentences(text: str) -> list[str]:
    """Answer sentences; a citation marker after the full stop stays with its sentence.

    Example: "A is B. [1] C is D [2]." -> ["A is B. [1]", "C is D [2]."]
    """
    text = re.sub(r"([.!?。！？])\s*((?:\[\d+(?:\s*[,;]\s*\d+)*\]\s*)+)", r" \2\1 ", text)
    out = [text[s:e].strip() for s, e in sentence_spans(text)]
    return [re.sub(r"\s+([.!?。！？])$", r"\1", s) for s in out if s.strip(" .")]


def markers(sentence: str) -> list[int]:
    nums = []
    for m in _MARKER.finditer(sentence):
        for n in re.split(r"\s*[,;]\s*", m.group(1)):
            if int(n) not in nums:
                nums.append(int(n))
    return nums


def strip_markers(sentence: str) -> str:
    return _MARKER.sub("", sentence).strip()
