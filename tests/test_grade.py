"""`python -m bertmini grade`: a class of chapter 02 notebooks, each graded as what it is.

The class is made from chapter 02's student edition: the reference answer, one submission per
named mistake of its check, an untouched (empty) notebook, and notebooks that raise, loop, print
10 MB, allocate until refused, delete their files, belong to another chapter, or are not
notebooks at all. Expected messages come from calling the check here on the same wrong
function, so rewording a check's advice does not break this test. A tiny chapter (no plots)
keeps the other cases quick: a notebook past its total time, a killed kernel, a kernel deaf to
interrupts, grading twice, the command's errors.
"""

import contextlib
import csv
import io
import json
import os
import time
from pathlib import Path

import nbformat
import pytest
import torch

from bertmini import grade
from bertmini.__main__ import main
from bertmini.checks import CheckFailed
from bertmini.checks.positional import _MISTAKES, check_sinusoidal_encoding
from bertmini.student import PLACEHOLDER, student_notebook

REPO = Path(__file__).resolve().parents[1]
CHAPTER = REPO / "chapters" / "02_positional_encoding.ipynb"
OTHER_CHAPTER = REPO / "chapters" / "01_attention.ipynb"
# 60 s a cell: chapter 02's imports took over 20 s on this 2-core machine under a load of 13.
LIMITS = grade.Limits(cell_seconds=60, notebook_seconds=180, memory_bytes=3 * 2**30)
INTERRUPT_SECONDS = 10  # how long the grader waits for an interrupted kernel to answer
# A correct answer written out, as a student would: bertmini's own sinusoidal_encoding refuses to
# run while its check runs (bertmini.guard), so submissions may not call it.
REFERENCE_BODY = """position = torch.arange(num_positions, dtype=torch.float64)[:, None]
frequency = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
encoding = torch.zeros(num_positions, dim, dtype=torch.float64)
encoding[:, 0::2] = (position * frequency).sin()
encoding[:, 1::2] = (position * frequency).cos()
return encoding.float()"""


def own_sinusoid(num_positions: int, dim: int) -> torch.Tensor:
    """REFERENCE_BODY as a function of this test, for the check's expected message."""
    namespace = {"torch": torch, "num_positions": num_positions, "dim": dim}
    exec("def answer():\n    " + REFERENCE_BODY.replace("\n", "\n    "), namespace)
    return namespace["answer"]()


HEADER = ["student", "exercise", "status", "message", "seconds"]


def one_line(text: str) -> str:
    return " ".join(text.split())


def student_edition(path: Path = CHAPTER) -> nbformat.NotebookNode:
    return nbformat.from_dict(student_notebook(json.loads(path.read_text())))


def submission(body: str | None = None, added: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    """Chapter 02's student edition with `body` as the exercise's answer and `added` cells
    inserted after the imports (students add cells, so exercises move down)."""
    notebook = student_edition()
    if body is not None:
        for cell in notebook.cells:
            cell.source = cell.source.replace(PLACEHOLDER, body.replace("\n", "\n    "))
    imports = next(i for i, cell in enumerate(notebook.cells) if "import torch" in cell.source)
    for offset, source in enumerate(added, 1):
        notebook.cells.insert(imports + offset, nbformat.v4.new_code_cell(source))
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell("My notes for this week."))
    return notebook


