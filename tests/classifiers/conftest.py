"""A small hand-written training fixture and a tiny model trained on it (static variant)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifiers.config import shipped_model_dir

FIXTURE = {
    "search": [
        "Who wrote Pride and Prejudice?", "When did the French Revolution begin?", "What is the capital of Peru?",
        "How many moons does Mars have?", "Where is the Taj Mahal?", "Who painted the Mona Lisa?",
        "What year did the Titanic sink?", "Which river flows through Cairo?", "Who invented the telephone?",
        "How tall is Mount Kilimanjaro?", "When was the United Nations founded?", "Who discovered penicillin?",
        "What is the largest desert in Asia?", "Quelle est la capitale du Canada ?", "Who was the first emperor of Rome?",
    ],
    "small": [
        "Translate into French: see you tomorrow at noon", "Fix the grammar: he go to school yesterday",
        "Summarize this: The meeting was moved to Friday because the room was booked. Everyone agreed.",
        "Rewrite politely: send me the file now", "Give me a title for a post about spring gardening",
        "Say hello to my colleague Marc in a friendly way", "What is 7 times 8?",
        "Classify the sentiment of this review: the food was cold and the waiter rude",
        "Turn this list into a sentence: eggs, milk, bread", "hi, how are you today?",
        "Extract the date from: our flight leaves on 3 May at 9am", "Make this shorter: I am writing to let you know",
        "Convert to uppercase: quiet please", "Corrige l'orthographe : je suis aller au marcher", "thanks a lot!",
    ],
    "large": [
        "Write a Python function that merges overlapping intervals and explain its complexity.",
        "A train leaves at 3pm at 80 km/h, another at 4pm at 100 km/h; when does the second catch up?",
        "Debug this code: def f(x): return x[len(x)]", "Compare microservices and monoliths for a 5-person startup.",
        "Plan a two-week study schedule for the bar exam with daily goals.",
        "Prove that the square root of 2 is irrational.", "Design a database schema for a library with loans.",
        "Write a 1000-word essay on the causes of the First World War.",
        "Implement Dijkstra's algorithm in Rust with a binary heap.",
        "Analyse the trade-offs of raising interest rates during a recession.",
        "If 3 workers build a wall in 12 days, how long do 5 workers take, and why?",
        "Write a SQL query that finds the top 3 customers per region by revenue.",
        "Explain how transformers use attention, with the maths.", "Refactor this JavaScript to use async/await.",
        "Draft a business plan for a bakery, with a budget and risks.",
    ],
}


def write_seed(folder: Path) -> Path:
    """Write the fixture as seed_*.jsonl files, one per tier."""
    folder.mkdir(parents=True, exist_ok=True)
    for tier, texts in FIXTURE.items():
        lines = [json.dumps({"text": t, "tier": tier, "lang": "en", "kind": "fixture"}) for t in texts]
        (folder / f"seed_{tier}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def fixture_seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seed folder holding the fixture."""
    return write_seed(tmp_path_factory.mktemp("seed"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, fixture_seed_dir: Path) -> Path:
    """A static-variant model trained on the fixture alone (reusing the shipped distilled table)."""
    from classifiers.training import train

    out = tmp_path_factory.mktemp("model")
    train(seed_dir=fixture_seed_dir, shared_data_dir=None, out_dir=out, variant="static",
          static_from=shipped_model_dir() / "static")
    return out
