"""Turning a natural-language question into an index query that no input can break.

User text never reaches tantivy's query parser. It is run through the same analyzer as the index
(tokenize, lowercase, stem), stop words are dropped, and each remaining term becomes a plain term
query. Quotes, colons, brackets, ``AND``/``OR``/``NOT``, ``field:value``, unicode and kilobytes of
junk are therefore all just text: the worst they can do is match nothing.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from backends.search.text import STOPWORDS

MAX_QUERY_CHARS = 4_000
MAX_QUERY_TERMS = 32
TITLE_BOOST = 1.5


# Questions use the base form of irregular verbs ("when did it fall?") where text uses the past
# ("it fell"); the stemmer cannot join them, so each base stem also matches its past forms.
_IRREGULAR = {
    "fall": "fell fallen", "begin": "began begun", "win": "won", "write": "wrote written", "build": "built",
    "find": "found", "lead": "led", "becom": "becam", "hold": "held", "take": "took taken", "give": "gave given",
    "make": "made", "sink": "sank sunk", "fight": "fought", "leav": "left", "bear": "born bore",
    "buy": "bought", "sell": "sold", "teach": "taught", "think": "thought", "bring": "brought", "run": "ran",
    "come": "came", "go": "went gone", "see": "saw seen", "speak": "spoke spoken", "choos": "chose chosen",
    "draw": "drew drawn", "grow": "grew grown", "know": "knew known", "rise": "rose risen", "steal": "stole",
    "throw": "threw thrown", "fli": "flew flown", "eat": "ate eaten", "drive": "drove driven", "sing": "sang sung",
    "swim": "swam swum", "shoot": "shot", "meet": "met", "pay": "paid", "say": "said", "send": "sent",
    "spend": "spent", "lose": "lost", "feel": "felt", "keep": "kept", "sleep": "slept", "strike": "struck",
    "freez": "froze frozen", "forget": "forgot forgotten", "get": "got gotten", "lay": "laid", "light": "lit",
}
ALTERNATES: dict[str, tuple[str, ...]] = {base: tuple(forms.split()) for base, forms in _IRREGULAR.items()}


@dataclass(frozen=True)
class QueryTerms:
    """The question's distinct index terms with their inverse document frequencies."""

    terms: tuple[str, ...]
    idf: dict[str, float]

    def forms(self, term: str) -> tuple[str, ...]:
        """The index terms that count as an occurrence of ``term`` (itself and irregular past forms)."""
        return (term, *ALTERNATES.get(term, ()))

    @functools.cached_property
    def total_weight(self) -> float:
        """The sum of the terms' weights (the denominator of coverage)."""
        return sum(self.idf.values())

    @functools.cached_property
    def weighted_forms(self) -> tuple[tuple[str, float, frozenset[str]], ...]:
        """Each term with its weight and the set of its forms (what coverage tests a token set against)."""
        return tuple((term, self.idf[term], frozenset(self.forms(term))) for term in self.terms)


def question_terms(analyzer: Any, text: str, *, max_terms: int = MAX_QUERY_TERMS) -> list[str]:
    """The distinct non-stop-word index terms of ``text``, in order, at most ``max_terms``."""
    seen: dict[str, None] = {}
    for token in analyzer.analyze(text[:MAX_QUERY_CHARS]):
        if token in STOPWORDS or token in seen:
            continue
        seen[token] = None
        if len(seen) >= max_terms:
            break
    return list(seen)


def weigh_terms(searcher: Any, terms: list[str], doc_freq: dict[tuple[str, str], int] | None = None) -> QueryTerms:
    """Attach BM25-style IDF weights to the terms (terms absent from the index weigh the most).

    ``doc_freq``: frequencies already looked up on this searcher, by (field, form); filled as it goes.
    """
    total = max(int(searcher.num_docs), 1)
    idf: dict[str, float] = {}

    def frequency(field: str, form: str) -> int:
        if doc_freq is None:
            return int(searcher.doc_freq(field, form))
        found = doc_freq.get((field, form))
        if found is None:
            found = doc_freq[(field, form)] = int(searcher.doc_freq(field, form))
        return found

    for term in terms:
        df = sum(frequency(f, form) for form in (term, *ALTERNATES.get(term, ())) for f in ("text", "title"))
        df = min(df, total)
        idf[term] = math.log(1.0 + (total - df + 0.5) / (df + 0.5))
    return QueryTerms(tuple(terms), idf)


def build_query(index: Any, terms: QueryTerms) -> Any:
    """A disjunction of term queries over text and (boosted) title; never parsed from user text."""
    import tantivy

    schema = index.schema
    clauses = []
    for term in terms.terms:
        for form in terms.forms(term):
            clauses.append((tantivy.Occur.Should, tantivy.Query.term_query(schema, "text", form)))
            title = tantivy.Query.term_query(schema, "title", form)
            clauses.append((tantivy.Occur.Should, tantivy.Query.boost_query(title, TITLE_BOOST)))
    return tantivy.Query.boolean_query(clauses)