def check_output(function) -> str:
    """What the check says about `function`: its ✅ line, or its CheckFailed message."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            check_sinusoidal_encoding(function)
    except CheckFailed as error:
        return one_line(str(error))
    return one_line(printed.getvalue())


def write(notebook, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def make_class(folder: Path) -> dict[str, tuple[str, str]]:
    """Write the class into `folder`; return {student: (status, expected message)}."""
    expected = {}
    write(nbformat.read(CHAPTER, as_version=4), folder / "alice.ipynb")  # the instructor's own
    expected["alice"] = ("passed", check_output(own_sinusoid))
    for number, mistake in enumerate(_MISTAKES, 1):
        body = (
            "from bertmini.checks.positional import _MISTAKES\n"
            f"return _MISTAKES[{number - 1}].wrong(num_positions, dim)"
        )
        write(submission(body), folder / f"mistake{number}.ipynb")
        expected[f"mistake{number}"] = ("failed", check_output(mistake.wrong))
    write(submission(), folder / "empty.ipynb")
    expected["empty"] = ("not attempted", "the exercise still raises NotImplementedError")

    raises = submission(REFERENCE_BODY)
    exercise = next(cell for cell in raises.cells if "def sinusoidal_encoding" in cell.source)
    exercise.source = 'raise RuntimeError("half-way through")\n' + exercise.source
    write(raises, folder / "raises.ipynb")
    expected["raises"] = ("crashed", "NameError: name 'sinusoidal_encoding' is not defined")

    write(submission("while True:\n    pass"), folder / "loops.ipynb")
    expected["loops"] = ("crashed", "the check ran past its time limit (an endless loop?)")
    ten_megabytes = "for line in range(100_000):\n    print('x' * 99)"
    write(submission(REFERENCE_BODY, added=(ten_megabytes,)), folder / "prints.ipynb")
    expected["prints"] = expected["alice"]
    allocates = "chunks = []\nwhile True:\n    chunks.append(bytearray(2**28))"
    write(submission(REFERENCE_BODY, added=(allocates,)), folder / "allocates.ipynb")
    expected["allocates"] = expected["alice"]

    deletes = (
        "import os, shutil\n"
        "for name in os.listdir():\n"
        "    shutil.rmtree(name) if os.path.isdir(name) else os.remove(name)"
    )
    write(submission(REFERENCE_BODY, added=(deletes,)), folder / "dora" / CHAPTER.name)
    (folder / "dora" / "data").mkdir()
    (folder / "dora" / "data" / "notes.txt").write_text("keep me")
    expected["dora"] = expected["alice"]

    write(student_edition(OTHER_CHAPTER), folder / "otto.ipynb")
    expected["otto"] = ("not attempted", "otto.ipynb calls none of this chapter's checks")
    (folder / "frank.pdf").write_bytes(b"%PDF-1.4 not a notebook")
    expected["frank"] = ("not attempted", "frank.pdf is not a notebook (.ipynb): nothing was run")
    return expected


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as file:
        return list(csv.reader(file))


@pytest.mark.slow
def test_a_class_is_graded_row_by_row(tmp_path):
    folder, out = tmp_path / "class", tmp_path / "grades"
    expected = make_class(folder)
    assert len(expected) >= 10
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}

    start = time.monotonic()
    results = grade.grade_class(folder, "02", out, LIMITS)
    wall = time.monotonic() - start

    rows = read_rows(out / "grades.csv")
    assert rows[0] == HEADER
    assert [row[0] for row in rows[1:]] == sorted(expected)  # one exercise: one row each
    for student, exercise, status, message, seconds in rows[1:]:
        want_status, want_message = expected[student]
        assert exercise == "sinusoidal_encoding"
        assert (student, status) == (student, want_status)
        if student == "otto":  # the message goes on to list the chapter's checks
            assert message.startswith(want_message), (student, message)
        else:
            assert message == want_message, (student, message)
        assert 0 <= float(seconds) <= LIMITS.notebook_seconds + INTERRUPT_SECONDS + 5  # its limit
    loops = next(row for row in rows if row[0] == "loops")
    assert float(loops[4]) >= LIMITS.cell_seconds  # it was stopped by the limit, not before
    # Each notebook ran within its limit (otto's and frank's never started a kernel).
    assert wall < (len(expected) - 2) * LIMITS.notebook_seconds
    # The submissions are untouched, whatever the notebooks did to their copies.
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before
    assert kernels_of_this_process() == []  # every kernel was shut down, looping or not

    notes = {result.student: result.notes for result in results}
    assert any("RuntimeError: half-way through" in note for note in notes["raises"])
    assert any("MemoryError" in note for note in notes["allocates"])
    feedback = (out / "feedback" / "mistake1.md").read_text()
    assert "# 02 · Positional encoding: feedback for mistake1" in feedback
    assert expected["mistake1"][1] in feedback and "0 of 1" in feedback
    assert sorted(path.stem for path in (out / "feedback").iterdir()) == sorted(expected)
    print(f"graded {len(expected)} submissions in {wall:.0f} s")


# A tiny chapter (no plots, no widgets) keeps the tests of limits and reproducibility quick.
TINY_CHAPTER = [
    nbformat.v4.new_markdown_cell("# 99 · Tiny"),
    nbformat.v4.new_code_cell("from bertmini.checks.positional import check_sinusoidal_encoding"),
    nbformat.v4.new_code_cell(
        "import torch\n\n\ndef sinusoidal_encoding(num_positions, dim):\n"
        "    ### BEGIN SOLUTION\n    "
        + REFERENCE_BODY.replace("\n", "\n    ")
        + "\n    ### END SOLUTION"
    ),
    nbformat.v4.new_code_cell("check_sinusoidal_encoding(sinusoidal_encoding)"),
]


def tiny_class(tmp_path: Path) -> tuple[Path, Path]:
    chapters, folder = tmp_path / "chapters", tmp_path / "class"
    instructor = write(nbformat.v4.new_notebook(cells=TINY_CHAPTER), chapters / "99_tiny.ipynb")
    write(nbformat.read(instructor, as_version=4), folder / "ann.ipynb")
    student = student_notebook(json.loads(instructor.read_text()))
    write(nbformat.from_dict(student), folder / "ben.ipynb")
    flipped = nbformat.read(instructor, as_version=4)  # a wrong answer no named mistake matches
    flipped.cells[2].source = flipped.cells[2].source.replace(".float()", ".float().flip(-1)")
    write(flipped, folder / "cleo.ipynb")
    return chapters, folder


@pytest.mark.slow
def test_grading_twice_gives_the_same_csv_times_aside(tmp_path, capsys):
    chapters, folder = tiny_class(tmp_path)
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        args = ["grade", str(folder), "--chapter", "99", "--chapters", str(chapters)]
        assert main([*args, "--timeout", "40", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ann" in printed and "1/1" in printed and "grades.csv" in printed

    def without_seconds(path):
        return [row[:4] for row in read_rows(path / "grades.csv")]

    assert without_seconds(first) == without_seconds(second)
    statuses = {row[0]: row[2] for row in without_seconds(first)[1:]}
    assert statuses == {"ann": "passed", "ben": "not attempted", "cleo": "failed"}


def test_a_slow_notebook_and_a_killed_kernel_are_graded_as_such(tmp_path):
    chapters, folder = tiny_class(tmp_path)
    (folder / "cleo.ipynb").unlink()
    slow = nbformat.read(folder / "ann.ipynb", as_version=4)
    for _ in range(3):  # each cell is within the 4 s per cell, together they are not
        slow.cells.insert(1, nbformat.v4.new_code_cell("import time\ntime.sleep(3)"))
    write(slow, folder / "ann.ipynb")
    killed = nbformat.read(folder / "ben.ipynb", as_version=4)
    kill = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would"
    killed.cells.insert(1, nbformat.v4.new_code_cell(kill))
    write(killed, folder / "ben.ipynb")
    limits = grade.Limits(cell_seconds=4, notebook_seconds=8)

    start = time.monotonic()
    results = grade.grade_class(folder, "99", tmp_path / "out", limits, chapters_dir=chapters)
    ann, ben = (result.grades[0] for result in results)
    assert (ann.status, ann.message) == ("crashed", "not run: the notebook ran past its 8 s limit")
    died = "not run: the kernel died (out of memory, or the code exited Python)"
    assert (ben.status, ben.message) == ("crashed", died)
    assert time.monotonic() - start < 2 * (limits.notebook_seconds + INTERRUPT_SECONDS)


def test_bad_input_gives_one_line_errors(tmp_path, capsys):
    chapters, folder = tiny_class(tmp_path)
    assert main(["grade", str(folder), "--chapter", "98", "--chapters", str(chapters)]) == 3
    nowhere = str(tmp_path / "nowhere")
    assert main(["grade", nowhere, "--chapter", "99", "--chapters", str(chapters)]) == 3
    assert main(["grade", str(folder), "--chapter", "99", "--timeout", "0"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3
    assert "no chapter 98_*.ipynb" in errors[0]
    assert "is not a folder" in errors[1]
    assert "must be positive" in errors[2]


def test_exercises_come_from_solution_cells_and_their_checks():
    chapter_00 = nbformat.read(REPO / "chapters" / "00_setup.ipynb", as_version=4)
    chapter_01 = nbformat.read(OTHER_CHAPTER, as_version=4)
    # Chapter 00 also calls check_softmax on wrong versions, to show a failure: not exercises.
    assert grade.chapter_exercises(chapter_00) == [grade.Exercise("softmax", "check_softmax")]
    assert grade.chapter_exercises(chapter_01) == [
        grade.Exercise("scaled_dot_product_attention", "check_scaled_dot_product_attention"),
        grade.Exercise("multi_head_attention", "check_multi_head_attention"),
    ]


def test_a_kernel_is_capped_in_output_and_memory_and_stopped_when_deaf(tmp_path):
    cells = [
        "print('x' * 10_000_000)",
        "for line in range(5_000):\n    print(line)",
        "memory = bytearray(2 * 2**30)",
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        "print('never')",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    limits = grade.Limits(cell_seconds=3, notebook_seconds=60, memory_bytes=2**30)
    run = grade.run_notebook(notebook, tmp_path, len(cells) - 1, limits)

    def text(cell):
        return "".join(output.get("text", "") for output in cell.outputs)

    assert len(text(notebook.cells[0])) <= grade.OUTPUT_LIMIT + 100
    assert text(notebook.cells[0]).endswith("[output cut by grader]\n")
    assert len(notebook.cells[1].outputs) <= grade.OUTPUTS_LIMIT
    assert run.errors[2]["ename"] == "MemoryError" and run.seconds[3] > 0  # and it went on
    assert run.timed_out == {3} and run.stopped_at == 3
    assert run.stopped == "a cell ran past its time limit and ignored the interrupt"
    assert 4 not in run.seconds and notebook.cells[4].outputs == []
    assert kernels_of_this_process() == []  # the deaf kernel was killed, not left spinning


def kernels_of_this_process() -> list[int]:
    """Process ids of the kernels this test process started that are still alive (Linux)."""
    kernels = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
            if parent == os.getpid() and b"ipykernel" in command:
                kernels.append(int(stat.parent.name))
    return kernels
