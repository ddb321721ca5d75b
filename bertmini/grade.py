"""Grading a class: run every student's notebook and read what each exercise's check said.

    python -m bertmini grade SUBMISSIONS --chapter 02 --out grades

SUBMISSIONS is a folder with one notebook per student (`alice.ipynb`) or one sub-folder per
student (`alice/02_positional_encoding.ipynb`, with any data files beside it). Exercises are found
by the chapter's own structure, not by cell position, so students may add, move or split cells:
the instructor chapter's solution cells (`### BEGIN SOLUTION`) define the exercise functions, and
its check calls (`check_sinusoidal_encoding(sinusoidal_encoding)`) say which check grades each.
In a submission, the grader finds the cell that makes that call and reads its outputs:

    passed          the check printed its ✅ line
    failed          the check raised CheckFailed: its message names the mistake
    not attempted   the exercise still raises NotImplementedError (or the notebook has no such
                    exercise: not a notebook, another chapter's notebook, the check cell deleted)
    crashed         anything else: the exception's last line, a time limit, a dead kernel

Each notebook runs in a fresh kernel of this Python, in a temporary copy inside its own temporary
working directory, under the `ci` profile and on the CPU, up to its last check cell (later cells
cannot change a grade). Each cell has a time limit, each notebook another; captured output is
capped, and the kernel's memory is limited (RLIMIT_DATA, Linux), so a notebook that loops, prints
megabytes or allocates until it fails is graded as what it is and the class goes on.

This is NOT a security sandbox: a submission runs with your user's rights and can read, write or
send anything you can. Grade on a machine (or container) you can wipe.

Writes OUT/grades.csv (student, exercise, status, message, seconds; sorted by student, then
exercises in chapter order, so grading the same folder twice gives the same rows, times aside) and
OUT/feedback/STUDENT.md, a Markdown note an instructor can mail as is.

No chapter teaches it: it is the instructor's tool (README, "For instructors").
"""

import csv
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import nbformat
from ipykernel.kernelspec import RESOURCES, get_kernel_dict
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from tqdm import tqdm

from .student import BEGIN

PASSED, FAILED, NOT_ATTEMPTED, CRASHED = "passed", "failed", "not attempted", "crashed"
STATUS_MARKS = {PASSED: "✅", FAILED: "❌", NOT_ATTEMPTED: "➖", CRASHED: "💥"}
OUTPUT_LIMIT = 100_000  # characters of text output kept per cell; the rest is dropped
OUTPUTS_LIMIT = 100  # outputs (texts, figures) kept per cell
MESSAGE_LIMIT = 1_000  # characters of a message in grades.csv
CHAPTERS_DIR = Path(__file__).resolve().parent.parent / "chapters"  # in a checkout of the repo


@dataclass(frozen=True)
class Limits:
    """How long and how big one submission may get."""

    cell_seconds: float = 60.0
    notebook_seconds: float = 600.0
    memory_bytes: int = 4 * 2**30  # writable memory of the kernel process (RLIMIT_DATA)

    def __post_init__(self):
        if min(self.cell_seconds, self.notebook_seconds, self.memory_bytes) <= 0:
            raise ValueError(f"time and memory limits must be positive, got {self}")


@dataclass(frozen=True)
class Exercise:
    """One exercise: the function (or class) the student writes and the check that grades it."""

    name: str  # e.g. "sinusoidal_encoding"
    check: str  # e.g. "check_sinusoidal_encoding"

    def is_called_in(self, source: str) -> bool:
        """Does this code call the check on the student's function: `check(name)`?"""
        call = rf"\b{re.escape(self.check)}\s*\(\s*{re.escape(self.name)}\s*[,)]"
        return re.search(call, source) is not None


@dataclass(frozen=True)
class Grade:
    """One row of grades.csv."""

    student: str
    exercise: str
    status: str
    message: str
    seconds: float


# ---------------------------------------------------------------------------------------------
# The chapter: its exercises, read from the instructor edition
# ---------------------------------------------------------------------------------------------


