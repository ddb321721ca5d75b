"""The student edition removes exactly the solutions, and the check machinery reports clearly."""

import json

import pytest
import torch

from bertmini.checks import CheckFailed, Mistake, compare
from bertmini.student import PLACEHOLDER, make_student_edition, strip_solutions


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
