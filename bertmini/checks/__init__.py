"""Exercise checks: is the student's function the same as the one bertmini uses?

Each check calls the student's function and the reference on fresh random inputs and compares the
results. When they differ, it tries the mistakes students usually make (each a small wrong
variant of the reference) and names the one that matches, so the message says what to fix rather
than only that something is wrong. A passing check prints one line; a failing one raises
`CheckFailed` with the explanation. An exercise not yet written raises `NotImplementedError`,
which the check lets through so the notebook stops right there.

The checks for each chapter live in their own module, imported by the chapter that uses them:
`from bertmini.checks.attention import check_scaled_dot_product_attention`.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch


class CheckFailed(AssertionError):
    """The student's answer differs from the reference; the message says how."""


@dataclass
class Mistake:
    """A typical wrong answer: a function computing it, and what to tell the student."""

    wrong: Callable
    advice: str


def passed(name: str, detail: str = "") -> None:
    print(f"✅ {name}: correct" + (f" — {detail}" if detail else ""))


def fail(name: str, message: str) -> None:
    raise CheckFailed(f"❌ {name}: {message}")


def _close(a, b, atol: float) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=atol, rtol=0)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_close(x, y, atol) for x, y in zip(a, b, strict=True))
    return a == b


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"{type(value).__name__} of {len(value)}: " + ", ".join(map(_describe, value))
    return repr(value)


def compare(
    name: str,
    student: Callable,
    reference: Callable,
    make_inputs: Callable[[torch.Generator], tuple],
    mistakes: Iterable[Mistake] = (),
    atol: float = 1e-5,
    trials: int = 3,
    detail: str = "",
) -> None:
    """Run `student` and `reference` on `trials` fresh inputs; pass, or explain the difference.

    `make_inputs(generator)` returns the positional arguments for one trial.
    """
    for trial in range(trials):
        generator = torch.Generator().manual_seed(1234 + trial)
        args = make_inputs(generator)
        expected = reference(*args)
        try:
            got = student(*args)
        except NotImplementedError:
            raise
        except Exception as error:
            fail(name, f"your function raised {type(error).__name__}: {error}")
        if _close(got, expected, atol):
            continue
        for mistake in mistakes:
            try:
                if _close(got, mistake.wrong(*args), atol):
                    fail(name, mistake.advice)
            except CheckFailed:
                raise
            except Exception:  # a mistake variant that cannot run on these inputs
                continue
        if type(got) is not type(expected):
            fail(name, f"expected a {type(expected).__name__}, got a {type(got).__name__}")
        if isinstance(got, torch.Tensor) and got.shape != expected.shape:
            fail(name, f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
        fail(
            name,
            f"the values differ from the reference (expected {_describe(expected)}; "
            f"got {_describe(got)}). Compare your steps with the equations above.",
        )
    passed(name, detail)
