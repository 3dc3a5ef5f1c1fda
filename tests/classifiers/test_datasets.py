"""The documented label mapping of the public sets, on a miniature copy of their layout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from classifiers.datasets import PUBLIC_SOURCES, dataset_of, dolly_review_sample, load_public, summarise
from router.core.errors import UnprocessableError


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """One folder per public source, with a few rows each."""
    write_jsonl(tmp_path / "squad_v1.1_dev" / "questions.jsonl",
                [{"question": f"Which year was bridge {i} opened?", "answers": ["1900"]} for i in range(5)])
    write_jsonl(tmp_path / "nq_open" / "NQ-open.dev.jsonl", [{"question": "who sang hey jude", "answer": ["x"]}])
    write_jsonl(tmp_path / "gsm8k" / "train.jsonl",
                [{"question": "Ann has 3 apples and buys 4 more bags of 6. How many now?", "answer": "27"}])
    write_jsonl(tmp_path / "humaneval" / "HumanEval.jsonl.gz", [{"prompt": 'def add(a, b):\n    """Add."""\n'}])
    # ids as in the real sets, so the reviewed labels in classifiers/data/labels apply
    write_jsonl(tmp_path / "mt_bench" / "question.jsonl", [
        {"question_id": 81, "category": "writing",
         "turns": ["Write a blog post about Hawaii.", "Now rewrite it starting every sentence with A."]},
        {"question_id": 90, "category": "writing", "turns": ["Fix the grammar: me go home", "Now drop the pronouns."]},
        {"question_id": 9999, "category": "writing", "turns": ["Not reviewed.", "Not reviewed either."]},
    ])
    write_jsonl(tmp_path / "self_instruct_user_oriented" / "user_oriented_instructions.jsonl", [
        {"id": "user_oriented_task_2", "instruction": "Fix the grammar.", "instances": [{"input": "me go home"}],
         "motivation_app": "Grammarly"},
        {"id": "user_oriented_task_13", "instruction": "Write a Python function for this.",
         "instances": [{"input": "reverse a list"}], "motivation_app": "Colab"},
        {"id": "user_oriented_task_134", "instruction": "Solve the puzzle.", "instances": [{"input": ""}],
         "motivation_app": "Sudoku"},
        {"id": "not_reviewed", "instruction": "Unlabelled.", "instances": [{"input": ""}], "motivation_app": "x"},
    ])
    write_jsonl(tmp_path / "dolly_partial_no_category" / "dolly_first6400_instruction_response.jsonl", [
        {"id": 90001, "instruction": "Who wrote Hamlet?", "response": "William Shakespeare."},
        {"id": 90002, "instruction": "Who is the best football player and why?", "response": "Opinions differ."},
        {"id": 90003, "instruction": "Classify these as fruit or vegetable: apple, leek", "response": "apple fruit"},
        {"id": 90004, "instruction": "Write a poem about the sea.", "response": "..."},
        {"id": 90005, "instruction": "When did the Roman Empire fall?", "response": " ".join(["word"] * 60)},
        # ids as in the real set: reviewed search, small, large, and null (points at a missing text)
        {"id": 2, "instruction": "Why can camels survive for long without water?", "response": "Fat."},
        {"id": 14, "instruction": "How do I start running?", "response": "Slowly."},
        {"id": 275, "instruction": "Why isn't multi-threading making my Python code faster?", "response": "GIL."},
        {"id": 228, "instruction": "Based on the following passage summarise how sunsets are viewed.",
         "response": "..."},
    ])
    return tmp_path


def test_every_source_maps_to_the_documented_tiers(shared: Path) -> None:
    rows = load_public(shared, seed=0, cap=100)
    summary = summarise(rows)
    assert summary == {
        "squad": {"search": 5}, "nq_open": {"search": 1}, "gsm8k": {"large": 1}, "humaneval": {"large": 1},
        "mt_bench": {"large": 2, "small": 2}, "self_instruct": {"small": 1, "large": 2},
        "dolly": {"search": 1, "small": 1}, "dolly_reviewed": {"search": 1, "small": 1, "large": 1},
    }
    dolly = {row["text"]: row["tier"] for row in rows if row["source"] == "dolly"}
    assert dolly == {"Who wrote Hamlet?": "search", "Classify these as fruit or vegetable: apple, leek": "small"}
    reviewed = {row["text"]: row["tier"] for row in rows if row["source"] == "dolly_reviewed"}
    assert reviewed == {"Why can camels survive for long without water?": "search",
                        "How do I start running?": "small",
                        "Why isn't multi-threading making my Python code faster?": "large"}
    mt_bench = {row["text"]: row["tier"] for row in rows if row["source"] == "mt_bench"}
    assert mt_bench["Now drop the pronouns."] == "small" and mt_bench["Write a blog post about Hawaii."] == "large"
    assert "Not reviewed." not in mt_bench  # no reviewed label: left out, not guessed
    turn2 = next(row for row in rows if row.get("kind") == "writing_turn2")
    assert [m["role"] for m in turn2["messages"]] == ["user", "assistant", "user"]
    grammar = next(row for row in rows if row["source"] == "self_instruct" and row["tier"] == "small")
    assert grammar["text"] == "Fix the grammar.\n\nme go home"  # the supplied input travels with the instruction


def test_cap_is_a_reproducible_sample(shared: Path) -> None:
    first = load_public(shared, seed=1, cap=2, sources=["squad"])
    assert len(first) == 2
    assert first == load_public(shared, seed=1, cap=2, sources=["squad"])


def test_unknown_or_missing_sources_are_clear_errors(shared: Path, tmp_path: Path) -> None:
    with pytest.raises(UnprocessableError, match="valid"):
        load_public(shared, sources=["imagenet"])
    (shared / "gsm8k" / "train.jsonl").unlink()
    with pytest.raises(UnprocessableError, match="not found"):
        load_public(shared, sources=["gsm8k"])
    assert set(PUBLIC_SOURCES) == {"squad", "nq_open", "gsm8k", "humaneval", "mt_bench", "self_instruct", "dolly",
                                 "dolly_reviewed"}


def test_reviewed_labels_cover_the_real_sets_exactly() -> None:
    """Every MT-Bench turn and Self-Instruct instruction has one reviewed label with a reason, and no more."""
    from classifiers.datasets import LABELS_DIR
    shared = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not shared.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    questions = [json.loads(line) for line in (shared / "mt_bench" / "question.jsonl").open()]
    instructions = [json.loads(line) for line in
                    (shared / "self_instruct_user_oriented" / "user_oriented_instructions.jsonl").open()]
    mt = [json.loads(line) for line in (LABELS_DIR / "mt_bench.jsonl").open()]
    si = [json.loads(line) for line in (LABELS_DIR / "self_instruct.jsonl").open()]
    assert sorted((row["question_id"], row["turn"]) for row in mt) == sorted(
        (item["question_id"], turn) for item in questions for turn in (1, 2))
    assert sorted(row["id"] for row in si) == sorted(item["id"] for item in instructions)
    assert all(row["tier"] in {"small", "large"} and row["why"] for row in mt + si)


def test_the_dolly_review_is_the_documented_sample_of_rows_the_rules_leave_out() -> None:
    """The reviewed Dolly ids are exactly the seeded sample, one tier (or null) and a reason each."""
    from classifiers.datasets import LABELS_DIR
    shared = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not shared.is_dir():
        pytest.skip("../shared/data is not beside this checkout")
    labels = [json.loads(line) for line in (LABELS_DIR / "dolly.jsonl").open()]
    assert [row["id"] for row in labels] == dolly_review_sample(shared)
    assert all(row["tier"] in {"search", "small", "large", None} and row["why"] for row in labels)
    rows = load_public(shared, sources=["dolly", "dolly_reviewed"])
    rule_texts = {row["text"] for row in rows if row["source"] == "dolly"}
    reviewed = [row for row in rows if row["source"] == "dolly_reviewed"]
    assert len(reviewed) == sum(row["tier"] is not None for row in labels)
    assert not rule_texts & {row["text"] for row in reviewed}


def test_each_reviewed_dolly_tier_is_the_majority_of_its_blind_votes() -> None:
    """Two annotators per row, a third where they differ; the majority wins, a three-way split goes large."""
    from classifiers.datasets import LABELS_DIR
    labels = [json.loads(line) for line in (LABELS_DIR / "dolly.jsonl").open()]
    for row in labels:
        votes = row["votes"]
        if row["tier"] is None:  # points at a supplied text the set no longer carries
            assert votes == {"a": None}
            continue
        assert ("c" in votes) == (votes["a"] != votes["b"]), row
        ballot = list(votes.values())
        majority = [tier for tier in ("search", "small", "large") if ballot.count(tier) >= 2]
        assert row["tier"] == (majority[0] if majority else "large"), row
    assert sum("c" in row["votes"] for row in labels) > 0  # the file does carry adjudicated rows


def test_sources_of_one_dataset_are_held_out_together() -> None:
    assert dataset_of("dolly_reviewed") == dataset_of("dolly") == "dolly"
    assert dataset_of("squad") == "squad"
