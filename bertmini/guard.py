"""While a check tests a student's piece, bertmini's own version of that piece refuses to run.

A check (`bertmini.checks`) compares the student's function with bertmini's. A function that
only calls bertmini's piece (`return layer(x, mask)[0]`) would pass without building anything,
so the check names the piece it tests while the student's code runs:

    with checking("EncoderLayer"):
        got = student_function(layer, x, mask)

and each guarded piece starts with one line, `refuse_if_checked("EncoderLayer")`, which raises
`BuildItYourself` during that time and does nothing otherwise (a lookup in an empty set).
"""

from collections.abc import Iterator
from contextlib import contextmanager

_checked: set[str] = set()  # the pieces whose check is running now


class BuildItYourself(RuntimeError):
    """The student's function called the bertmini piece it is meant to build."""


@contextmanager
def checking(*pieces: str) -> Iterator[None]:
    """Within this block, each of `pieces` raises `BuildItYourself` when called."""
    added = set(pieces) - _checked
    _checked.update(added)
    try:
        yield
    finally:
        _checked.difference_update(added)


def refuse_if_checked(piece: str, owner: str = "bertmini") -> None:
    """The first line of a guarded piece of bertmini (or of PyTorch's, wrapped by a check)."""
    if piece in _checked:
        raise BuildItYourself(
            f"your function called {owner}'s own {piece}, which refuses to run during its "
            "check: the exercise is to build it, so write it yourself instead of calling it."
        )
