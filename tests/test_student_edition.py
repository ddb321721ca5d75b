"""The student edition of every chapter: no solution survives; filled in with the instructor's
answers its code is the instructor chapter's code, which `make test` runs to the end under
nbval, so it runs too; filled in with another correct answer where a chapter invites one (a
float32 sinusoid) it runs to the end; unsolved, it stops at the first exercise's check.

The runs execute a student chapter in a real kernel (nbclient) under BERTMINI_PROFILE=ci, cell
by cell, so the test knows exactly which cell failed first.
"""

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from bertmini.student import BEGIN, END, PLACEHOLDER, SOLUTION_BLOCK, make_student_edition

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


# Other correct answers a student may write, by (chapter, number of the exercise in it).
# Chapter 02's sinusoid computed in float32 the Annotated Transformer's way, exp(-log): correct,
# though its angles at position 500 are a few 1e-5 off the float64 reference.
VARIANTS = {
    ("02_positional_encoding", 0): """\
    import math

    position = torch.arange(num_positions, dtype=torch.float32)[:, None]
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    pe = torch.zeros(num_positions, dim)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe""",
}
RUNS = [(ROOT / "chapters" / f"{name}.ipynb", number) for name, number in VARIANTS]


def _fill(student: dict, instructor: dict, chapter: str, variant: int | None) -> None:
    """Put an answer in place of each placeholder line, in order.

    The answer is the instructor's solution block without its markers, or, for exercise number
    `variant`, the answer in VARIANTS.
    """
    answers = [  # code answers only: markdown ones answer open questions, nothing runs them
        "\n".join(block.group(0).splitlines()[1:-1])
        for cell in instructor["cells"]
        if cell["cell_type"] == "code"
        for block in SOLUTION_BLOCK.finditer(_source(cell))
    ]
    if variant is not None:
        answers[variant] = VARIANTS[chapter, variant]
    remaining = iter(answers)
    for cell in (cell for cell in student["cells"] if cell["cell_type"] == "code"):
        lines = _source(cell).split("\n")
        cell["source"] = "\n".join(
            next(remaining) if line.strip() == PLACEHOLDER else line for line in lines
        )
    assert next(remaining, None) is None, f"{chapter}: more solutions than placeholders"


def _run(notebook, folder: Path, monkeypatch) -> tuple[int | None, CellExecutionError | None]:
    """Run the code cells in order: (index of the first that failed, its error), or (None, None)."""
    # The kernel inherits this environment: small sizes, no hub, no progress bars.
    monkeypatch.setenv("BERTMINI_PROFILE", "ci")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(folder)}}
    )
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as error:
                    return index, error
    return None, None


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_filled_student_code_is_the_instructor_code(chapter, student_dir):
    """Cell for cell, the student edition filled with the instructor's answers is the code that
    `make test` runs under nbval: nothing else was dropped or changed, so it runs the same."""
    instructor = json.loads(chapter.read_text())
    student = json.loads((student_dir / chapter.name).read_text())
    _fill(student, instructor, chapter.stem, None)
    markers = (BEGIN, END)

    def code(notebook):
        return [
            "\n".join(
                line for line in _source(c).split("\n") if line.strip() not in markers
            ).strip()
            for c in notebook["cells"]
            if c["cell_type"] == "code"
        ]

    assert code(student) == code(instructor)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("chapter", "variant"),
    RUNS,
    ids=[c.stem if v is None else f"{c.stem}-exercise{v}-variant" for c, v in RUNS],
)
def test_student_chapter_with_answers_filled_in_runs_to_the_end(
    chapter, variant, student_dir, monkeypatch
):
    student = json.loads((student_dir / chapter.name).read_text())
    _fill(student, json.loads(chapter.read_text()), chapter.stem, variant)
    notebook = nbformat.from_dict(student)
    failed_at, error = _run(notebook, student_dir, monkeypatch)
    assert failed_at is None, (
        f"{chapter.name} (student edition, filled): cell {failed_at}:\n{error}"
    )


@pytest.mark.slow
def test_an_unsolved_exercise_stops_the_chapter_at_its_check(student_dir, monkeypatch):
    chapter = CHAPTERS[0]
    notebook = nbformat.read(student_dir / chapter.name, as_version=4)
    exercise = next(i for i, c in enumerate(notebook.cells) if PLACEHOLDER in c.source)
    failed_at, error = _run(notebook, student_dir, monkeypatch)
    assert failed_at is not None and error.ename == "NotImplementedError", error
    assert failed_at > exercise, "the exercise's definition itself must run: only its check fails"
    assert "check_" in notebook.cells[failed_at].source, notebook.cells[failed_at].source
