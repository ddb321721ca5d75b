"""The command line: `python -m bertmini <command>` (or the `bertmini` script).

    pretrain    pretrain a BERT (MLM + NSP) on a corpus; with no options, a mini BERT on the
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
import warnings
from pathlib import Path

import torch

from .course import PRECISIONS, get_profile

EMBEDDED_TASK = "embedded-sentiment"


# ---------------------------------------------------------------------------------------------
# Data: corpus -> tokenizer -> loaders
# ---------------------------------------------------------------------------------------------


def load_documents(corpus: str, split: str, num_documents: int, seed: int = 0) -> list[list[str]]:
    """Documents (lists of sentences) of `corpus`; the embedded one at the profile's size."""
    if corpus == "embedded":
        from .data.corpus import generate_corpus

        return generate_corpus(seed=seed, num_documents=num_documents).split(split)
    from .data.real import load_corpus

    return load_corpus(corpus, split)


def get_tokenizer(tokenizer_dir, out_dir, documents: list[list[str]], vocab_size: int):
    """The tokenizer of `tokenizer_dir`, else the one a resumed run saved in `out_dir`, else a
    WordPiece vocabulary trained on `documents` (saved into `out_dir` before training starts)."""
    from .tokenizer import Tokenizer

    if tokenizer_dir is not None:
        return Tokenizer.from_pretrained(tokenizer_dir, fast=True)
    if out_dir is not None and (Path(out_dir) / "vocab.txt").is_file():
        return Tokenizer.from_pretrained(out_dir, fast=True)
    texts = [sentence for document in documents for sentence in document]
    return Tokenizer.train(texts, vocab_size, fast=True)


def per_process_batch(batch_size: int, grad_accum_steps: int) -> int:
    """Examples per micro-batch per process, for a global batch of `batch_size` per step."""
    import torch.distributed as dist

    world_size = dist.get_world_size() if dist.is_initialized() else 1
    if batch_size % (world_size * grad_accum_steps):
        raise ValueError(
            f"--batch-size {batch_size} must be divisible by processes x --grad-accum "
            f"= {world_size} x {grad_accum_steps}"
        )
    return batch_size // (world_size * grad_accum_steps)


def _without_nsp(collator):
    """Wrap a pretraining collator so batches carry no NSP labels: the model trains MLM only."""

    def collate(examples):
        batch = collator(examples)
        batch.pop("next_sentence_label")
        return batch

    collate.generator = collator.generator  # still checkpointed, for exact resume
    return collate


# ---------------------------------------------------------------------------------------------
# The commands as functions
# ---------------------------------------------------------------------------------------------


