"""Recipes: pretrain, fine-tune and query a BERT in one call each.

These are what `python -m bertmini pretrain | finetune | fill-mask`, `make demo` and the
chapters run. Sizes left as None come from the course profile (`bertmini.course.get_profile`).

    model, tokenizer, history = pretrain("runs/mini")            # MLM + NSP on the embedded corpus
    classifier, tokenizer, history, results = finetune("runs/sentiment", "runs/mini")
    fill_mask("the [MASK] sat on the mat", model, tokenizer)
"""

import json
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from . import rundir
from .course import get_profile

EMBEDDED_TASK = "embedded-sentiment"


# ---------------------------------------------------------------------------------------------
# Data: corpus -> tokenizer -> loaders
# ---------------------------------------------------------------------------------------------


def load_documents(
    corpus: str, split: str, num_documents: int, seed: int = 0, comment_share: float = 0.0
) -> list[list[str]]:
    """Documents (lists of sentences) of `corpus`; the embedded one at the profile's size, with
    `comment_share` of comment threads ("embedded-comments": comment threads only)."""
    if corpus in ("embedded", "embedded-comments"):
        from .data.corpus import generate_corpus

        shares = dict(review_share=0.0, comment_share=1.0)
        if corpus == "embedded":
            shares = dict(review_share=0.3, comment_share=comment_share)
        return generate_corpus(seed=seed, num_documents=num_documents, **shares).split(split)
    from .data.real import load_corpus

    return load_corpus(corpus, split)


def get_tokenizer(
    tokenizer_dir, out_dir, documents: list[list[str]], vocab_size: int, resume: bool = False
):
    """The vocabulary a resumed run saved in its checkpoint, else the tokenizer of
    `tokenizer_dir`, else a WordPiece vocabulary trained on `documents`. A new run
    (resume=False) never reuses a vocabulary left in `out_dir` by an earlier run."""
    from .tokenizer import Tokenizer
    from .train import read_newest_checkpoint

    if resume:
        checkpoint, _ = read_newest_checkpoint(out_dir)
        saved = checkpoint if (checkpoint / "vocab.txt").is_file() else Path(out_dir)
        return Tokenizer.from_pretrained(saved, fast=True)  # older checkpoints: out_dir's
    if tokenizer_dir is not None:
        return Tokenizer.from_pretrained(tokenizer_dir, fast=True)
    texts = [sentence for document in documents for sentence in document]
    return Tokenizer.train(texts, vocab_size, fast=True)


def _load_for_pretraining(init_from, tok, model_options: dict, rank: int):
    """BertForPreTraining with the weights of checkpoint `init_from`, checked against the
    tokenizer's vocabulary; heads the checkpoint lacks start fresh, with a printed note."""
    from .model import BertForPreTraining

    vocab_file = Path(init_from) / "vocab.txt"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "BertForPreTraining: .* start random")
        model = BertForPreTraining.from_pretrained(init_from, **model_options)
    checkpoint_tokens = vocab_file.read_text("utf-8").split("\n") if vocab_file.is_file() else []
    checkpoint_tokens = [t.rstrip("\r") for t in checkpoint_tokens if t]
    if model.config.vocab_size != len(tok) or (
        checkpoint_tokens and checkpoint_tokens != tok.ids_to_tokens
    ):
        raise ValueError(
            f"--init-from {init_from} was trained with another vocabulary than the tokenizer's "
            f"({model.config.vocab_size} vs {len(tok)} tokens): its embeddings fit only its "
            f"own. Drop --tokenizer to use {init_from}'s vocab.txt, or give the same one"
        )
    missing = model.loading_info["missing_keys"]
    if missing and rank == 0:
        heads = sorted({name.split(".")[0] for name in missing})
        print(
            f"note: {init_from} has no weights for {', '.join(heads)} ({len(missing)} tensors): "
            "they start fresh (the MLM decoder is tied to the word embeddings, so only its "
            "transform and bias are new)"
        )
    return model


