"""Checks for chapter 10: a step's FLOPs and parameters counted, its time measured, and MFU.

    check_training_flops(training_flops)
        # (config, batch, seq, mlm_positions) -> FLOPs of one training step (a number)
    check_mfu(mfu)
        # (flops_per_step, step_time_s, peak_tflops) -> model FLOPs utilization (a fraction)
    check_parameter_count(parameter_count)
        # (config) -> parameters of BertForPreTraining, from the config's sizes alone
    check_time_step(time_step)
        # (step, warmup_steps, timed_steps, sync) -> median seconds of one timed step

The references are `bertmini.model.training_flops_per_step` and the MFU that `bench.benchmark`
reports. Answers are numbers, compared with a relative tolerance (floating point may add them up
in another order). On a wrong answer the checks try the usual mistakes and name the one that
matches: the forward pass only (2 FLOPs per weight per token instead of 6), the attention term
forgotten or counted for one of its two matmuls or forward only, the FFN counted as one matmul,
the layers forgotten, the MLM head run on every position (M = B*S) when told M, the MLM head's
H^2 transform or the whole head forgotten; for MFU: TFLOP/s not turned into FLOP/s (1e12), a
step time taken for milliseconds (or turned into them), a percentage instead of a fraction, the
ratio upside down; for the parameters: the tied decoder counted twice, biases, LayerNorms,
position/segment embeddings, the pooler, the NSP or MLM head missing, three attention
projections, one FFN matrix, one layer.

`check_time_step` runs the student's timer on a fake device (`_FakeDevice`) whose clock the
check controls: steps take known times, warm-up steps are slow, one timed step is an outlier, and
work is queued asynchronously as on a GPU, so only `sync()` makes the clock see it. Mistakes it
names: no synchronisation (the launch timed), no sync before the clock starts, warm-up steps
timed, the mean or the total instead of the median, the wrong number of steps.
"""

import contextlib
import math
import statistics
import time
from collections.abc import Callable

import torch

from ..model import BertConfig, training_flops_per_step
from . import Mistake, call_student, fail, passed

REL_TOL = 1e-6


def reference_training_flops(config: BertConfig, batch: int, seq: int, mlm_positions: int) -> int:
    """bertmini's count (`model.training_flops_per_step`)."""
    return training_flops_per_step(config, batch, seq, mlm_positions)


def reference_mfu(flops_per_step: float, step_time_s: float, peak_tflops: float) -> float:
    """Achieved FLOP/s over the chip's peak FLOP/s: a fraction between 0 and 1."""
    return flops_per_step / step_time_s / (peak_tflops * 1e12)


def _terms(config: BertConfig, batch: int, seq: int, mlm_positions: int) -> dict[str, int]:
    """The formula's pieces, so that each mistake can leave out or change one of them."""
    h, layers, i, v = (
        config.hidden_size,
        config.num_hidden_layers,
        config.intermediate_size,
        config.vocab_size,
    )
    return {
        "projections": 6 * batch * seq * layers * 4 * h**2,
        "ffn": 6 * batch * seq * layers * 2 * h * i,
        "attention": 12 * batch * layers * seq**2 * h,
        "mlm_transform": 6 * mlm_positions * h**2,
        "mlm_decoder": 6 * mlm_positions * h * v,
    }


def _with(changes: dict[str, float] | None = None, mlm_dense: bool = False) -> Callable:
    """The reference with some terms scaled (0 = left out), or its MLM head run densely."""
    changes = changes or {}

    def wrong(config, batch, seq, mlm_positions):
        positions = batch * seq if mlm_dense else mlm_positions
        terms = _terms(config, batch, seq, positions)
        return sum(value * changes.get(name, 1.0) for name, value in terms.items())

    return wrong


def _forgot_layers(config, batch, seq, mlm_positions):
    terms = _terms(config, batch, seq, mlm_positions)
    layers = config.num_hidden_layers
    encoder = (terms["projections"] + terms["ffn"] + terms["attention"]) / layers
    return encoder + terms["mlm_transform"] + terms["mlm_decoder"]


