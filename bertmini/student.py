"""Student editions: the chapters with the solutions taken out.

Exercises in the chapters are written between nbgrader's markers:

    def attention(q, k, v):
        ### BEGIN SOLUTION
        ...the instructor's answer...
        ### END SOLUTION

The student edition keeps everything else and puts `raise NotImplementedError` in place of each
answer, so a chapter runs up to its first unsolved exercise and stops there with a clear message.
Outputs are cleared. Only `json` is needed, so students never have to install nbgrader; instructors
who grade with nbgrader can use the same markers.
"""

import json
import re
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PLACEHOLDER = 'raise NotImplementedError("exercise: replace this line with your code")'
ANSWER_PLACEHOLDER = "_Your answer here._"
SOLUTION_BLOCK = re.compile(
    rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*$", re.M | re.S
)


def strip_solutions(source: str, markdown: bool = False) -> str:
    """Replace each BEGIN/END SOLUTION block by a placeholder at the same indentation."""
    replacement = ANSWER_PLACEHOLDER if markdown else PLACEHOLDER
    stripped = SOLUTION_BLOCK.sub(lambda m: m.group(1) + replacement, source)
    if BEGIN in stripped or END in stripped:
        raise ValueError(f"unbalanced {BEGIN!r} / {END!r} markers in:\n{source[:300]}")
    return stripped


def student_notebook(notebook: dict) -> dict:
    """A copy of a notebook (nbformat JSON) without solutions or outputs."""
    notebook = json.loads(json.dumps(notebook))
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        cell["source"] = strip_solutions(source, markdown=cell["cell_type"] == "markdown")
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return notebook


def make_student_edition(source_dir: str | Path, target_dir: str | Path) -> list[Path]:
    """Write the student edition of every chapter in `source_dir` to `target_dir`."""
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    chapters = sorted(source_dir.glob("*.ipynb"))
    if not chapters:
        raise FileNotFoundError(f"no notebooks in {source_dir}: expected chapters/NN_topic.ipynb")
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for chapter in chapters:
        notebook = student_notebook(json.loads(chapter.read_text()))
        target = target_dir / chapter.name
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    return written