def per_process_batch(batch_size: int, grad_accum_steps: int) -> int:
    """Examples per micro-batch per process, for a global batch of `batch_size` per step."""
    import torch.distributed as dist

    world_size = dist.get_world_size() if dist.is_initialized() else 1
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {batch_size!r}")
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
    preset: str | None = None,
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
    dupe_factor: int | None = None,
    resume: bool | str = False,
    overwrite: bool = True,
    callbacks=(),
    model_options: dict | None = None,
    profile=None,
    init_from: str | Path | None = None,
    **train_options,
):
    """Pretrain a BertForPreTraining on `corpus`; sizes left as None come from the profile.

    `corpus`: "embedded", a hub corpus, or local text (a file, glob, directory or saved
    dataset; 5% of its documents held out for validation). `tokenizer`: a directory with a
    vocab.txt to reuse (e.g. a real BERT's); default: train one on the corpus. `init_from`: a
    checkpoint directory whose weights (and shape, and vocabulary unless `tokenizer` is given)
    to start from, for domain-adaptive pretraining; heads it lacks start fresh.

    `dupe_factor` builds the NSP pairs that many times over the corpus, each time with other
    splits and other random Bs, so a small corpus is not seen as the same few thousand pairs
    every epoch (NSP memorises those).
    Writes the model, its tokenizer, metrics.jsonl and checkpoint/ into `out`.
    Returns (model, tokenizer, history). `model_options` go to BertConfig (e.g.
    pre_layer_norm=True), `train_options` to TrainConfig (seed, precision...).
    `resume`: continue the run in `out` (see `train`); `overwrite=False` refuses an `out` that
    already holds a run (the CLI's default), True replaces it.
    """
    from .data.pretraining import (
        PretrainingCollator,
        PretrainingDataset,
        check_dupe_factor,
        warn_if_nsp_is_solvable_from_length,
    )
    from .model import BertConfig, BertForPreTraining
    from .train import TrainConfig, make_loader, setup_distributed, train

    profile = get_profile(profile)
    rank, _world_size = setup_distributed()
    seed = train_options.get("seed", 0)
    # Check the options before any work (a tokenizer trained and written for nothing).
    config = TrainConfig(
        steps=profile.pretrain_steps if steps is None else steps,
        lr=profile.pretrain_lr if lr is None else lr,
        **train_options,
    )
    batch_size = profile.batch_size if batch_size is None else batch_size
    micro_batch = per_process_batch(batch_size, config.grad_accum_steps)
    dupe_factor = profile.dupe_factor if dupe_factor is None else dupe_factor
    check_dupe_factor(dupe_factor)
    max_seq_len = profile.max_seq_len if max_seq_len is None else max_seq_len
    num_documents = profile.num_documents if num_documents is None else num_documents
    vocab_size = profile.vocab_size if vocab_size is None else vocab_size
    check_at_least(max_seq_len=(max_seq_len, 8), vocab_size=(vocab_size, 100))
    check_at_least(num_documents=(num_documents, 2), mlm_probability=(mlm_probability, 0))
    if not mlm_probability < 1:
        raise ValueError(f"--mlm-probability must be in (0, 1), got {mlm_probability}")
    if init_from is not None and preset is not None:
        raise ValueError("--preset and --init-from both set the model's shape; drop --preset")
    run_options = dict(
        corpus=corpus,
        preset=preset or profile.preset,
        init_from=None if init_from is None else str(init_from),
        tokenizer=None if tokenizer is None else str(tokenizer),
        vocab_size=vocab_size,
        num_documents=num_documents,
        max_seq_len=max_seq_len,
        batch_size=batch_size,
        nsp=nsp,
        whole_word=whole_word,
        mlm_probability=mlm_probability,
        dupe_factor=dupe_factor,
        model_options=profile.model_options if model_options is None else model_options,
    )
    rundir.check(out, resume, overwrite)  # busy, or a run to keep: say so before any work
    documents = load_documents(corpus, "train", num_documents, seed, profile.comment_share)
    if not documents:
        raise ValueError(f"corpus {corpus!r} has no training documents")
    if nsp:
        warn_if_nsp_is_solvable_from_length(documents)
    tokenizer = init_from if tokenizer is None else tokenizer
    tok = get_tokenizer(tokenizer, out, documents, vocab_size, resume)
    validation = load_documents(corpus, "validation", num_documents, seed, profile.comment_share)

    collator = PretrainingCollator(
        tok, mlm_probability, whole_word, generator=torch.Generator().manual_seed(seed + rank)
    )
    collator = collator if nsp else _without_nsp(collator)
    dataset = PretrainingDataset.from_documents(
        documents, tok, max_seq_len, seed=seed, dupe_factor=dupe_factor
    )
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
        # The same dupe_factor: more pairs from the held-out documents, a steadier estimate.
        eval_dataset = PretrainingDataset.from_documents(
            validation, tok, max_seq_len, seed=seed, dupe_factor=dupe_factor
        )
        eval_loader = torch.utils.data.DataLoader(
            eval_dataset,
            micro_batch,
            collate_fn=eval_collator if nsp else _without_nsp(eval_collator),
        )

    torch.manual_seed(seed)
    if init_from is not None:
        model = _load_for_pretraining(init_from, tok, model_options or {}, rank)
    else:
        model = BertForPreTraining(
            BertConfig.preset(
                run_options["preset"], vocab_size=len(tok), **run_options["model_options"]
            )
        )
    with rundir.hold(out if rank == 0 else None):
        rundir.claim(out, resume, overwrite)
        if rank == 0:  # what it learned from, so `evaluate` never scores it on another corpus
            source = str(Path(corpus).resolve()) if Path(corpus).exists() else corpus  # hub name
            record = json.dumps({"corpus": source}, indent=2)
            rundir.publish_files(out, lambda folder: (folder / TRAINED_ON).write_text(record))
        history = train(
            model, loader, config, eval_loader, callbacks, out, resume, tok, run_options
        )
    return model, tok, history


