"""The student edition removes exactly the solutions, and the check machinery reports clearly."""

import json
import re
from pathlib import Path

import pytest
import torch

from bertmini.__main__ import main
from bertmini.checks import CheckFailed, Mistake, compare
from bertmini.student import PLACEHOLDER, ColabPlace, make_student_edition, strip_solutions


def test_strip_solutions_keeps_indentation_and_the_rest():
    source = (
        "def f(x):\n"
        '    """Doc."""\n'
        "    ### BEGIN SOLUTION\n"
        "    y = x + 1\n"
        "    return y\n"
        "    ### END SOLUTION\n"
        "\n"
        "print(f)\n"
    )
    stripped = strip_solutions(source)
    assert stripped == f'def f(x):\n    """Doc."""\n    {PLACEHOLDER}\n\nprint(f)\n'
    namespace = {}
    exec(stripped.replace("print(f)", ""), namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


def test_unbalanced_markers_are_an_error():
    with pytest.raises(ValueError, match="unbalanced"):
        strip_solutions("x = 1\n### BEGIN SOLUTION\nx = 2\n")


def test_student_edition_of_a_notebook(tmp_path):
    notebook = {
        "cells": [
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": "Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
            },
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": 3,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "secret"}],
                "source": [
                    "def f():\n",
                    "    ### BEGIN SOLUTION\n",
                    "    return 42\n",
                    "    ### END SOLUTION\n",
                ],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "01_x.ipynb").write_text(json.dumps(notebook))
    [written] = make_student_edition(tmp_path / "src", tmp_path / "out")
    text = written.read_text()
    assert "Because" not in text and "42" not in text and "secret" not in text
    student = json.loads(text)
    assert student["cells"][1]["outputs"] == [] and student["cells"][1]["execution_count"] is None
    assert "Your answer here" in student["cells"][0]["source"]


def test_compare_names_the_mistake():
    def reference(x):
        return x.softmax(-1)

    def wrong_axis(x):
        return x.softmax(0)

    def inputs(g):
        return (torch.randn(4, 5, generator=g),)

    mistakes = [Mistake(wrong_axis, "softmax over the wrong axis")]
    compare("softmax", reference, reference, inputs, mistakes)  # passes silently but for a line
    with pytest.raises(CheckFailed, match="wrong axis"):
        compare("softmax", wrong_axis, reference, inputs, mistakes)
    with pytest.raises(CheckFailed, match=r"has shape \(5,\); expected \(4, 5\)"):
        compare("softmax", lambda x: x[0], reference, inputs, mistakes)
    with pytest.raises(NotImplementedError):
        compare(
            "softmax", lambda x: (_ for _ in ()).throw(NotImplementedError()), reference, inputs
        )


# --- publishing: where the badges and the install cell point, and what is refused ------------

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"
URL = re.compile(r"https?://[^\s)\"']+")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_published_student_edition_points_only_at_its_own_place(tmp_path, capsys):
    out = tmp_path / "out" / "student"
    status = main(
        ["student", str(CHAPTERS), str(out), "--colab-repo", "o/r", "--branch", "b"]
        + ["--path", "student"]
    )
    assert status == 0, capsys.readouterr().err
    for chapter in sorted(CHAPTERS.glob("*.ipynb")):
        cells = json.loads((out / chapter.name).read_text())["cells"]
        text = "\n".join("".join(cell["source"]) for cell in cells)
        urls = URL.findall(text)
        assert not [u for u in urls if "chapters/" in u], chapter.name
        badge = f"https://colab.research.google.com/github/o/r/blob/b/student/{chapter.name}"
        assert badge in urls, f"{chapter.name} has no badge to its published copy"
        installs = re.findall(r"git\+https://github\.com/[^\s\"]+", text)
        assert installs == ["git+https://github.com/o/r@b"], (chapter.name, installs)


def test_without_a_place_the_student_edition_has_no_badge(tmp_path):
    [written, *_] = make_student_edition(CHAPTERS, tmp_path / "student")
    instructor = (CHAPTERS / written.name).read_text()
    assert "colab.research.google.com/github/" in instructor  # the badge that must go
    assert "colab.research.google.com" not in written.read_text()


def _instructor_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "course"
    folder.mkdir(parents=True)
    for chapter in sorted(CHAPTERS.glob("0[0-2]_*.ipynb")):
        (folder / chapter.name).write_bytes(chapter.read_bytes())
    return folder


@pytest.mark.parametrize("where", ["same", "inside", "holds solutions"])
def test_unsafe_destinations_are_refused_and_nothing_changes(where, tmp_path, capsys):
    source = _instructor_folder(tmp_path)
    target = {
        "same": source,
        "inside": source / "student",
        "holds solutions": _instructor_folder(tmp_path / "other"),
    }[where]
    before = _snapshot(tmp_path)
    assert main(["student", str(source), str(target)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("bertmini student: error: ") and error.count("\n") == 1, error
    assert _snapshot(tmp_path) == before
    assert not (source / "student").exists()


def test_a_previous_student_edition_is_overwritten(tmp_path):
    source = _instructor_folder(tmp_path)
    make_student_edition(source, tmp_path / "student")
    written = make_student_edition(source, tmp_path / "student", ColabPlace("o/r"))
    assert "github/o/r/blob/main/student/" in written[0].read_text()


def test_a_malformed_repository_is_refused(tmp_path, capsys):
    status = main(["student", str(CHAPTERS), str(tmp_path / "s"), "--colab-repo", "not a repo"])
    assert status == 2 and "ORG/REPO" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
