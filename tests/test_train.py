"""Tests of the training engine: schedule, optimizer, exact resume, crash safety, NaN, fp16, DDP."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from bertmini import course
from bertmini.hub import find_checkpoint, load_trainer_state, save_checkpoint
from bertmini.model import BertConfig, BertForPreTraining
from bertmini.rundir import RunStateError
from bertmini.train import (
    TrainConfig,
    TrainingDiverged,
    linear_warmup_decay,
    make_loader,
    make_optimizer,
    read_metrics,
    train,
    training_step,
)

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
CLS, SEP, MASK = 2, 3, 4
VOCAB = 40


# ---------------------------------------------------------------------------------------------
# A tiny model and a learnable toy task (also imported by the subprocess scripts below)
# ---------------------------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny_config(**overrides) -> BertConfig:
    shape = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    return BertConfig(**{**shape, **overrides})


class PairDataset(Dataset):
    """[CLS] a a a a a [SEP] b b b b [SEP]: b == a for IsNext (label 0), b != a for NotNext.

    MLM can copy a neighbour; NSP can compare the segments: both are learnable in a few steps.
    """

    def __init__(self, size: int = 48, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.a = torch.randint(5, VOCAB, (size,), generator=generator)
        offset = torch.randint(1, VOCAB - 5, (size,), generator=generator)
        self.label = torch.arange(size) % 2
        self.b = torch.where(self.label == 0, self.a, 5 + (self.a - 5 + offset) % (VOCAB - 5))

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        a, b = self.a[i].item(), self.b[i].item()
        ids = torch.tensor([CLS, a, a, a, a, a, SEP, b, b, b, b, SEP])
        return {
            "input_ids": ids,
            "token_type_ids": torch.tensor([0] * 7 + [1] * 5),
            "next_sentence_label": self.label[i],
        }


class MaskingCollator:
    """Masks 25% of the non-special tokens (at least one per row) with its own generator."""

    def __init__(self, seed: int | None = 0):
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __call__(self, examples):
        ids = torch.stack([e["input_ids"] for e in examples])  # (batch, seq)
        special = (ids == CLS) | (ids == SEP)
        chosen = (torch.rand(ids.shape, generator=self.generator) < 0.25) & ~special
        chosen[:, 1] = True
        return {
            "input_ids": torch.where(chosen, MASK, ids),
            "token_type_ids": torch.stack([e["token_type_ids"] for e in examples]),
            "attention_mask": torch.ones_like(ids),
            "labels": torch.where(chosen, ids, -100),
            "next_sentence_label": torch.stack([e["next_sentence_label"] for e in examples]),
        }


class FixedMaskDataset(PairDataset):
    """Already-masked items, the same number of masked tokens in each: mean losses of equal
    shards then average to the mean loss of the whole batch (for the DDP comparison)."""

    def __getitem__(self, i):
        item = super().__getitem__(i)
        ids = item["input_ids"]
        chosen = torch.zeros_like(ids, dtype=torch.bool)
        chosen[[1 + i % 5, 7 + i % 4]] = True
        return {
            **item,
            "input_ids": torch.where(chosen, MASK, ids),
            "attention_mask": torch.ones_like(ids),
            "labels": torch.where(chosen, ids, -100),
        }


def quick(**overrides) -> TrainConfig:
    settings = dict(steps=10, lr=1e-2, log_every=2, progress=False, seed=0)
    return TrainConfig(**{**settings, **overrides})


def tiny_run(out_dir, config: TrainConfig, model=None, resume=False, callbacks=(), eval=False):
    """Train a fresh tiny model on the toy task; returns (model, history)."""
    torch.manual_seed(0)
    model = model if model is not None else BertForPreTraining(tiny_config())
    loader = make_loader(PairDataset(48), 8, MaskingCollator(seed=1), seed=3)  # 6 batches/epoch
    eval_loader = make_loader(PairDataset(16, seed=5), 8, MaskingCollator(None), shuffle=False)
    history = train(
        model,
        loader,
        config,
        eval_loader=eval_loader if eval else None,
        callbacks=callbacks,
        out_dir=out_dir,
        resume=resume,
    )
    return model, history


# ---------------------------------------------------------------------------------------------
# Schedule, optimizer, config
# ---------------------------------------------------------------------------------------------


def test_linear_warmup_then_linear_decay():
    factors = [linear_warmup_decay(step, 4, 12) for step in range(12)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]  # warmup reaches the peak on its last step
    decay = factors[4:]
    assert all(a > b for a, b in zip(decay[:-1], decay[1:], strict=True))  # strictly falling
    assert decay[-1] == pytest.approx(1 / 8) and min(factors) > 0  # no wasted zero-lr step
    assert linear_warmup_decay(0, 0, 5) == 1.0  # no warmup: start at the peak
    with pytest.raises(ValueError, match="warmup_steps"):
        linear_warmup_decay(0, 6, 5)


def test_no_weight_decay_on_biases_and_layernorm():
    model = BertForPreTraining(tiny_config())
    optimizer = make_optimizer(model, TrainConfig(weight_decay=0.05))
    decayed, not_decayed = optimizer.param_groups
    assert decayed["weight_decay"] == 0.05 and not_decayed["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = [names[id(p)] for p in not_decayed["params"]]
    assert all(n.endswith("bias") or "norm" in n.lower() for n in no_decay_names)
    assert any("norm" in n.lower() for n in no_decay_names)
    assert all(p.dim() == 2 for p in decayed["params"])
    # every trainable parameter is in exactly one group (the tied decoder weight only once)
    grouped = decayed["params"] + not_decayed["params"]
    assert len({id(p) for p in grouped}) == len(grouped) == len(list(model.parameters()))


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        TrainConfig(steps=10, warmup_steps=20)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1.0)


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


def test_training_learns_and_logs_every_step(tmp_path):
    seen = []
    _, history = tiny_run(
        tmp_path,
        quick(steps=40, log_every=10),
        callbacks=[lambda h: seen.append(len(h))],
        eval=True,
    )
    assert [row["step"] for row in history] == list(range(1, 41))
    for key in ("loss", "mlm_accuracy", "nsp_accuracy", "lr", "grad_norm", "tokens_per_s"):
        assert all(key in row and math.isfinite(row[key]) for row in history), key
    first = sum(r["loss"] for r in history[:5]) / 5
    last = sum(r["loss"] for r in history[-5:]) / 5
    assert last < first - 0.5, (first, last)
    assert sum(r["mlm_accuracy"] for r in history[-5:]) / 5 > 0.1  # chance: 1/35
    assert "eval_mlm_accuracy" in history[-1]  # evaluated at the end
    assert seen == [10, 20, 30, 40]  # callbacks get the history every log_every steps
    assert read_metrics(tmp_path) == json.loads(json.dumps(history))  # metrics.jsonl, same rows
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    reloaded = BertForPreTraining.from_pretrained(tmp_path)
    assert torch.equal(reloaded.nsp.weight, BertForPreTraining.from_pretrained(tmp_path).nsp.weight)


class Interrupt(Exception):
    pass


def stop_at(step):
    def callback(history):
        if history[-1]["step"] == step:
            raise Interrupt

    return callback


def test_exact_resume_equals_uninterrupted_run_bitwise(tmp_path):
    # grad accumulation over an epoch boundary, dropout on, random masking with the collator's
    # generator, and an evaluation (on the global RNG) in between: all must resume exactly.
    config = quick(steps=10, grad_accum_steps=2, checkpoint_every=2, eval_every=3)
    full, full_history = tiny_run(tmp_path / "full", config, eval=True)

    with pytest.raises(Interrupt):
        tiny_run(tmp_path / "cut", config, callbacks=[stop_at(4)], eval=True)
    assert load_trainer_state(find_checkpoint(tmp_path / "cut"))["step"] == 4
    torch.manual_seed(123)  # a different initialisation: the weights must come from the checkpoint
    resumed_model = BertForPreTraining(tiny_config())
    resumed, resumed_history = tiny_run(
        tmp_path / "cut", config, model=resumed_model, resume=True, eval=True
    )

    full_state, resumed_state = full.state_dict(), resumed.state_dict()
    assert all(torch.equal(full_state[k], resumed_state[k]) for k in full_state)
    drop_speed = [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in full_history]
    assert drop_speed == [
        {k: v for k, v in r.items() if k != "tokens_per_s"} for r in resumed_history
    ]
    assert [r["step"] for r in read_metrics(tmp_path / "cut")] == list(range(1, 11))


def test_resume_without_checkpoint_refuses_instead_of_restarting(tmp_path):
    with pytest.raises(RunStateError, match="no checkpoint to resume from"):
        tiny_run(tmp_path, quick(steps=2), resume=True)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_resume_falls_back_to_the_previous_checkpoint_when_the_newest_is_unreadable(
    tmp_path, capsys
):
    config = quick(steps=6, checkpoint_every=2)
    full, _ = tiny_run(tmp_path / "full", config)
    with pytest.raises(Interrupt):
        tiny_run(tmp_path / "cut", config, callbacks=[stop_at(4)])
    newest = tmp_path / "cut" / "checkpoint" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as by a full disk
    resumed, _ = tiny_run(tmp_path / "cut", config, resume=True)
    assert "resuming from" in capsys.readouterr().err
    assert all(
        torch.equal(a, b) for a, b in zip(full.parameters(), resumed.parameters(), strict=True)
    )


def test_resume_refuses_other_options_unless_told(tmp_path):
    with pytest.raises(Interrupt):
        tiny_run(tmp_path, quick(steps=4, checkpoint_every=2), callbacks=[stop_at(2)])
    with pytest.raises(RunStateError, match=r"lr: 0.01 -> 0.5; seed: 0 -> 7"):
        tiny_run(tmp_path, quick(steps=4, lr=0.5, seed=7), resume=True)
    _, history = tiny_run(tmp_path, quick(steps=4, lr=1e-3), resume="with-changes")
    assert [r["step"] for r in history] == [1, 2, 3, 4]


# ---------------------------------------------------------------------------------------------
# Checkpoints survive a crash at any moment
# ---------------------------------------------------------------------------------------------

KILL_SCRIPT = """
import os, sys, time
import torch
sys.path[:0] = [{repo!r}, {tests!r}]
import test_train
from bertmini.train import TrainConfig

