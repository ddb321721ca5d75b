"""Benchmark: how fast a BERT pretraining step runs, and how close it comes to the hardware's peak.

Taught in chapter 10, chapters/10_scaling_up.ipynb.

One training step is `train.training_step`, the trainer's own: forward (MLM + NSP loss),
backward, gradient clipping, AdamW step (`train.make_optimizer`), zero_grad. We time many steps
after a warm-up and report the median, as

    samples/s = batch / step time          tokens/s = batch * seq / step time
    MFU       = FLOPs per step / step time / peak FLOP/s of the chip

FLOPs are counted by `model.training_flops_per_step` (6 per weight per token for the matmuls,
plus attention's two (seq x seq) matmuls), with M the number of positions the MLM head runs on.
Hugging Face runs the head on every token (M = B*S); bertmini only where a label is given (M =
15% of them), which is the same loss. So MFU is counted two ways: *dense-equivalent* (the full
count for both, so MFU ratios equal speed ratios) and *actually done* (what each model computes).

With `transformers` installed, Hugging Face's `BertForPreTraining` runs side by side with the
same config, the same weights, the same batch and the same optimizer, its steps alternating
with bertmini's so both see the same machine load; before timing, both losses are computed on
that batch (eval mode, fp32) and must agree.

    python -m bertmini bench --preset mini --device cpu --vs hf
    benchmark(BertConfig.preset("base"), batch_size=256, seq_len=128, device="cuda")
"""

import argparse
import json
import statistics
import time
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, replace
from itertools import islice
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from . import hub
from .data.corpus import sentiment_task
from .data.finetuning import ClassificationCollator, ClassificationDataset
from .data.finetuning import make_bucketed_loader as bucketed_loader
from .device import PRECISIONS, choose_device, choose_precision, compile_model
from .model import (
    IGNORE_INDEX,
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    training_flops_per_step,
)
from .tokenizer import Tokenizer
from .train import TrainConfig, make_optimizer, training_step

# Peak dense bf16/fp16 tensor-core TFLOP/s, matched as a substring of torch.cuda.get_device_name();
# the first match wins, so the longer names come before the names they contain ("A100" > "A10").
PEAK_TFLOPS = [
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM, e.g. "NVIDIA H100 80GB HBM3"
    ("H200", 989.0),
    ("A100", 312.0),
    ("A10G", 125.0),
    ("A10", 125.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("RTX 4090", 165.0),
    ("RTX 3090", 71.0),
    ("A6000", 155.0),
    ("V100", 125.0),
    ("T4", 65.0),
]

MLM_PROBABILITY = 0.15  # fraction of positions that carry an MLM label, as in BERT
# Config fields that Hugging Face's BertConfig shares with ours (same names, same meaning).
HF_CONFIG_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "initializer_range",
    "pad_token_id",
)
# The optimizer both sides get: the trainer's AdamW at BERT's learning rate, no schedule.
OPTIMIZER = TrainConfig(lr=1e-4, weight_decay=0.01)


@dataclass
class BenchOptions:
    """How `benchmark` runs, besides the model's shape and the batch's."""

    compile: bool = False  # torch.compile every side
    vs_hf: bool = True  # time Hugging Face's BertForPreTraining beside bertmini
    steps: int | None = None  # timed steps per side (None: 20 on a GPU, 6 on a CPU)
    warmup: int | None = None  # untimed steps per side first (None: 5 on a GPU, 2 on a CPU)
    peak_tflops: float | None = None  # the chip's peak for MFU (None: looked up; none on CPU)
    precision: str = "auto"  # "auto" | "fp32" | "bf16" | "fp16"
    hf_attention: str = "sdpa"  # Hugging Face's attention: "sdpa" | "eager"
    seed: int = 0  # weights and batch
    hf_sparse_head: bool = False  # also time HuggingFaceSparseHead ("hf_sparse" in the result)