def pretrain(
    out: str | Path,
    corpus: str = "embedded",
    preset: str = "mini",
    tokenizer: str | None = None,
    vocab_size: int | None = None,
    num_documents: int | None = None,
    max_seq_len: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    nsp: bool = True,
    whole_word: bool = False,
    mlm_probability: float = 0.15,
    resume: bool = False,
    callbacks=(),
    model_options: dict | None = None,
    **train_options,
):
    """Pretrain a BertForPreTraining on `corpus`; sizes left as None come from the profile.

    Writes the model, its tokenizer, metrics.jsonl and checkpoint/ into `out`.
    Returns (model, tokenizer, history). `model_options` go to BertConfig (e.g.
    pre_layer_norm=True), `train_options` to TrainConfig (seed, precision...).
    """
    from .data.pretraining import PretrainingCollator, PretrainingDataset
    from .model import BertConfig, BertForPreTraining
    from .train import TrainConfig, make_loader, setup_distributed, train

    profile = get_profile()
    rank, _world_size = setup_distributed()
    seed = train_options.get("seed", 0)
    max_seq_len = max_seq_len or profile.max_seq_len
    documents = load_documents(corpus, "train", num_documents or profile.num_documents, seed)
    if not documents:
        raise ValueError(f"corpus {corpus!r} has no training documents")
    tok = get_tokenizer(tokenizer, out, documents, vocab_size or profile.vocab_size)
    if rank == 0:
        tok.save_pretrained(out)  # beside the model, for fill-mask and fine-tuning
    validation = load_documents(corpus, "validation", num_documents or profile.num_documents, seed)

    config = TrainConfig(
        steps=steps or profile.pretrain_steps, lr=lr or profile.pretrain_lr, **train_options
    )
    batch_size = batch_size or profile.batch_size
    micro_batch = per_process_batch(batch_size, config.grad_accum_steps)
    collator = PretrainingCollator(
        tok, mlm_probability, whole_word, generator=torch.Generator().manual_seed(seed + rank)
    )
    collator = collator if nsp else _without_nsp(collator)
    dataset = PretrainingDataset.from_documents(documents, tok, max_seq_len, seed=seed)
    if len(dataset) < batch_size:
        raise ValueError(
            f"the corpus gives {len(dataset)} pretraining examples, fewer than one batch "
            f"({batch_size}): use a bigger corpus or a smaller --batch-size"
        )
    loader = make_loader(dataset, micro_batch, collator, seed=seed)
    eval_loader = None
    if validation:
        eval_collator = PretrainingCollator(
            tok, mlm_probability, whole_word, generator=torch.Generator().manual_seed(seed + 1)
        )
        eval_dataset = PretrainingDataset.from_documents(validation, tok, max_seq_len, seed=seed)
        eval_loader = torch.utils.data.DataLoader(
            eval_dataset,
            micro_batch,
            collate_fn=eval_collator if nsp else _without_nsp(eval_collator),
        )

    torch.manual_seed(seed)
    model_config = BertConfig.preset(preset, vocab_size=len(tok), **(model_options or {}))
    model = BertForPreTraining(model_config)
    history = train(model, loader, config, eval_loader, callbacks, out_dir=out, resume=resume)
    return model, tok, history


def finetune(
    out: str | Path | None,
    model: str | Path,
    task: str = EMBEDDED_TASK,
    from_scratch: bool = False,
    max_seq_len: int = 64,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    resume: bool = False,
    callbacks=(),
    **train_options,
):
    """Fine-tune BertForSequenceClassification from the pretrained model directory `model`
    (from_scratch: the same architecture and tokenizer, random weights) on `task`.

    Returns (model, tokenizer, history, results) with results = {split: metrics} for every
    split but "train", measured at the end.
    """
    from .data.finetuning import ClassificationCollator, ClassificationDataset
    from .data.finetuning import make_loader as evaluation_loader
    from .data.real import load_task
    from .model import BertForSequenceClassification, load_config
    from .tokenizer import Tokenizer
    from .train import TrainConfig, evaluate, make_loader, setup_distributed, train

    profile = get_profile()
    setup_distributed()
    model_dir = _model_dir(model)
    tok = Tokenizer.from_pretrained(model_dir, fast=True)
    splits = load_task(task)
    if "train" not in splits:
        raise ValueError(f"task {task!r} has no train split")
    num_labels = 1 + max(label for rows in splits.values() for _, label in rows)

    def dataset(rows):
        texts, labels = zip(*rows, strict=True)
        return ClassificationDataset(list(texts), list(labels), tok, max_seq_len)

    config = TrainConfig(
        steps=steps or profile.finetune_steps, lr=lr or profile.finetune_lr, **train_options
    )
    batch_size = batch_size or profile.batch_size
    micro_batch = per_process_batch(batch_size, config.grad_accum_steps)
    train_set = dataset(splits["train"])
    loader = make_loader(
        train_set, micro_batch, ClassificationCollator(tok.pad_token_id), seed=config.seed
    )
    eval_batch = 4 * micro_batch  # no gradients to keep: bigger batches, fewer steps
    eval_loaders = {
        split: evaluation_loader(dataset(rows), eval_batch, shuffle=False)
        for split, rows in splits.items()
        if split != "train"
    }

    torch.manual_seed(config.seed)
    if from_scratch:
        classifier = BertForSequenceClassification(load_config(model_dir))
    else:
        with warnings.catch_warnings():  # "classifier weights start random": that is the point
            warnings.filterwarnings("ignore", message=".*start random")
            classifier = BertForSequenceClassification.from_pretrained(
                model_dir, num_labels=num_labels
            )
    if classifier.config.num_labels != num_labels:
        raise ValueError(
            f"the model has {classifier.config.num_labels} labels, the task {num_labels}"
        )
    history = train(
        classifier,
        loader,
        config,
        eval_loaders.get("validation"),
        callbacks,
        out_dir=out,
        resume=resume,
    )
    if out is not None:
        tok.save_pretrained(out)
    results = {
        split: evaluate(classifier, split_loader) for split, split_loader in eval_loaders.items()
    }
    return classifier, tok, history, results


