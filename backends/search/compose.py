"""Answer composition: retrieve passages, pick the sentence(s) that answer the question, cite sources.

Retrieval ranks passages with BM25 over text and title. Within the top passages every sentence is
scored by the IDF-weighted share of the question's terms it contains (its passage title counts as
context, since a sentence says "it" where the question names the subject), with a small prior for
the passage's rank. The best sentence, plus the following sentence when the best one is short, or the
runner-up when it scores within ``RUNNER_UP_MARGIN`` of the best (the two are too close to tell which one
answers), is the answer; the features measured on the way feed the gate (``gate.py``).

Splitting and analysing the retrieved passages is most of a lookup's Python. A passage's analysis depends
on its text alone, so the backend keeps it in a ``PassageCache`` shared by its lookups: a passage retrieved
again (the common case: questions cluster on the documents people ask about) costs a dictionary look-up.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backends.search.query import QueryTerms, build_query, question_terms, weigh_terms
from backends.search.text import split_sentences
from router.core import Evidence, Passage, Source

RANK_PRIOR = 0.08
SHORT_SENTENCE_WORDS = 12
#: A runner-up sentence scoring within this share of the best is returned with it: either may hold the answer.
RUNNER_UP_MARGIN = 0.05
#: With ``exclude``, passages retrieved beyond ``top_k`` so that ``top_k`` remain after the exclusion.
EXCLUDE_HEADROOM = 120


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
    specific_coverage: float = 0.0  # share of the question's terms *not* in the title that the sentence holds
    rarest_missing: float = 0.0  # IDF of the rarest question term absent from sentence and title / the rarest's
    bigram_coverage: float = 0.0  # share of the question's adjacent term pairs adjacent in the sentence
    numbers_stated: float = 1.0  # share of the question's numbers the answer's passage states (1: none asked)
    names_stated: float = 1.0  # share of the question's capitalised words (not its first) in the passage or title
    sentence_margin: float = 1.0  # (best - runner-up sentence score) / best: how clearly one sentence wins
    sources: list[Source] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether any passage matched."""
        return bool(self.hits and self.sentences)

    def evidence(self, span: str | None = None) -> Evidence | None:
        """The answer's sentence(s) and the passage they come from (None when nothing matched)."""
        if not self.found:
            return None
        hit = self.hits[self.best_hit]
        return Evidence(sentences=list(self.sentences), span=span,
                        passage=Passage(text=hit.text, source=hit.source(), score=hit.score))

    def passages(self) -> list[Passage]:
        """The retrieved passages, best first, as grounding context for the next tier."""
        return [Passage(text=h.text, source=h.source(), score=h.score) for h in self.hits]


def _first(doc: Any, name: str) -> str | None:
    values = doc.get_all(name)
    return str(values[0]) if values else None


def _stored(searcher: Any, address: Any) -> tuple[str, str, str, str, str | None]:
    doc = searcher.doc(address)
    return (_first(doc, "id") or "", _first(doc, "doc_id") or "", _first(doc, "title") or "",
            _first(doc, "text") or "", _first(doc, "url"))


def retrieve(index: Any, searcher: Any, terms: QueryTerms, top_k: int,
             exclude: Callable[[Hit], bool] | None = None,
             stored: dict[tuple[int, int], tuple[str, str, str, str, str | None]] | None = None) -> list[Hit]:
    """The ``top_k`` best passages for the terms, leaving out those ``exclude`` names (evaluation only).

    ``stored``: passages' stored fields already read from this searcher, by address; filled as it goes.
    """
    if not terms.terms:
        return []
    limit = top_k + EXCLUDE_HEADROOM if exclude is not None else top_k
    result = searcher.search(build_query(index, terms), limit=limit, count=False)
    hits = []
    for score, address in result.hits:
        if stored is None:
            fields = _stored(searcher, address)
        else:
            key = (address.segment_ord, address.doc)
            fields = stored.get(key) or stored.setdefault(key, _stored(searcher, address))
        hits.append(Hit(float(score), *fields))
    if exclude is not None:
        hits = [h for h in hits if not exclude(h)][:top_k]
    return hits