def lookup_peak_tflops(device: torch.device | str) -> float | None:
    """Peak dense bf16/fp16 TFLOP/s of a CUDA device from the table above; None if unknown/CPU."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS if key in name), None)


def make_batch(
    config: BertConfig, batch_size: int, seq_len: int, device: torch.device | str, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A random pretraining batch: ids, two segments, no padding, 15% labelled, random NSP labels.

    Every row gets the same number of labelled positions, so FLOPs are the same every step.
    """
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, config.vocab_size, (batch_size, seq_len), generator=generator)
    token_type_ids = torch.zeros(batch_size, seq_len, dtype=torch.long)
    token_type_ids[:, seq_len // 2 :] = 1  # sentence A, then sentence B
    labels = torch.full((batch_size, seq_len), IGNORE_INDEX, dtype=torch.long)
    per_row = max(1, round(MLM_PROBABILITY * seq_len))
    for row in range(batch_size):
        positions = torch.randperm(seq_len, generator=generator)[:per_row]
        labels[row, positions] = input_ids[row, positions]
    batch = {
        "input_ids": input_ids,  # (batch, seq)
        "token_type_ids": token_type_ids,  # (batch, seq)
        "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),  # (batch, seq)
        "labels": labels,  # (batch, seq), -100 where nothing is predicted
        "next_sentence_label": torch.randint(0, 2, (batch_size,), generator=generator),
    }
    return {name: tensor.to(device) for name, tensor in batch.items()}


def hf_model_like(model: BertForPreTraining, attn_implementation: str = "sdpa"):
    """Hugging Face's BertForPreTraining with `model`'s config and a copy of its weights."""
    try:
        import transformers  # optional and heavy: only when comparing
    except ImportError as error:
        raise ImportError(
            "comparing with Hugging Face needs `transformers`: pip install transformers "
            "(or benchmark bertmini alone: --vs none / vs_hf=False)"
        ) from error
    config = model.config
    if type(model) is not BertForPreTraining or (
        config.pre_layer_norm,
        config.position_embedding,
    ) != (False, "learned"):
        raise ValueError(
            "Hugging Face's BertForPreTraining is a post-LN Transformer with learned positions; "
            f"this {type(model).__name__} has pre_layer_norm={config.pre_layer_norm}, "
            f"position_embedding={config.position_embedding!r}: benchmark it with vs_hf=False"
        )
    hf_config = transformers.BertConfig(
        **{name: getattr(config, name) for name in HF_CONFIG_FIELDS},
        attn_implementation=attn_implementation,
    )
    hf_model = transformers.BertForPreTraining(hf_config)
    result = hf_model.load_state_dict(hub.hf_state_dict(model), strict=False)
    # The decoder is tied to the word embeddings (weight) and to cls.predictions.bias (bias).
    untied = [name for name in result.missing_keys if "cls.predictions.decoder" not in name]
    if untied or result.unexpected_keys:
        raise RuntimeError(
            f"weight conversion to Hugging Face names is incomplete: missing {untied}, "
            f"unexpected {result.unexpected_keys}"
        )
    decoder = hf_model.cls.predictions.decoder
    if decoder.weight is not hf_model.bert.embeddings.word_embeddings.weight:
        raise RuntimeError("Hugging Face's MLM decoder is not tied to its word embeddings")
    return hf_model.to(next(model.parameters()).device)


class HuggingFaceSparseHead(torch.nn.Module):
    """Hugging Face's own modules with one change: the MLM head runs only on labelled positions.

    The same loss as `BertForPreTraining` (mean MLM cross-entropy over labelled positions plus
    NSP), without the decoder's work on positions that carry no label. It calibrates how much
    of bertmini's speed-up is that one idea and how much is the rest.
    """

    def __init__(self, hf_model):
        super().__init__()
        self.hf = hf_model

    def forward(self, input_ids, token_type_ids, attention_mask, labels, next_sentence_label):
        outputs = self.hf.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        )
        sequence, pooled = outputs[0], outputs[1]  # (batch, seq, hidden), (batch, hidden)
        labelled = labels != IGNORE_INDEX
        mlm_logits = self.hf.cls.predictions(sequence[labelled])  # (labelled, vocab)
        nsp_logits = self.hf.cls.seq_relationship(pooled)  # (batch, 2)
        loss = F.cross_entropy(mlm_logits.float(), labels[labelled]) + F.cross_entropy(
            nsp_logits.float(), next_sentence_label
        )
        return SimpleNamespace(loss=loss)