def pretrain_short_first(out: str | Path, profile=None, seed: int = 0, **train_options) -> Path:
    """The course's pretraining recipe: comment threads in short sequences first, then the whole
    corpus (chapter 07, "Short documents first"). Returns the final model's directory.

    Phase 1 (`profile.short_steps` steps of `profile.short_seq_len` tokens) trains only on
    comment threads, where "i loved the superb food." puts the stance two words before the
    polarity word: a tiny BERT learns that lookup, and with it which words are praise, in about a
    thousand steps. Phase 2 continues from it on the whole corpus at `profile.max_seq_len`,
    comment threads included so the lookup is kept. Both phases use one vocabulary, trained on
    the whole corpus, in `out`/vocabulary. The phases are run directories `out`/1-short and
    `out`/2-full; `train_options` (callbacks, log_every, ...) go to both.
    """
    from .tokenizer import Tokenizer

    profile = get_profile(profile)
    out = Path(out)
    if profile.short_steps == 0:
        pretrain(out / "2-full", profile=profile, seed=seed, **train_options)
        return out / "2-full"
    documents = load_documents(
        "embedded", "train", profile.num_documents, seed, profile.comment_share
    )
    texts = [sentence for document in documents for sentence in document]
    Tokenizer.train(texts, profile.vocab_size, fast=True).save_pretrained(out / "vocabulary")
    short = replace(profile, max_seq_len=profile.short_seq_len, pretrain_steps=profile.short_steps)
    pretrain(
        out / "1-short",
        "embedded-comments",
        tokenizer=out / "vocabulary",
        profile=short,
        seed=seed,
        **train_options,
    )
    pretrain(out / "2-full", profile=profile, init_from=out / "1-short", seed=seed, **train_options)
    return out / "2-full"


