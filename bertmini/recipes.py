"""Recipes: pretrain, fine-tune and query a BERT in one call each.

These are what `python -m bertmini pretrain | finetune | fill-mask`, `make demo` and the
chapters run. A recipe is two configuration objects: `PretrainRecipe` or `FinetuneRecipe` (the
data and the model: what to learn from, how big) and `TrainConfig` (how to train). Their fields
are the one place each default is written: the command line is generated from them
(`bertmini.options`), and sizes left as None come from the course profile
(`bertmini.course.get_profile`). Any field can also be given by name:

    model, tokenizer, history = pretrain("runs/mini", steps=500)  # MLM + NSP, embedded corpus
    classifier, tokenizer, history, results = finetune("runs/sentiment", "runs/mini")
    fill_mask("the [MASK] sat on the mat", model, tokenizer)
"""

import csv
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import rundir
from . import train as trainer  # trainer.train, looked up at call time (tests replace it)
from .course import Profile, get_profile
from .data import corpus as embedded_corpus
from .data import real
from .data.corpus import EMBEDDED_CORPORA
from .data.finetuning import Task, make_bucketed_loader
from .data.pretraining import (
    MLM_PROBABILITY,
    PretrainingCollator,
    PretrainingDataset,
    check_dupe_factor,
    warn_if_nsp_is_solvable_from_length,
)
from .data.real import EMBEDDED_TASK
from .data.tasks import EMBEDDED_TASKS
from .hub import CheckpointError, read_newest_checkpoint
from .metrics import classification_metrics, confusion_matrix, format_confusion, token_f1
from .model import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    load_config,
)
from .options import at_least, number, option
from .options import seed as seed_type
from .tokenizer import Tokenizer
from .train import (
    RunRecord,
    TrainConfig,
    make_loader,
    move_to_device,
    setup_distributed,
    unwrap,
)

TRAINED_ON = "trained_on.json"  # beside a model: the corpus or task it was trained on
# Tokens per example for a classifier whose trained_on.json does not record its length (e.g. one
# fine-tuned elsewhere): what BERT's own fine-tuning used.
UNRECORDED_LENGTH = 128

# ---------------------------------------------------------------------------------------------
# The recipes' configurations: one default (and one help text) per setting
# ---------------------------------------------------------------------------------------------


@dataclass
class PretrainRecipe:
    """What `pretrain` learns from and what it trains: the corpus, the vocabulary, the model's
    shape, the examples. None: the profile's value. `train`: how to train (None: a TrainConfig
    with the profile's steps and learning rate)."""

    corpus: str = option(
        "embedded",
        "embedded (generated, offline; embedded-comments and embedded-short: the course's two "
        "pretraining phases), wikitext-2, wikitext-103 (need the hub), or local UTF-8 "
        "text: a file, a glob, a directory of .txt files or a saved dataset, one sentence per "
        "line, blank lines between documents; 5% of documents are held out for validation",
    )
    preset: str | None = option(
        None,
        "model shape: tiny = 2 layers, hidden 128; mini = 4 layers, hidden 256; ...",
        choices=list(BertConfig.PRESETS),
        profile=True,
    )
    tokenizer: str | None = option(
        None,
        "directory (or vocab.txt) of a WordPiece vocabulary, e.g. a real BERT's; default: "
        "--init-from's, else train one on the corpus",
    )
    init_from: str | None = option(
        None,
        "start from this checkpoint directory's weights and shape (domain-adaptive pretraining "
        "of a real BERT); heads it lacks start fresh",
    )
    vocab_size: int | None = option(
        None, "size of the vocabulary to train, >= 100", at_least(100), profile=True
    )
    num_documents: int | None = option(
        None, "documents of the embedded corpus, >= 2", at_least(2), profile=True
    )
    max_seq_len: int | None = option(
        None, "tokens per example, [CLS] A [SEP] B [SEP], >= 8", at_least(8), profile=True
    )
    batch_size: int | None = option(
        None, "examples per optimizer step, over all processes, >= 1", at_least(1), profile=True
    )
    mlm_probability: float = option(
        MLM_PROBABILITY, "share of tokens to predict, in (0, 0.99]", number(0, 0.99)
    )
    whole_word: bool = option(False, "mask whole words, not pieces")
    nsp: bool = option(True, "train MLM only, no next sentence prediction")  # --no-nsp
    dupe_factor: int | None = option(
        None,
        "build the NSP pairs this many times over the corpus, with other splits and random "
        "sentences each time, so a small corpus is not memorised, >= 1",
        at_least(1),
        profile=True,
    )
    comment_share: float | None = option(
        None,
        "share of comment threads ('i loved the superb food.') in the embedded corpus, [0, 0.7]",
        number(0, 0.7, low_included=True),
        profile=True,
    )
    model_options: dict | None = None  # BertConfig overrides, e.g. pre_layer_norm=True
    train: TrainConfig | None = None

    def resolved(self, profile: Profile) -> "PretrainRecipe":
        """The recipe with every size the profile decides filled in, and checked. A checkpoint
        to start from (`init_from`) keeps its own architecture: no profile model_options."""
        keep = ("model_options",) if self.init_from is not None else ()
        recipe = _fill(self, profile, "pretrain", keep)
        paths = {k: getattr(self, k) for k in ("corpus", "tokenizer", "init_from")}
        recipe = replace(recipe, **{k: str(v) for k, v in paths.items() if v is not None})
        recipe.model_options = recipe.model_options or {}
        if recipe.init_from is not None and self.preset is not None:
            raise ValueError("--preset and --init-from both set the model's shape; drop --preset")
        check_dupe_factor(recipe.dupe_factor)
        check_at_least(max_seq_len=(recipe.max_seq_len, 8), vocab_size=(recipe.vocab_size, 100))
        check_at_least(num_documents=(recipe.num_documents, 2))
        check_at_least(mlm_probability=(recipe.mlm_probability, 0))
        if not recipe.mlm_probability < 1:
            raise ValueError(f"--mlm-probability must be in (0, 1), got {recipe.mlm_probability}")
        return recipe