def make_train_step(model, optimizer, batch, precision: str, device: torch.device):
    """A function doing one training step (`train.training_step`) on `batch`; it returns the
    loss as a device tensor (no sync)."""
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    return lambda: training_step(model, [batch], optimizer, scaler, precision)["loss"]


@torch.no_grad()
def eval_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """Loss without dropout, in fp32 (TF32 off), for comparing two models on one batch."""
    was_training = model.training
    model.eval()
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        return model(**batch).loss.item()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        model.train(was_training)


def _state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the weights and the optimizer state (AdamW's two moments) of one side."""
    tensors = list(model.parameters()) + [
        value
        for state in optimizer.state.values()
        for value in state.values()
        if isinstance(value, torch.Tensor)
    ]
    return sum(t.numel() * t.element_size() for t in {id(t): t for t in tensors}.values())


def _step_counts(device: torch.device, options: BenchOptions) -> tuple[int, int]:
    """(timed steps, warm-up steps) per side: the options', else a default for the device."""
    on_gpu = device.type == "cuda"
    steps = options.steps if options.steps is not None else (20 if on_gpu else 6)
    warmup = options.warmup if options.warmup is not None else (5 if on_gpu else 2)
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be >= 1 and warmup >= 0, got {steps} and {warmup}")
    return steps, warmup


def _check_shape(config: BertConfig, batch_size: int, seq_len: int) -> None:
    if batch_size < 1 or seq_len < 2:
        raise ValueError(f"batch_size must be >= 1 and seq_len >= 2, got {batch_size}, {seq_len}")
    if seq_len > config.max_position_embeddings:
        raise ValueError(
            f"seq_len {seq_len} exceeds max_position_embeddings "
            f"({config.max_position_embeddings}): use a shorter --seq"
        )


def _make_sides(config: BertConfig, device: torch.device, options: BenchOptions) -> dict:
    """{"bertmini": model, "hf": ..., "hf_sparse": ...}: the models to time, same weights."""
    torch.manual_seed(options.seed)
    ours = BertForPreTraining(config).to(device)
    sides = {"bertmini": ours}
    if options.vs_hf:
        sides["hf"] = hf_model_like(ours, options.hf_attention)
    if options.hf_sparse_head:
        sides["hf_sparse"] = HuggingFaceSparseHead(hf_model_like(ours, options.hf_attention))
    return sides


def _time_alternating(
    train_steps: dict[str, Callable], steps: int, warmup: int, device: torch.device
) -> tuple[dict, dict, dict]:
    """Run every side's step `warmup + steps` times, alternating who goes first.

    Returns per side: the timed steps' seconds, the most memory a step allocated on top of what
    was there (CUDA only, else 0), and the sum of the timed steps' losses.
    """
    on_gpu = device.type == "cuda"
    times = {name: [] for name in train_steps}
    step_memory = dict.fromkeys(train_steps, 0)
    loss_sums = {name: torch.zeros((), device=device) for name in train_steps}
    names = list(train_steps)
    for i in range(warmup + steps):
        for name in names if i % 2 == 0 else names[::-1]:
            if on_gpu:
                torch.cuda.synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)
            start_memory = torch.cuda.memory_allocated(device) if on_gpu else 0
            start = time.perf_counter()
            loss = train_steps[name]()
            if on_gpu:
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - start
            if i < warmup:
                continue
            times[name].append(elapsed)
            loss_sums[name] += loss  # stays on the device; read once at the end
            if on_gpu:
                used = torch.cuda.max_memory_allocated(device) - start_memory
                step_memory[name] = max(step_memory[name], used)
    return times, step_memory, loss_sums


