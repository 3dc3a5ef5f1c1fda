"""Fixtures: a small real corpus in every supported format, written to a temp dir and indexed for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.search.backend import SearchOptions, TantivyBackend
from backends.search.ingest import ingest_paths

FACTS = [
    ("Berlin Wall", ("The Berlin Wall was a guarded concrete barrier that divided Berlin from 1961 to 1989. "
     "The wall fell on 9 November 1989, when East Germany opened its border crossings. "
     "Demolition of the wall began in June 1990."), "https://example.org/berlin-wall"),
    ("Eiffel Tower", ("The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris. "
     "It was designed by the engineering company of Gustave Eiffel and completed in 1889 for the World's Fair."),
     "https://example.org/eiffel"),
    ("Photosynthesis", ("Photosynthesis is the process by which green plants convert light energy into chemical "
     "energy. Chlorophyll in the chloroplasts absorbs mostly blue and red light."), None),
    ("Mount Everest", ("Mount Everest is the highest mountain above sea level, at 8,849 metres. "
     "Tenzing Norgay and Edmund Hillary made the first confirmed ascent in 1953."), None),
    ("Danube", ("The Danube is the second-longest river in Europe after the Volga. "
     "It flows through ten countries and empties into the Black Sea."), None),
    ("Penicillin", ("Penicillin was discovered by Alexander Fleming in 1928 at St Mary's Hospital in London. "
     "It was the first antibiotic to be used widely."), None),
]


def write_corpus(root: Path) -> Path:
    """Write one file per supported format (and some bad input) under ``root``; return the folder."""
    corpus = root / "corpus"
    (corpus / "nested" / "deeper").mkdir(parents=True)
    with (corpus / "facts.jsonl").open("w", encoding="utf-8") as handle:
        for title, text, url in FACTS[:3]:
            handle.write(json.dumps({"title": title, "text": text, **({"url": url} if url else {})}) + "\n")
        handle.write("{not json\n")
        handle.write(json.dumps({"title": "No text here"}) + "\n")
    keyed = {title: {"title": title, "extract": text} for title, text, _ in FACTS[3:5]}
    (corpus / "nested" / "keyed.json").write_text(json.dumps(keyed), encoding="utf-8")
    (corpus / "nested" / "deeper" / "penicillin.txt").write_text(FACTS[5][1], encoding="utf-8")
    (corpus / "volcano.md").write_text(
        "# Volcanoes\n\nA volcano is a rupture in the crust of a planet.\n\n"
        "## Mauna Loa\n\nMauna Loa in Hawaii is the largest active volcano on Earth by volume.\n\n"
        "```\ncode is kept out of headings\n```\n", encoding="utf-8")
    (corpus / "honey.html").write_text(
        "<html><head><title>Honey bees</title><link rel='canonical' href='https://example.org/bees'>"
        "<script>var hidden = 'javascript should not be indexed';</script></head>"
        "<body><nav>menu</nav><p>Honey bees communicate the location of flowers with the waggle dance.</p>"
        "<p>A colony has one queen, thousands of female workers and a few hundred male drones.</p></body></html>",
        encoding="utf-8")
    (corpus / "image.png").write_bytes(b"\x89PNG\r\n")
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "secret.txt").write_text("hidden files are ignored", encoding="utf-8")
    return corpus


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The multi-format corpus folder."""
    return write_corpus(tmp_path)


@pytest.fixture
def index_dir(tmp_path: Path, corpus: Path) -> Path:
    """A real index built from the corpus folder."""
    target = tmp_path / "index"
    ingest_paths(target, [corpus], progress=False)
    return target


@pytest.fixture
def backend(index_dir: Path) -> TantivyBackend:
    """The search backend on the corpus index."""
    return TantivyBackend(tier="search", index_dir=index_dir, options=SearchOptions())
