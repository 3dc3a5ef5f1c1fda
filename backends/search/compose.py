"""Answer composition: retrieve passages, pick the sentence(s) that answer the question, cite sources.

Retrieval ranks passages with BM25 over text and title. Within the top passages every sentence is
scored by the IDF-weighted share of the question's terms it contains (its passage title counts as
context, since a sentence says "it" where the question names the subject), with a small prior for
the passage's rank. The best sentence, plus the following sentence when the best one is short, is the
answer; the features measured on the way feed the gate (``gate.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backends.search.query import QueryTerms, build_query, question_terms, weigh_terms
from backends.search.text import split_sentences
from router.core import Passage, Source

RANK_PRIOR = 0.08
SHORT_SENTENCE_WORDS = 12


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with its stored fields."""

    score: float
    id: str
    doc_id: str
    title: str
    text: str
    url: str | None

    def source(self) -> Source:
        """The passage's document as a citation."""
        return Source(title=self.title, url=self.url, id=self.doc_id)


@dataclass
class Answer:
    """A composed answer with the evidence the gate judges it by."""

    sentences: list[str]
    hits: list[Hit]
    terms: QueryTerms
    question: str = ""
    best_hit: int = 0
    sentence_coverage: float = 0.0
    context_coverage: float = 0.0
    passage_coverage: float = 0.0
    sources: list[Source] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether any passage matched."""
        return bool(self.hits and self.sentences)

    def passages(self) -> list[Passage]:
        """The retrieved passages, best first, as grounding context for the next tier."""
        return [Passage(text=h.text, source=h.source(), score=h.score) for h in self.hits]


def _first(doc: Any, name: str) -> str | None:
    values = doc.get_all(name)
    return str(values[0]) if values else None


def retrieve(index: Any, searcher: Any, terms: QueryTerms, top_k: int) -> list[Hit]:
    """The ``top_k`` best passages for the terms."""
    if not terms.terms:
        return []
    result = searcher.search(build_query(index, terms), limit=top_k, count=False)
    hits = []
    for score, address in result.hits:
        doc = searcher.doc(address)
        hits.append(Hit(
            score=float(score), id=_first(doc, "id") or "", doc_id=_first(doc, "doc_id") or "",
            title=_first(doc, "title") or "", text=_first(doc, "text") or "", url=_first(doc, "url"),
        ))
    return hits


def _coverage(terms: QueryTerms, tokens: set[str]) -> float:
    total = terms.total_weight
    if total <= 0:
        return 0.0
    return sum(w for t, w in terms.idf.items() if any(f in tokens for f in terms.forms(t))) / total


def compose(analyzer: Any, index: Any, searcher: Any, question: str, *, top_k: int = 5) -> Answer:
    """Retrieve and compose the answer to ``question`` from the index."""
    terms = weigh_terms(searcher, question_terms(analyzer, question))
    hits = retrieve(index, searcher, terms, top_k)
    answer = Answer(sentences=[], hits=hits, terms=terms, question=question)
    if not hits:
        return answer
    top_score = hits[0].score or 1.0
    best: tuple[float, int, int, list[str], float, float] | None = None
    for rank, hit in enumerate(hits):
        title_tokens = set(analyzer.analyze(hit.title))
        sentences = split_sentences(hit.text)
        for position, sentence in enumerate(sentences):
            tokens = set(analyzer.analyze(sentence))
            own = _coverage(terms, tokens)
            context = _coverage(terms, tokens | title_tokens)
            score = context + 0.5 * own + RANK_PRIOR * hit.score / top_score
            if best is None or score > best[0]:
                best = (score, rank, position, sentences, own, context)
    assert best is not None
    _, rank, position, sentences, own, context = best
    chosen = [sentences[position]]
    if len(chosen[0].split()) < SHORT_SENTENCE_WORDS and position + 1 < len(sentences):
        chosen.append(sentences[position + 1])
    hit = hits[rank]
    answer.sentences = chosen
    answer.best_hit = rank
    answer.sentence_coverage = own
    answer.context_coverage = context
    answer.passage_coverage = _coverage(terms, set(analyzer.analyze(f"{hit.title} {hit.text}")))
    answer.sources = [hit.source()]
    return answer


def render(answer: Answer) -> str:
    """The answer as text: the sentence(s), then a Sources list with title and url."""
    if not answer.found:
        return "No passage in the search index matches this question."
    lines = [" ".join(answer.sentences), "", "Sources:"]
    for source in answer.sources:
        lines.append(f"- {source.title} ({source.url})" if source.url else f"- {source.title}")
    return "\n".join(lines)