phase = sys.argv[1]
real_save, real_replace, saves = torch.save, os.replace, []

def save_then_hang(obj, f, *args, **kwargs):  # hangs inside the 2nd checkpoint's write
    real_save(obj, f, *args, **kwargs)
    saves.append(f)
    if phase == "write" and len(saves) == 2:
        print("HANGING", flush=True)
        time.sleep(120)

def replace_then_hang(src, dst):  # hangs between moving the old one aside and the new one in
    real_replace(src, dst)
    if phase == "swap" and str(dst).endswith("checkpoint.prev"):
        print("HANGING", flush=True)
        time.sleep(120)

torch.save, os.replace = save_then_hang, replace_then_hang
test_train.tiny_run({out!r}, TrainConfig(steps=3, lr=3e-3, checkpoint_every=1, progress=False))
"""


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["write", "swap"])
def test_sigkill_during_checkpoint_leaves_previous_loadable(tmp_path, phase):
    script = tmp_path / "run.py"
    script.write_text(
        KILL_SCRIPT.format(repo=str(REPO), tests=str(TESTS), out=str(tmp_path / "run"))
    )
    process = subprocess.Popen(
        [sys.executable, str(script), phase],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"},
    )
    deadline = time.monotonic() + 60
    line = ""
    while "HANGING" not in line and time.monotonic() < deadline and process.poll() is None:
        line = process.stdout.readline()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert "HANGING" in line, "the training subprocess never reached its second checkpoint"

    checkpoint = find_checkpoint(tmp_path / "run")
    assert checkpoint is not None
    assert checkpoint.name == ("checkpoint" if phase == "write" else "checkpoint.prev")
    assert load_trainer_state(checkpoint)["step"] == 1
    model = BertForPreTraining.from_pretrained(checkpoint)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # and the run resumes from it to the end
    _, history = tiny_run(
        tmp_path / "run",
        TrainConfig(steps=3, lr=3e-3, checkpoint_every=1, progress=False),
        resume=True,
    )
    assert [r["step"] for r in history] == [1, 2, 3]
    assert load_trainer_state(find_checkpoint(tmp_path / "run"))["step"] == 3
    assert load_trainer_state(tmp_path / "run" / "checkpoint.prev")["step"] == 2  # the fallback


def test_interrupted_swap_is_recovered_by_the_next_save(tmp_path):
    model = BertForPreTraining(tiny_config())
    save_checkpoint(tmp_path, model, {"step": 1})
    os.replace(tmp_path / "checkpoint", tmp_path / "checkpoint.prev")  # as if killed mid-swap
    (tmp_path / "checkpoint.tmp").mkdir()  # and a half-written one
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoint.prev"
    save_checkpoint(tmp_path, model, {"step": 2})
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoint"
    assert load_trainer_state(tmp_path / "checkpoint")["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint", "checkpoint.prev"]


# ---------------------------------------------------------------------------------------------
# Faults and precision
# ---------------------------------------------------------------------------------------------


class PoisonedModel(BertForPreTraining):
    """Its loss turns NaN on the 7th forward pass."""

    calls = 0

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        self.calls += 1
        if self.calls == 7:
            out.loss = out.loss * float("nan")
        return out


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    model = PoisonedModel(tiny_config())
    config = quick(steps=10, checkpoint_every=2, log_every=5)
    with pytest.raises(TrainingDiverged) as error:
        tiny_run(tmp_path, config, model=model)
    message = str(error.value)
    assert "step 7" in message and "nan" in message
    assert f"{tmp_path / 'checkpoint'} (step 6)" in message
    checkpoint = find_checkpoint(tmp_path)
    assert load_trainer_state(checkpoint)["step"] == 6
    good = BertForPreTraining.from_pretrained(checkpoint)
    assert all(torch.isfinite(p).all() for p in good.parameters())
    assert any(not torch.isfinite(p).all() for p in model.parameters())  # the run itself was bad


def inject_inf_gradient(model, at_backward: int):
    """Make the NSP weight's gradient infinite on the `at_backward`-th backward pass."""
    count = {"n": 0}

    def hook(grad):
        count["n"] += 1
        return grad * float("inf") if count["n"] == at_backward else grad

    model.nsp.weight.register_hook(hook)