FLOPS_MISTAKES = [
    Mistake(
        lambda *args: _with()(*args) / 3,
        "your count is a third of the reference: that is the forward pass only (2 FLOPs per "
        "weight per token). A training step also runs the backward pass, which costs about twice "
        "the forward (gradients for the inputs and for the weights): 6 per weight per token.",
    ),
    Mistake(
        _with({"attention": 0}),
        "the attention term is missing: besides the weight matrices, each layer does two "
        "(seq x seq) matmuls, Q K^T and weights @ V, which cost 12*B*L*S^2*H for a training step.",
    ),
    Mistake(
        _with({"attention": 0.5}),
        "your attention term is half the reference: count both of its matmuls (Q K^T and "
        "weights @ V), 2*B*S^2*H FLOPs each forward per layer, times 3 for forward + backward: "
        "12*B*L*S^2*H.",
    ),
    Mistake(
        _with({"attention": 1 / 3}),
        "your attention term counts the forward pass only (4*B*L*S^2*H): its backward costs "
        "twice as much again, so 12*B*L*S^2*H for a training step.",
    ),
    Mistake(
        _with({"ffn": 0.5}),
        "the feed-forward network has two matmuls (H -> I and I -> H): 2*H*I weights per layer, "
        "not H*I.",
    ),
    Mistake(
        _forgot_layers,
        "you counted one layer: the encoder's terms (4H^2 + 2HI, and attention) are per layer; "
        "multiply them by config.num_hidden_layers.",
    ),
    Mistake(
        _with(mlm_dense=True),
        "your MLM head runs on every position (M = batch * seq): bertmini runs it only on the "
        "`mlm_positions` labelled positions, the sparse head. Use mlm_positions for M.",
    ),
    Mistake(
        _with({"mlm_transform": 0}),
        "the MLM head's transform is missing: before the vocabulary decoder (H x V) it applies a "
        "dense H x H layer, so the head costs 6*M*(H^2 + H*V).",
    ),
    Mistake(
        _with({"mlm_transform": 0, "mlm_decoder": 0}),
        "the MLM head is missing: 6*M*(H^2 + H*V) FLOPs for its transform and its vocabulary "
        "decoder, which is most of a small BERT's work.",
    ),
]

MFU_MISTAKES = [
    Mistake(
        lambda f, t, p: reference_mfu(f, t, p) * 1e12,
        "your answer is 1e12 times too big: peak_tflops is in TFLOP/s, so the peak is "
        "peak_tflops * 1e12 FLOP/s.",
    ),
    Mistake(
        lambda f, t, p: reference_mfu(f, t, p) / 1e12,
        "your answer is 1e12 times too small: flops_per_step is in FLOPs and the peak in "
        "TFLOP/s; turn the peak into FLOP/s (x 1e12), not the FLOPs into TFLOPs twice.",
    ),
    Mistake(
        lambda f, t, p: reference_mfu(f, t, p) * 1e3,
        "your answer is 1000 times too big: step_time_s is already in seconds (do not divide it "
        "by 1000 as if it were milliseconds).",
    ),
    Mistake(
        lambda f, t, p: reference_mfu(f, t, p) / 1e3,
        "your answer is 1000 times too small: step_time_s is in seconds; do not turn it into "
        "milliseconds.",
    ),
    Mistake(
        lambda f, t, p: reference_mfu(f, t, p) * 100,
        "that is a percentage: return the fraction (0.4, not 40).",
    ),
    Mistake(
        lambda f, t, p: 1 / reference_mfu(f, t, p),
        "the ratio is upside down: MFU = achieved FLOP/s / peak FLOP/s, below 1.",
    ),
    Mistake(
        lambda f, t, p: f * t / (p * 1e12),
        "FLOP/s are FLOPs divided by the step time, not multiplied by it.",
    ),
]


def _number(name: str, value) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(name, f"return a number (int or float), got {type(value).__name__}")
    return float(value)


def _compare_numbers(name, student, reference, cases, mistakes, detail="", refuse=()) -> None:
    """Like `checks.compare`, for functions returning one number: relative tolerance."""
    for args in cases:
        expected = float(reference(*args))
        got = _number(name, call_student(name, student, *args, refuse=refuse))
        if math.isclose(got, expected, rel_tol=REL_TOL):
            continue
        for mistake in mistakes:
            if math.isclose(got, float(mistake.wrong(*args)), rel_tol=REL_TOL):
                fail(name, mistake.advice)
        fail(
            name,
            f"on {_describe_args(args)} expected {expected:.6g}, got {got:.6g} "
            f"(ratio {got / expected:.4g}). Compare your terms with the formula above.",
        )
    passed(name, detail)