def _side_result(seconds: float, flops: dict, peak: float | None, batch: dict) -> dict:
    """One side's figures from its median step time; flops: {"dense": ..., "actual": ...}."""
    batch_size, seq_len = batch["input_ids"].shape
    return {
        "step_ms": 1e3 * seconds,
        "samples_per_s": batch_size / seconds,
        "tokens_per_s": batch_size * seq_len / seconds,
        "tflops": flops["dense"] / seconds / 1e12,  # dense-equivalent
        "tflops_actual": flops["actual"] / seconds / 1e12,
        "mfu": None if peak is None else flops["dense"] / seconds / (peak * 1e12),
        "mfu_actual": None if peak is None else flops["actual"] / seconds / (peak * 1e12),
    }


def _comparison(results: dict, losses: dict) -> dict:
    """Speed-ups over the Hugging Face sides that ran, and whether the losses agree."""
    ours = results["bertmini"]["samples_per_s"]
    hf, hf_sparse = results.get("hf"), results.get("hf_sparse")
    loss_diff = abs(losses["bertmini"] - losses["hf"]) if hf else None
    return {
        "speedup": ours / hf["samples_per_s"] if hf else None,
        "speedup_vs_hf_sparse": ours / hf_sparse["samples_per_s"] if hf_sparse else None,
        "loss_bertmini": losses["bertmini"],
        "loss_hf": losses.get("hf"),
        "loss_hf_sparse": losses.get("hf_sparse"),
        "loss_diff": loss_diff,
        "losses_agree": None if loss_diff is None else loss_diff <= 1e-4 * max(1.0, losses["hf"]),
    }


def _settings(
    config: BertConfig, batch_size: int, seq_len: int, device: torch.device, options: BenchOptions
) -> dict:
    """The run's settings as the result reports them: shapes, device, precision, steps, peak."""
    _check_shape(config, batch_size, seq_len)
    steps, warmup = _step_counts(device, options)
    peak = options.peak_tflops if options.peak_tflops is not None else lookup_peak_tflops(device)
    return {
        "config": {
            "layers": config.num_hidden_layers,
            "hidden": config.hidden_size,
            "heads": config.num_attention_heads,
            "intermediate": config.intermediate_size,
            "vocab": config.vocab_size,
        },
        "batch_size": batch_size,
        "seq_len": seq_len,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "precision": choose_precision(device, options.precision),
        "compile": options.compile,
        "hf_attention": options.hf_attention if options.vs_hf else None,
        "steps": steps,
        "warmup": warmup,
        "peak_tflops": peak,
    }


