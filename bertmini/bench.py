"""Benchmark: how fast a BERT pretraining step runs, and how close it comes to the hardware's peak.

One training step = forward (MLM + NSP loss), backward, AdamW step, zero_grad. We time many
steps after a warm-up and report the median, as

    samples/s = batch / step time          tokens/s = batch * seq / step time
    MFU       = FLOPs per step / step time / peak FLOP/s of the chip

FLOPs are counted with the usual dense formula (2 per multiply-add forward, twice that backward,
so 6 per weight per token), plus attention's two (seq x seq) matmuls:

    6*B*S*L*(4H^2 + 2*H*I)     the encoder's matmuls: Q, K, V, output (4H^2) and the FFN (2HI)
  + 12*B*L*S^2*H               attention scores Q K^T and the weighted sum of V
  + 6*M*(H^2 + H*V)            the MLM head: transform (H^2) and vocabulary decoder (HV)

M is the number of positions the MLM head runs on. Hugging Face runs it on every token
(M = B*S); bertmini only where a label is given (M = 15% of them), which is the same loss.
bertmini's last layer, too, computes its output only where the losses read it ([CLS] and the
labelled positions; its keys and values still everywhere). So MFU is counted two ways:
*dense-equivalent* (the full count for both, so MFU ratios equal speed ratios) and *actually
done* (what each model computes).

With `transformers` installed, Hugging Face's `BertForPreTraining` runs side by side with the
same config, the same weights, the same batch and the same optimizer, its steps alternating
with bertmini's so both see the same machine load; before timing, both losses are computed on
that batch (eval mode, fp32) and must agree.

    python -m bertmini bench --preset mini --device cpu --vs hf
    benchmark(BertConfig.preset("base"), batch_size=256, seq_len=128, device="cuda")
"""

import argparse
import contextlib
import json
import statistics
import time
from copy import deepcopy
from dataclasses import replace
from itertools import islice
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from . import course, hub
from .guard import refuse_if_checked
from .model import IGNORE_INDEX, BertConfig, BertForPreTraining, compile_model, positions_to_compute

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


def training_flops_per_step(
    config: BertConfig,
    batch: int,
    seq: int,
    mlm_positions: int,
    last_layer_positions: int | None = None,
) -> int:
    """Matmul FLOPs of one training step (forward + backward) of BertForPreTraining.

    mlm_positions: positions the MLM head runs on (batch * seq for a dense head).
    last_layer_positions: positions per sequence whose output the last layer computes (None =
    all seq); its keys and values are still computed everywhere. Embedding look-ups, LayerNorms,
    softmaxes, the pooler and NSP head are left out (a fraction of a percent).
    """
    refuse_if_checked("training_flops_per_step")  # see bertmini.guard
    hidden, layers, inter = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    queries = seq if last_layer_positions is None else last_layer_positions
    per_token = 4 * hidden**2 + 2 * hidden * inter  # Q, K, V, output (4H^2) and the FFN (2HI)
    encoder = 6 * batch * seq * (layers - 1) * per_token
    # The last layer: K and V at every position, the rest only at its `queries` positions.
    encoder += 6 * batch * (seq * 2 * hidden**2 + queries * (per_token - 2 * hidden**2))
    attention = 12 * batch * (layers - 1) * seq**2 * hidden + 12 * batch * queries * seq * hidden
    mlm_head = 6 * mlm_positions * (hidden**2 + hidden * config.vocab_size)
    return encoder + attention + mlm_head


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
        import transformers
    except ImportError as error:
        raise ImportError(
            "comparing with Hugging Face needs `transformers`: pip install transformers "
            "(or benchmark bertmini alone: --vs none / vs_hf=False)"
        ) from error
    config = model.config
    if (config.encoder, config.pre_layer_norm, config.position_embedding) != (
        "transformer",
        False,
        "learned",
    ):
        raise ValueError(
            "Hugging Face's BertForPreTraining is a post-LN Transformer with learned positions; "
            f"this config has encoder={config.encoder!r}, pre_layer_norm={config.pre_layer_norm}, "
            f"position_embedding={config.position_embedding!r}: benchmark it with vs_hf=False"
        )
    hf_config = transformers.BertConfig(
        **{name: getattr(config, name) for name in HF_CONFIG_FIELDS},
        attn_implementation=attn_implementation,
    )
    hf_model = transformers.BertForPreTraining(hf_config)
    weights = {
        name: tensor.detach().cpu()
        for name, tensor in model.state_dict().items()
        if not model._is_tied(name)
    }
    result = hf_model.load_state_dict(hub.to_hf(weights), strict=False)
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


