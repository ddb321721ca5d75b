"""Exercise checks: is the student's function the same as the one bertmini uses?

Each check calls the student's function and the reference on fresh random inputs and compares the
results. When they differ, it tries the mistakes students usually make (each a small wrong
variant of the reference) and names the one that matches, so the message says what to fix rather
than only that something is wrong. A passing check prints one line; a failing one raises
`CheckFailed`, shown as one short block: which output differs, by how much, where, and one row.
An exercise not yet written raises `NotImplementedError`, which the check lets through so the
notebook stops right there.

While the student's function runs, bertmini's own version of the piece under test refuses to be
called (`bertmini.guard`): a check passes only for a piece the student built.

The checks for each chapter live in their own module, imported by the chapter that uses them:
`from bertmini.checks.attention import check_scaled_dot_product_attention`.

Chapter 00 (`chapters/00_setup.ipynb`) shows how a check answers.
"""

import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from ..guard import BuildItYourself, checking
from ..model import BertConfig


class CheckFailed(AssertionError):
    """The student's answer differs from the reference; the message says how."""

    def _render_traceback_(self) -> list[str]:
        """How IPython shows a failed check: the message alone, after the student's own
        traceback when their code raised."""
        cause = self.__cause__
        if cause is None:
            return [str(self)]
        student_frames = cause.__traceback__.tb_next if cause.__traceback__ else None
        return [*traceback.format_exception(type(cause), cause, student_frames), str(self)]


@dataclass
class Mistake:
    """A typical wrong answer: a function computing it, and what to tell the student."""

    wrong: Callable
    advice: str


def passed(name: str, detail: str = "") -> None:
    print(f"✅ {name}: correct" + (f" — {detail}" if detail else ""))


def fail(name: str, message: str) -> None:
    """Raise the one-block failure (`from None`: no traceback of the checks chained to it)."""
    raise CheckFailed(f"❌ {name}: {message}") from None


def diagnose(name: str, diagnoses: Iterable[tuple[bool, str]]) -> None:
    """Fail with the advice of the first (holds, advice) pair that holds; the order is the
    order of the questions a teacher would ask."""
    for holds, advice in diagnoses:
        if holds:
            fail(name, advice)


def call_student(name: str, function: Callable, *args, refuse: Sequence[str] = (), **kwargs):
    """`function(*args, **kwargs)`, with bertmini's own `refuse` pieces switched off meanwhile.

    NotImplementedError (an exercise not yet written) passes through. Calling a refused piece
    fails with a message that says why. Any other error fails the check, with the student's
    own traceback above the message.
    """
    try:
        with checking(*refuse):
            return function(*args, **kwargs)
    except NotImplementedError:
        raise
    except BuildItYourself as error:
        fail(name, str(error))
    except Exception as error:
        raise CheckFailed(
            f"❌ {name}: your function raised {type(error).__name__}: {error}"
        ) from error


def tiny_config(**changes) -> BertConfig:
    """The small BERT the checks build: 1 layer, hidden 16, 2 heads, vocabulary 60."""
    sizes = dict(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    return BertConfig(**{**sizes, **changes})


# ---------------------------------------------------------------------------------------------
# Comparing outputs, and saying how they differ


def _close(a, b, atol: float) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=atol, rtol=0)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_close(x, y, atol) for x, y in zip(a, b, strict=True))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return False
    return a == b


def _row(tensor: torch.Tensor, index: tuple[int, ...], limit: int = 6) -> str:
    """The last-axis row of `tensor` that holds `index`, rounded, at most `limit` values."""
    row = tensor[index[:-1]] if tensor.dim() > 1 else tensor
    values = ", ".join(f"{float(v):.4f}" for v in row.flatten()[:limit])
    return f"[{values}{', ...' if row.numel() > limit else ''}]"


def difference(
    got, expected, atol: float, what: str = "your output", names: Sequence[str] = ()
) -> str | None:
    """None if `got` matches `expected`; else one short explanation: which output differs
    (which element of a tuple, by its name in `names` if given), the largest difference, where,
    and that row side by side."""
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            kind = f"a {type(got).__name__}" + (
                f" of {len(got)}" if isinstance(got, (tuple, list)) else ""
            )
            return f"expected a {type(expected).__name__} of {len(expected)}, got {kind}"
        for position, (g, e) in enumerate(zip(got, expected, strict=True)):
            label = f"element {position} of your {type(got).__name__}"
            if position < len(names):
                label = f"your {names[position]} ({label})"
            message = difference(g, e, atol, label)
            if message:
                return message
        return None
    if not isinstance(expected, torch.Tensor):
        return None if got == expected else f"{what} is {got!r}; expected {expected!r}"
    if not isinstance(got, torch.Tensor):
        return f"{what} is a {type(got).__name__}; expected a tensor"
    if got.shape != expected.shape:
        return f"{what} has shape {tuple(got.shape)}; expected {tuple(expected.shape)}"
    if not got.is_floating_point() and expected.is_floating_point():
        got = got.to(expected.dtype)
    gap = (got.double() - expected.double()).abs()
    gap = torch.where(torch.isnan(got.double()), torch.inf, gap)  # a NaN is a difference too
    if float(gap.max()) <= atol:
        return None
    where = tuple(int(i) for i in torch.unravel_index(gap.argmax(), gap.shape))
    return (
        f"{what} differs by up to {float(gap.max()):.3g} (at index {list(where)}; "
        f"{int((gap > atol).sum())} of {gap.numel()} values off).\n"
        f"   expected row {_row(expected, where)}\n   your row     {_row(got, where)}"
    )


def compare(
    name: str,
    student: Callable,
    reference: Callable,
    make_inputs: Callable[[torch.Generator], tuple],
    mistakes: Iterable[Mistake] = (),
    atol: float = 1e-5,
    refuse: Sequence[str] = (),
    names: Sequence[str] = (),
) -> None:
    """Run `student` and `reference` on three fresh inputs; return quietly if they agree,
    else fail naming the matching mistake, or saying how the outputs differ.

    `make_inputs(generator)` returns the positional arguments for one trial; `refuse` names the
    bertmini pieces the student's function may not call; `names` names the elements of a tuple
    the function returns, for the message.
    """
    mistakes = list(mistakes)
    for trial in range(3):
        generator = torch.Generator().manual_seed(1234 + trial)
        args = make_inputs(generator)
        expected = reference(*args)
        got = call_student(name, student, *args, refuse=refuse)
        if _close(got, expected, atol):
            continue
        for mistake in mistakes:
            try:
                matches = _close(got, mistake.wrong(*args), atol)
            except Exception:  # a mistake variant that cannot run on these inputs
                continue
            if matches:
                fail(name, mistake.advice)
        fail(
            name,
            f"{difference(got, expected, atol, names=names)}\n"
            "   Compare your steps with the equations above.",
        )