@dataclass
class FinetuneRecipe:
    """What `finetune` learns from: a task by name, your files, or a hub dataset, and the
    example length and batch. None: the profile's value (or, for columns, a guess)."""

    task: str = option(
        EMBEDDED_TASK,
        "embedded-sentiment (offline; its test set uses held-out polarity words), embedded-nli "
        "(sentence pairs: entailment / neutral / contradiction), embedded-tagging (a role tag "
        "per word), sst2 or imdb (need the hub); in Python also a Task or {split: rows}",
    )
    train_file: str | None = option(
        None,
        "labelled training data: .csv, .tsv, .json/.jsonl, .parquet or a folder written by "
        "Dataset.save_to_disk",
    )
    validation_file: str | None = option(None, "labelled validation data, same columns")
    test_file: str | None = option(None, "labelled test data, same columns")
    text_column: str | None = option(
        None, "column of the text (default: sentence, or sentence1 + sentence2, or text)"
    )
    text_pair_column: str | None = option(None, "column of the second text of a pair")
    label_column: str = option("label", "column of the label")
    dataset: str | None = option(None, "a hub dataset with a label column, e.g. nyu-mll/glue")
    dataset_config: str | None = option(None, "its configuration, e.g. sst2")
    from_scratch: bool = option(
        False, "same architecture and tokenizer as --model, but random weights (the baseline)"
    )
    max_seq_len: int | None = option(
        None, "longest example in tokens, >= 8", at_least(8), profile=True
    )
    batch_size: int | None = option(
        None, "examples per optimizer step, over all processes, >= 1", at_least(1), profile=True
    )
    train: TrainConfig | None = None

    def resolved(self, profile: Profile) -> "FinetuneRecipe":
        return _fill(self, profile, "finetune")

    @property
    def columns(self) -> dict:
        names = ("text_column", "text_pair_column", "label_column")
        return {name: getattr(self, name) for name in names}


def _fill(recipe, profile: Profile, stage: str, keep: tuple[str, ...] = ()):
    """`recipe` with the sizes it leaves as None taken from the profile's defaults for
    `stage` (all but `keep`), and a TrainConfig with the profile's steps and learning rate if it
    has none."""
    defaults = profile.defaults(stage)
    steps, lr = defaults.pop("steps"), defaults.pop("lr")
    filled = {k: v for k, v in defaults.items() if k not in keep and getattr(recipe, k) is None}
    if recipe.train is None:
        filled["train"] = TrainConfig(steps=steps, lr=lr)
    return replace(recipe, **filled)