def fill_mask(text: str, model, tokenizer, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """For each [MASK] in `text`: the `top_k` (token, probability) predictions, best first."""
    if not isinstance(text, str) or "[MASK]" not in text:
        raise ValueError(
            f"the text must contain at least one [MASK], got {text!r}; "
            'e.g. "the [MASK] sat on the mat"'
        )
    ids = torch.tensor([tokenizer.encode(text)])  # (1, seq)
    model.eval()
    with torch.no_grad():
        mlm_logits = model(ids.to(next(model.parameters()).device)).mlm_logits[0]  # (seq, vocab)
    masked = (ids[0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    predictions = []
    for position in masked:
        probabilities, token_ids = mlm_logits[position].float().softmax(-1).topk(top_k)
        tokens = tokenizer.convert_ids_to_tokens(token_ids.tolist())
        predictions.append(list(zip(tokens, probabilities.tolist(), strict=True)))
    return predictions


def _model_dir(model) -> Path:
    path = Path(model)
    if not path.is_dir():
        raise FileNotFoundError(
            f"no model directory at {path}: expected a folder with config.json, "
            "model.safetensors and vocab.txt, e.g. from `python -m bertmini pretrain --out DIR`"
        )
    for name in ("config.json", "vocab.txt"):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"{path} has no {name}: is it a model directory written by "
                "`python -m bertmini pretrain` (or a Hugging Face BERT folder)?"
            )
    return path


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
        "prediction). With no options: a mini BERT on the embedded corpus, sized by the profile. "
        "Writes the model, vocab.txt, metrics.jsonl and checkpoint/ into --out.",
    )
    p.add_argument(
        "--preset",
        default="mini",
        choices=["tiny", "mini", "small", "medium", "base", "large"],
        help="model shape (default: %(default)s = 4 layers, hidden 256)",
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
        default=64,
        help="longest example in tokens (default: %(default)s)",
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
        description="Pretrain a mini BERT on the embedded corpus, fine-tune it on the embedded "
        "sentiment task, fine-tune the same model from random weights with the same budget, "
        "print a results table and save plots as PNG.",
    )
    p.add_argument("--out", default="demo_out", help="output directory (default: %(default)s)")

    p = commands.add_parser(
        "student",
        help="write the student edition of the chapters",
        description="Copy the chapters with the solutions between ### BEGIN SOLUTION and "
        "### END SOLUTION removed.",
    )
    p.add_argument("src", help="directory of the instructor notebooks, e.g. chapters")
    p.add_argument("dst", help="directory to write the student edition to, e.g. student")
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
        from . import course

        make_student_edition = getattr(course, "make_student_edition", None)
        if make_student_edition is None:  # until course.py holds it, it lives in student.py
            from .student import make_student_edition
        written = make_student_edition(args.src, args.dst)
        print(f"student edition: {len(written or [])} notebooks in {args.dst}")


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