@dataclass(frozen=True)
class AnalysedPassage:
    """A passage split into sentences and analysed: what composing an answer from it needs, computed once."""

    title_tokens: frozenset[str]
    sentences: list[str]
    sentence_tokens: list[frozenset[str]]
    context_tokens: list[frozenset[str]]  # each sentence's tokens with its title's
    passage_tokens: frozenset[str]  # title and text analysed together


def analyse_passage(analyzer: Any, title: str, text: str) -> AnalysedPassage:
    """Split ``text`` into sentences and analyse them and ``title`` with the index's analyzer."""
    title_tokens = frozenset(analyzer.analyze(title))
    sentences = split_sentences(text)
    tokens = [frozenset(analyzer.analyze(sentence)) for sentence in sentences]
    return AnalysedPassage(title_tokens, sentences, tokens, [t | title_tokens for t in tokens],
                           frozenset(analyzer.analyze(f"{title} {text}")))


@dataclass(frozen=True)
class SearcherEntries:
    """What was read from one searcher (one commit of the index): stored fields by address, document frequencies."""

    searcher: Any
    stored: dict[tuple[int, int], tuple[str, str, str, str, str | None]] = field(default_factory=dict)
    doc_freq: dict[tuple[str, str], int] = field(default_factory=dict)


class PassageCache:
    """Analysed passages by (title, text), at most ``size``; emptied when full (no per-hit bookkeeping).

    It also keeps what was read from the current searcher (``SearcherEntries``): a lookup on another searcher
    (a new commit) starts new entries, and each lookup writes only into the entries of the searcher it reads, so
    no address of one commit is ever answered from another's. Safe to share between threads: a race computes
    an entry twice, never a wrong one.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: dict[tuple[str, str], AnalysedPassage] = {}
        self._searcher_entries: SearcherEntries | None = None

    def for_searcher(self, searcher: Any) -> SearcherEntries:
        """The entries read from ``searcher``; new ones when it is not the last searcher (or they are full)."""
        entries = self._searcher_entries
        if (entries is None or entries.searcher is not searcher or len(entries.stored) >= self.size
                or len(entries.doc_freq) >= self.size):
            entries = self._searcher_entries = SearcherEntries(searcher)
        return entries

    def get(self, analyzer: Any, title: str, text: str) -> AnalysedPassage:
        """The passage's analysis, computed on first use."""
        key = (title, text)
        found = self._entries.get(key)
        if found is None:
            if len(self._entries) >= self.size:
                self._entries = {}
            found = self._entries[key] = analyse_passage(analyzer, title, text)
        return found


def _coverage(terms: QueryTerms, tokens: set[str] | frozenset[str]) -> float:
    total = terms.total_weight
    if total <= 0:
        return 0.0
    return sum(w for _, w, forms in terms.weighted_forms if not forms.isdisjoint(tokens)) / total


def _specific(terms: QueryTerms, title_tokens: frozenset[str], tokens: set[str]) -> tuple[float, float]:
    """(coverage of the question terms the title lacks, by the sentence; rarest missing term's IDF share)."""
    present = title_tokens | tokens
    rest = [(w, forms) for _, w, forms in terms.weighted_forms if forms.isdisjoint(title_tokens)]
    total = sum(w for w, _ in rest)
    specific = sum(w for w, forms in rest if not forms.isdisjoint(tokens)) / total if total else 1.0
    top = max(terms.idf.values(), default=0.0)
    missing = [w for _, w, forms in terms.weighted_forms if forms.isdisjoint(present)]
    return specific, (max(missing) / top if missing and top > 0 else 0.0)


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"(?<!^)\b[A-Z][\w'-]*")


def _stated(found: list[str], haystack: str) -> float:
    """The share of ``found`` (strings of the question) that occur in ``haystack``; 1 when there are none."""
    if not found:
        return 1.0
    return sum(1 for item in found if item.lower() in haystack) / len(found)


