"""Issue 17's measure: run the CLI's bad-input cases and count how each one ends.

    BERTMINI_PROFILE=ci OMP_NUM_THREADS=1 TQDM_DISABLE=1 .venv/bin/python scripts/bad_input_sweep.py

The cases are `tests/test_bad_inputs.py`'s CASES (bad options, run directories, spoiled model
files), plus runs that must succeed without a NaN. Each ends in one class:

- clear error: a non-zero exit, no traceback, nothing changed on disk (lines are counted)
- ran correctly: a run that must succeed did, printing no NaN
- silent wrong: exit 0 on a bad input, a NaN printed, or code run from a pickle
- raw traceback: an exception escaped, or "Traceback" on stderr
- data lost: a directory that must not change did

With PYTHONPATH=<another checkout>, the same cases measure that code (e.g. before the change).
"""

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_bad_inputs as cases  # noqa: E402  (the case list lives with its test)

from bertmini.__main__ import main  # noqa: E402

MUST_SUCCEED = [  # (name, argv): exit 0 and no "nan" in what is printed
    (
        "grad-accum 8, 16 tokens",
        [
            "pretrain",
            *cases.TINY,
            "--max-seq-len",
            "16",
            "--grad-accum",
            "8",
            "--steps",
            "3",
            "--out",
            "{new}",
        ],
    ),
    (
        "evaluate, batch 1, 8 tokens",
        ["evaluate", "--model", "{model}", "--batch-size", "1", "--max-seq-len", "8"],
    ),
]


def run(argv: list[str]) -> tuple[int | None, str, str]:
    """(status, stdout, stderr); status None when an exception escaped main()."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exit:  # an older main() let argparse exit
            status = exit.code
        except BaseException:  # noqa: BLE001  (this is what the sweep counts)
            traceback.print_exc()
            status = None
    return status, out.getvalue(), err.getvalue()


def classify_error_case(case, model: Path, work: Path) -> tuple[str, str]:
    run_dir, new, bad = work / "run", work / "new", work / "bad"
    if "{run}" in " ".join(case.argv):
        shutil.copytree(model, run_dir)
    if case.spoil is not None:
        shutil.copytree(model, bad)
        case.spoil(bad)
    dirs = {"run": run_dir, "new": new, "bad": bad}
    before = {name: cases.snapshot(path) for name, path in dirs.items()}
    argv = [a.format(model=model, run=run_dir, new=new, bad=bad) for a in case.argv]
    status, out, err = run(argv)
    changed = [name for name, path in dirs.items() if cases.snapshot(path) != before[name]]
    last = err.strip().splitlines()[-1] if err.strip() else ""
    if status is None or "Traceback" in err:
        return "raw traceback", last
    if status == 0 or (bad / "PWNED").exists() or "nan" in out.split():
        return "silent wrong", f"exit {status}"
    if changed:
        return "data lost", f"{changed} changed; {last}"
    lines = len(err.strip().splitlines())
    return "clear error", f"exit {status}, {lines} line(s): {last[:110]}"


def classify_success_case(argv, model: Path, work: Path) -> tuple[str, str]:
    status, out, err = run([a.format(model=model, new=work / "new") for a in argv])
    if status is None or "Traceback" in err:
        return "raw traceback", err.strip().splitlines()[-1]
    if status != 0 or "nan" in (out + err).lower().split() or "nan," in out.lower():
        return "silent wrong", f"exit {status}: {(err or out).strip().splitlines()[-1][:110]}"
    return "ran correctly", f"exit 0: {out.strip().splitlines()[-1][:110]}"


def main_sweep() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="print every case's outcome")
    verbose = parser.parse_args().verbose
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        model = root / "model"
        status, _, err = run([*cases.PRETRAIN, "--out", str(model), "--keep-optimizer"])
        if status != 0:  # older CLIs keep the checkpoint anyway
            shutil.rmtree(model, ignore_errors=True)
            status, _, err = run([*cases.PRETRAIN, "--out", str(model)])
        assert status == 0, err
        outcomes = []
        for i, case in enumerate(cases.CASES):
            outcomes.append((case.name, *classify_error_case(case, model, root / f"case{i}")))
            if verbose:
                print(f"{outcomes[-1][0]:28} {outcomes[-1][1]:14} {outcomes[-1][2]}", flush=True)
        for i, (name, argv) in enumerate(MUST_SUCCEED):
            outcomes.append((name, *classify_success_case(argv, model, root / f"ok{i}")))
            if verbose:
                print(f"{outcomes[-1][0]:28} {outcomes[-1][1]:14} {outcomes[-1][2]}", flush=True)
    classes = ["clear error", "ran correctly", "silent wrong", "raw traceback", "data lost"]
    print(f"\n| cases tried | {' | '.join(classes)} |\n|---|{'---|' * len(classes)}")
    counts = [sum(kind == c for _, kind, _ in outcomes) for c in classes]
    print(f"| {len(outcomes)} | {' | '.join(map(str, counts))} |")


if __name__ == "__main__":
    main_sweep()
