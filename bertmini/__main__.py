"""The command line: `python -m bertmini <command>` (or the `bertmini` script).

    pretrain    pretrain a BERT (MLM + NSP) on a corpus; with no options, a small BERT on the
                embedded corpus, sized by the profile (BERTMINI_PROFILE=ci|cpu|gpu)
    finetune    fine-tune a pretrained model (or a random one, --from-scratch) on a task
    evaluate    loss and accuracy of a saved model on a corpus (pretraining) or a task
    fill-mask   the model's top predictions for each [MASK] in a text
    bench       training-step speed of bertmini (and Hugging Face side by side)
    demo        pretrain, fine-tune, compare with from-scratch; print a table, save plots
    student     write the student edition of the chapters (solutions removed)

Every command has a --help that explains its options. A model directory holds config.json,
model.safetensors and vocab.txt, so `fill-mask --model DIR` finds the model and its tokenizer.
Scale out with PyTorch's launcher: `torchrun --nproc_per_node=N -m bertmini pretrain ...`.

The commands are thin wrappers over `pretrain()`, `finetune()` and `fill_mask()`, which
`make demo` and the chapters call directly.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from .course import PRECISIONS, get_profile
from .recipes import EMBEDDED_TASK, _model_dir, fill_mask, finetune, load_documents, pretrain

# ---------------------------------------------------------------------------------------------
# Argument parsing
# ---------------------------------------------------------------------------------------------


def _add_training_options(parser: argparse.ArgumentParser, steps_help: str) -> None:
    """Options every training command shares (they fill TrainConfig)."""
    group = parser.add_argument_group("training")
    group.add_argument("--steps", type=int, help=steps_help)
    group.add_argument(
        "--batch-size",
        type=int,
        help="examples per optimizer step, over all processes (default: the profile's)",
    )
    group.add_argument("--lr", type=float, help="peak learning rate (default: the profile's)")
    group.add_argument(
        "--warmup-steps", type=int, help="steps of linear warmup (default: 10%% of --steps)"
    )
    group.add_argument(
        "--weight-decay",
        type=float,
        default=0.01,
        help="AdamW weight decay on weight matrices (default: %(default)s)",
    )
    group.add_argument(
        "--max-grad-norm",
        type=float,
        default=1.0,
        help="clip the gradient norm to this (default: %(default)s)",
    )
    group.add_argument(
        "--grad-accum",
        type=int,
        default=1,
        help="micro-batches per optimizer "
        "step: the same batch in less memory (default: %(default)s)",
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
    group.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    group.add_argument(
        "--log-every",
        type=int,
        default=10,
        help="steps between metric reads and progress updates (default: %(default)s)",
    )
    group.add_argument(
        "--checkpoint-every",
        type=int,
        default=200,
        help="steps between checkpoints in OUT/checkpoint (default: %(default)s)",
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue exactly from the checkpoint in --out (same options)",
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
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bertmini",
        description="Pretrain, fine-tune, evaluate and query small BERTs. "
        "Sizes default to the profile: BERTMINI_PROFILE=ci|cpu|gpu.",
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
        help="embedded (generated, offline), "
        "wikitext-2, wikitext-103 (need the hub), or a glob of local .txt files with "
        "one sentence per line and blank lines between documents (default: %(default)s)",
    )
    p.add_argument(
        "--tokenizer",
        help="directory (or vocab.txt) of a WordPiece vocabulary; default: train one on the corpus",
    )
    p.add_argument(
        "--vocab-size", type=int, help="size of the vocabulary to train (default: the profile's)"
    )
    p.add_argument(
        "--num-documents",
        type=int,
        help="documents of the embedded corpus (default: the profile's)",
    )
    p.add_argument(
        "--max-seq-len",
        type=int,
        help="tokens per example, [CLS] A [SEP] B [SEP] (default: the profile's)",
    )
    p.add_argument(
        "--mlm-probability",
        type=float,
        default=0.15,
        help="share of tokens to predict (default: %(default)s)",
    )
    p.add_argument("--whole-word", action="store_true", help="mask whole words, not pieces")
    p.add_argument(
        "--dupe-factor",
        type=int,
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
        help="fine-tune a model on a classification task",
        description="Fine-tune BertForSequenceClassification from a pretrained model directory "
        "and report accuracy on the task's validation and test splits.",
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
        help="embedded-sentiment (offline; its test "
        "set uses held-out polarity words), sst2 or imdb (need the hub) "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--from-scratch",
        action="store_true",
        help="same architecture and tokenizer as --model, but random weights (the baseline)",
    )
    p.add_argument(
        "--max-seq-len",
        type=int,
        help="longest example in tokens (default: the profile's)",
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
        "--corpus", default="embedded", help="corpus for a pretrained model (default: %(default)s)"
    )
    p.add_argument(
        "--task", default=EMBEDDED_TASK, help="task for a classifier (default: %(default)s)"
    )
    p.add_argument("--max-seq-len", type=int, help="tokens per example (default: the profile's)")
    p.add_argument(
        "--batch-size", type=int, default=32, help="examples per batch (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the masking (default: %(default)s)")

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
        "--top-k", type=int, default=5, help="predictions per mask (default: %(default)s)"
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
        help="pretrain, fine-tune, compare with from-scratch (make demo)",
        description="Pretrain a small BERT on the embedded corpus, fine-tune it on the embedded "
        "sentiment task, fine-tune the same model from random weights with the same budget, "
        "print a results table and save plots as PNG.",
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
            resume=args.resume,
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
            resume=args.resume,
            **_train_options(args),
        )
        for split, metrics in results.items():
            _print_metrics(split, metrics)
        print(f"fine-tuned model in {args.out}")
    elif args.command == "evaluate":
        for split, metrics in evaluate_model(args).items():
            _print_metrics(split, metrics)
    elif args.command == "fill-mask":
        from .model import BertForPreTraining
        from .tokenizer import Tokenizer

        if "[MASK]" not in args.text:
            raise ValueError(
                f'the text must contain [MASK], got "{args.text}"; e.g. "the [MASK] sat on the mat"'
            )
        model_dir = _model_dir(args.model)
        tokenizer = Tokenizer.from_pretrained(model_dir)
        model = BertForPreTraining.from_pretrained(model_dir)
        for i, predictions in enumerate(fill_mask(args.text, model, tokenizer, args.top_k), 1):
            print(f"[MASK] {i}: " + "  ".join(f"{t} ({p:.3f})" for t, p in predictions))
    elif args.command == "bench":
        if getattr(args, "bench_missing", False):
            raise ValueError("the benchmark (bertmini.bench) is not available in this install")
        from . import bench

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


def evaluate_model(args) -> dict[str, dict[str, float]]:
    """The `evaluate` command: {split: metrics} for a pretrained model or a classifier."""
    from .data.finetuning import ClassificationDataset
    from .data.finetuning import make_loader as classification_loader
    from .data.pretraining import PretrainingCollator, PretrainingDataset
    from .data.real import load_task
    from .model import BertForPreTraining, BertForSequenceClassification
    from .tokenizer import Tokenizer
    from .train import evaluate

    model_dir = _model_dir(args.model)
    tokenizer = Tokenizer.from_pretrained(model_dir, fast=True)
    config = json.loads((model_dir / "config.json").read_text())
    profile = get_profile()
    if "BertForSequenceClassification" in config.get("architectures", []):
        model = BertForSequenceClassification.from_pretrained(model_dir)
        results = {}
        for split, rows in load_task(args.task).items():
            texts, labels = zip(*rows, strict=True)
            dataset = ClassificationDataset(
                list(texts), list(labels), tokenizer, args.max_seq_len or 64
            )
            loader = classification_loader(dataset, args.batch_size, shuffle=False)
            results[split] = evaluate(model, loader)
        return results
    model = BertForPreTraining.from_pretrained(model_dir)
    documents = load_documents(args.corpus, "validation", profile.num_documents, args.seed)
    dataset = PretrainingDataset.from_documents(
        documents, tokenizer, args.max_seq_len or profile.max_seq_len, seed=args.seed
    )
    collator = PretrainingCollator(tokenizer, generator=torch.Generator().manual_seed(args.seed))
    loader = torch.utils.data.DataLoader(dataset, args.batch_size, collate_fn=collator)
    return {"validation": evaluate(model, loader)}


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bertmini` and the `bertmini` script. Returns the exit status."""
    from .train import TrainingDiverged

    args = build_parser().parse_args(argv)
    try:
        _run(args)
    except TrainingDiverged as error:
        print(f"bertmini {args.command}: training stopped: {error}", file=sys.stderr)
        return 3
    except (ValueError, TypeError, OSError, KeyError) as error:
        message = " ".join(str(error).split())  # one line, whatever the source
        print(f"bertmini {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bertmini {args.command}: interrupted (resume with --resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