def make_recipe(cls, recipe, profile: Profile, overrides: dict):
    """`recipe` (default: `cls()`) with `overrides` applied, each to the field of that name in
    the recipe or in its TrainConfig, then filled from `profile`. None leaves a profile-sized
    field to the profile (e.g. `steps=None`)."""
    recipe = recipe if recipe is not None else cls()
    ours = {f.name for f in fields(cls)} - {"train"}
    sized_by_profile = {f.name: f.metadata.get("profile", False) for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - ours - set(sized_by_profile))
    if unknown:
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)}: expected fields of {cls.__name__} "
            "or of TrainConfig"
        )
    recipe = replace(recipe, **{k: v for k, v in overrides.items() if k in ours}).resolved(profile)
    training = {
        k: v
        for k, v in overrides.items()
        if k in sized_by_profile and (v is not None or not sized_by_profile[k])
    }
    return replace(recipe, train=replace(recipe.train, **training))


# ---------------------------------------------------------------------------------------------
# Pretraining: corpus -> tokenizer -> loaders -> model -> train
# ---------------------------------------------------------------------------------------------


def pretrain(
    out: str | Path,
    recipe: PretrainRecipe | None = None,
    *,
    profile=None,
    resume: bool | str = False,
    overwrite: bool = True,
    callbacks=(),
    **overrides,
):
    """Pretrain a BertForPreTraining as `recipe` says (fields may also be given by name, e.g.
    `steps=500` or `corpus="notes/*.txt"`); sizes left as None come from the profile.

    `corpus`: "embedded", a hub corpus, or local text (a file, glob, directory or saved
    dataset; 5% of its documents held out for validation). `init_from`: a checkpoint whose
    weights, shape and vocabulary to start from (domain-adaptive pretraining). PretrainRecipe's
    help says what each field does. Writes the model, its tokenizer, metrics.jsonl and
    checkpoint/ into `out`; returns (model, tokenizer, history). `resume`: continue the run in
    `out` (see `train`); `overwrite=False` refuses an `out` that already holds a run (the CLI's
    default).
    """
    recipe = make_recipe(PretrainRecipe, recipe, get_profile(profile), overrides)
    config = recipe.train
    rank, _world_size = setup_distributed()
    micro_batch = per_process_batch(recipe.batch_size, config.grad_accum_steps)
    rundir.check(out, resume, overwrite)  # busy, or a run to keep: say so before any work
    documents, validation = (
        load_documents(
            recipe.corpus, split, recipe.num_documents, config.seed, recipe.comment_share
        )
        for split in ("train", "validation")
    )
    if not documents:
        raise ValueError(f"corpus {recipe.corpus!r} has no training documents")
    if recipe.nsp:
        warn_if_nsp_is_solvable_from_length(documents)
    vocabulary = recipe.init_from if recipe.tokenizer is None else recipe.tokenizer
    tok = get_tokenizer(vocabulary, out, documents, recipe.vocab_size, resume)
    loader = _pretraining_loader(recipe, documents, tok, micro_batch, rank)
    if len(loader.dataset) < recipe.batch_size:
        raise ValueError(
            f"the corpus gives {len(loader.dataset)} pretraining examples, fewer than one batch "
            f"({recipe.batch_size}): use a bigger corpus or a smaller --batch-size"
        )
    eval_loader = None
    if validation:
        eval_loader = _pretraining_loader(recipe, validation, tok, micro_batch, rank=None)
    torch.manual_seed(config.seed)
    model = _pretraining_model(recipe, tok, rank)
    options = {k: v for k, v in asdict(recipe).items() if k != "train"}
    with rundir.hold(out if rank == 0 else None):
        rundir.claim(out, resume, overwrite)
        if rank == 0:  # what it learned from, so `evaluate` never scores it on another corpus
            _record_trained_on(out, recipe.corpus)
        history = trainer.train(
            model, loader, config, eval_loader, callbacks, out, resume, RunRecord(tok, options)
        )
    return model, tok, history