def _describe_args(args) -> str:
    if isinstance(args[0], BertConfig):
        c = args[0]
        if len(args) == 1:
            return (
                f"L{c.num_hidden_layers} H{c.hidden_size} I{c.intermediate_size} "
                f"V{c.vocab_size} P{c.max_position_embeddings} T{c.type_vocab_size}"
            )
        return (
            f"L{c.num_hidden_layers} H{c.hidden_size} I{c.intermediate_size} V{c.vocab_size}, "
            f"batch {args[1]}, seq {args[2]}, mlm_positions {args[3]}"
        )
    return ", ".join(f"{a:g}" for a in args)


def _flops_cases() -> list[tuple]:
    """Shapes where every mistake above gives a different number (I is not always 4H, S varies,
    M is far from B*S)."""
    cases = []
    for layers, hidden, intermediate, vocab, batch, seq in (
        (2, 128, 512, 30522, 32, 128),  # tiny, as in the chapter
        (3, 96, 200, 1000, 5, 48),
        (12, 768, 3072, 30522, 256, 512),  # base at the long phase
    ):
        config = BertConfig(
            vocab_size=vocab,
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=max(1, hidden // 64),
            intermediate_size=intermediate,
        )
        cases.append((config, batch, seq, max(1, round(0.15 * batch * seq)) + 1))
    return cases


def check_training_flops(training_flops_fn: Callable) -> None:
    """Check `training_flops(config, batch, seq, mlm_positions)` against bertmini's count."""
    config, batch, seq, positions = _flops_cases()[0]
    flops = reference_training_flops(config, batch, seq, positions)
    _compare_numbers(
        "training_flops",
        training_flops_fn,
        reference_training_flops,
        _flops_cases(),
        FLOPS_MISTAKES,
        refuse=["training_flops_per_step"],
        detail=f"a tiny BERT step at batch {batch} x seq {seq} is {flops / 1e9:.1f} GFLOPs",
    )


def check_mfu(mfu_fn: Callable) -> None:
    """Check `mfu(flops_per_step, step_time_s, peak_tflops)` -> a fraction."""
    cases = [
        (2.9e14, 0.62, 989.0),  # about BERT-base, batch 256: a few hundred TFLOPs per step
        (1.5e11, 1.7, 0.16),  # a small BERT on a 2-core CPU
        (7.3e12, 0.45, 65.0),  # a T4
    ]
    _compare_numbers("mfu", mfu_fn, reference_mfu, cases, MFU_MISTAKES)


# ---------------------------------------------------------------------------------------------
# Exercise 3: the parameters of BertForPreTraining, counted from its parts
# ---------------------------------------------------------------------------------------------


def _parameter_parts(config: BertConfig) -> dict[str, int]:
    """The parameters of BertForPreTraining (learned positions), part by part."""
    h, i, v = config.hidden_size, config.intermediate_size, config.vocab_size
    layer_norm = 2 * h  # a weight and a bias per feature
    return {
        "token embeddings": v * h,
        "position and segment embeddings": (config.max_position_embeddings + config.type_vocab_size)
        * h,
        "embedding LayerNorm": layer_norm,
        "attention weights": config.num_hidden_layers * 4 * h * h,  # Q, K, V and the output
        "attention biases": config.num_hidden_layers * 4 * h,
        "FFN weights": config.num_hidden_layers * 2 * h * i,
        "FFN biases": config.num_hidden_layers * (i + h),
        "layer LayerNorms": config.num_hidden_layers * 2 * layer_norm,
        "pooler": h * h + h,
        "MLM transform": h * h + h + layer_norm,
        "MLM decoder bias": v,  # its weight is the token embeddings (tied)
        "NSP head": 2 * h + 2,
    }


def reference_parameter_count(config: BertConfig) -> int:
    """sum(p.numel() for p in BertForPreTraining(config).parameters()), from the shapes alone."""
    return sum(_parameter_parts(config).values())


_LAYER_PARTS = (
    "attention weights",
    "attention biases",
    "FFN weights",
    "FFN biases",
    "layer LayerNorms",
)


def _per_layer(config: BertConfig) -> int:
    parts = _parameter_parts(config)
    return sum(parts[name] for name in _LAYER_PARTS) // config.num_hidden_layers


def _without(*parts: str, plus: Callable | None = None) -> Callable:
    def wrong(config):
        counts = _parameter_parts(config)
        extra = plus(config) if plus else 0
        return sum(n for part, n in counts.items() if part not in parts) + extra

    return wrong


PARAMETER_MISTAKES = [
    Mistake(
        _without(plus=lambda c: c.vocab_size * c.hidden_size),
        "you counted the MLM decoder's (vocab x hidden) matrix, but it is tied to the token "
        "embeddings: the same Parameter, counted once. The decoder adds only its bias (vocab).",
    ),
    Mistake(
        _without(
            "attention biases", "FFN biases", "MLM decoder bias", plus=lambda c: -c.hidden_size - 2
        ),
        "the biases are missing: every nn.Linear has one per output (4H per attention, I + H "
        "per FFN, H for the pooler and the MLM transform, 2 for NSP), and the decoder has V.",
    ),
    Mistake(
        _without("embedding LayerNorm", "layer LayerNorms", plus=lambda c: -2 * c.hidden_size),
        "the LayerNorms are missing: each has a weight and a bias of H, one after the "
        "embeddings, two per layer, one in the MLM transform.",
    ),
    Mistake(
        _without("position and segment embeddings"),
        "the position and segment embeddings are missing: (max_position_embeddings + "
        "type_vocab_size) x hidden more weights.",
    ),
    Mistake(
        _without(plus=lambda c: -c.num_hidden_layers * (c.hidden_size**2 + c.hidden_size)),
        "each layer has four attention projections (Q, K, V and the output, 4H^2 + 4H); you "
        "counted three.",
    ),
    Mistake(
        _without(
            plus=lambda c: (
                -c.num_hidden_layers * (c.hidden_size * c.intermediate_size + c.hidden_size)
            )
        ),
        "the feed-forward network has two linear layers (H -> I and I -> H): 2HI weights and "
        "I + H biases per layer; you counted one.",
    ),
    Mistake(_without("pooler"), "the pooler is missing: an H x H layer with its bias on [CLS]."),
    Mistake(_without("NSP head"), "the NSP head is missing: an H x 2 layer and 2 biases."),
    Mistake(
        _without("MLM transform", "MLM decoder bias"),
        "the MLM head is missing: its dense H x H transform and LayerNorm, and the decoder's "
        "bias of V (its matrix is the tied token embeddings).",
    ),
    Mistake(
        lambda c: reference_parameter_count(c) - (c.num_hidden_layers - 1) * _per_layer(c),
        "you counted one layer: multiply the per-layer parts by config.num_hidden_layers.",
    ),
]


def _parameter_cases() -> list[tuple[BertConfig]]:
    """Shapes where every mistake gives another number (I is not 4H, V is not a round number)."""
    return [
        (BertConfig.preset("tiny", vocab_size=1000),),
        (BertConfig(vocab_size=517, hidden_size=48, num_hidden_layers=3, num_attention_heads=4,
                    intermediate_size=100, max_position_embeddings=40, type_vocab_size=3),),
        (BertConfig.preset("base"),),
    ]  # fmt: skip


def check_parameter_count(parameter_count: Callable) -> None:
    """Check `parameter_count(config) -> int`, counted from the config's sizes alone."""
    base = reference_parameter_count(BertConfig.preset("base"))
    _compare_numbers(
        "parameter_count",
        parameter_count,
        reference_parameter_count,
        _parameter_cases(),
        PARAMETER_MISTAKES,
        refuse=["BertForPreTraining"],
        detail=f"BERT-base (with its pretraining heads) has {base:,} parameters",
    )


# ---------------------------------------------------------------------------------------------
# Exercise 4: timing a step
# ---------------------------------------------------------------------------------------------


class _FakeDevice:
    """A clock and an accelerator that runs work asynchronously, as a GPU does.

    Each step() costs 1 ms to launch and queues `work` seconds that only sync() waits for, so
    a timer that never synchronises measures the launch alone. Every reading of the clock, by
    time.perf_counter, time.monotonic or time.time, is this fake clock while the check runs.
    """

    LAUNCH = 1e-3

    def __init__(self, work: list[float]):
        self.work, self.now, self.pending, self.steps, self.syncs = list(work), 100.0, 0.0, 0, 0

    def clock(self) -> float:
        return self.now

    def step(self) -> None:
        self.now += self.LAUNCH
        self.pending += self.work[min(self.steps, len(self.work) - 1)]
        self.steps += 1

    def sync(self) -> None:
        self.now += self.pending
        self.pending, self.syncs = 0.0, self.syncs + 1


# Warm-up steps are slow (allocation, compilation); one timed step is an outlier (the machine
# was busy). The median of the timed steps is 1.0 s; every mistake below gives another number.
WARMUP_WORK = [9.0, 3.0, 2.0]
TIMED_WORK = [1.0, 1.4, 0.9, 6.0, 1.0, 0.7, 1.1]


def _time_step_variant(sync_before=True, sync_after=True, warm_up=True, summary="median"):
    """Timing with one choice made (the reference is the default)."""

    def time_step(step, warmup_steps, timed_steps, sync=lambda: None):
        durations = []
        for index in range(warmup_steps + timed_steps):
            if index < warmup_steps and warm_up:
                step()
                continue
            if sync_before:
                sync()
            start = time.perf_counter()
            step()
            if sync_after:
                sync()
            durations.append(time.perf_counter() - start)
        return {"median": statistics.median, "mean": statistics.mean, "total": sum}[summary](
            durations
        )

    return time_step


reference_time_step = _time_step_variant()
reference_time_step.__doc__ = """The median duration (seconds) of `timed_steps` calls of `step`,
after `warmup_steps` untimed ones; `sync()` waits for queued work (torch.cuda.synchronize)."""

TIME_STEP_MISTAKES = [
    Mistake(
        _time_step_variant(sync_before=False, sync_after=False),
        "you timed the launch, not the work: on a GPU a step returns before its work is done, "
        "so call sync() after step() and before reading the clock (and once before starting "
        "it).",
    ),
    Mistake(
        _time_step_variant(sync_before=False),
        "the first timed step also paid for work still queued from the warm-up: call sync() "
        "before starting the clock too.",
    ),
    Mistake(
        _time_step_variant(warm_up=False),
        "the warm-up steps were timed too: the first steps pay for memory allocation and "
        "compilation. Run warmup_steps untimed steps first, then time timed_steps more.",
    ),
    Mistake(
        _time_step_variant(summary="mean"),
        "that is the mean of the timed steps: one slow step (the machine was busy) pulls it "
        "up. Report the median (statistics.median), which one outlier does not move.",
    ),
    Mistake(
        _time_step_variant(summary="total"),
        "that is the total of the timed steps: return the time of one step (their median).",
    ),
]


@contextlib.contextmanager
def _fake_clock(device: _FakeDevice):
    originals = {name: getattr(time, name) for name in ("perf_counter", "monotonic", "time")}
    for name in originals:
        setattr(time, name, device.clock)
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(time, name, original)


def _timed(time_step: Callable) -> tuple[float, _FakeDevice]:
    """(the answer, the fake device afterwards) of `time_step` on a fresh fake device."""
    device = _FakeDevice(WARMUP_WORK + TIMED_WORK)
    with _fake_clock(device):
        answer = time_step(device.step, len(WARMUP_WORK), len(TIMED_WORK), device.sync)
    return answer, device


def check_time_step(time_step: Callable) -> None:
    """Check `time_step(step, warmup_steps, timed_steps, sync) -> seconds` on a fake device whose
    steps take known times (slow warm-up steps, one outlier, work that runs asynchronously)."""
    name = "time_step"
    answer, device = call_student(name, _timed, time_step)
    seconds, expected = _number(name, answer), _timed(reference_time_step)[0]
    if math.isclose(seconds, expected, rel_tol=1e-6):
        passed(
            name,
            f"median of {len(TIMED_WORK)} synchronised steps after {len(WARMUP_WORK)} untimed ones",
        )
        return
    calls = len(WARMUP_WORK) + len(TIMED_WORK)
    if device.steps != calls:
        fail(
            name,
            f"step() ran {device.steps} times; expected warmup_steps + timed_steps = {calls}.",
        )
    for mistake in TIME_STEP_MISTAKES:
        if math.isclose(seconds, _timed(mistake.wrong)[0], rel_tol=1e-6):
            fail(name, mistake.advice)
    fail(
        name,
        f"expected {expected:.4f} s (the median of the timed steps), got {seconds:.4f} s. Time "
        "each step alone: sync(), read the clock, step(), sync(), read the clock again.",
    )