def find_chapter(number: str, chapters_dir: str | Path | None = None) -> Path:
    """The instructor notebook NN_*.ipynb of chapter `number` (e.g. "02" or "2")."""
    chapters_dir = Path(chapters_dir) if chapters_dir else CHAPTERS_DIR
    if not number.isdigit():
        raise ValueError(f"--chapter must be a chapter number such as 02, not {number!r}")
    found = sorted(chapters_dir.glob(f"{int(number):02d}_*.ipynb"))
    if not found:
        raise FileNotFoundError(
            f"no chapter {int(number):02d}_*.ipynb in {chapters_dir}: "
            "pass --chapters with the folder of the instructor notebooks"
        )
    return found[0]


def chapter_exercises(notebook: nbformat.NotebookNode) -> list[Exercise]:
    """The exercises of an instructor notebook, in the order the chapter checks them.

    A solution cell defines the exercise (`def name` or `class name` in a cell with
    `### BEGIN SOLUTION`); a code cell calling `check_x(name)` says which check grades it.
    Check calls on other functions (a chapter showing what a failure looks like) are not exercises.
    """
    defined = set()
    for cell in notebook.cells:
        if cell.cell_type == "code" and BEGIN in cell.source:
            defined.update(re.findall(r"^\s*(?:def|class)\s+(\w+)", cell.source, re.M))
    exercises = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for check, name in re.findall(r"\b(check_\w+)\s*\(\s*(\w+)\s*[,)]", cell.source):
            exercise = Exercise(name, check)
            if name in defined and exercise not in exercises:
                exercises.append(exercise)
    if not exercises:
        raise ValueError("this chapter has no exercise (no check call on a solution's function)")
    return exercises


def chapter_title(notebook: nbformat.NotebookNode) -> str:
    """The first Markdown heading, e.g. "02 · Positional encoding"."""
    for cell in notebook.cells:
        match = re.search(r"^#\s+(.+)$", cell.source, re.M)
        if cell.cell_type == "markdown" and match:
            return match.group(1).strip()
    return "the chapter"


# ---------------------------------------------------------------------------------------------
# The class: one submission per student
# ---------------------------------------------------------------------------------------------


@dataclass
class Submission:
    """What one student handed in: a notebook (and the folder it came in), or why not."""

    student: str
    notebook: Path | None  # None when there is nothing to run; `problem` says why
    folder: Path | None = None  # a student's own folder, copied whole (data files included)
    problem: str = ""


def collect_submissions(folder: str | Path, chapter: Path, skip: Path | None = None) -> list:
    """One Submission per entry of `folder` (hidden entries and `skip` aside), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass the folder of submissions")
    entries = [
        entry
        for entry in sorted(folder.iterdir())
        if not entry.name.startswith(".") and (skip is None or entry.resolve() != skip.resolve())
    ]
    stems = [entry.stem if entry.is_file() else entry.name for entry in entries]
    submissions = []
    for entry, stem in zip(entries, stems, strict=True):
        student = stem if stems.count(stem) == 1 else entry.name  # alice.ipynb and alice.pdf
        if entry.is_dir():
            submissions.append(_folder_submission(student, entry, chapter))
        elif entry.suffix == ".ipynb":
            submissions.append(Submission(student, entry))
        else:
            problem = f"{entry.name} is not a notebook (.ipynb): nothing was run"
            submissions.append(Submission(student, None, problem=problem))
    return submissions


def _folder_submission(student: str, folder: Path, chapter: Path) -> Submission:
    """A student's sub-folder: its only notebook, or the one named like the chapter."""
    notebooks = sorted(folder.glob("*.ipynb"))
    if len(notebooks) > 1:
        prefix = chapter.name.split("_")[0] + "_"
        notebooks = [path for path in notebooks if path.name.startswith(prefix)] or notebooks
    if len(notebooks) == 1:
        return Submission(student, notebooks[0], folder)
    names = ", ".join(path.name for path in notebooks) or "none"
    problem = (
        f"expected one notebook in {folder.name}/, found {len(notebooks)} ({names}): "
        f"keep one, or name it {chapter.name}"
    )
    return Submission(student, None, problem=problem)


# ---------------------------------------------------------------------------------------------
# Running one notebook in a fresh, limited kernel
# ---------------------------------------------------------------------------------------------