def load_documents(
    corpus: str, split: str, num_documents: int, seed: int = 0, comment_share: float = 0.0
) -> list[list[str]]:
    """Documents (lists of sentences) of `corpus`; the embedded ones at the profile's size (the
    whole corpus with `comment_share` of comment threads), else a real corpus."""
    if corpus in EMBEDDED_CORPORA:
        shares = dict(EMBEDDED_CORPORA[corpus])
        if corpus == "embedded":
            shares["comment_share"] = comment_share
        corpus = embedded_corpus.generate_corpus(seed, num_documents, **shares)
        return corpus.split(split)
    return real.load_corpus(corpus, split)


def get_tokenizer(
    tokenizer_dir, out_dir, documents: list[list[str]], vocab_size: int, resume: bool = False
):
    """The vocabulary a resumed run saved in its checkpoint, else the tokenizer of
    `tokenizer_dir`, else a WordPiece vocabulary trained on `documents`. A new run
    (resume=False) never reuses a vocabulary left in `out_dir` by an earlier run."""
    if resume:
        checkpoint, _ = read_newest_checkpoint(out_dir)
        saved = checkpoint if (checkpoint / "vocab.txt").is_file() else Path(out_dir)
        return Tokenizer.from_pretrained(saved, fast=True)  # older checkpoints: out_dir's
    if tokenizer_dir is not None:
        return Tokenizer.from_pretrained(tokenizer_dir, fast=True)
    texts = [sentence for document in documents for sentence in document]
    return Tokenizer.train(texts, vocab_size, fast=True)


def _pretraining_loader(recipe: PretrainRecipe, documents, tok, micro_batch: int, rank):
    """Training batches for process `rank` (its own masking generator; shuffled and sharded by
    `make_loader`) or, with rank=None, validation batches in a fixed order with fixed masks.
    The same dupe_factor for both: more pairs from held-out documents, a steadier estimate."""
    seed = recipe.train.seed
    masking = torch.Generator().manual_seed(seed + 1 if rank is None else seed + rank)
    collator = PretrainingCollator(tok, recipe.mlm_probability, recipe.whole_word, masking)
    collator = collator if recipe.nsp else _without_nsp(collator)
    dataset = PretrainingDataset.from_documents(
        documents, tok, recipe.max_seq_len, seed=seed, dupe_factor=recipe.dupe_factor
    )
    if rank is None:
        return torch.utils.data.DataLoader(dataset, micro_batch, collate_fn=collator)
    return make_loader(dataset, micro_batch, collator, seed=seed)


def _pretraining_model(recipe: PretrainRecipe, tok, rank: int):
    """A fresh BertForPreTraining of the recipe's shape, or the `init_from` checkpoint's."""
    if recipe.init_from is not None:
        return _load_for_pretraining(recipe.init_from, tok, recipe.model_options, rank)
    shape = BertConfig.preset(recipe.preset, vocab_size=len(tok), **recipe.model_options)
    return BertForPreTraining(shape)


def _load_for_pretraining(init_from, tok, model_options: dict, rank: int):
    """BertForPreTraining with the weights of checkpoint `init_from`, checked against the
    tokenizer's vocabulary; heads the checkpoint lacks start fresh, with a printed note."""
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


def _record_trained_on(out, corpus: str) -> None:
    """trained_on.json: the corpus (a local one by its absolute path; a hub one by name)."""
    source = str(Path(corpus).resolve()) if Path(corpus).exists() else corpus
    record = json.dumps({"corpus": source}, indent=2)
    rundir.publish_files(out, lambda folder: (folder / TRAINED_ON).write_text(record))


def per_process_batch(batch_size: int, grad_accum_steps: int) -> int:
    """Examples per micro-batch per process, for a global batch of `batch_size` per step."""
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
# Fine-tuning: task -> tokenized splits -> bucketed loaders -> classifier -> train -> score
# ---------------------------------------------------------------------------------------------