def _bigrams(tokens: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(tokens))


def compose(analyzer: Any, index: Any, searcher: Any, question: str, *, top_k: int = 5,
            exclude: Callable[[Hit], bool] | None = None, cache: PassageCache | None = None) -> Answer:
    """Retrieve and compose the answer to ``question`` from the index (``exclude``: passages to leave out;
    ``cache``: analysed passages kept between lookups)."""
    read = cache.for_searcher(searcher) if cache is not None else None
    terms = weigh_terms(searcher, question_terms(analyzer, question), read.doc_freq if read is not None else None)
    hits = retrieve(index, searcher, terms, top_k, exclude, read.stored if read is not None else None)
    answer = Answer(sentences=[], hits=hits, terms=terms, question=question)
    if not hits:
        return answer
    analysed = [cache.get(analyzer, h.title, h.text) if cache is not None else analyse_passage(analyzer, h.title, h.text)
                for h in hits]
    top_score = hits[0].score or 1.0
    best: tuple[float, int, int, list[str], float, float] | None = None
    second: tuple[float, int, int, list[str]] = (0.0, -1, -1, [])
    for rank, hit in enumerate(hits):
        passage = analysed[rank]
        sentences = passage.sentences
        for position, (tokens, context_tokens) in enumerate(zip(passage.sentence_tokens, passage.context_tokens,
                                                                strict=True)):
            own = _coverage(terms, tokens)
            context = _coverage(terms, context_tokens)
            score = context + 0.5 * own + RANK_PRIOR * hit.score / top_score
            if best is None or score > best[0]:
                if best is not None:
                    second = best[:4]
                best = (score, rank, position, sentences, own, context)
            elif score > second[0]:
                second = (score, rank, position, sentences)
    assert best is not None
    best_score, rank, position, sentences, own, context = best
    margin = (best_score - second[0]) / best_score if best_score > 0 else 0.0
    chosen = [sentences[position]]
    cited = [hits[rank].source()]
    if len(chosen[0].split()) < SHORT_SENTENCE_WORDS and position + 1 < len(sentences):
        chosen.append(sentences[position + 1])
    elif margin < RUNNER_UP_MARGIN and second[1] >= 0 and second[3][second[2]] != chosen[0]:
        runner_up = second[3][second[2]]
        chosen = [runner_up, chosen[0]] if second[1] == rank and second[2] < position else [chosen[0], runner_up]
        if second[1] != rank:
            cited.append(hits[second[1]].source())
    hit = hits[rank]
    answer.sentences = chosen
    answer.best_hit = rank
    answer.sentence_coverage = own
    answer.context_coverage = context
    answer.passage_coverage = _coverage(terms, analysed[rank].passage_tokens)
    chosen_tokens = analyzer.analyze(" ".join(chosen))
    answer.specific_coverage, answer.rarest_missing = _specific(terms, analysed[rank].title_tokens, set(chosen_tokens))
    answer.sentence_margin = margin
    asked = _bigrams(analyzer.analyze(question[:2000]))
    answer.bigram_coverage = len(asked & _bigrams(chosen_tokens)) / len(asked) if asked else 0.0
    haystack = f"{hit.title} {hit.text}".lower()
    answer.numbers_stated = _stated(_NUMBER.findall(question[:2000]), haystack)
    answer.names_stated = _stated(_NAME.findall(question[:2000].strip()), haystack)
    answer.sources = list(dict.fromkeys(cited))
    return answer


def render(answer: Answer) -> str:
    """The answer as text: the sentence(s), then a Sources list with title and url."""
    if not answer.found:
        return "No passage in the search index matches this question."
    lines = [" ".join(answer.sentences), "", "Sources:"]
    for source in answer.sources:
        lines.append(f"- {source.title} ({source.url})" if source.url else f"- {source.title}")
    return "\n".join(lines)
