"""The data that flows through the pipeline, in one place, and the declared LLM interface.

    files -> Document -> Chunk -> (store) -> Passage
    question -> Query -> passages -> draft -> Sentence / Quote -> Citation -> Answer

Plain dataclasses with no behaviour beyond small derived views, so every stage can be read
(and tested) by the types it takes and returns. ``LLM`` is the interface that the local
llama.cpp model, an OpenAI-compatible endpoint and the scripted stand-in all implement.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Iterator, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .when import TimeFrame


@dataclass(frozen=True)
class Document:
    id: str
    text: str  # cleaned text; chunk spans index into this
    title: str
    language: str
    content_hash: str  # sha256 of the raw bytes and metadata
    source_path: str = ""
    publisher: str = ""
    url: str = ""
    date: str = ""
    extra: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        return {"doc_id": self.id, "title": self.title, "publisher": self.publisher,
                "url": self.url, "date": self.date, "language": self.language,
                "source_path": self.source_path, "n_chars": len(self.text)}


@dataclass(frozen=True)
class Chunk:
    id: str
    doc_id: str
    text: str
    start: int
    end: int
    index: int  # position of the chunk within its document


@dataclass
class Passage:
    rank: int
    chunk_id: str
    doc_id: str
    text: str
    start: int
    end: int
    score: float  # fused RRF score
    dense_score: float | None  # cosine similarity to the question, if in the dense list
    keyword_score: float | None  # BM25 score, if in the keyword list
    title: str = ""
    publisher: str = ""
    url: str = ""
    date: str = ""
    language: str = ""
    duplicates: list[dict] = field(default_factory=list)
    page: int | None = None  # the page the passage starts on (PDF, DOCX; readers.page_of)
    page_breaks: list[int] = field(default_factory=list)  # offsets in its span where a page starts

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Query:
    """A question analysed once; every stage reads it.

    ``text`` is what is answered (a follow-up already condensed into a standalone question),
    ``english`` its English translation when it was asked in another language (else None).
    ``asked`` is the version the checks read: the translation when there is one.
    """
    text: str
    language: str  # ISO 639-1, or "und" when too short to tell
    english: str | None
    names: frozenset[str]  # of ``asked``
    numbers: frozenset[str]
    terms: frozenset[str]  # stemmed content words, names, numbers, Chinese character pairs
    expected: str | None  # answer type asked for: "number", "date", "cause", "name" or None
    yes_no: bool
    original: str = ""  # as typed, before condensing
    when: "TimeFrame | None" = None  # as-of day and publication window (rag.when), None = no dates

    @property
    def asked(self) -> str:
        return self.english or self.text

    @property
    def search_texts(self) -> list[str]:
        """The texts retrieval embeds and matches: the question, then its translation."""
        return [self.text] + ([self.english] if self.english and self.english != self.text else [])

    def versions(self, passages: list[Passage]) -> dict[str, str]:
        """The question by language, English first when there is a translation. A question too
        short to tell its language is compared as it is with every passage's language."""
        out = {"en": self.english} if self.english else {}
        if self.language in ("", "und"):
            for p in passages:
                out.setdefault(p.language or "en", self.text)
            out.setdefault("en", self.text)
        else:
            out.setdefault(self.language, self.text)
        return out

    def restated_by(self, text: str) -> bool:
        """Does ``text`` say nothing the question did not (no content word, name or number that
        no version of the question holds)? "A massive reptile was caught in Florida [1]" for "A
        massive reptile was caught in Florida. What kind?" answers nothing."""
        from . import text as tx

        return not (tx.terms(text) - tx.terms(self.text) - tx.terms(self.asked))

    def same_language(self, p: Passage) -> bool:
        """Can the passage's words be compared with the question's words?"""
        return (not self.language or not p.language or p.language == self.language
                or self.language == "und")


@dataclass
class Quote:
    passage: int  # 1-based passage number
    start: int  # span inside the passage text
    end: int
    text: str


@dataclass
class Sentence:
    text: str
    citations: list[int]
    score: float = 0.0
    kind: str = "answer"  # "answer": the model's verified sentence; "quote": a passage sentence


@dataclass
class Citation:
    number: int
    doc_id: str
    title: str
    url: str
    publisher: str
    date: str
    chunk_id: str
    start: int  # passage span in the document's cleaned text
    end: int
    quote: str  # the passage sentence that supports the claim
    quote_start: int  # span of the quote in the document's cleaned text
    quote_end: int
    page: int | None = None  # the page the quote starts on, for paged documents (PDF, DOCX)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Evidence:
    """The passage sentences that answer the question, verbatim and cited, chosen without the
    model (``rag.quotes``): ``Bot.stream`` yields it as soon as retrieval is done, before the
    model's draft, so a reader sees the sources' own words first. ``text`` carries [n] markers
    numbered like the final answer's citations."""
    text: str
    citations: list[Citation]
    passages: list[Passage]


@dataclass
class Escalation:
    """``Bot.stream``'s sign that the first reader's answer would be refused (``reason``) and the
    cascade's larger reader (``model``) drafts again from the same passages (rag.cascade): a
    front end drops the draft text shown so far; the evidence shown stays."""
    model: str
    reason: str


@dataclass
class Answer:
    question: str
    text: str
    citations: list[Citation]
    passages: list[Passage]
    refused: bool
    refusal_reason: str = ""
    sentences: list[Sentence] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)  # draft sentences dropped as unsupported
    draft: str = ""  # the model's raw output
    dropped_passages: int = 0
    timings: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    model: str = ""
    # the answer's checks: the word rules' verdicts and, when the reader reports probabilities,
    # its own check P(yes) and the calibrated P(correct) (rag.confidence)
    confidence: dict = field(default_factory=dict)
    escalated: str = ""  # the first reader's refusal reason when the cascade's second one answered

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passages"] = [p.to_dict() for p in self.passages]
        return d


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    prompt_s: float  # time to first token (prompt processing)
    generate_s: float


@runtime_checkable
class LLM(Protocol):
    """What the pipeline needs of a language model."""

    model_id: str
    n_ctx: int  # context window in tokens

    def render(self, messages: list[dict]) -> str:
        """The prompt text the model reads for these chat messages."""

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` (a rendered prompt or a piece of one)."""

    def stream(self, messages: list[dict], max_tokens: int, stats: dict) -> Iterator[str]:
        """Text pieces as generated; fills ``stats`` (prompt_tokens, completion_tokens,
        prompt_s, generate_s) when done."""

    def complete(self, messages: list[dict], max_tokens: int) -> Generation:
        """The whole reply at once."""

    def yes_probability(self, messages: list[dict]) -> float | None:
        """P(the reply starts with "yes") / (P(yes) + P(no)), read from the model's next-token
        probabilities without generating; None when the backend cannot tell."""


def complete(llm: LLM, messages: list[dict], max_tokens: int) -> Generation:
    """``complete`` for any ``LLM``, from its ``stream`` (one implementation for all backends)."""
    stats: dict = {}
    text = "".join(llm.stream(messages, max_tokens, stats))
    return Generation(text=text, **{k: stats.get(k, 0) for k in
                                    ("prompt_tokens", "completion_tokens", "prompt_s", "generate_s")})