def load_finetuning_task(
    task=EMBEDDED_TASK,
    train_file: str | Path | None = None,
    validation_file: str | Path | None = None,
    test_file: str | Path | None = None,
    columns: dict | None = None,
    dataset: str | None = None,
    dataset_config: str | None = None,
):
    """The `Task` to fine-tune on: local files if `train_file`, a hub dataset if `dataset`, else
    `task`: a `Task`, the name of one (embedded-sentiment, embedded-nli, embedded-tagging,
    sst2, imdb), or the splits themselves, {split: [(text, label), ...]}. `columns` may name
    text_column, text_pair_column and label_column (default: guessed)."""
    from .data import real
    from .data.finetuning import Task
    from .data.tasks import EMBEDDED_TASKS

    if isinstance(task, Task):
        return task
    if isinstance(task, dict):  # the splits themselves: {split: [(text, label), ...]}
        num_labels = 1 + max(label for rows in task.values() for _, label in rows)
        return Task.from_rows("splits", task, [str(i) for i in range(num_labels)])
    columns = columns or {}
    if train_file is not None:
        return real.load_labelled_files(train_file, validation_file, test_file, **columns)
    if validation_file is not None or test_file is not None:
        raise ValueError("--validation-file / --test-file need --train-file as well")
    if dataset is not None:
        return real.load_hub_task(dataset, dataset_config, **columns)
    if task in EMBEDDED_TASKS:
        return EMBEDDED_TASKS[task]()
    names = {"imdb": ["neg", "pos"]}.get(task, ["negative", "positive"])
    return Task.from_rows(task, real.load_task(task), names)


def finetune(
    out: str | Path | None,
    model: str | Path,
    task=EMBEDDED_TASK,
    from_scratch: bool = False,
    max_seq_len: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    resume: bool | str = False,
    overwrite: bool = True,
    callbacks=(),
    profile=None,
    train_file: str | Path | None = None,
    validation_file: str | Path | None = None,
    test_file: str | Path | None = None,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str = "label",
    dataset: str | None = None,
    dataset_config: str | None = None,
    **train_options,
):
    """Fine-tune a classifier from the pretrained model directory `model` (from_scratch: the
    same architecture and tokenizer, random weights) on `task`, on local files (`train_file`,
    `validation_file`, `test_file`: CSV, TSV, JSON lines, Parquet or a saved dataset, with the
    given or guessed columns), or on a hub `dataset` (online only).

    Sentence and sentence-pair tasks train a BertForSequenceClassification, embedded-tagging a
    BertForTokenClassification. The label names go into config.json (id2label / label2id), and
    what the model was trained on into trained_on.json beside it.
    Returns (model, tokenizer, history, results) with results = {split: metrics} (loss,
    accuracy, macro_f1, and token_f1 for tagging) for every split but "train", at the end.
    """
    from .data.finetuning import make_loader as bucketed_loader
    from .tokenizer import Tokenizer
    from .train import TrainConfig, setup_distributed, train

    profile = get_profile(profile)
    setup_distributed()
    model_dir = _model_dir(model)
    if out is not None and Path(out).resolve() == model_dir.resolve():
        raise ValueError(
            f"--out {out} is the --model directory: fine-tuning there would replace the "
            "pretrained model; choose another --out"
        )
    if out is not None:
        rundir.check(out, resume, overwrite)
    columns = dict(
        text_column=text_column, text_pair_column=text_pair_column, label_column=label_column
    )
    # Data first: a bad file stops the run before anything is written.
    data = load_finetuning_task(
        task, train_file, validation_file, test_file, columns, dataset, dataset_config
    )
    tok = Tokenizer.from_pretrained(model_dir, fast=True)
    check_vocabulary(tok, model_dir)
    max_seq_len = max_seq_len or profile.finetune_seq_len
    config = TrainConfig(
        steps=profile.finetune_steps if steps is None else steps,
        lr=profile.finetune_lr if lr is None else lr,
        **train_options,
    )
    batch_size = profile.batch_size if batch_size is None else batch_size
    micro_batch = per_process_batch(batch_size, config.grad_accum_steps)
    datasets = {split: data.dataset(split, tok, max_seq_len) for split in data.splits}
    # Batches of similar lengths: little padding, so little wasted compute (see data/finetuning.py).
    loader = bucketed_loader(datasets.pop("train"), micro_batch, shuffle=True, seed=config.seed)
    eval_batch = 4 * micro_batch  # no gradients to keep: bigger batches, fewer steps
    eval_loaders = {
        split: bucketed_loader(dataset, eval_batch, shuffle=False)
        for split, dataset in datasets.items()
    }

    torch.manual_seed(config.seed)
    classifier = _classifier(model_dir, data, from_scratch)
    run_options = dict(
        model=str(model),
        source=json.dumps(data.source, sort_keys=True, default=str),
        from_scratch=from_scratch,
        max_seq_len=max_seq_len,
        batch_size=batch_size,
    )
    with rundir.hold(out):
        if out is not None:
            rundir.claim(out, resume, overwrite)
        history = train(
            classifier,
            loader,
            config,
            eval_loaders.get("validation"),
            callbacks,
            out,
            resume,
            tok,
            run_options,
        )
    if out is not None:
        record = {**data.source, "kind": data.kind, "max_seq_len": max_seq_len}
        (Path(out) / TRAINED_ON).write_text(json.dumps(record, indent=2))
    results = {
        split: score(classifier, split_loader, data.label_names)[0]
        for split, split_loader in eval_loaders.items()
    }
    return classifier, tok, history, results


