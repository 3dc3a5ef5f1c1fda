"""Readers that turn files of every supported format into plain documents (title, text, url, id).

Supported: JSONL (one object per line), JSON (a list of objects, or objects keyed by title like the
Wikipedia vital-articles file), Markdown (split into one document per section), plain text and HTML.
A reader yields documents and reports what it could not use as ``Skip`` items with a reason, so
ingestion never stops at one bad line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown"})
TEXT_SUFFIXES = frozenset({".txt", ".text", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
JSON_SUFFIXES = frozenset({".json"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES | JSONL_SUFFIXES

# Used only when the caller kept the default field name and a record lacks it.
TEXT_FALLBACKS = ("text", "extract", "content", "body", "summary", "context")
TITLE_FALLBACKS = ("title", "name", "heading")

_HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*#*\s*$")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_MARKUP = re.compile(r"(\*\*|__|`+|^\s*[-*+]\s+|^\s*>\s?|^\s*\d+\.\s+|^\s*\|[-:| ]+\|\s*$)", re.MULTILINE)


@dataclass(frozen=True)
class RawDocument:
    """A document before chunking."""

    id: str
    title: str
    text: str
    url: str | None
    source: str


@dataclass(frozen=True)
class Skip:
    """Something a reader could not use, and why."""

    where: str
    reason: str


def read_path(path: Path, *, title_field: str, text_field: str) -> Iterator[RawDocument | Skip]:
    """Yield the documents of one file, dispatching on its suffix."""
    suffix = path.suffix.lower()
    try:
        if suffix in JSONL_SUFFIXES:
            yield from _read_jsonl(path, title_field, text_field)
        elif suffix in JSON_SUFFIXES:
            yield from _read_json(path, title_field, text_field)
        elif suffix in MARKDOWN_SUFFIXES:
            yield from _read_markdown(path)
        elif suffix in HTML_SUFFIXES:
            yield from _read_html(path)
        elif suffix in TEXT_SUFFIXES:
            yield from _read_text(path)
        else:
            supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
            yield Skip(str(path), f"unsupported file type {suffix or '(none)'!r}; supported: {supported}")
    except UnicodeDecodeError as exc:
        yield Skip(str(path), f"not UTF-8 text: {exc.reason}")
    except json.JSONDecodeError as exc:
        yield Skip(str(path), f"invalid JSON: {exc.msg} at line {exc.lineno}")
    except OSError as exc:
        yield Skip(str(path), f"cannot read: {exc.strerror or exc}")


def _pick(record: dict[str, Any], field: str, default: str, fallbacks: tuple[str, ...]) -> Any:
    if field in record:
        return record[field]
    if field == default:
        for name in fallbacks:
            if name in record:
                return record[name]
    return None


def record_to_document(
    record: Any, *, where: str, default_id: str, source: str, title_field: str, text_field: str,
    default_title: str | None = None,
) -> RawDocument | Skip:
    """Turn one JSON record into a document, or a Skip naming the missing or malformed field."""
    if not isinstance(record, dict):
        return Skip(where, f"expected a JSON object, got {type(record).__name__}")
    text = _pick(record, text_field, "text", TEXT_FALLBACKS)
    title = _pick(record, title_field, "title", TITLE_FALLBACKS) or default_title
    if not isinstance(text, str) or not text.strip():
        return Skip(where, f"missing or empty text field {text_field!r}")
    if not isinstance(title, str) or not title.strip():
        return Skip(where, f"missing or empty title field {title_field!r}")
    url = record.get("url")
    raw_id = record.get("id", record.get("passage_id"))
    return RawDocument(
        id=str(raw_id) if raw_id not in (None, "") else default_id,
        title=title.strip(),
        text=text,
        url=url if isinstance(url, str) and url else None,
        source=source,
    )


def _read_jsonl(path: Path, title_field: str, text_field: str) -> Iterator[RawDocument | Skip]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Skip(where, f"invalid JSON: {exc.msg}")
                continue
            yield record_to_document(
                record, where=where, default_id=f"{path.name}:{number}", source=str(path),
                title_field=title_field, text_field=text_field,
            )


def _read_json(path: Path, title_field: str, text_field: str) -> Iterator[RawDocument | Skip]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, list):
        items: list[tuple[str | None, Any]] = [(None, item) for item in data]
    elif isinstance(data, dict):
        items = list(data.items())
    else:
        yield Skip(str(path), "expected a JSON list of objects or an object keyed by title")
        return
    for position, (key, record) in enumerate(items):
        where = f"{path}[{key!r}]" if key is not None else f"{path}[{position}]"
        if key is not None and isinstance(record, str):
            record = {"title": key, "text": record}
        yield record_to_document(
            record, where=where, default_id=key if key is not None else f"{path.name}:{position}",
            source=str(path), title_field=title_field, text_field=text_field, default_title=key,
        )


def _markdown_to_text(markdown: str) -> str:
    text = re.sub(r"^```.*$", "", markdown, flags=re.MULTILINE)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_MARKUP.sub("", text)
    return text.replace("|", " ")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def markdown_sections(markdown: str, default_title: str) -> list[tuple[str, str]]:
    """Split Markdown at headings (levels 1-3) into (title, plain text) sections; empty ones are dropped."""
    doc_title = default_title
    sections: list[tuple[str, list[str]]] = []
    current_title: str | None = None
    lines: list[str] = []
    in_code = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match:
            if lines:
                sections.append((current_title or doc_title, lines))
            heading = _markdown_to_text(match.group(2)).strip()
            if len(match.group(1)) == 1 and not sections and current_title is None:
                doc_title = heading
                current_title = heading
            else:
                current_title = heading if heading == doc_title else f"{doc_title}: {heading}"
            lines = []
        else:
            lines.append(line)
    if lines:
        sections.append((current_title or doc_title, lines))
    result = []
    for title, body in sections:
        text = _markdown_to_text("\n".join(body)).strip()
        if text:
            result.append((title, text))
    return result


def _read_markdown(path: Path) -> Iterator[RawDocument | Skip]:
    sections = markdown_sections(path.read_text(encoding="utf-8"), path.stem.replace("_", " "))
    if not sections:
        yield Skip(str(path), "no text")
    for title, text in sections:
        yield RawDocument(id=f"{path}#{_slug(title)}", title=title, text=text, url=path.resolve().as_uri(),
                          source=str(path))


def _read_text(path: Path) -> Iterator[RawDocument | Skip]:
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        yield Skip(str(path), "no text")
        return
    yield RawDocument(id=str(path), title=path.stem.replace("_", " "), text=text,
                      url=path.resolve().as_uri(), source=str(path))


def _read_html(path: Path) -> Iterator[RawDocument | Skip]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "nav", "footer", "header", "aside"]):
        tag.decompose()
    title_tag = soup.find("title") or soup.find("h1")
    title = title_tag.get_text(" ", strip=True) if title_tag else path.stem.replace("_", " ")
    if soup.title:
        soup.title.decompose()
    block_tags = ["p", "li", "h1", "h2", "h3", "td", "pre"]
    # Innermost blocks only, so a <p> inside an <li> is not indexed twice.
    blocks = [b.get_text(" ", strip=True) for b in soup.find_all(block_tags) if not b.find(block_tags)]
    text = "\n\n".join(b for b in blocks if b) or soup.get_text("\n\n", strip=True)
    canonical = soup.find("link", rel="canonical")
    url = canonical.get("href") if canonical and canonical.get("href") else path.resolve().as_uri()
    if not text.strip():
        yield Skip(str(path), "no text")
        return
    yield RawDocument(id=str(path), title=title or path.stem, text=text, url=str(url), source=str(path))