def pretrain_short_first(out: str | Path, profile=None, seed: int = 0, **train_options) -> Path:
    """The course's pretraining recipe: two phases of short documents (chapter 07, "Short
    documents first"). Returns the final model's directory.

    Phase 1 (`profile.short_steps` steps of `profile.short_seq_len` tokens) trains only on
    comment threads, where "i loved the superb food." puts the stance two words before the
    polarity word: a tiny BERT learns that lookup, and with it which words are praise, in about a
    thousand steps. Phase 2 (`profile.pretrain_steps` at `profile.max_seq_len`) continues from it
    on short documents of one stance each ("embedded-short": "the room was superb. the bed was
    lovely."), where it learns to read a word's stance from the other words of a review. Topic
    documents and full reviews in phase 2 kept that second lookup from forming (chapter 07).
    Both phases use one vocabulary, trained on the whole corpus, in `out`/vocabulary. The phases
    are run directories `out`/1-short and `out`/2-full; `train_options` (callbacks, log_every,
    ...) go to both.
    """
    profile = get_profile(profile)
    out = Path(out)
    if profile.short_steps == 0:
        pretrain(out / "2-full", profile=profile, seed=seed, **train_options)
        return out / "2-full"
    documents = load_documents(
        "embedded", "train", profile.num_documents, seed, profile.comment_share
    )
    get_tokenizer(None, out, documents, profile.vocab_size).save_pretrained(out / "vocabulary")
    short = replace(profile, max_seq_len=profile.short_seq_len, pretrain_steps=profile.short_steps)
    pretrain(
        out / "1-short",
        corpus="embedded-comments",
        tokenizer=out / "vocabulary",
        profile=short,
        seed=seed,
        **train_options,
    )
    pretrain(
        out / "2-full",
        corpus="embedded-short",
        profile=profile,
        init_from=out / "1-short",
        seed=seed,
        **train_options,
    )
    return out / "2-full"


def finetune(
    out: str | Path | None,
    model: str | Path,
    recipe: FinetuneRecipe | None = None,
    *,
    profile=None,
    resume: bool | str = False,
    overwrite: bool = True,
    callbacks=(),
    **overrides,
):
    """Fine-tune a classifier from the pretrained model directory `model` as `recipe` says
    (fields may also be given by name, e.g. `task="embedded-nli"` or `train_file="x.csv"`):
    on a task, on local files (CSV, TSV, JSON lines, Parquet or a saved dataset, with the given
    or guessed columns), or on a hub dataset (online only); `from_scratch`: the same
    architecture and tokenizer, random weights.

    Sentence and sentence-pair tasks train a BertForSequenceClassification, embedded-tagging a
    BertForTokenClassification. The label names go into config.json (id2label / label2id), and
    what the model was trained on into trained_on.json beside it.
    Returns (model, tokenizer, history, results) with results = {split: metrics} (loss,
    accuracy, macro_f1, and token_f1 for tagging) for every split but "train", at the end.
    """
    recipe = make_recipe(FinetuneRecipe, recipe, get_profile(profile), overrides)
    config = recipe.train
    setup_distributed()
    model_dir = _model_dir(model)
    if out is not None:
        _check_out_is_not_model(out, model_dir)
        rundir.check(out, resume, overwrite)
    data = load_finetuning_task(recipe)  # data first: a bad file stops before anything is written
    tok = Tokenizer.from_pretrained(model_dir, fast=True)
    check_vocabulary(tok, model_dir)
    loader, eval_loaders = _finetuning_loaders(recipe, data, tok)
    torch.manual_seed(config.seed)
    classifier = _classifier(model_dir, data, recipe.from_scratch)
    options = dict(
        model=str(model),
        source=json.dumps(data.source, sort_keys=True, default=str),
        from_scratch=recipe.from_scratch,
        max_seq_len=recipe.max_seq_len,
        batch_size=recipe.batch_size,
    )
    with rundir.hold(out):
        if out is not None:
            rundir.claim(out, resume, overwrite)
        validation = eval_loaders.get("validation")
        record = RunRecord(tok, options)
        history = trainer.train(
            classifier, loader, config, validation, callbacks, out, resume, record
        )
    if out is not None:
        trained_on = {**data.source, "kind": data.kind, "max_seq_len": recipe.max_seq_len}
        (Path(out) / TRAINED_ON).write_text(json.dumps(trained_on, indent=2))
    results = {
        split: score(classifier, split_loader, data.label_names)[0]
        for split, split_loader in eval_loaders.items()
    }
    return classifier, tok, history, results


def _check_out_is_not_model(out, model_dir: Path) -> None:
    if Path(out).resolve() == model_dir.resolve():
        raise ValueError(
            f"--out {out} is the --model directory: fine-tuning there would replace the "
            "pretrained model; choose another --out"
        )