TRAINED_ON = "trained_on.json"  # beside a model: the corpus or task it was trained on


def _classifier(model_dir: Path, data, from_scratch: bool):
    """A sequence or token classifier with `data`'s labels, from `model_dir`'s weights or shape."""
    from .model import BertConfig, BertForSequenceClassification, BertForTokenClassification

    cls = BertForTokenClassification if data.kind == "token" else BertForSequenceClassification
    labels = dict(num_labels=data.num_labels, id2label=data.id2label)
    if from_scratch:
        config = json.loads((model_dir / "config.json").read_text())
        return cls(BertConfig.from_dict({**config, **labels}))
    with warnings.catch_warnings():  # "classifier weights start random": that is the point
        warnings.filterwarnings("ignore", message=".*start random")
        classifier = cls.from_pretrained(model_dir, **labels)
    check_only_head_is_new(classifier, model_dir)
    return classifier


@torch.no_grad()
def score(model, loader, label_names: list[str]) -> tuple[dict[str, float], list]:
    """({loss, accuracy, macro_f1[, token_f1]}, confusion matrix) of a classifier on `loader`.

    For token classifiers every labelled word counts once (its first WordPiece), and token_f1
    leaves out tag 0, the "other" tag.
    """
    from .metrics import classification_metrics, confusion_matrix, token_f1
    from .train import move_to_device, unwrap

    model = unwrap(model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    predicted, gold, losses = [], [], []
    for batch in loader:
        out = model(**move_to_device(batch, device))
        labels = batch["labels"]
        scored = labels != -100  # (batch,) or (batch, seq)
        predicted += out.logits.argmax(-1).cpu()[scored].tolist()
        gold += labels[scored].tolist()
        losses.append(out.loss.item())
    model.train(was_training)
    metrics = {"loss": sum(losses) / len(losses)}
    metrics.update(classification_metrics(predicted, gold, len(label_names)))
    if out.logits.dim() == 3:
        metrics["token_f1"] = token_f1(predicted, gold)
    return metrics, confusion_matrix(predicted, gold, len(label_names))


def fill_mask(text: str, model, tokenizer, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """For each [MASK] in `text`: the `top_k` (token, probability) predictions, best first."""
    if not isinstance(text, str) or "[MASK]" not in text:
        raise ValueError(
            f"the text must contain at least one [MASK], got {text!r}; "
            'e.g. "the [MASK] sat on the mat"'
        )
    if not isinstance(top_k, int) or not 1 <= top_k <= len(tokenizer):
        raise ValueError(
            f"--top-k must be between 1 and the vocabulary size {len(tokenizer)}, got {top_k!r}"
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


def load_masked_lm(model_dir: str | Path):
    """A BertForPreTraining from `model_dir`, refused if the checkpoint has no MLM head (a
    sentence encoder such as all-MiniLM-L6-v2, or a fine-tuned classifier): its predictions
    would come from random weights. A missing NSP head is fine (BertForMaskedLM has none)."""
    from .model import BertForPreTraining

    model_dir = _model_dir(model_dir)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*start random")
        model = BertForPreTraining.from_pretrained(model_dir)
    if any(name.startswith("mlm.") for name in model.loading_info["missing_keys"]):
        config = json.loads((model_dir / "config.json").read_text())
        kind = ", ".join(config.get("architectures") or ["unknown"])
        raise ValueError(
            f"{model_dir} is a {kind} checkpoint without masked-language-model weights "
            "(cls.predictions.*), so it cannot fill in [MASK]: use a model pretrained with MLM, "
            "e.g. one from `python -m bertmini pretrain --out DIR`"
        )
    return model


def predict_file(
    model_dir: str | Path,
    file: str | Path,
    out: str | Path,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> int:
    """Write `out` (CSV): for each row of `file`, in order, its text, the predicted label's
    name and probability, and one probability column per label. Returns the number of rows.

    Text columns default to the ones the model was fine-tuned on, else are guessed."""
    import csv

    from tqdm.auto import tqdm

    from .data import real
    from .model import BertForSequenceClassification
    from .tokenizer import Tokenizer

    model_dir, out = _model_dir(model_dir), Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another --out or remove it first")
    trained_on = read_trained_on(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    if "BertForSequenceClassification" not in config.get("architectures", []):
        raise ValueError(f"{model_dir} is not a fine-tuned sentence classifier: fine-tune it first")
    text_column = text_column or trained_on.get("text_column")
    text_pair_column = text_pair_column or trained_on.get("text_pair_column")
    examples = real.read_examples(
        real.read_table(file), str(file), text_column, text_pair_column, label_column=None
    )
    model = BertForSequenceClassification.from_pretrained(model_dir).eval()
    tok = Tokenizer.from_pretrained(model_dir, fast=True)
    names = label_names(model.config)
    texts, pairs = examples["text"], examples.get("text_pair")
    rows = []
    for start in tqdm(range(0, len(texts), batch_size), "predicting", disable=not progress):
        batch = tok(
            texts[start : start + batch_size],
            None if pairs is None else pairs[start : start + batch_size],
            max_length=trained_on.get("max_seq_len", 128),
        )
        with torch.no_grad():
            probabilities = model(**batch).logits.float().softmax(-1)  # (batch, num_labels)
        rows += probabilities.tolist()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        header = ["text"] + (["text_pair"] if pairs else []) + ["label", "probability"]
        writer.writerow(header + [f"probability_{name}" for name in names])
        for i, probs in enumerate(rows):
            best = max(range(len(probs)), key=probs.__getitem__)
            text = [texts[i]] + ([pairs[i]] if pairs else [])
            writer.writerow(
                text + [names[best], f"{probs[best]:.6f}"] + [f"{p:.6f}" for p in probs]
            )
    return len(rows)


def label_names(config) -> list[str]:
    """The name of each class id of a classifier's config: its id2label, else "0", "1"..."""
    if config.id2label:
        return [config.id2label[i] for i in range(config.num_labels)]
    return [str(i) for i in range(config.num_labels)]


def read_trained_on(model_dir: str | Path) -> dict:
    """What a model directory says it was trained on: {} if it does not say (e.g. MiniLM).
    Models cached by `pretrained()` (recipe.json) learned the embedded corpus."""
    path = Path(model_dir) / TRAINED_ON
    if path.is_file():
        return json.loads(path.read_text())
    return {"corpus": "embedded"} if (Path(model_dir) / "recipe.json").is_file() else {}


def check_at_least(**values_and_minimums) -> None:
    """check_at_least(max_seq_len=(value, 8)): a clear error for a value below its minimum."""
    for name, (value, minimum) in values_and_minimums.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            option = "--" + name.replace("_", "-")
            raise ValueError(f"{option} must be a number >= {minimum}, got {value!r}")


def check_vocabulary(tokenizer, model_dir: Path) -> None:
    """The model's vocab.txt and its config must agree on the vocabulary's size."""
    from .model import load_config

    vocab_size = load_config(model_dir).vocab_size
    if len(tokenizer) != vocab_size:
        from .hub import CheckpointError

        raise CheckpointError(
            f"{model_dir}/vocab.txt has {len(tokenizer)} tokens but the model's config.json "
            f"says {vocab_size}: they come from different runs; restore the model's own vocab.txt"
        )


def check_only_head_is_new(classifier, model_dir: Path) -> None:
    """Fine-tuning may start the classifier (and pooler) from random weights, never the encoder."""
    missing = [
        name
        for name in classifier.loading_info["missing_keys"]
        if not name.startswith(("classifier.", "bert.pooler."))
    ]
    if missing:
        from .hub import CheckpointError

        raise CheckpointError(
            f"{model_dir} lacks {len(missing)} encoder weights (e.g. {missing[:3]}): it is not "
            "a complete pretrained BERT; use --from-scratch to train this shape from random"
        )


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


def pretrained(profile=None, cache_dir: str | Path | None = None) -> Path:
    """The directory of a model pretrained with `profile`'s recipe, pretraining it if needed.

    Chapters 08 and 09 start from a pretrained model without retraining it each time: the first
    call pretrains (minutes under the `cpu` profile) into `cache_dir` (default
    `$BERTMINI_CACHE`, else ~/.cache/bertmini) and later calls return the same directory.
    The cache is keyed by the recipe and by the corpus generator's source, so a model made by
    another recipe or from another corpus is never reused by mistake. The model is written
    into a temporary directory and renamed into place: an interrupted call leaves no half model.
    Returns a directory with config.json, model.safetensors and vocab.txt.
    """
    import hashlib
    import json
    import os
    import shutil
    import tempfile
    from dataclasses import asdict

    from .data import corpus

    profile = get_profile(profile)
    default_root = Path.home() / ".cache" / "bertmini"
    root = Path(cache_dir or os.environ.get("BERTMINI_CACHE") or default_root)
    recipe = asdict(profile)
    recipe["corpus_source"] = hashlib.sha256(Path(corpus.__file__).read_bytes()).hexdigest()[:16]
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    out = root / f"pretrained-{profile.name}-{key}"
    if (out / "model.safetensors").is_file():
        return out
    print(f"pretraining a {profile.preset} BERT with the {profile.name!r} recipe into {out} ...")
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=root))
    try:
        final = pretrain_short_first(work / "phases", profile=profile, seed=0, log_every=10)
        for path in final.iterdir():  # the model, its vocabulary and metrics; not resume state
            if path.name != "checkpoint":
                path.rename(work / path.name)
        shutil.rmtree(work / "phases")
        (work / "recipe.json").write_text(json.dumps(recipe, indent=2))
        try:
            work.rename(out)
        except OSError:  # another process finished the same model first: use theirs
            if not (out / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