def make_optimizer(model: torch.nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """AdamW as BERT trains it, with one fused kernel for all parameters (CUDA and CPU).

    On CPU too the fused kernel measured faster than `foreach=True` (mini BERT, 2 cores: about
    0.5 s against 1.3 s per step); both sides of a comparison always get the same optimizer.
    """
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=True)


def _forward_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Total pretraining loss (MLM + NSP); both models take these keyword arguments."""
    return model(**batch).loss


def make_train_step(model, optimizer, batch, precision: str, device: torch.device):
    """A function doing one training step; it returns the loss as a device tensor (no sync)."""
    dtype = course.autocast_dtype(precision)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def step() -> torch.Tensor:
        autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with autocast:
            loss = _forward_loss(model, batch)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:  # fp16: scale the loss so small gradients do not underflow
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


@torch.no_grad()
def eval_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """Loss without dropout, in fp32 (TF32 off), for comparing two models on one batch."""
    was_training = model.training
    model.eval()
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        return _forward_loss(model, batch).item()
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


def benchmark(
    config: BertConfig,
    batch_size: int,
    seq_len: int,
    device: torch.device | str = "cpu",
    compile: bool = False,
    vs_hf: bool = True,
    steps: int | None = None,
    warmup: int | None = None,
    peak_tflops: float | None = None,
    precision: str = "auto",
    hf_attention: str = "sdpa",
    seed: int = 0,
    hf_sparse_head: bool = False,
) -> dict:
    """Time training steps of bertmini (and Hugging Face, alternating); returns the numbers.

    steps, warmup: timed and untimed steps per side (default 20 and 5 on a GPU, 6 and 2 on a CPU).
    peak_tflops: the chip's peak for MFU; by default looked up for CUDA devices, none on CPU.
    Returns a dict with "bertmini" and "hf" (None without vs_hf) holding step_ms, samples_per_s,
    tokens_per_s, peak_memory_mb, tflops, mfu (dense-equivalent), mfu_actual; plus speedup,
    loss_bertmini, loss_hf, loss_diff and the settings. hf_sparse_head: also time
    `HuggingFaceSparseHead` ("hf_sparse" and "speedup_vs_hf_sparse" in the result).
    """
    device = course.choose_device(device)
    if batch_size < 1 or seq_len < 2:
        raise ValueError(f"batch_size must be >= 1 and seq_len >= 2, got {batch_size}, {seq_len}")
    if seq_len > config.max_position_embeddings:
        raise ValueError(
            f"seq_len {seq_len} exceeds max_position_embeddings "
            f"({config.max_position_embeddings}): use a shorter --seq"
        )
    on_gpu = device.type == "cuda"
    steps = steps if steps is not None else (20 if on_gpu else 6)
    warmup = warmup if warmup is not None else (5 if on_gpu else 2)
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be >= 1 and warmup >= 0, got {steps} and {warmup}")
    precision = course.choose_precision(device, precision)
    peak = peak_tflops if peak_tflops is not None else lookup_peak_tflops(device)

    torch.manual_seed(seed)
    ours = BertForPreTraining(config).to(device)
    sides = {"bertmini": ours}
    if vs_hf:
        sides["hf"] = hf_model_like(ours, hf_attention)
    if hf_sparse_head:
        sides["hf_sparse"] = HuggingFaceSparseHead(hf_model_like(ours, hf_attention))
    batch = make_batch(config, batch_size, seq_len, device, seed)
    losses = {name: eval_loss(model, batch) for name, model in sides.items()}

    mlm_positions = int((batch["labels"] != IGNORE_INDEX).sum())
    dense_flops = training_flops_per_step(config, batch_size, seq_len, batch_size * seq_len)
    last_layer_positions = positions_to_compute(batch["labels"]).shape[1]
    actual_flops = {
        "bertmini": training_flops_per_step(
            config, batch_size, seq_len, mlm_positions, last_layer_positions
        ),
        "hf": dense_flops,  # Hugging Face runs the MLM head on every position
        "hf_sparse": training_flops_per_step(config, batch_size, seq_len, mlm_positions),
    }

    train_steps, optimizers = {}, {}
    for name, model in sides.items():
        model.train()
        optimizer = make_optimizer(model, device)
        runnable = compile_model(model) if compile else model
        train_steps[name] = make_train_step(runnable, optimizer, batch, precision, device)
        optimizers[name] = optimizer

    def synchronize():
        if on_gpu:
            torch.cuda.synchronize(device)

    times = {name: [] for name in sides}
    step_memory = dict.fromkeys(sides, 0)
    loss_sums = {name: torch.zeros((), device=device) for name in sides}
    names = list(sides)
    for i in range(warmup + steps):
        for name in names if i % 2 == 0 else names[::-1]:  # alternate who goes first
            synchronize()
            if on_gpu:
                torch.cuda.reset_peak_memory_stats(device)
            start_memory = torch.cuda.memory_allocated(device) if on_gpu else 0
            start = time.perf_counter()
            loss = train_steps[name]()
            synchronize()
            elapsed = time.perf_counter() - start
            if i < warmup:
                continue
            times[name].append(elapsed)
            loss_sums[name] += loss  # stays on the device; read once at the end
            if on_gpu:
                step_memory[name] = max(
                    step_memory[name], torch.cuda.max_memory_allocated(device) - start_memory
                )

    results = {}
    for name in sides:
        seconds = statistics.median(times[name])
        # Both models stay resident; count only this side's weights, optimizer state and the
        # memory its step allocates on top of what was there when it started.
        peak_memory = (
            _state_bytes(sides[name], optimizers[name]) + step_memory[name] if on_gpu else None
        )
        results[name] = {
            "step_ms": 1e3 * seconds,
            "samples_per_s": batch_size / seconds,
            "tokens_per_s": batch_size * seq_len / seconds,
            "peak_memory_mb": None if peak_memory is None else peak_memory / 2**20,
            "tflops": dense_flops / seconds / 1e12,  # dense-equivalent
            "tflops_actual": actual_flops[name] / seconds / 1e12,
            "mfu": None if peak is None else dense_flops / seconds / (peak * 1e12),
            "mfu_actual": None if peak is None else actual_flops[name] / seconds / (peak * 1e12),
            "train_loss": (loss_sums[name] / steps).item(),
        }
    speedup = (
        results["bertmini"]["samples_per_s"] / results["hf"]["samples_per_s"] if vs_hf else None
    )
    loss_diff = abs(losses["bertmini"] - losses["hf"]) if vs_hf else None
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
        "mlm_positions": mlm_positions,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if on_gpu else "cpu",
        "threads": torch.get_num_threads(),
        "precision": precision,
        "compile": compile,
        "hf_attention": hf_attention if vs_hf else None,
        "steps": steps,
        "warmup": warmup,
        "peak_tflops": peak,
        "flops_per_step": dense_flops,
        "flops_per_step_actual": actual_flops["bertmini"],
        "bertmini": results["bertmini"],
        "hf": results.get("hf"),
        "hf_sparse": results.get("hf_sparse"),
        "speedup": speedup,
        "speedup_vs_hf_sparse": (
            results["bertmini"]["samples_per_s"] / results["hf_sparse"]["samples_per_s"]
            if hf_sparse_head
            else None
        ),
        "loss_bertmini": losses["bertmini"],
        "loss_hf": losses.get("hf"),
        "loss_hf_sparse": losses.get("hf_sparse"),
        "loss_diff": loss_diff,
        "losses_agree": None if loss_diff is None else loss_diff <= 1e-4 * max(1.0, losses["hf"]),
    }


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
    from .data.corpus import sentiment_task
    from .data.finetuning import ClassificationCollator, ClassificationDataset
    from .data.finetuning import make_bucketed_loader as bucketed_loader
    from .model import BertForSequenceClassification
    from .tokenizer import Tokenizer

    if batch_size < 1 or steps < 1:
        raise ValueError(f"batch_size and steps must be >= 1, got {batch_size} and {steps}")
    device = course.choose_device(device)
    precision = course.choose_precision(device, precision)
    rows = sentiment_task(seed)["train"]
    texts, labels = [text for text, _ in rows], [label for _, label in rows]
    tokenizer = Tokenizer.train(texts, vocab_size=config.vocab_size)
    dataset = ClassificationDataset(texts, labels, tokenizer, config.max_position_embeddings)
    loaders = {
        "random batches": torch.utils.data.DataLoader(
            dataset,
            batch_size,
            shuffle=True,
            collate_fn=ClassificationCollator(tokenizer.pad_token_id),
            generator=torch.Generator().manual_seed(seed),
        ),
        "length-bucketed": bucketed_loader(dataset, batch_size, shuffle=True, seed=seed),
    }
    torch.manual_seed(seed)
    model = BertForSequenceClassification(replace(config, vocab_size=len(tokenizer)))
    sides = {}
    for name, loader in loaders.items():
        copy = deepcopy(model).to(device).train()
        optimizer = make_optimizer(copy, device)
        batches = [{k: v.to(device) for k, v in b.items()} for b in islice(loader, steps)]
        sides[name] = (copy, optimizer, batches)
    dtype = course.autocast_dtype(precision)
    totals = {name: dict(seconds=0.0, examples=0, padded=0, real=0) for name in sides}
    for i in range(steps + 1):  # step 0 of each side warms up, untimed
        for name, (copy, optimizer, batches) in sides.items():
            batch = batches[i % len(batches)]
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = copy(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i > 0:
                total = totals[name]
                total["seconds"] += time.perf_counter() - start
                total["examples"] += len(batch["labels"])
                total["padded"] += batch["input_ids"].numel()
                total["real"] += int(batch["attention_mask"].sum())
    result = {
        "batch_size": batch_size,
        "steps": steps,
        "device": str(device),
        "precision": precision,
    }
    for name, total in totals.items():
        result[name] = {
            "examples_per_s": total["examples"] / total["seconds"],
            "padded_tokens_per_example": total["padded"] / total["examples"],
            "padding_share": 1 - total["real"] / total["padded"],
        }
    result["speedup"] = (
        result["length-bucketed"]["examples_per_s"] / result["random batches"]["examples_per_s"]
    )
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
        choices=["auto", *course.PRECISIONS],
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


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark the options describe, print the report (or JSON), return the result."""
    device = course.choose_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    overrides = {} if args.vocab_size is None else {"vocab_size": args.vocab_size}
    config = BertConfig.preset(args.preset, **overrides)
    vs_hf = args.vs == "hf"
    if args.vs is None:
        try:
            import transformers  # noqa: F401
        except ImportError:
            print("transformers is not installed: timing bertmini alone")
        else:
            vs_hf = True
    batch = args.batch if args.batch is not None else (256 if device.type == "cuda" else 32)
    if args.finetune:
        if args.vocab_size is None:  # the sentiment task has a few hundred words
            config = replace(config, vocab_size=4096)
        result = benchmark_finetuning(
            config, batch, device, args.steps or 20, args.precision, args.seed
        )
        result["preset"] = args.preset
        print(json.dumps(result) if args.json else format_finetuning_report(result))
        return result
    result = benchmark(
        config,
        batch,
        args.seq,
        device,
        compile=args.compile,
        vs_hf=vs_hf,
        steps=args.steps,
        warmup=args.warmup,
        peak_tflops=args.peak_tflops,
        precision=args.precision,
        hf_attention=args.hf_attention,
        seed=args.seed,
        hf_sparse_head=args.hf_sparse_head,
    )
    result["preset"] = args.preset
    print(json.dumps(result) if args.json else format_report(result))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser)
    run(parser.parse_args())