class _ThisPython(KernelSpecManager):
    """Every kernel is this interpreter (the one with bertmini), whatever kernels are installed."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())


class _CappedClient(NotebookClient):
    """A NotebookClient that keeps at most OUTPUT_LIMIT characters of text output per cell,
    and at most OUTPUTS_LIMIT outputs (a loop of plots), besides the error that may end it."""

    def output(self, outs, msg, display_id, cell_index):
        if len(outs) >= OUTPUTS_LIMIT and msg["msg_type"] != "error":
            return None
        text = msg["content"].get("text") if msg["msg_type"] == "stream" else None
        if text is not None:
            kept = sum(len(out.get("text", "")) for out in outs if out.output_type == "stream")
            if kept >= OUTPUT_LIMIT:
                return None
            if kept + len(text) > OUTPUT_LIMIT:
                msg["content"]["text"] = text[: OUTPUT_LIMIT - kept] + "\n[output cut by grader]\n"
        return super().output(outs, msg, display_id, cell_index)


@dataclass
class Run:
    """What happened to a notebook: each executed cell's seconds, and why it stopped early."""

    seconds: dict  # cell index -> seconds it ran
    timed_out: set  # indexes of cells stopped by the per-cell limit
    stopped: str = ""  # why the cells after `stopped_at` did not run ("" if they all ran)
    stopped_at: int = -1  # the cell running when the kernel died or would not stop
    errors: dict = field(default_factory=dict)  # cell index -> the kernel's error reply


def run_notebook(notebook, workdir: Path, last_cell: int, limits: Limits) -> Run:
    """Execute cells 0..last_cell of `notebook` (in place: outputs are filled in) in `workdir`."""
    env = {**os.environ, "BERTMINI_PROFILE": "ci", "CUDA_VISIBLE_DEVICES": "", "TQDM_DISABLE": "1"}
    client = _CappedClient(
        notebook,
        km=AsyncKernelManager(kernel_spec_manager=_ThisPython()),
        allow_errors=True,  # a failed check must not stop the next exercise's
        shutdown_kernel="immediate",
        startup_timeout=max(limits.cell_seconds, 60),
        iopub_timeout=max(int(limits.cell_seconds), 10),  # outputs lag the reply on a busy CPU
    )
    run = Run({}, set())
    client.on_cell_executed = partial(_keep_error, run)
    deadline = time.monotonic() + limits.notebook_seconds
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # kernel logs, not grades
    with client.setup_kernel(cleanup_kc=True, cwd=str(workdir), env=env, **quiet):  # then kill it
        _limit_memory(client.km.provisioner.process.pid, limits.memory_bytes)
        for index, cell in enumerate(notebook.cells[: last_cell + 1]):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            client.timeout = int(min(limits.cell_seconds, deadline - time.monotonic()))
            if client.timeout <= 0:
                run.stopped = f"the notebook ran past its {limits.notebook_seconds:g} s limit"
                break
            start = time.monotonic()
            try:
                client.execute_cell(cell, index)
            except CellTimeoutError:
                run.timed_out.add(index)
                if not _interrupt(client):
                    run.stopped = "a cell ran past its time limit and ignored the interrupt"
            except DeadKernelError:
                run.stopped = "the kernel died (out of memory, or the code exited Python)"
            run.seconds[index] = time.monotonic() - start
            if run.stopped:
                run.stopped_at = index
                break
    return run


def _keep_error(run: Run, cell, cell_index: int, execute_reply: dict) -> None:
    """Keep the kernel's own word on a failed cell, in case its error output was lost."""
    if execute_reply["content"]["status"] == "error":
        run.errors[cell_index] = execute_reply["content"]