def benchmark(
    config: BertConfig,
    batch_size: int,
    seq_len: int,
    device: torch.device | str = "cpu",
    options: BenchOptions | None = None,
    **changes,
) -> dict:
    """Time training steps of bertmini (and Hugging Face, alternating); returns the numbers.

    options, or `changes` to the default BenchOptions (e.g. `vs_hf=False, steps=3`). Returns a
    dict with "bertmini" and "hf" (None without vs_hf) holding step_ms, samples_per_s,
    tokens_per_s, peak_memory_mb, tflops, mfu (dense-equivalent), mfu_actual, train_loss; plus
    speedup, loss_bertmini, loss_hf, loss_diff and the settings.
    """
    options = replace(options or BenchOptions(), **changes)
    device = choose_device(device)
    settings = _settings(config, batch_size, seq_len, device, options)
    sides = _make_sides(config, device, options)
    batch = make_batch(config, batch_size, seq_len, device, options.seed)
    losses = {name: eval_loss(model, batch) for name, model in sides.items()}

    optimizers = {name: make_optimizer(model.train(), OPTIMIZER) for name, model in sides.items()}
    train_steps = {
        name: make_train_step(
            compile_model(model) if options.compile else model,
            optimizers[name],
            batch,
            settings["precision"],
            device,
        )
        for name, model in sides.items()
    }
    steps, warmup = settings["steps"], settings["warmup"]
    times, step_memory, loss_sums = _time_alternating(train_steps, steps, warmup, device)

    mlm_positions = int((batch["labels"] != IGNORE_INDEX).sum())
    dense = training_flops_per_step(config, batch_size, seq_len, batch_size * seq_len)
    sparse = training_flops_per_step(config, batch_size, seq_len, mlm_positions)
    actual = {"bertmini": sparse, "hf": dense, "hf_sparse": sparse}  # HF: the head everywhere
    results = {}
    for name in sides:
        flops = {"dense": dense, "actual": actual[name]}
        seconds = statistics.median(times[name])
        results[name] = _side_result(seconds, flops, settings["peak_tflops"], batch)
        results[name]["train_loss"] = (loss_sums[name] / steps).item()
        # Both models stay resident: count this side's weights, optimizer state, and what its
        # step allocated on top of what was there when it started.
        state = _state_bytes(sides[name], optimizers[name]) + step_memory[name]
        results[name]["peak_memory_mb"] = state / 2**20 if device.type == "cuda" else None
    return {
        **settings,
        "mlm_positions": mlm_positions,
        "flops_per_step": dense,
        "flops_per_step_actual": sparse,
        "bertmini": results["bertmini"],
        "hf": results.get("hf"),
        "hf_sparse": results.get("hf_sparse"),
        **_comparison(results, losses),
    }


def _finetuning_loaders(
    dataset: ClassificationDataset, pad_token_id: int, batch_size: int, seed: int
) -> dict:
    """The same examples in random batches and in length-bucketed ones."""
    return {
        "random batches": torch.utils.data.DataLoader(
            dataset,
            batch_size,
            shuffle=True,
            collate_fn=ClassificationCollator(pad_token_id),
            generator=torch.Generator().manual_seed(seed),
        ),
        "length-bucketed": bucketed_loader(dataset, batch_size, shuffle=True, seed=seed),
    }


def _time_finetuning(sides: dict, steps: int, precision: str, device: torch.device) -> dict:
    """Alternate the sides' training steps; step 0 of each warms up, untimed. Returns per side
    the timed seconds, examples, padded tokens and real tokens."""
    totals = {name: dict(seconds=0.0, examples=0, padded=0, real=0) for name in sides}
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    for i in range(steps + 1):
        for name, (model, optimizer, batches) in sides.items():
            batch = batches[i % len(batches)]
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            training_step(model, [batch], optimizer, scaler, precision)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i > 0:
                total = totals[name]
                total["seconds"] += time.perf_counter() - start
                total["examples"] += len(batch["labels"])
                total["padded"] += batch["input_ids"].numel()
                total["real"] += int(batch["attention_mask"].sum())
    return totals


