"""Command-line options generated from dataclass fields: one default and one help text each.

A configuration field declares its option where its default is written (as Hugging Face's
`HfArgumentParser` reads dataclass fields), so the CLI and the API cannot disagree:

    steps: int | None = option(None, "optimizer steps, >= 1", parse=at_least(1), profile=True)

`add_options(parser, TrainConfig)` adds `--steps` (and one option per declared field), and
`given(args, TrainConfig)` reads back the values to pass to the API. A field with
`profile=True` defaults to None on the command line, meaning "the course profile's value";
a bool field is a flag (`--compile`), or `--no-<name>` when it defaults to True.
"""

import argparse
import math
from dataclasses import MISSING, field, fields


def option(
    default, help: str, parse=None, flag=None, choices=None, profile=False, cli_default=MISSING
):  # noqa: A002
    """A dataclass field with its command-line option: `help` (with the allowed range),
    `parse` (an argparse type), `flag` (default: --field-name), `choices`, `profile` (None on
    the command line means the profile's value), `cli_default` (where the CLI defaults
    otherwise than the API, e.g. --keep-optimizer: say why where it is used)."""
    metadata = dict(help=help, parse=parse, flag=flag, choices=choices, profile=profile)
    if cli_default is not MISSING:
        metadata["cli_default"] = cli_default
    return field(default=default, metadata=metadata)


def add_options(parser, cls, names=None) -> None:
    """One option per declared field of dataclass `cls` (only `names`, if given)."""
    for f in fields(cls):
        if "help" not in f.metadata or (names is not None and f.name not in names):
            continue
        meta = f.metadata
        default = meta.get("cli_default", None if meta["profile"] else f.default)
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        help_text = meta["help"].replace("%", "%%")
        if isinstance(f.default, bool):
            if flag == "--" + f.name.replace("_", "-") and default:
                flag = "--no-" + f.name.replace("_", "-")
            action = "store_false" if default else "store_true"
            parser.add_argument(flag, dest=f.name, action=action, help=help_text)
            continue
        if meta["profile"] or default is not None:  # None: the help says what happens
            shown = "the profile's" if meta["profile"] else "%(default)s"
            help_text += f" (default: {shown})"
        parser.add_argument(
            flag,
            dest=f.name,
            type=meta["parse"],
            default=default,
            choices=meta["choices"],
            help=help_text,
        )


def given(args: argparse.Namespace, cls) -> dict:
    """{field: value} of `cls`'s options in `args`; None (the profile's) is left out."""
    names = [f.name for f in fields(cls) if "help" in f.metadata]
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


# ---------------------------------------------------------------------------------------------
# Parsers: each refuses a bad value with a message that names the allowed range
# ---------------------------------------------------------------------------------------------


def at_least(minimum: int):
    """argparse type: an integer >= minimum (0 is an error where 0 makes no sense)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def number(low: float, high: float | None = None, low_included: bool = False):
    """argparse type: a finite float in (low, high] (or [low, ...) with low_included)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        above = value >= low if low_included else value > low
        if not math.isfinite(value) or not above or (high is not None and value > high):
            bound = f"{'>=' if low_included else '>'} {low}"
            if high is not None:
                bound = f"in {'[' if low_included else '('}{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


def seed(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2**63)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63), got {text}")
    return value