def _limit_memory(pid: int, memory_bytes: int) -> None:
    """Cap the kernel's writable memory: allocations past it raise MemoryError in the kernel.

    RLIMIT_DATA, not RLIMIT_AS: torch and glibc reserve large address ranges they never use.
    """
    try:
        import resource

        resource.prlimit(pid, resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    except (ImportError, AttributeError):  # not Linux: the kernel runs without a cap
        pass


def _interrupt(client: NotebookClient, wait_seconds: float = 10.0) -> bool:
    """Interrupt a cell that ran too long; True when the kernel answers again."""
    run_sync(client.km.interrupt_kernel)()
    probe = nbformat.v4.new_code_cell("pass")
    client.timeout = int(wait_seconds)
    try:
        client.execute_cell(probe, 0)
    except (CellTimeoutError, DeadKernelError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Reading the grades from the executed notebook
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    """One student's grades, and notes for the feedback (errors outside the check cells)."""

    student: str
    grades: list
    notes: list


def grade_submission(submission: Submission, exercises: list, limits: Limits) -> Result:
    """Run one submission in a temporary copy and grade each exercise; never raises."""
    if submission.notebook is None:
        return _ungraded(submission.student, exercises, submission.problem)
    name = submission.notebook.name
    try:
        notebook = nbformat.read(submission.notebook, as_version=4)
    except Exception as error:  # not JSON, not a notebook, unreadable: all say the same
        problem = f"{name} is not a readable notebook ({type(error).__name__}): nothing was run"
        return _ungraded(submission.student, exercises, problem)
    check_cells = _check_cells(notebook, exercises)
    if not check_cells:
        checks = ", ".join(f"{exercise.check}({exercise.name})" for exercise in exercises)
        problem = f"{name} calls none of this chapter's checks ({checks}): another chapter?"
        return _ungraded(submission.student, exercises, problem + " Nothing was run.")
    with tempfile.TemporaryDirectory(prefix="bertmini-grade-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp) / "work"  # the kernel's cwd: whatever the notebook does stays here
        if submission.folder is not None:
            shutil.copytree(submission.folder, workdir, symlinks=True)
        else:
            workdir.mkdir()
            shutil.copy(submission.notebook, workdir)
        try:
            run = run_notebook(notebook, workdir, max(check_cells.values()), limits)
        except Exception as error:  # the kernel did not start, or nbclient gave up
            problem = f"the notebook could not be run: {type(error).__name__}: {error}"
            return _ungraded(submission.student, exercises, problem, status=CRASHED)
    grades = [
        _grade_exercise(submission.student, exercise, notebook, check_cells.get(exercise), run)
        for exercise in exercises
    ]
    return Result(submission.student, grades, _other_errors(notebook, check_cells, run))


def _ungraded(student: str, exercises: list, problem: str, status: str = NOT_ATTEMPTED):
    message = _one_line(problem)
    return Result(student, [Grade(student, ex.name, status, message, 0.0) for ex in exercises], [])


def _check_cells(notebook, exercises: list) -> dict:
    """Exercise -> index of the last code cell calling its check (a student may repeat it)."""
    cells = {}
    for index, cell in enumerate(notebook.cells):
        for exercise in exercises:
            if cell.cell_type == "code" and exercise.is_called_in(cell.source):
                cells[exercise] = index
    return cells


def _grade_exercise(student: str, exercise: Exercise, notebook, index, run: Run) -> Grade:
    """Read one exercise's grade from its check cell's outputs."""
    if index is None:
        message = f"no cell calls {exercise.check}({exercise.name}): put the check cell back"
        return Grade(student, exercise.name, NOT_ATTEMPTED, message, 0.0)
    seconds = run.seconds.get(index, 0.0)
    status, message = _read_check_cell(notebook.cells[index], index, run)
    return Grade(student, exercise.name, status, _one_line(message), seconds)


def _read_check_cell(cell, index: int, run: Run) -> tuple[str, str]:
    """(status, message) of one check cell after the run."""
    if index in run.timed_out:
        return CRASHED, "the check ran past its time limit (an endless loop?)"
    if index == run.stopped_at:
        return CRASHED, run.stopped
    if index not in run.seconds:
        return CRASHED, f"not run: {run.stopped}"
    if index in run.errors:
        error = run.errors[index]
        if error["ename"] == "NotImplementedError":
            return NOT_ATTEMPTED, "the exercise still raises NotImplementedError"
        if error["ename"] == "CheckFailed":
            return FAILED, error["evalue"]
        return CRASHED, f"{error['ename']}: {error['evalue']}"
    lines = "".join(output.get("text", "") for output in cell.outputs).splitlines()
    for mark, status in (("✅", PASSED), ("❌", FAILED)):
        said = [line for line in lines if line.lstrip().startswith(mark)]
        if said:
            return status, said[-1]
    return CRASHED, "the check cell ran but printed no result"


def _other_errors(notebook, check_cells: dict, run: Run, most: int = 5) -> list[str]:
    """Errors in cells other than the check cells: worth telling the student about."""
    notes = []
    for index in sorted(set(run.seconds) - set(check_cells.values())):
        cell = notebook.cells[index]
        first_line = cell.source.strip().splitlines()[0][:60]
        error = run.errors.get(index)
        if index in run.timed_out:
            notes.append(f"the cell `{first_line}` ran past its time limit")
        elif index == run.stopped_at:
            notes.append(f"the cell `{first_line}`: {run.stopped}")
        elif error:
            notes.append(f"the cell `{first_line}` raised {error['ename']}: {error['evalue']}")
    return [_one_line(note) for note in notes[:most]]


def _one_line(text: str) -> str:
    """A message fit for a CSV cell: one line, no terminal colours, at most MESSAGE_LIMIT long."""
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(text)).split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


# ---------------------------------------------------------------------------------------------
# The class: grade everyone, write grades.csv, the feedback files and a summary
# ---------------------------------------------------------------------------------------------


def grade_class(
    submissions_dir: str | Path,
    chapter: str,
    out_dir: str | Path = "grades",
    limits: Limits = Limits(),
    chapters_dir: str | Path | None = None,
) -> list[Result]:
    """Grade every submission in `submissions_dir` on chapter `chapter`; write into `out_dir`."""
    chapter_path = find_chapter(chapter, chapters_dir)
    instructor = nbformat.read(chapter_path, as_version=4)
    exercises = chapter_exercises(instructor)
    out_dir = Path(out_dir)
    submissions = collect_submissions(submissions_dir, chapter_path, skip=out_dir)
    if not submissions:
        raise FileNotFoundError(f"no submissions in {submissions_dir}")
    results = []
    progress = tqdm(submissions, desc=f"grading {chapter_path.stem}", unit="student")
    for submission in progress:
        progress.set_postfix_str(submission.student)
        results.append(grade_submission(submission, exercises, limits))
    write_grades(results, out_dir / "grades.csv")
    for result in results:
        feedback = feedback_markdown(result, chapter_title(instructor), limits)
        (out_dir / "feedback").mkdir(parents=True, exist_ok=True)
        (out_dir / "feedback" / f"{result.student}.md").write_text(feedback)
    return results


def write_grades(results: list[Result], path: Path) -> None:
    """grades.csv: one row per student and exercise, students sorted, exercises in order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["student", "exercise", "status", "message", "seconds"])
        for result in sorted(results, key=lambda result: result.student):
            for grade in result.grades:
                row = [grade.student, grade.exercise, grade.status, grade.message]
                writer.writerow([*row, f"{grade.seconds:.2f}"])


def feedback_markdown(result: Result, title: str, limits: Limits) -> str:
    """A note to one student, in Markdown: a table of results, then what to fix."""
    passed = sum(grade.status == PASSED for grade in result.grades)
    lines = [
        f"# {title}: feedback for {result.student}",
        "",
        f"You passed {passed} of {len(result.grades)} exercises.",
        "",
        "| exercise | result |",
        "|---|---|",
    ]
    for grade in result.grades:
        lines.append(f"| `{grade.exercise}` | {STATUS_MARKS[grade.status]} {grade.status} |")
    for grade in result.grades:
        if grade.status != PASSED and grade.message:
            lines += ["", f"## `{grade.exercise}`: {grade.status}", "", grade.message]
    if result.notes:
        lines += ["", "## Other cells that stopped with an error", ""]
        lines += [f"- {note}" for note in result.notes]
    lines += [
        "",
        "---",
        f"Graded by running your notebook with `python -m bertmini grade` (profile `ci`, CPU, "
        f"{limits.cell_seconds:g} s per cell, {limits.notebook_seconds:g} s per notebook). "
        "Run the check cells in your own notebook to see the same messages.",
    ]
    return "\n".join(lines) + "\n"


def summary_table(results: list[Result]) -> str:
    """One line per student: a mark per exercise and the number passed."""
    exercises = [grade.exercise for grade in results[0].grades] if results else []
    width = max([len("student"), *(len(result.student) for result in results)])
    lines = [f"{'student':<{width}}  " + "  ".join(exercises) + "  passed"]
    for result in sorted(results, key=lambda result: result.student):
        marks = [  # each mark is 2 columns wide on a terminal
            STATUS_MARKS[grade.status] + " " * (len(grade.exercise) - 2) for grade in result.grades
        ]
        passed = sum(grade.status == PASSED for grade in result.grades)
        lines.append(f"{result.student:<{width}}  " + "  ".join(marks) + f"  {passed}/{len(marks)}")
    legend = ", ".join(f"{mark} {status}" for status, mark in STATUS_MARKS.items())
    return "\n".join(lines) + f"\n({legend})"