def test_fp32_infinite_gradient_is_a_fault(tmp_path):
    model = BertForPreTraining(tiny_config())
    inject_inf_gradient(model, at_backward=3)
    with pytest.raises(TrainingDiverged, match="step 3: gradient norm = inf"):
        tiny_run(tmp_path, quick(steps=6, precision="fp32", log_every=1), model=model)


def test_fp16_grad_scaler_skips_the_overflowing_step():
    torch.manual_seed(0)
    model = BertForPreTraining(tiny_config())
    optimizer = make_optimizer(model, TrainConfig(lr=1e-2))
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    batch = MaskingCollator(seed=0)([PairDataset(8)[i] for i in range(8)])
    inject_inf_gradient(model, at_backward=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    metrics = training_step(model, [batch], optimizer, scaler, precision="fp16")
    assert not math.isfinite(metrics["grad_norm"].item())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # skipped
    assert scaler.get_scale() == 512.0  # and the scale halved

    metrics = training_step(model, [batch], optimizer, scaler, precision="fp16")
    assert math.isfinite(metrics["grad_norm"].item()) and math.isfinite(metrics["loss"].item())
    assert not torch.equal(before["nsp.weight"], model.state_dict()["nsp.weight"])  # stepped


def test_fp16_run_survives_an_overflow(tmp_path):
    model = BertForPreTraining(tiny_config())
    inject_inf_gradient(model, at_backward=3)
    _, history = tiny_run(tmp_path, quick(steps=12, precision="fp16", log_every=1), model=model)
    assert math.isinf(history[2]["grad_norm"])  # the overflow was seen, and skipped
    assert all(math.isfinite(r["loss"]) for r in history)
    assert history[-1]["loss"] < history[0]["loss"]


def test_precision_and_device_choice(monkeypatch):
    cpu = torch.device("cpu")
    assert course.choose_precision(cpu) == "fp32"
    assert course.choose_precision(cpu, "bf16") == "bf16"
    with pytest.raises(ValueError, match="precision"):
        course.choose_precision(cpu, "fp8")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert course.choose_precision(torch.device("cuda")) == "fp16"  # T4: fp16 + GradScaler
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert course.choose_precision(torch.device("cuda")) == "bf16"
    assert course.choose_device("cpu") == cpu
    with pytest.raises(ValueError, match="device"):
        course.choose_device("tpu")


def test_profiles(monkeypatch):
    monkeypatch.setenv("BERTMINI_PROFILE", "ci")
    assert course.get_profile().name == "ci"
    assert course.get_profile("CPU").preset == "tiny"
    ci, cpu, gpu = (course.PROFILES[n] for n in ("ci", "cpu", "gpu"))

    def pretraining_tokens(profile):
        return profile.pretrain_steps * profile.batch_size * profile.max_seq_len

    assert pretraining_tokens(ci) < pretraining_tokens(cpu) < pretraining_tokens(gpu)
    monkeypatch.setenv("BERTMINI_PROFILE", "huge")
    with pytest.raises(ValueError, match="BERTMINI_PROFILE"):
        course.get_profile()


# ---------------------------------------------------------------------------------------------
# Distributed: torchrun with 2 processes on gloo
# ---------------------------------------------------------------------------------------------

DDP_SCRIPT = """
import sys
import torch
sys.path[:0] = [{repo!r}, {tests!r}]
from test_train import FixedMaskDataset, tiny_config
from bertmini.model import BertForPreTraining
from bertmini.train import TrainConfig, make_loader, setup_distributed, train

out = sys.argv[1]
rank, world_size = setup_distributed()
torch.manual_seed(0)
model = BertForPreTraining(tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
loader = make_loader(FixedMaskDataset(64), batch_size=16 // world_size, seed=0)  # global batch 16
config = TrainConfig(
    steps=12, lr=1e-2, warmup_steps=1, log_every=4, checkpoint_every=4, progress=False
)
history = train(model, loader, config, out_dir=out)
torch.save({{"weights": model.state_dict(), "losses": [r["loss"] for r in history]}},
           f"{{out}}/rank{{rank}}_of_{{world_size}}.pt")
"""


@pytest.mark.slow
def test_ddp_two_processes_match_one(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(repo=str(REPO), tests=str(TESTS)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    env.pop("WORLD_SIZE", None)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    for command, out in ((torchrun, "ddp"), ([sys.executable], "single")):
        result = subprocess.run(
            [*command, str(script), str(tmp_path / out)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]

    rank0 = torch.load(tmp_path / "ddp" / "rank0_of_2.pt")
    rank1 = torch.load(tmp_path / "ddp" / "rank1_of_2.pt")
    single = torch.load(tmp_path / "single" / "rank0_of_1.pt")
    for name, weight in rank0["weights"].items():
        assert torch.equal(weight, rank1["weights"][name]), f"ranks disagree on {name}"
        # same global batch, gradients averaged over ranks: equal up to float summation order
        torch.testing.assert_close(weight, single["weights"][name], atol=1e-5, rtol=1e-4)
    # each rank logs the loss of its half; their mean is the loss of the whole batch
    mean_of_ranks = [(a + b) / 2 for a, b in zip(rank0["losses"], rank1["losses"], strict=True)]
    assert mean_of_ranks == pytest.approx(single["losses"], rel=1e-4)
    assert sum(mean_of_ranks[-3:]) / 3 < sum(mean_of_ranks[:3]) / 3 - 0.1  # and it falls
    # only rank 0 wrote the logs: one row per step, once
    assert [r["step"] for r in read_metrics(tmp_path / "ddp")] == list(range(1, 13))
    assert load_trainer_state(find_checkpoint(tmp_path / "ddp"))["step"] == 12
