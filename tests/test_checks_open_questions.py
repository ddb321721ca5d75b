"""Open questions: the instructor edition answers them, the student edition holds none of it.

An open question is a markdown cell that starts with "**Question N.**" and keeps its answer
between the solution markers; `bertmini.student` puts "_Your answer here._" in its place.
"""

import json
import re
from pathlib import Path

import pytest

from bertmini.student import ANSWER_PLACEHOLDER, SOLUTION_BLOCK, student_notebook

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
QUESTION = re.compile(r"^\*\*Question \d+\.\*\*")
# Chapters whose open questions are written (every chapter).
WITH_QUESTIONS = ("00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10")


def _questions(notebook: dict) -> list[str]:
    sources = ("".join(cell["source"]) for cell in notebook["cells"])
    return [source for source in sources if QUESTION.match(source)]


def _answer_lines(question: str) -> list[str]:
    """The answer's lines that are long enough to be its own words, not a common phrase."""
    block = SOLUTION_BLOCK.search(question)
    assert block, f"an open question without an answer block:\n{question[:200]}"
    return [line.strip() for line in block.group(0).splitlines()[1:-1] if len(line.strip()) > 30]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_student_edition_holds_no_answer_of_any_open_question(chapter):
    instructor = json.loads(chapter.read_text())
    questions = _questions(instructor)
    student = student_notebook(instructor)
    student_text = json.dumps(student, ensure_ascii=False)
    for question in questions:
        for line in _answer_lines(question):
            assert json.dumps(line, ensure_ascii=False)[1:-1] not in student_text, (
                f"{chapter.name}: an answer line survives in the student edition: {line!r}"
            )
    placeholders = [q for q in _questions(student) if ANSWER_PLACEHOLDER in q]
    assert len(placeholders) == len(questions), "each question keeps a place for the answer"


@pytest.mark.parametrize("prefix", WITH_QUESTIONS)
def test_chapter_has_two_to_four_answered_open_questions(prefix):
    (chapter,) = [p for p in CHAPTERS if p.name.startswith(prefix + "_")]
    questions = _questions(json.loads(chapter.read_text()))
    assert 2 <= len(questions) <= 4, f"{chapter.name} has {len(questions)} open questions"
    assert all(len(_answer_lines(q)) >= 2 for q in questions), "every question has an answer"