def _finetuning_loaders(recipe: FinetuneRecipe, data, tok):
    """(training loader, {split: evaluation loader}), each of length-bucketed batches: little
    padding, so little wasted compute (see data/finetuning.py)."""
    micro_batch = per_process_batch(recipe.batch_size, recipe.train.grad_accum_steps)
    datasets = {split: data.dataset(split, tok, recipe.max_seq_len) for split in data.splits}
    train_set = datasets.pop("train")
    loader = make_bucketed_loader(train_set, micro_batch, shuffle=True, seed=recipe.train.seed)
    eval_batch = 4 * micro_batch  # no gradients to keep: bigger batches, fewer steps
    eval_loaders = {
        split: make_bucketed_loader(dataset, eval_batch, shuffle=False)
        for split, dataset in datasets.items()
    }
    return loader, eval_loaders


def load_finetuning_task(task=EMBEDDED_TASK):
    """The `Task` to fine-tune on. `task`: a FinetuneRecipe (its files if `train_file`, its hub
    `dataset` if given, else its task), a `Task`, the name of one (embedded-sentiment,
    embedded-nli, embedded-tagging, sst2, imdb), or the splits themselves,
    {split: [(text, label), ...]}."""
    recipe = task if isinstance(task, FinetuneRecipe) else FinetuneRecipe(task=task)
    task, columns = recipe.task, recipe.columns
    if recipe.train_file is not None:
        files = (recipe.train_file, recipe.validation_file, recipe.test_file)
        return real.load_labelled_files(*files, **columns)
    if recipe.validation_file is not None or recipe.test_file is not None:
        raise ValueError("--validation-file / --test-file need --train-file as well")
    if recipe.dataset is not None:
        return real.load_hub_task(recipe.dataset, recipe.dataset_config, **columns)
    if isinstance(task, Task):
        return task
    if isinstance(task, dict):  # the splits themselves: {split: [(text, label), ...]}
        num_labels = 1 + max(label for rows in task.values() for _, label in rows)
        return Task.from_rows("splits", task, [str(i) for i in range(num_labels)])
    if task in EMBEDDED_TASKS:
        return EMBEDDED_TASKS[task]()
    names = {"imdb": ["neg", "pos"]}.get(task, ["negative", "positive"])
    return Task.from_rows(task, real.load_task(task), names)


def _classifier(model_dir: Path, data, from_scratch: bool):
    """A sequence or token classifier with `data`'s labels, from `model_dir`'s weights or shape."""
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


# ---------------------------------------------------------------------------------------------
# Evaluating a saved model
# ---------------------------------------------------------------------------------------------


def _as_in_finetune(name: str):
    """The same option (default and help) as FinetuneRecipe's field `name`."""
    same = FinetuneRecipe.__dataclass_fields__[name]
    return field(default=same.default, metadata=same.metadata)


@dataclass
class EvaluateRecipe:
    """What `evaluate_saved` scores a model on. None: what the model was trained on."""

    corpus: str | None = option(
        None, "corpus for a pretrained model (default: the one it was trained on)"
    )
    task: str | None = option(None, "task for a classifier (default: the one it was trained on)")
    file: str | None = option(None, "a labelled file for a classifier (CSV, TSV, JSON lines...)")
    text_column: str | None = _as_in_finetune("text_column")
    text_pair_column: str | None = _as_in_finetune("text_pair_column")
    label_column: str = _as_in_finetune("label_column")
    max_seq_len: int | None = option(
        None,
        "tokens per example, >= 8 (default: a classifier's recorded length, else 128; for a "
        "pretrained model, the profile's)",
        at_least(8),
    )
    batch_size: int = option(32, "examples per batch, >= 1", at_least(1))
    seed: int = option(0, "seed of the masking, 0..2**63-1", seed_type)


