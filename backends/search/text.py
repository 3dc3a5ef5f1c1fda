"""Text handling shared by ingestion and querying: one analyzer, sentence splitting, chunking, hashing.

The index's ``en_stem`` tokenizer and :func:`make_analyzer` are the same pipeline (simple tokenizer,
long-token removal, lowercase, English stemmer), so terms computed here match the indexed terms
exactly: query terms, their document frequencies and sentence coverage all agree with the index.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

# Stemmed English function words and question words: they carry no evidence of an answer.
_STOPWORD_TEXT = """
a about abov after again against all also am an and ani anyon ar as at be becaus been befor being below
between both but by call can could d did do doe done down dure each few for from further had has have having
he her here herself him himself his how i if in into is it itself just ll m mani me more most much my myself
name no nor not of off on onc onli or other our ourselv out over own pleas re s same she should so some someon
someth such t tell than that the their them themselv then there these they this those through to too under
until up ve veri was we were what when where which while who whom whose whi will with would y you your
yourself yourselv
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9À-ÖØ-Þ])|\n\s*\n+")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "mr.", "mrs.", "ms.", "dr.", "st.", "no.", "u.s.", "c.")
_SPACES = re.compile(r"\s+")
_INITIAL = re.compile(r"(?:^|[\s(])[A-Z]\.$")  # "C. S. Lewis", "J. Smith": an initial, not a sentence end


def make_analyzer() -> Any:
    """The analyzer matching the index's ``en_stem`` tokenizer (tantivy imported here, not at import)."""
    import tantivy

    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def normalize_space(text: str) -> str:
    """Collapse runs of whitespace into single spaces and strip the ends."""
    return _SPACES.sub(" ", text).strip()


def content_hash(text: str) -> str:
    """A stable hash of text, insensitive to case, Unicode form and whitespace (for de-duplication)."""
    folded = normalize_space(unicodedata.normalize("NFKC", text)).casefold()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()[:32]


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at terminal punctuation or blank lines, keeping common abbreviations whole."""
    pieces = [p for p in _SENTENCE_END.split(text) if p and p.strip()]
    sentences: list[str] = []
    for piece in pieces:
        piece = normalize_space(piece)
        if sentences and (sentences[-1].lower().endswith(_ABBREVIATIONS) or _INITIAL.search(sentences[-1])):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences


def chunk_sentences(sentences: list[str], *, max_words: int = 160, overlap: int = 1) -> list[str]:
    """Group sentences into passages of at most ``max_words`` words, repeating ``overlap`` sentences.

    A sentence longer than ``max_words`` becomes a passage of its own rather than being cut mid-way.
    """
    passages: list[str] = []
    current: list[str] = []
    words = 0
    for sentence in sentences:
        count = len(sentence.split())
        if current and words + count > max_words:
            passages.append(" ".join(current))
            current = current[-overlap:] if overlap and len(current) > overlap else []
            words = sum(len(s.split()) for s in current)
        current.append(sentence)
        words += count
    if current:
        tail = " ".join(current)
        if not passages or not passages[-1].endswith(tail):
            passages.append(tail)
    return passages


def chunk_text(text: str, *, max_words: int = 160, overlap: int = 1) -> list[str]:
    """Split a document's text into overlapping passages of whole sentences."""
    return chunk_sentences(split_sentences(text), max_words=max_words, overlap=overlap)
