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
- **Precision** chosen by device (`bertmini.course.choose_precision`): bf16 autocast on recent
  GPUs, fp16 autocast + `GradScaler` on older ones (the scaler multiplies the loss so small
  gradients survive fp16, and skips a step whose gradients overflowed), fp32 on the CPU.
- **Checkpoints** hold everything a run's future depends on: weights, optimizer moments, the
  gradient scaler, every random generator and the exact position in the data. They are written
  into a temporary directory and renamed into place, so a process killed at any moment leaves a
  complete checkpoint behind, and `resume=True` continues as if nothing had happened (bitwise on
  the CPU).
- **Faults**: a NaN or infinite loss or gradient stops the run with `TrainingDiverged`, naming the
  step and the last good checkpoint. A checkpoint is never written from non-finite weights.
- **Speed**: nothing inside the step waits for the GPU. Metrics stay on the device and are read
  every `log_every` steps in one transfer.
- **Distributed**: under `torchrun`, each process trains a `DistributedDataParallel` copy of the
  model on its own shard of every batch (`make_loader` uses a `DistributedSampler`); gradients are
  averaged across processes; only rank 0 writes logs and checkpoints.

Run directory (`out_dir`): the final model (`config.json`, `model.safetensors`), `metrics.jsonl`
(one JSON line per step) and `checkpoint/` (the latest checkpoint, for `resume`).
"""

import json
import math
import os
import random
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from .course import autocast_dtype, choose_device, choose_precision
from .guard import refuse_if_checked
from .model import compile_model

# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Everything the loop needs to know besides the model and the data."""

    steps: int = 1000  # optimizer steps in the whole run
    lr: float = 1e-4  # peak learning rate (reached at the end of warmup)
    warmup_steps: int | None = None  # None: 10% of `steps`
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-6
    max_grad_norm: float | None = 1.0  # None: no clipping (the norm is still logged)
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    precision: str = "auto"  # "auto" | "fp32" | "bf16" | "fp16"
    compile: bool = False  # torch.compile the model (worth it on a GPU, for long runs)
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N" | "mps"
    log_every: int = 10  # read metrics from the device, update the bar, call callbacks
    eval_every: int | None = None  # None: evaluate only at the end (when eval_loader is given)
    checkpoint_every: int | None = None  # None: checkpoint only at the end (when out_dir is given)
    progress: bool = True  # show a tqdm progress bar (TQDM_DISABLE=1 also hides it)

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
    on_cuda = parameters[0].device.type == "cuda"
    return torch.optim.AdamW(
        [
            {"params": decayed, "weight_decay": config.weight_decay},
            {"params": not_decayed, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=config.betas,
        eps=config.eps,
        fused=on_cuda,  # one kernel for the whole update instead of several per parameter
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


def _add(total: dict, new: dict, weight: float = 1.0) -> None:
    for key, value in new.items():
        value = value * weight if key.endswith("loss") else value
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
    for i, batch in enumerate(micro_batches):
        # DDP all-reduces gradients on every backward; only the last micro-batch needs it.
        last = i == len(micro_batches) - 1
        no_sync = ddp.no_sync() if isinstance(ddp, DistributedDataParallel) and not last else None
        with no_sync or nullcontext():
            dtype = autocast_dtype(precision)
            with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
                out = model(**batch)
            # Dividing by the number of micro-batches makes the summed gradients a mean.
            scaler.scale(out.loss / len(micro_batches)).backward()
        _add(metrics, batch_metrics(out, batch), weight=1 / len(micro_batches))

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
        _add(sums, batch_metrics(out, batch))
        num_batches += 1
        if max_batches is not None and num_batches >= max_batches:
            break
    model.train(was_training)
    if num_batches == 0:
        raise ValueError("the evaluation loader yields no batches")
    host = {k: v.item() for k, v in sums.items()}
    host.pop("tokens", None)
    return summarize(host, num_batches)


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
# Checkpoints: atomic writes, exact resume
# ---------------------------------------------------------------------------------------------

CHECKPOINT = "checkpoint"  # the latest complete checkpoint
PREVIOUS = "checkpoint.prev"  # the one before, kept while the new one is swapped in
TEMPORARY = "checkpoint.tmp"  # being written; never read


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside torch.compile and DistributedDataParallel wrappers."""
    model = getattr(model, "_orig_mod", model)
    model = model.module if isinstance(model, DistributedDataParallel) else model
    return getattr(model, "_orig_mod", model)


def _fsync_tree(directory: Path) -> None:
    """Make the files (and the directory entries) durable before the rename publishes them."""
    for path in [*directory.iterdir(), directory]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(out_dir: str | Path, model: nn.Module, trainer_state: dict) -> Path:
    """Write `out_dir/checkpoint/` = model (config.json + model.safetensors) + trainer_state.pt.

    Written into `checkpoint.tmp/`, then renamed into place; the previous checkpoint is moved
    aside to `checkpoint.prev/` until the new one is in place. Whenever the process dies, one of
    `checkpoint/` or `checkpoint.prev/` is complete (`find_checkpoint` picks it).
    """
    out_dir = Path(out_dir)
    final, previous, temporary = out_dir / CHECKPOINT, out_dir / PREVIOUS, out_dir / TEMPORARY
    if temporary.exists():  # left over from a run killed while writing
        shutil.rmtree(temporary)
    temporary.mkdir(parents=True)
    unwrap(model).save_pretrained(temporary)
    torch.save(trainer_state, temporary / "trainer_state.pt")
    _fsync_tree(temporary)
    if final.exists():
        if previous.exists():
            shutil.rmtree(previous)
        os.replace(final, previous)
    os.replace(temporary, final)
    _fsync_tree(out_dir)
    if previous.exists():
        shutil.rmtree(previous)
    return final


def find_checkpoint(out_dir: str | Path) -> Path | None:
    """The latest complete checkpoint directory under `out_dir`, or None."""
    for name in (CHECKPOINT, PREVIOUS):
        path = Path(out_dir) / name
        if (path / "trainer_state.pt").is_file():
            return path
    return None


def load_trainer_state(checkpoint_dir: str | Path) -> dict:
    """The optimizer/scaler/RNG/position state of a checkpoint (tensors and plain Python only)."""
    return torch.load(Path(checkpoint_dir) / "trainer_state.pt", weights_only=True)


def load_weights(model: nn.Module, checkpoint_dir: str | Path) -> None:
    """Copy a checkpoint's weights into `model` (same architecture), in place."""
    target = unwrap(model)
    saved = type(target).from_pretrained(checkpoint_dir)
    target.load_state_dict(saved.state_dict())


def read_metrics(path: str | Path) -> list[dict]:
    """The rows of a `metrics.jsonl` file (a run directory is accepted too)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics file at {path}: train with out_dir=... to write one")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


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


def train(
    model: nn.Module,
    train_loader: Iterable,
    config: TrainConfig,
    eval_loader: Iterable | None = None,
    callbacks: Sequence[Callable[[list[dict]], object]] = (),
    out_dir: str | Path | None = None,
    resume: bool = False,
) -> list[dict]:
    """Train `model` for `config.steps` optimizer steps. Returns the metric history.

    The history has one dict per step: step, epoch, lr, loss (+ mlm_loss, nsp_loss),
    mlm_accuracy / nsp_accuracy (pretraining) or accuracy (classification), grad_norm,
    tokens_per_s, and eval_* entries at the steps where `eval_loader` was evaluated.
    `callbacks` are called with the history every `log_every` steps (e.g. a live plot).
    With `out_dir`, the final model, `metrics.jsonl` and checkpoints are written there;
    `resume=True` continues from its latest checkpoint.
    Raises `TrainingDiverged` if the loss or the gradients stop being finite.
    """
    rank = dist.get_rank() if dist.is_initialized() else 0
    world_size = dist.get_world_size() if dist.is_initialized() else 1
    is_main = rank == 0
    out_dir = Path(out_dir) if out_dir is not None else None
    if resume and out_dir is None:
        raise ValueError("resume=True needs out_dir: the directory of the run to continue")
    device = _training_device(config)
    precision = choose_precision(device, config.precision)
    if world_size > 1 and not _is_sharded(train_loader):
        warnings.warn(
            "distributed training with a loader that is not sharded: every process sees the same "
            "batches. Build it with bertmini.train.make_loader.",
            stacklevel=2,
        )

    seed_everything(config.seed + rank)
    model = model.to(device)
    model.train()
    optimizer = make_optimizer(model, config)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    generator = collator_generator(train_loader)
    step, epoch, batch_index, history = 0, 0, 0, []
    checkpoint = find_checkpoint(out_dir) if resume else None
    if resume and checkpoint is None and is_main:
        print(f"no checkpoint in {out_dir}: starting from step 0")
    if checkpoint is not None:
        state = load_trainer_state(checkpoint)
        load_weights(model, checkpoint)
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step, epoch, batch_index = state["step"], state["epoch"], state["batch_index"]
        history = list(state["history"])
    data = ResumableBatches(train_loader, epoch, batch_index)
    if checkpoint is not None:  # after ResumableBatches skipped the seen batches (that drew)
        rng_states = state["rng"]
        set_rng_state(rng_states[rank] if rank < len(rng_states) else rng_states[0], generator)
    last_checkpoint = (checkpoint, step) if checkpoint is not None else (None, None)

    train_model = model
    if world_size > 1:
        train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if config.compile:
        train_model = compile_model(train_model)

    metrics_file = out_dir / "metrics.jsonl" if out_dir is not None and is_main else None
    if metrics_file is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(metrics_file, "w") as f:  # rewrite: drops rows logged after the checkpoint
            f.writelines(json.dumps(row) + "\n" for row in history)
    rows_written = len(history)

    pending: list[tuple[int, int, float, dict]] = []  # (step, epoch, lr, device metrics)
    clock = {"time": time.perf_counter()}
    scaler_skips_bad_grads = scaler.is_enabled()

    def flush() -> None:
        """Read the pending steps' metrics from the device (one transfer), check them, log."""
        if not pending:
            return
        keys = list(pending[0][3])
        values = torch.stack([torch.stack([m[k] for k in keys]) for *_, m in pending]).tolist()
        elapsed = max(time.perf_counter() - clock["time"], 1e-9)
        tokens = sum(dict(zip(keys, v, strict=True)).get("tokens", 0.0) for v in values)
        new_rows = []
        for (row_step, row_epoch, lr, _), row_values in zip(pending, values, strict=True):
            sums = dict(zip(keys, row_values, strict=True))
            row = {"step": row_step, "epoch": row_epoch, "lr": lr, **summarize(sums)}
            row["grad_norm"] = sums["grad_norm"]
            row["tokens_per_s"] = tokens * world_size / elapsed
            new_rows.append(row)
        pending.clear()
        clock["time"] = time.perf_counter()
        for row in new_rows:
            _check_finite(row, scaler_skips_bad_grads, *last_checkpoint)
        history.extend(new_rows)

    # `disable` is only passed to switch the bar off: left unset, TQDM_DISABLE=1 can hide it.
    hidden = {} if config.progress and is_main else {"disable": True}
    bar = tqdm(total=config.steps, initial=step, desc="train", dynamic_ncols=True, **hidden)
    try:
        while step < config.steps:
            lr = config.lr * linear_warmup_decay(step, config.warmup, config.steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            micro_batches = [
                move_to_device(next(data), device) for _ in range(config.grad_accum_steps)
            ]
            metrics = training_step(
                train_model, micro_batches, optimizer, scaler, precision, config.max_grad_norm
            )
            step += 1
            pending.append((step, data.epoch, lr, metrics))
            bar.update(1)

            is_last = step == config.steps
            if step % config.log_every == 0 or is_last:
                flush()
                bar.set_postfix(_postfix(history[-1]), refresh=False)
            eval_now = config.eval_every and step % config.eval_every == 0
            if eval_loader is not None and (eval_now or is_last):
                flush()
                history[-1].update(_evaluate_quietly(model, eval_loader, device, precision))
                clock["time"] = time.perf_counter()  # evaluation time is not training throughput
            checkpoint_now = config.checkpoint_every and step % config.checkpoint_every == 0
            if out_dir is not None and (checkpoint_now or is_last):
                flush()
                _check_weights_finite(model, step, *last_checkpoint)
                rng_states = [get_rng_state(generator)]
                if world_size > 1:  # each process draws its own dropout masks: keep them all
                    rng_states = [None] * world_size
                    dist.all_gather_object(rng_states, get_rng_state(generator))
                if is_main:
                    state = {
                        "step": step,
                        "epoch": data.epoch,
                        "batch_index": data.batch_index,
                        "optimizer": optimizer.state_dict(),
                        "scaler": scaler.state_dict(),
                        "rng": rng_states,
                        "history": history,
                        "config": asdict(config),
                    }
                    save_checkpoint(out_dir, model, state)
                _barrier()
                last_checkpoint = (out_dir / CHECKPOINT, step)
                clock["time"] = time.perf_counter()
            if metrics_file is not None and len(history) > rows_written:
                with open(metrics_file, "a") as f:  # after evaluation, which adds to the last row
                    f.writelines(json.dumps(row) + "\n" for row in history[rows_written:])
                rows_written = len(history)
            if is_main and (step % config.log_every == 0 or is_last):
                for callback in callbacks:
                    callback(history)
        flush()
    finally:
        bar.close()
    if out_dir is not None and is_main:
        unwrap(model).save_pretrained(out_dir)
    _barrier()
    return history


def _evaluate_quietly(model, loader, device, precision) -> dict[str, float]:
    """Evaluate without touching the training run's random generators (exact resume)."""
    state = get_rng_state()
    metrics = evaluate(model, loader, device, precision)
    set_rng_state(state)
    return {f"eval_{k}": v for k, v in metrics.items()}


def _postfix(row: dict) -> dict:
    keys = ("loss", "mlm_accuracy", "nsp_accuracy", "accuracy", "lr")
    return {k.replace("_accuracy", "_acc"): f"{row[k]:.3g}" for k in keys if k in row}


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
