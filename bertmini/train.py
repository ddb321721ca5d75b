"""Training: one loop for pretraining (MLM + NSP) and fine-tuning.

The loop repeats one *training step*:

    for each of `grad_accum_steps` micro-batches:
        loss = model(**batch).loss / grad_accum_steps     # forward, in autocast if mixed precision
        backward(scaler.scale(loss))                      # gradients add up across micro-batches
    unscale the gradients, clip their global norm to `max_grad_norm`
    optimizer step (AdamW) with the learning rate of this step, then zero the gradients

What makes it trustworthy:

- **Learning-rate schedule**: linear warmup from 0 to `lr`, then linear decay to 0
  (`linear_warmup_decay`). BERT's recipe; warmup keeps Adam's early, noisy steps small.
- **AdamW** with weight decay on weight matrices only: biases and LayerNorm parameters are
  offsets and scales, and pulling them towards 0 only hurts.
- **Precision** chosen by device (`bertmini.device.choose_precision`): bf16 autocast on recent
  GPUs, fp16 autocast + `GradScaler` on older ones (the scaler multiplies the loss so small
  gradients survive fp16, and skips a step whose gradients overflowed), fp32 on the CPU.
- **Checkpoints** hold everything a run's future depends on: weights, optimizer moments, the
  gradient scaler, every random generator and the exact position in the data. They are written
  into a temporary directory and renamed into place, so a process killed at any moment leaves a
  complete checkpoint behind, and `resume=True` continues as if nothing had happened (bitwise on
  the CPU). `bertmini.hub` writes and reads them.
- **Faults**: a NaN or infinite loss or gradient stops the run with `TrainingDiverged`, naming the
  step and the last good checkpoint. A checkpoint is never written from non-finite weights.
- **Speed**: nothing inside the step waits for the GPU. Metrics stay on the device and are read
  every `log_every` steps in one transfer.
- **Distributed**: under `torchrun`, each process trains a `DistributedDataParallel` copy of the
  model on its own shard of every batch (`make_loader` uses a `DistributedSampler`); gradients are
  averaged across processes; only rank 0 writes logs and checkpoints.

Run directory (`out_dir`): the final model (`config.json`, `model.safetensors`, and `vocab.txt`
when a tokenizer is given), `metrics.jsonl` (one JSON line per step), `checkpoint/` (the latest
checkpoint, for `resume`) and `checkpoint.prev/` (the one before: the fallback if the latest is
ever unreadable). The run holds a lock on the directory while it works (`bertmini.rundir`).
Ctrl-C or SIGTERM stop the run at the end of a step, after a checkpoint. The loop knows nothing
of plots or progress bars: callbacks get the history every `log_every` steps (`ProgressBar` is one).
"""