def benchmark_finetuning(
    config: BertConfig,
    batch_size: int,
    device: torch.device | str = "cpu",
    steps: int = 20,
    precision: str = "auto",
    seed: int = 0,
) -> dict:
    """Fine-tuning on variable-length text: random batches vs length-bucketed batches.

    Both sides train the same classifier (same weights) on the embedded sentiment task, padded
    to the longest example of each batch; they differ only in which examples share a batch.
    Their steps alternate; returns examples/s, padded tokens per example and the padding share
    of each side, and the speed-up of bucketing.
    """
    if batch_size < 1 or steps < 1:
        raise ValueError(f"batch_size and steps must be >= 1, got {batch_size} and {steps}")
    device = choose_device(device)
    precision = choose_precision(device, precision)
    rows = sentiment_task(seed)["train"]
    texts, labels = [text for text, _ in rows], [label for _, label in rows]
    tokenizer = Tokenizer.train(texts, vocab_size=config.vocab_size)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(replace(config, vocab_size=len(tokenizer)))
    dataset = ClassificationDataset(texts, labels, tokenizer, config.max_position_embeddings)
    sides = {}
    for name, loader in _finetuning_loaders(
        dataset, tokenizer.pad_token_id, batch_size, seed
    ).items():
        copy = deepcopy(model).to(device).train()
        batches = [{k: v.to(device) for k, v in b.items()} for b in islice(loader, steps)]
        sides[name] = (copy, make_optimizer(copy, OPTIMIZER), batches)
    totals = _time_finetuning(sides, steps, precision, device)
    result = {"batch_size": batch_size, "steps": steps, "device": str(device)}
    result["precision"] = precision
    for name, total in totals.items():
        result[name] = {
            "examples_per_s": total["examples"] / total["seconds"],
            "padded_tokens_per_example": total["padded"] / total["examples"],
            "padding_share": 1 - total["real"] / total["padded"],
        }
    bucketed, random_batches = result["length-bucketed"], result["random batches"]
    result["speedup"] = bucketed["examples_per_s"] / random_batches["examples_per_s"]
    return result


def format_finetuning_report(result: dict) -> str:
    """The fine-tuning comparison as a small text table."""
    sides = ("random batches", "length-bucketed")
    lines = [
        f"fine-tuning {result['preset']} on the embedded sentiment task, batch "
        f"{result['batch_size']}, {result['device']}, {result['precision']}, "
        f"{result['steps']} steps per side after 1 warm-up",
        f"{'':28}{sides[0]:>18}{sides[1]:>18}",
    ]
    rows = (
        ("examples/s", "examples_per_s", "{:.1f}"),
        ("padded tokens per example", "padded_tokens_per_example", "{:.1f}"),
        ("padding share", "padding_share", "{:.1%}"),
    )
    for label, key, fmt in rows:
        lines.append(f"{label:28}" + "".join(f"{fmt.format(result[s][key]):>18}" for s in sides))
    lines.append(f"speed-up of length bucketing: {result['speedup']:.2f}x")
    return "\n".join(lines)