def evaluate_saved(model_dir, recipe: EvaluateRecipe, profile=None) -> dict[str, dict]:
    """{split: metrics} of a saved model: a pretrained one on a corpus's validation split (MLM
    and NSP), a classifier on a task's splits or on a labelled file (accuracy, macro-F1; for a
    file the confusion matrix is printed). With no corpus, task or file it uses what the model
    was trained on, and refuses to guess for a model that does not say or learned other data."""
    model_dir = _model_dir(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    trained_on = read_trained_on(model_dir)
    classifier = {"BertForSequenceClassification", "BertForTokenClassification"}
    if classifier & set(config.get("architectures") or []):
        return _evaluate_classifier(model_dir, recipe, trained_on)
    return _evaluate_pretrained(model_dir, recipe, trained_on, get_profile(profile))


def _evaluate_classifier(model_dir, recipe: EvaluateRecipe, trained_on: dict) -> dict:
    if recipe.file is not None:
        data = _file_task(model_dir, recipe, trained_on)
    else:
        task = recipe.task or trained_on.get("task")
        known = (EMBEDDED_TASK, *EMBEDDED_TASKS)
        if task is None or (recipe.task is None and task not in known):
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
    max_seq_len = recipe.max_seq_len or trained_on.get("max_seq_len", UNRECORDED_LENGTH)
    results = {}
    for split in data.splits:
        if split == "train" and len(data.splits) > 1:
            continue
        dataset = data.dataset(split, tokenizer, max_seq_len)
        loader = make_bucketed_loader(dataset, recipe.batch_size, shuffle=False)
        results[split], matrix = score(model, loader, data.label_names)
        if recipe.file is not None:
            print(format_confusion(matrix, data.label_names))
    return results


def _file_task(model_dir, recipe: EvaluateRecipe, trained_on: dict):
    """A labelled file as a one-split Task, its labels numbered as the model numbers them."""
    names = label_names(load_config(model_dir))
    examples = real.read_examples(
        real.read_table(recipe.file),
        recipe.file,
        recipe.text_column or trained_on.get("text_column"),
        recipe.text_pair_column or trained_on.get("text_pair_column"),
        recipe.label_column,
    )
    unknown = sorted({str(label) for label in examples["label"]} - set(names))
    if unknown:
        raise ValueError(f"{recipe.file} has labels {unknown[:5]} the model does not know: {names}")
    examples["label"] = [names.index(str(label)) for label in examples["label"]]
    return Task("file", {"file": examples}, names)


def _evaluate_pretrained(model_dir, recipe: EvaluateRecipe, trained_on: dict, profile) -> dict:
    corpus = recipe.corpus or trained_on.get("corpus")
    if corpus is None or (recipe.corpus is None and corpus not in EMBEDDED_CORPORA):
        raise ValueError(
            f"{model_dir} was not pretrained on the embedded corpus"
            f"{f' but on {corpus}' if corpus else ''}: name the corpus to score it on with "
            "--corpus (e.g. a glob of held-out .txt files)"
        )
    tokenizer = Tokenizer.from_pretrained(model_dir, fast=True)
    check_vocabulary(tokenizer, model_dir)
    model = BertForPreTraining.from_pretrained(model_dir)
    documents = load_documents(corpus, "validation", profile.num_documents, recipe.seed)
    max_seq_len = recipe.max_seq_len or profile.max_seq_len
    dataset = PretrainingDataset.from_documents(documents, tokenizer, max_seq_len, seed=recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    collator = PretrainingCollator(tokenizer, generator=generator)
    loader = torch.utils.data.DataLoader(dataset, recipe.batch_size, collate_fn=collator)
    return {"validation": trainer.evaluate(model, loader)}


# ---------------------------------------------------------------------------------------------
# Using a trained model: score, fill-mask, predict
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def score(model, loader, label_names: list[str]) -> tuple[dict[str, float], list]:
    """({loss, accuracy, macro_f1[, token_f1]}, confusion matrix) of a classifier on `loader`.

    For token classifiers every labelled word counts once (its first WordPiece), and token_f1
    leaves out tag 0, the "other" tag.
    """
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
            max_length=trained_on.get("max_seq_len", UNRECORDED_LENGTH),
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
    vocab_size = load_config(model_dir).vocab_size
    if len(tokenizer) != vocab_size:
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
    profile = get_profile(profile)
    default_root = Path.home() / ".cache" / "bertmini"
    root = Path(cache_dir or os.environ.get("BERTMINI_CACHE") or default_root)
    recipe = asdict(profile)
    recipe["corpus_source"] = hashlib.sha256(
        Path(embedded_corpus.__file__).read_bytes()
    ).hexdigest()[:16]
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
            if path.name not in ("checkpoint", "checkpoint.prev"):
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