import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from . import rundir
from .device import PRECISIONS, autocast_dtype, choose_device, choose_precision, compile_model
from .guard import refuse_if_checked
from .hub import (
    CHECKPOINT,
    PREVIOUS,
    TEMPORARY,
    load_weights,
    read_newest_checkpoint,
    save_checkpoint,
    save_model,
)
from .options import at_least, number, option
from .options import seed as seed_type
from .rundir import RunStateError, publish_files

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Everything the loop needs to know besides the model and the data."""

    steps: int = option(1000, "optimizer steps in the whole run, >= 1", at_least(1), profile=True)
    lr: float = option(
        1e-4, "peak learning rate (at the end of warmup), > 0", number(0), profile=True
    )
    warmup_steps: int | None = option(
        None, "steps of linear warmup, 0..--steps (default: 10% of --steps)", at_least(0)
    )
    weight_decay: float = option(
        0.01, "AdamW weight decay on weight matrices, >= 0", number(0, low_included=True)
    )
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = option(1e-6, "AdamW's epsilon, > 0", number(0))
    max_grad_norm: float | None = option(1.0, "clip the gradient norm to this, > 0", number(0))
    grad_accum_steps: int = option(
        1,
        "micro-batches per optimizer step: the same batch in less memory, >= 1",
        at_least(1),
        flag="--grad-accum",
    )
    precision: str = option(
        "auto",
        "auto: bf16 on GPUs that support it, fp16 (+ gradient scaler) on older GPUs such as the "
        "T4, fp32 on CPU",
        choices=["auto", *PRECISIONS],
    )
    compile: bool = option(False, "torch.compile the model (faster on a GPU after a warm-up)")
    seed: int = option(0, "random seed, 0..2**63-1", seed_type)
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps")
    log_every: int = option(
        10, "steps between metric reads, progress updates and callbacks, >= 1", at_least(1)
    )
    eval_every: int | None = option(
        None, "steps between evaluations, >= 1 (default: at the end only)", at_least(1)
    )
    checkpoint_every: int | None = option(  # None (Python only): at the end only
        200,
        "steps between checkpoints in OUT/checkpoint, >= 1; Ctrl-C also writes one",
        at_least(1),
    )
    progress: bool = option(True, "hide the progress bar")  # --no-progress
    # After the last step, keep out_dir/checkpoint/ (optimizer moments: twice the model's size),
    # so the finished run can be continued. The CLI keeps only the model unless asked: a user's
    # disk fills with runs; a notebook looks inside the checkpoint it just wrote.
    keep_checkpoint: bool = option(
        True,
        "keep OUT/checkpoint (optimizer state, about twice the model) when the run finishes, "
        "to continue it later with --resume; by default only the model is kept",
        flag="--keep-optimizer",
        cli_default=False,
    )

    def __post_init__(self):
        positive = ("steps", "grad_accum_steps", "log_every")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr!r}")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(
                f"TrainConfig.warmup_steps must be between 0 and steps={self.steps}, "
                f"got {self.warmup_steps!r}"
            )
        for name in ("eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"TrainConfig.{name} must be None or >= 1, got {value!r}")
        if not isinstance(self.weight_decay, (int, float)) or not self.weight_decay >= 0:
            raise ValueError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(
                f"TrainConfig.max_grad_norm must be > 0 (or None: no clipping), "
                f"got {self.max_grad_norm!r}"
            )
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ValueError(
                f"TrainConfig.seed must be an integer in [0, 2**63), got {self.seed!r}"
            )
        self.betas = tuple(self.betas)

    @property
    def warmup(self) -> int:
        return self.warmup_steps if self.warmup_steps is not None else round(0.1 * self.steps)


class TrainingDiverged(RuntimeError):
    """The loss or the gradients became NaN or infinite."""


# ---------------------------------------------------------------------------------------------
# The learning-rate schedule and the optimizer
# ---------------------------------------------------------------------------------------------


def linear_warmup_decay(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak learning rate for optimizer step `step` (0-based).

    Rises linearly over the first `warmup_steps` steps (step 0 gets 1/warmup_steps, step
    warmup_steps-1 the full rate), then falls linearly to reach 0 just after the last step.
    No step is wasted at a learning rate of exactly 0.
    """
    refuse_if_checked("linear_warmup_decay")  # see bertmini.guard
    if not 0 <= warmup_steps <= total_steps or total_steps < 1:
        raise ValueError(
            f"need 0 <= warmup_steps <= total_steps and total_steps >= 1, "
            f"got warmup_steps={warmup_steps}, total_steps={total_steps}"
        )
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices (linear and embedding weights) only, not on the 1-d
    parameters (biases, LayerNorm scales and shifts)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    decayed = [p for p in parameters if p.dim() >= 2]
    not_decayed = [p for p in parameters if p.dim() < 2]
    # One kernel for the whole update instead of several per parameter (on a CPU too: a mini
    # BERT's AdamW step took 40 ms fused against 130 ms, one thread).
    fused = parameters[0].device.type in ("cuda", "cpu")
    return torch.optim.AdamW(
        [
            {"params": decayed, "weight_decay": config.weight_decay},
            {"params": not_decayed, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=config.betas,
        eps=config.eps,
        fused=fused,
    )


# ---------------------------------------------------------------------------------------------
# Data: a deterministic order that can be resumed mid-epoch
# ---------------------------------------------------------------------------------------------


def make_loader(
    dataset: Dataset,
    batch_size: int,
    collate_fn: Callable | None = None,
    seed: int = 0,
    shuffle: bool = True,
    drop_last: bool = True,
) -> DataLoader:
    """A DataLoader whose order is a function of (seed, epoch) only, sharded across processes.

    `batch_size` is per process. A `DistributedSampler` works for a single process too (one
    replica): it shuffles with its own generator seeded by seed + epoch, which is what makes
    the data position resumable. No worker processes: the collator's random masking then runs
    here, with generator states we can checkpoint.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    world_size = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
    )


class ResumableBatches:
    """Endless batches from `loader`, epoch after epoch, that know where they are.

    `epoch` and `batch_index` (batches already taken from this epoch) are the data position a
    checkpoint stores. Starting at a saved position replays the sampler for that epoch and skips
    the batches already seen.
    """

    def __init__(self, loader: Iterable, epoch: int = 0, batch_index: int = 0):
        self.loader = loader
        self.epoch = epoch
        self.batch_index = batch_index
        self._iterator = self._start_epoch()

    def _start_epoch(self) -> Iterator:
        for sampler in (
            getattr(self.loader, "sampler", None),
            getattr(self.loader, "batch_sampler", None),
        ):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(self.epoch)  # the order of this epoch = f(seed, epoch)
        iterator = iter(self.loader)
        for _ in range(self.batch_index):  # resuming: skip what the interrupted run had seen
            next(iterator, None)
        return iterator

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        for _attempt in range(2):
            batch = next(self._iterator, None)
            if batch is not None:
                self.batch_index += 1
                return batch
            self.epoch, self.batch_index = self.epoch + 1, 0
            self._iterator = self._start_epoch()
        raise ValueError(
            "the training loader yields no batches: is the dataset smaller than a batch?"
        )


def move_to_device(batch: dict, device: torch.device) -> dict:
    """Every tensor of the batch to `device`; non_blocking lets the copy overlap GPU work."""
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


# ---------------------------------------------------------------------------------------------
# Metrics, kept on the device
# ---------------------------------------------------------------------------------------------


def labelled_targets(labels: torch.Tensor, num_labelled: int) -> torch.Tensor:
    """The labels != -100 of (batch, seq) `labels`, in row-major order: (num_labelled,).

    Same as `labels[labels != -100]`, but without asking the GPU how many there are (boolean
    indexing waits for that answer); the model's `mlm_logits.shape[0]` already tells us.
    """
    flat = labels.reshape(-1)
    unlabelled_last = torch.argsort((flat == -100).to(torch.int32), stable=True)
    return flat[unlabelled_last[:num_labelled]]


def batch_metrics(out, batch: dict) -> dict[str, torch.Tensor]:
    """0-d float tensors on the device: losses, and counts of correct predictions."""
    metrics = {"loss": out.loss.detach().float()}
    device = out.loss.device
    for name in ("mlm_loss", "nsp_loss"):
        if getattr(out, name, None) is not None:
            metrics[name] = getattr(out, name).detach().float()
    labels = batch.get("labels")
    mlm_logits = getattr(out, "mlm_logits", None)
    if mlm_logits is not None and labels is not None and labels.dim() == 2:
        if mlm_logits.dim() == 3:  # (batch, seq, vocab): logits at every position
            labelled = labels != -100
            correct = ((mlm_logits.argmax(-1) == labels) & labelled).sum()
            count = labelled.sum()
        else:  # (num_labelled, vocab): logits at the masked positions only
            targets = labelled_targets(labels, mlm_logits.shape[0])
            correct = (mlm_logits.argmax(-1) == targets).sum()
            count = torch.tensor(mlm_logits.shape[0], device=device)
        metrics["mlm_correct"], metrics["mlm_count"] = correct.float(), count.float()
    nsp_logits = getattr(out, "nsp_logits", None)
    if nsp_logits is not None and batch.get("next_sentence_label") is not None:
        nsp_labels = batch["next_sentence_label"]
        metrics["nsp_correct"] = (nsp_logits.argmax(-1) == nsp_labels).sum().float()
        metrics["nsp_count"] = torch.tensor(float(nsp_labels.numel()), device=device)
    logits = getattr(out, "logits", None)
    if logits is not None and labels is not None and labels.dim() == 1:
        metrics["correct"] = (logits.argmax(-1) == labels).sum().float()
        metrics["count"] = torch.tensor(float(labels.numel()), device=device)
    if "attention_mask" in batch:
        metrics["tokens"] = batch["attention_mask"].sum().float()
    return metrics


def loss_weights(micro_batches: Sequence[dict]) -> list[dict[str, torch.Tensor | float]]:
    """Per micro-batch, the weight of each of its losses in the step's mean loss.

    A loss averaged over examples (NSP, classification) weighs its share of the step's
    examples; the MLM loss, averaged over labelled tokens, its share of the step's labelled
    tokens. A micro-batch without any masked token then weighs 0 in the MLM loss, however the
    masking fell. The token counts stay on the device (no wait for the GPU).
    """
    examples = [len(next(iter(batch.values()))) for batch in micro_batches]
    labelled = [_labelled_tokens(batch) for batch in micro_batches]
    total = sum(labelled).clamp(min=1) if all(n is not None for n in labelled) else None
    return [
        {
            "examples": n / sum(examples),
            "mlm_loss": None if total is None else tokens / total,
        }
        for n, tokens in zip(examples, labelled, strict=True)
    ]


def _labelled_tokens(batch: dict) -> torch.Tensor | None:
    labels = batch.get("labels")
    if labels is None or labels.dim() != 2:
        return None
    return (labels != -100).sum()


def weighted_loss(out, weights: dict) -> torch.Tensor:
    """This micro-batch's share of the step's loss (see `loss_weights`).

    `out.loss` weighted by examples, with its MLM part re-weighted by labelled tokens:
    mlm_loss * w_tokens + (loss - mlm_loss) * w_examples.
    """
    loss = out.loss * weights["examples"]
    if getattr(out, "mlm_loss", None) is not None and weights["mlm_loss"] is not None:
        loss = loss + out.mlm_loss * (weights["mlm_loss"] - weights["examples"])
    return loss


def _add(total: dict, new: dict, weights: dict | float = 1.0) -> None:
    """Add `new` into `total`; losses weighted (a dict: the MLM loss by its own weight)."""
    if not isinstance(weights, dict):
        weights = {"examples": weights, "mlm_loss": weights}
    for key, value in new.items():
        if key.endswith("loss"):
            weight = weights["mlm_loss"] if key == "mlm_loss" else weights["examples"]
            value = value * (weights["examples"] if weight is None else weight)
        total[key] = total[key] + value if key in total else value


def summarize(sums: dict[str, float], num_batches: int = 1) -> dict[str, float]:
    """Host-side sums -> readable metrics (losses averaged, accuracies as fractions)."""
    row = {k: v / num_batches for k, v in sums.items() if k.endswith("loss")}
    for prefix in ("mlm_", "nsp_", ""):
        if sums.get(prefix + "count"):
            row[prefix + "accuracy"] = sums[prefix + "correct"] / sums[prefix + "count"]
    return row


# ---------------------------------------------------------------------------------------------
# The training step
# ---------------------------------------------------------------------------------------------


def training_step(
    model: nn.Module,
    micro_batches: Sequence[dict],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    precision: str = "fp32",
    max_grad_norm: float | None = 1.0,
) -> dict[str, torch.Tensor]:
    """One optimizer step over `len(micro_batches)` micro-batches (gradient accumulation).

    Each micro-batch is a dict of tensors already on the model's device. Returns the step's
    metrics as 0-d tensors on the device (reading them would make the CPU wait for the GPU).
    """
    refuse_if_checked("training_step")  # see bertmini.guard
    device_type = next(model.parameters()).device.type
    ddp = getattr(model, "_orig_mod", model)  # torch.compile wraps the DDP module
    metrics: dict[str, torch.Tensor] = {}
    step_loss = 0.0
    weights_per_batch = loss_weights(micro_batches)
    for i, (batch, weights) in enumerate(zip(micro_batches, weights_per_batch, strict=True)):
        # DDP all-reduces gradients on every backward; only the last micro-batch needs it.
        last = i == len(micro_batches) - 1
        no_sync = ddp.no_sync() if isinstance(ddp, DistributedDataParallel) and not last else None
        with no_sync or nullcontext():
            dtype = autocast_dtype(precision)
            with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
                out = model(**batch)
            # The weighted losses add up to the step's mean loss over all its examples and
            # labelled tokens, so the summed gradients are the gradient of that mean.
            loss = weighted_loss(out, weights)
            scaler.scale(loss).backward()
        step_loss = step_loss + loss.detach().float()
        _add(metrics, batch_metrics(out, batch), weights)
    metrics["loss"] = step_loss

    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    grad_norm = nn.utils.clip_grad_norm_(
        model.parameters(), max_grad_norm if max_grad_norm else float("inf")
    )
    scaler.step(optimizer)  # fp16: skipped if the gradients overflowed (inf or NaN)
    scaler.update()  # fp16: halve the scale after an overflow, grow it after a long calm
    optimizer.zero_grad(set_to_none=True)
    metrics["grad_norm"] = grad_norm.detach().float()
    return metrics


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    device: torch.device | str | None = None,
    precision: str = "fp32",
    max_batches: int | None = None,
) -> dict[str, float]:
    """Average loss and accuracies of `model` over `loader` (in eval mode, no dropout)."""
    refuse_if_checked("evaluate")  # see bertmini.guard
    model = unwrap(model)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    num_batches = 0
    dtype = autocast_dtype(precision)
    for batch in loader:
        batch = move_to_device(batch, device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = model(**batch)
        # Weighted by examples (the MLM loss by labelled tokens): a mean over the whole set.
        counts = {"examples": len(next(iter(batch.values()))), "mlm_loss": _labelled_tokens(batch)}
        _add(sums, batch_metrics(out, batch), counts)
        _add(sums, {"examples": torch.tensor(float(counts["examples"]))})
        if counts["mlm_loss"] is not None:
            _add(sums, {"mlm_loss_count": counts["mlm_loss"].float()})
        num_batches += 1
        if max_batches is not None and num_batches >= max_batches:
            break
    model.train(was_training)
    if num_batches == 0:
        raise ValueError("the evaluation loader yields no batches")
    host = {k: v.item() for k, v in sums.items()}
    host.pop("tokens", None)
    return _mean_metrics(host)


def _mean_metrics(sums: dict[str, float]) -> dict[str, float]:
    """Weighted sums (see `evaluate`) -> means; the MLM loss is left out if nothing was masked."""
    examples, labelled = sums.pop("examples"), sums.pop("mlm_loss_count", None)
    row = summarize({k: v for k, v in sums.items() if not k.endswith("loss")})
    for key in ("loss", "nsp_loss"):
        if key in sums:
            row[key] = sums[key] / examples
    if "mlm_loss" in sums:
        row.pop("loss", None)
        if labelled:
            row["mlm_loss"] = sums["mlm_loss"] / labelled
            row["loss"] = row["mlm_loss"] + row.get("nsp_loss", 0.0)
    losses = {k: row.pop(k) for k in ("loss", "mlm_loss", "nsp_loss") if k in row}
    return {**losses, **row}


# ---------------------------------------------------------------------------------------------
# Random state: everything a run's future depends on
# ---------------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and every GPU) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state(extra_generator: torch.Generator | None = None) -> dict:
    """All generator states, as plain Python and tensors (loadable with weights_only=True)."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (
            name,
            torch.from_numpy(keys.astype(np.int64)),
            position,
            has_gauss,
            cached_gaussian,
        ),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if extra_generator is not None:
        state["collator"] = extra_generator.get_state()
    return state


def set_rng_state(state: dict, extra_generator: torch.Generator | None = None) -> None:
    """Inverse of `get_rng_state`."""
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state(
        (name, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian)
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if extra_generator is not None and "collator" in state:
        extra_generator.set_state(state["collator"])


def collator_generator(loader: Iterable) -> torch.Generator | None:
    """The torch.Generator the loader's collator masks with, if it has one."""
    generator = getattr(getattr(loader, "collate_fn", None), "generator", None)
    return generator if isinstance(generator, torch.Generator) else None


# ---------------------------------------------------------------------------------------------
# Wrapped models and the metrics file
# ---------------------------------------------------------------------------------------------


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside torch.compile and DistributedDataParallel wrappers."""
    model = getattr(model, "_orig_mod", model)
    model = model.module if isinstance(model, DistributedDataParallel) else model
    return getattr(model, "_orig_mod", model)


def _write_metrics(path: Path, rows: list[dict], append: bool) -> None:
    """Append rows to metrics.jsonl, or replace it whole (renamed into place)."""
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    if append:
        with open(path, "a") as f:
            f.write(lines)
    else:
        publish_files(path.parent, lambda folder: (folder / path.name).write_text(lines))


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a `metrics.jsonl` file (a run directory is accepted too); blank lines are
    skipped, and a line that is not a JSON object is refused with its line number."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"no metrics file at {path}: training with out_dir=... writes metrics.jsonl there"
        )
    history = []
    for line_number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path}:{line_number} is not valid JSON ({error.msg}): {line[:80]!r}"
            ) from None
        if not isinstance(record, dict):
            raise ValueError(
                f"{path}:{line_number} must be a JSON object of metrics, got {line[:80]!r}"
            )
        history.append(record)
    return history


# ---------------------------------------------------------------------------------------------
# Distributed (torchrun)
# ---------------------------------------------------------------------------------------------


def setup_distributed() -> tuple[int, int]:
    """Join the process group torchrun describes in the environment. Returns (rank, world_size).

    A plain `python` run (no WORLD_SIZE, or 1) is a world of one and needs no group. gloo
    carries the gradients between CPU processes, nccl between GPUs.
    """
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def _is_sharded(loader: Iterable) -> bool:
    """Does each process get its own share of `loader`'s batches?"""
    if isinstance(getattr(loader, "sampler", None), DistributedSampler):
        return True
    return getattr(getattr(loader, "batch_sampler", None), "num_replicas", 1) > 1


def _training_device(config: TrainConfig) -> torch.device:
    device = choose_device(config.device)
    if dist.is_initialized() and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """What a run directory records beside the weights: the tokenizer (its vocab.txt goes into
    every checkpoint and the final model) and the options that made the data, which a resume
    compares with the saved ones, together with the TrainConfig."""

    tokenizer: object = None
    options: dict = field(default_factory=dict)


def train(
    model: nn.Module,
    train_loader: Iterable,
    config: TrainConfig,
    eval_loader: Iterable | None = None,
    callbacks: Sequence[Callable[[list[dict]], object]] = (),
    out_dir: str | Path | None = None,
    resume: bool | str = False,
    record: RunRecord | None = None,
) -> list[dict]:
    """Train `model` for `config.steps` optimizer steps. Returns the metric history.

    The history has one dict per step: step, epoch, lr, loss (+ mlm_loss, nsp_loss),
    mlm_accuracy / nsp_accuracy (pretraining) or accuracy (classification), grad_norm,
    tokens_per_s, and eval_* entries at the steps where `eval_loader` was evaluated.
    `callbacks` are called with the history every `log_every` steps (a live plot, the progress
    bar that `config.progress` adds): the loop itself knows nothing of them.

    With `out_dir`, the run owns that directory (a lock: see rundir.py) and writes the final
    model (with `record.tokenizer`, if given), `metrics.jsonl` and checkpoints there. Ctrl-C or
    SIGTERM then writes a checkpoint at the end of the current step and raises
    `TrainingInterrupted` (a second Ctrl-C stops at once). `resume=True` continues from the newest
    readable checkpoint, refusing if `record.options` or `config` differ from the saved ones;
    `resume="with-changes"` accepts the differences (e.g. a lower learning rate on purpose).
    Raises `TrainingDiverged` if the loss or the gradients stop being finite.
    """
    _check_resume(resume, out_dir)
    with rundir.hold(out_dir), _StopAtStepBoundary(enabled=out_dir is not None) as stop:
        run = _Run(model, train_loader, config, out_dir, record or RunRecord())
        run.restore(resume)
        bar = ProgressBar(config.steps, run.step) if config.progress and run.rank == 0 else None
        callbacks = [*callbacks, *([bar] if bar else [])]
        try:
            while run.step < config.steps:
                run.train_step()
                stopping = stop.requested  # asked during this step: checkpoint, then stop
                if run.due(config.log_every):
                    run.flush()
                if eval_loader is not None and run.due(config.eval_every):
                    run.evaluate(eval_loader)
                if out_dir is not None and (run.due(config.checkpoint_every) or stopping):
                    run.checkpoint()
                run.write_metrics()
                if run.due(config.log_every):
                    run.log(callbacks)
                if stopping:
                    raise TrainingInterrupted(
                        f"interrupted after step {run.step}; the checkpoint in "
                        f"{run.last_checkpoint[0]} holds it: continue with resume (--resume)"
                    )
            run.flush()
        finally:
            if bar is not None:
                bar.close()
        run.finish()
    return run.history


class ProgressBar:
    """A callback: a tqdm bar over the run's steps, showing the latest loss and accuracies.
    TQDM_DISABLE=1 hides it, as every tqdm bar."""

    def __init__(self, total_steps: int, first_step: int = 0):
        self.bar = tqdm(total=total_steps, initial=first_step, desc="train", dynamic_ncols=True)

    def __call__(self, history: list[dict]) -> None:
        row = history[-1]
        self.bar.update(row["step"] - self.bar.n)
        keys = ("loss", "mlm_accuracy", "nsp_accuracy", "accuracy", "lr")
        postfix = {k.replace("_accuracy", "_acc"): f"{row[k]:.3g}" for k in keys if k in row}
        self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        self.bar.close()


def _check_resume(resume: bool | str, out_dir) -> None:
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir: the directory of the run to continue")
    if resume not in (False, True, RESUME_WITH_CHANGES):
        raise ValueError(f"resume must be True, False or {RESUME_WITH_CHANGES!r}, got {resume!r}")


RESUME_WITH_CHANGES = "with-changes"
# TrainConfig fields that do not change what is computed: a resume may change them freely.
NOT_COMPARED = {
    "log_every",
    "eval_every",
    "checkpoint_every",
    "progress",
    "device",
    "compile",
    "keep_checkpoint",
}


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the run at a step boundary, after writing a checkpoint."""


class _StopAtStepBoundary:
    """Ctrl-C / SIGTERM ask the loop to stop after the current step (`requested`); a second
    Ctrl-C stops at once. Only in the main thread of a single process (torchrun handles its
    own signals), and only when there is a run directory to checkpoint into."""

    def __init__(self, enabled: bool):
        self.enabled = (
            enabled
            and threading.current_thread() is threading.main_thread()
            and not dist.is_initialized()
        )
        self.requested, self._previous = False, {}

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"\n{signal.Signals(signum).name}: stopping after this step, with a checkpoint "
            "(Ctrl-C again to stop at once)",
            file=sys.stderr,
        )

    def __enter__(self):
        if self.enabled:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class _Run:
    """One training run's moving parts: `train` above reads as the steps of its loop."""

    def __init__(self, model, train_loader, config, out_dir, record: RunRecord):
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world_size = dist.get_world_size() if dist.is_initialized() else 1
        self.config, self.loader, self.tokenizer = config, train_loader, record.tokenizer
        self.out_dir = Path(out_dir) if out_dir is not None else None
        compared = {k: v for k, v in asdict(config).items() if k not in NOT_COMPARED}
        self.options = {**record.options, **compared}
        self.device = _training_device(config)
        self.precision = choose_precision(self.device, config.precision)
        if self.world_size > 1 and not _is_sharded(train_loader):
            warnings.warn(
                "distributed training with a loader that is not sharded: every process sees the "
                "same batches. Build it with bertmini.train.make_loader.",
                stacklevel=3,
            )
        seed_everything(config.seed + self.rank)
        self.model = model.to(self.device)
        model.train()
        self.optimizer = make_optimizer(model, config)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.generator = collator_generator(train_loader)
        self.step, self.history, self.pending = 0, [], []
        self.last_checkpoint: tuple[Path | None, int | None] = (None, None)
        self.metrics_file = (
            self.out_dir / "metrics.jsonl" if self.out_dir is not None and self.rank == 0 else None
        )

    def restore(self, resume: bool | str) -> None:
        """Start at step 0, or where the newest checkpoint left off (exact resume)."""
        state, self.resumed = None, bool(resume)
        if resume:
            checkpoint, state = read_newest_checkpoint(self.out_dir)
            self._compare_options(state.get("options"), resume == RESUME_WITH_CHANGES)
            load_weights(self.model, checkpoint)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scaler.load_state_dict(state["scaler"])
            self.step, self.history = state["step"], list(state["history"])
            self.last_checkpoint = (checkpoint, self.step)
        position = (state["epoch"], state["batch_index"]) if state else (0, 0)
        self.data = ResumableBatches(self.loader, *position)
        if state:  # after ResumableBatches skipped the seen batches (that drew)
            rng_states = state["rng"]
            rng = rng_states[self.rank] if self.rank < len(rng_states) else rng_states[0]
            set_rng_state(rng, self.generator)
        self.train_model = self.model
        if self.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=device_ids)
        if self.config.compile:
            self.train_model = compile_model(self.train_model)
        if self.metrics_file is not None:  # rewritten: drops rows logged after the checkpoint
            _write_metrics(self.metrics_file, self.history, append=False)
        self.rows_written = len(self.history)
        self.clock = time.perf_counter()

    def _compare_options(self, saved: dict | None, allow_changes: bool) -> None:
        changed = rundir.differences(saved or {}, self.options)
        if changed and not allow_changes:
            raise RunStateError(
                f"{self.out_dir} was trained with other options ({'; '.join(changed)}): resume "
                "with the same options, or with --resume-with-changes (resume='with-changes') "
                "if the change is intended"
            )
        if changed and self.rank == 0:
            print(f"resuming with changed options: {'; '.join(changed)}", file=sys.stderr)

    def due(self, every: int | None) -> bool:
        """At every `every` steps (None: never), and at the last step."""
        return self.step == self.config.steps or bool(every and self.step % every == 0)

    def log(self, callbacks: Sequence[Callable[[list[dict]], object]]) -> None:
        """Hand the history to the callbacks (the main process only)."""
        if self.rank == 0:
            for callback in callbacks:
                callback(self.history)

    def train_step(self) -> None:
        """One optimizer step; its metrics stay on the device until `flush`."""
        config = self.config
        lr = config.lr * linear_warmup_decay(self.step, config.warmup, config.steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        micro_batches = [
            move_to_device(next(self.data), self.device) for _ in range(config.grad_accum_steps)
        ]
        metrics = training_step(
            self.train_model,
            micro_batches,
            self.optimizer,
            self.scaler,
            self.precision,
            config.max_grad_norm,
        )
        self.step += 1
        self.pending.append((self.step, self.data.epoch, lr, metrics))

    def flush(self) -> None:
        """Read the pending steps' metrics from the device (one transfer), check them, log."""
        if not self.pending:
            return
        keys = list(self.pending[0][3])
        values = torch.stack([torch.stack([m[k] for k in keys]) for *_, m in self.pending])
        values = values.tolist()
        elapsed = max(time.perf_counter() - self.clock, 1e-9)
        tokens = sum(dict(zip(keys, v, strict=True)).get("tokens", 0.0) for v in values)
        new_rows = []
        for (step, epoch, lr, _), row_values in zip(self.pending, values, strict=True):
            sums = dict(zip(keys, row_values, strict=True))
            row = {"step": step, "epoch": epoch, "lr": lr, **summarize(sums)}
            row["grad_norm"] = sums["grad_norm"]
            row["tokens_per_s"] = tokens * self.world_size / elapsed
            new_rows.append(row)
        self.pending.clear()
        self.clock = time.perf_counter()
        for row in new_rows:
            _check_finite(row, self.scaler.is_enabled(), *self.last_checkpoint)
        self.history.extend(new_rows)

    def evaluate(self, eval_loader: Iterable) -> None:
        self.flush()
        metrics = _evaluate_quietly(self.model, eval_loader, self.device, self.precision)
        self.history[-1].update(metrics)
        self.clock = time.perf_counter()  # evaluation time is not training throughput

    def checkpoint(self) -> None:
        """Everything the run's future depends on, into out_dir/checkpoint (atomically)."""
        self.flush()
        _check_weights_finite(self.model, self.step, *self.last_checkpoint)
        rng_states = [get_rng_state(self.generator)]
        if self.world_size > 1:  # each process draws its own dropout masks: keep them all
            rng_states = [None] * self.world_size
            dist.all_gather_object(rng_states, get_rng_state(self.generator))
        if self.rank == 0:
            state = {
                "step": self.step,
                "epoch": self.data.epoch,
                "batch_index": self.data.batch_index,
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": rng_states,
                "history": self.history,
                "config": asdict(self.config),
                "options": self.options,
            }
            save_checkpoint(self.out_dir, self.model, state, self.tokenizer)
        _barrier()
        self.last_checkpoint = (self.out_dir / CHECKPOINT, self.step)
        self.clock = time.perf_counter()

    def write_metrics(self) -> None:
        """Append the new rows (after evaluation, which adds to the last row)."""
        if self.metrics_file is not None and len(self.history) > self.rows_written:
            _write_metrics(self.metrics_file, self.history[self.rows_written :], append=True)
            self.rows_written = len(self.history)

    def finish(self) -> None:
        """The final model (and tokenizer) in out_dir; the checkpoint goes unless kept."""
        if self.out_dir is not None and self.rank == 0:
            # A resumed run's vocabulary is the one already there: it is not written again.
            keep_vocab = self.resumed and (self.out_dir / "vocab.txt").is_file()
            save_model(self.out_dir, self.model, None if keep_vocab else self.tokenizer)
            if not self.config.keep_checkpoint:
                for name in (CHECKPOINT, PREVIOUS, TEMPORARY):
                    shutil.rmtree(self.out_dir / name, ignore_errors=True)
        _barrier()


def _evaluate_quietly(model, loader, device, precision) -> dict[str, float]:
    """Evaluate without touching the training run's random generators (exact resume)."""
    state = get_rng_state()
    metrics = evaluate(model, loader, device, precision)
    set_rng_state(state)
    return {f"eval_{k}": v for k, v in metrics.items()}


def _last_good(path: Path | None, step: int | None) -> str:
    if path is None:
        return (
            "No checkpoint was written before this step (set out_dir and checkpoint_every to "
            "keep one)."
        )
    return f"The last good checkpoint is {path} (step {step}); it is kept: resume from it."


def _check_finite(row: dict, scaler_skips_bad_grads: bool, path, checkpoint_step) -> None:
    bad = [k for k in ("loss", "mlm_loss", "nsp_loss") if k in row and not math.isfinite(row[k])]
    if not math.isfinite(row["grad_norm"]) and not scaler_skips_bad_grads:
        bad.append("gradient norm")  # with fp16, an overflow is the scaler's business: it skips
    if bad:
        what = ", ".join(f"{k} = {row.get(k, row['grad_norm'])}" for k in bad)
        raise TrainingDiverged(
            f"training diverged at step {row['step']}: {what}. {_last_good(path, checkpoint_step)} "
            "Try a lower learning rate, longer warmup, or precision='fp32'."
        )


def _check_weights_finite(model: nn.Module, step: int, path, checkpoint_step) -> None:
    finite = torch.stack([p.detach().isfinite().all() for p in model.parameters()]).all()
    if not finite.item():
        raise TrainingDiverged(
            f"training diverged: the weights at step {step} are not finite, so no checkpoint was "
            f"written. {_last_good(path, checkpoint_step)}"
        )