def format_report(result: dict) -> str:
    """The benchmark result as a small table for people."""
    c = result["config"]
    lines = [
        f"BERT L{c['layers']} H{c['hidden']} A{c['heads']} I{c['intermediate']} V{c['vocab']}, "
        f"batch {result['batch_size']} x seq {result['seq_len']} "
        f"({result['mlm_positions']} MLM labels), {result['device_name']} "
        f"({result['threads']} threads), {result['precision']}"
        f"{', torch.compile' if result['compile'] else ''}; median of {result['steps']} steps "
        f"after {result['warmup']} warm-up"
    ]
    sides = [("bertmini", result["bertmini"])]
    if result["hf"] is not None:
        sides.append((f"Hugging Face ({result['hf_attention']})", result["hf"]))
    if result.get("hf_sparse") is not None:
        sides.append(("HF, sparse MLM head", result["hf_sparse"]))

    def row(label, key, fmt):
        cells = ["n/a" if side[key] is None else fmt.format(side[key]) for _, side in sides]
        return f"{label:<28}" + "".join(f"{cell:>22}" for cell in cells)

    lines += [
        f"{'':<28}" + "".join(f"{name:>22}" for name, _ in sides),
        row("step time (ms)", "step_ms", "{:.1f}"),
        row("samples/s", "samples_per_s", "{:,.1f}"),
        row("tokens/s", "tokens_per_s", "{:,.0f}"),
        row("peak memory (MiB)", "peak_memory_mb", "{:,.0f}"),
        row("TFLOP/s dense-equivalent", "tflops", "{:.3f}"),
        row("TFLOP/s actually done", "tflops_actual", "{:.3f}"),
        row("MFU dense-equivalent", "mfu", "{:.3f}"),
        row("MFU actually done", "mfu_actual", "{:.3f}"),
    ]
    if result["peak_tflops"] is None:
        lines.append("MFU: no peak known for this device; pass --peak-tflops to compute it")
    else:
        lines.append(f"MFU against a peak of {result['peak_tflops']:g} TFLOP/s")
    if result["speedup"] is not None:
        verdict = "agree" if result["losses_agree"] else "DISAGREE"
        lines += [
            f"speed-up: {result['speedup']:.2f}x (bertmini samples/s / Hugging Face samples/s)",
            f"loss on the same batch (eval, fp32): bertmini {result['loss_bertmini']:.6f}, "
            f"Hugging Face {result['loss_hf']:.6f}, |diff| {result['loss_diff']:.2e}: {verdict}",
        ]
    if result.get("speedup_vs_hf_sparse") is not None:
        lines.append(
            f"speed-up over Hugging Face with the MLM head on labelled positions only: "
            f"{result['speedup_vs_hf_sparse']:.2f}x"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `python -m bertmini bench`."""
    parser.add_argument(
        "--preset",
        default="base",
        choices=list(BertConfig.PRESETS),
        help="model shape (default base)",
    )
    parser.add_argument("--vocab-size", type=int, default=None, help="default: BERT's 30522")
    parser.add_argument("--seq", type=int, default=128, help="sequence length (default: 128)")
    parser.add_argument(
        "--batch", type=int, default=None, help="batch size (default: 256 on a GPU, 32 on a CPU)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=["auto", *PRECISIONS],
        help="auto = bf16 on GPUs with compute capability >= 8, fp16 below, fp32 on CPU",
    )
    parser.add_argument(
        "--vs",
        default=None,
        choices=["hf", "none"],
        help="compare with Hugging Face (default: hf when transformers is installed)",
    )
    parser.add_argument(
        "--hf-attention", default="sdpa", choices=["sdpa", "eager"], help="Hugging Face attention"
    )
    parser.add_argument(
        "--hf-sparse-head",
        action="store_true",
        help="also time Hugging Face's modules with the MLM head on labelled positions only",
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per model first")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="the chip's peak TFLOP/s for MFU (default: a table of GPUs; none on CPU)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: torch's); on a busy machine 1 thread can beat 2",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and batch")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--finetune",
        action="store_true",
        help="instead: fine-tuning steps on variable-length text, random vs length-bucketed "
        "batches (bertmini alone; --vocab-size sets the tokenizer trained for it)",
    )


def _compare_with_hf(choice: str | None) -> bool:
    """--vs: "hf", "none", or None = Hugging Face when transformers is installed."""
    if choice is not None:
        return choice == "hf"
    try:
        import transformers  # noqa: F401  (optional and heavy: only asked here)
    except ImportError:
        print("transformers is not installed: timing bertmini alone")
        return False
    return True


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark the options describe, print the report (or JSON), return the result."""
    device = choose_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    overrides = {} if args.vocab_size is None else {"vocab_size": args.vocab_size}
    config = BertConfig.preset(args.preset, **overrides)
    batch = args.batch if args.batch is not None else (256 if device.type == "cuda" else 32)
    if args.finetune:
        if args.vocab_size is None:  # the sentiment task has a few hundred words
            config = replace(config, vocab_size=4096)
        result = benchmark_finetuning(
            config, batch, device, args.steps or 20, args.precision, args.seed
        )
        report = format_finetuning_report
    else:
        options = BenchOptions(
            compile=args.compile,
            vs_hf=_compare_with_hf(args.vs),
            steps=args.steps,
            warmup=args.warmup,
            peak_tflops=args.peak_tflops,
            precision=args.precision,
            hf_attention=args.hf_attention,
            seed=args.seed,
            hf_sparse_head=args.hf_sparse_head,
        )
        result = benchmark(config, batch, args.seq, device, options)
        report = format_report
    result["preset"] = args.preset
    print(json.dumps(result) if args.json else report(result))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    run(parser.parse_args())
