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

The instructor's badges ("Open in Colab") point at the instructor edition, solutions included.
Given where the student edition will be published (`ColabPlace`: a GitHub repository, a branch and
a folder), every badge and the install cell's `git+https://github.com/...` URL point there;
without it the student edition carries no badge at all rather than a wrong one.

No chapter teaches it: it is the instructor's tool (README, "For instructors").
"""

import json
import re
from dataclasses import dataclass
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


# "[![Open In Colab](<badge image>)](<notebook on Colab>)"; the alt text may be wrapped.
COLAB_BADGE = re.compile(
    r"\[!\[Open\s+In\s+Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
    r"\(https://colab\.research\.google\.com/github/[^)\s]+\)[ \t]*\n?"
)
# What the Colab install cell gives pip: the course repository, maybe at a branch or tag.
INSTALL_URL = re.compile(
    r"git\+https://github\.com/[\w.-]+/[\w.-]+?(?:\.git)?(?:@[\w./-]+)?(?=[\s\"'])"
)


@dataclass(frozen=True)
class ColabPlace:
    """Where the student edition is published: github.com/<repo>/tree/<branch>/<path>."""

    repo: str  # "org/name"
    branch: str = "main"
    path: str = "student"

    def __post_init__(self):
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", self.repo):
            raise ValueError(f"--colab-repo must be ORG/REPO as on GitHub, got {self.repo!r}")

    def badge(self, notebook_name: str) -> str:
        folder = self.path.strip("/")
        url = f"https://colab.research.google.com/github/{self.repo}/blob/{self.branch}/"
        url += f"{folder}/{notebook_name}" if folder else notebook_name
        image = "https://colab.research.google.com/assets/colab-badge.svg"
        return f"[![Open In Colab]({image})]({url})\n"

    def install_url(self) -> str:
        return f"git+https://github.com/{self.repo}@{self.branch}"


def point_at(source: str, notebook_name: str, place: ColabPlace | None) -> str:
    """Badges and install URLs of one cell rewritten to `place`; badges removed without one."""
    if place is None:
        return COLAB_BADGE.sub("", source)
    source = COLAB_BADGE.sub(lambda _: place.badge(notebook_name), source)
    return INSTALL_URL.sub(place.install_url(), source)


def student_notebook(notebook: dict, name: str = "", place: ColabPlace | None = None) -> dict:
    """A copy of a notebook (nbformat JSON) without solutions or outputs, pointing at `place`."""
    notebook = json.loads(json.dumps(notebook))
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        source = strip_solutions(source, markdown=cell["cell_type"] == "markdown")
        cell["source"] = point_at(source, name, place)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return notebook


def _refuse_unsafe_target(source_dir: Path, target_dir: Path) -> None:
    """Raise ValueError where writing could overwrite the instructor's solutions."""
    source, target = source_dir.resolve(), target_dir.resolve()
    if target == source:
        raise ValueError(f"DST is SRC ({source_dir}): that would delete every solution")
    if source in target.parents:
        raise ValueError(f"DST {target_dir} is inside SRC {source_dir}: choose a folder outside")
    for existing in sorted(target.glob("*.ipynb")):
        if BEGIN in existing.read_text(errors="replace"):
            raise ValueError(
                f"{existing} holds solutions (### BEGIN SOLUTION): DST looks like an instructor "
                "edition; choose an empty folder or a previous student edition"
            )


def make_student_edition(
    source_dir: str | Path, target_dir: str | Path, place: ColabPlace | None = None
) -> list[Path]:
    """Write the student edition of every chapter in `source_dir` to `target_dir`.

    Nothing is written when a notebook has unbalanced markers, or when `target_dir` is
    `source_dir`, lies inside it, or already holds notebooks with solutions (ValueError).
    """
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    chapters = sorted(source_dir.glob("*.ipynb"))
    if not chapters:
        raise FileNotFoundError(f"no notebooks in {source_dir}: expected chapters/NN_topic.ipynb")
    _refuse_unsafe_target(source_dir, target_dir)
    notebooks = {  # every chapter converted before anything is written
        chapter.name: student_notebook(json.loads(chapter.read_text()), chapter.name, place)
        for chapter in chapters
    }
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, notebook in notebooks.items():
        target = target_dir / name
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    return written
