"""The student edition of every chapter: no solution survives, and each chapter runs up to its
first exercise, where the check lets the exercise's NotImplementedError through.

Executes each student chapter in a real kernel (nbclient) under BERTMINI_PROFILE=ci, cell by
cell, so the test knows exactly which cell failed first.
"""

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from bertmini.student import BEGIN, END, SOLUTION_BLOCK, make_student_edition

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _solution_lines(notebook: dict) -> list[str]:
    """The distinctive lines inside the instructor's solution blocks."""
    lines = []
    for cell in notebook["cells"]:
        for block in SOLUTION_BLOCK.finditer(_source(cell)):
            for line in block.group(0).splitlines()[1:-1]:
                line = line.strip()
                # short or generic lines ('return out', comments) may appear elsewhere legitimately
                if len(line) > 25 and not line.startswith("#"):
                    lines.append(line)
    return lines


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("student")
    written = make_student_edition(ROOT / "chapters", target)
    assert [p.name for p in written] == [p.name for p in CHAPTERS]
    return target


def test_there_are_chapters():
    assert CHAPTERS, "no chapters/*.ipynb found"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_solution_survives(chapter, student_dir):
    instructor = json.loads(chapter.read_text())
    student_text = (student_dir / chapter.name).read_text()
    assert BEGIN not in student_text and END not in student_text
    for line in _solution_lines(instructor):
        assert line not in student_text, f"solution line kept in {chapter.name}: {line!r}"
    student = json.loads(student_text)
    assert all(not c.get("outputs") for c in student["cells"] if c["cell_type"] == "code")


def _first_exercise(notebook) -> int | None:
    """Index of the first code cell whose body was replaced by the NotImplementedError stub."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and re.search(r"raise NotImplementedError", cell.source):
            return index
    return None


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_student_chapter_runs_to_first_exercise(chapter, student_dir, monkeypatch):
    # The kernel inherits this environment: small sizes, no hub, no progress bars.
    monkeypatch.setenv("BERTMINI_PROFILE", "ci")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))

    notebook = nbformat.read(student_dir / chapter.name, as_version=4)
    exercise = _first_exercise(notebook)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(student_dir)}},
    )
    failed_at, error = None, None
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as caught:
                failed_at, error = index, caught
                break

    if exercise is None:
        assert failed_at is None, f"{chapter.name}: cell {failed_at} failed:\n{error}"
        return
    assert failed_at is not None, f"{chapter.name} ran past its unsolved exercise (cell {exercise})"
    assert error.ename == "NotImplementedError", (
        f"{chapter.name}: cell {failed_at} failed with {error.ename}, "
        f"expected the exercise's NotImplementedError:\n{error}"
    )
    assert failed_at > exercise, (  # the definition itself must run: only the check may fail
        f"{chapter.name}: cell {failed_at} failed before the exercise (cell {exercise}) was defined"
    )
    assert "check_" in notebook.cells[failed_at].source, (
        f"{chapter.name}: the NotImplementedError came from cell {failed_at}, not from a check"
    )
