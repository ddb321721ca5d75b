"""Bad inputs, the way a careless or unlucky user meets them (issue 17).

Each case runs the CLI and asserts the exit status (2: a wrong option, 3: bad data or a run
directory's state), one line on stderr that says what went wrong (no traceback), and that the
run directory did not change when it should not. Then: two runs on one directory, SIGTERM at a
step boundary, and SIGKILL during the vocabulary and checkpoint writes followed by a resume that
is bitwise identical to an uninterrupted run. `scripts/bad_input_sweep.py` runs CASES as a table.
"""

import contextlib
import hashlib
import io
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bertmini.__main__ import main

REPO = Path(__file__).resolve().parents[1]
TINY = ["--preset", "tiny", "--num-documents", "60", "--vocab-size", "300", "--max-seq-len", "32"]
TINY += ["--batch-size", "8", "--no-progress"]


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------


def truncate(model_dir: Path) -> None:
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])


def garbage(model_dir: Path) -> None:
    (model_dir / "model.safetensors").write_bytes(os.urandom(5000))


def garbage_pickle(model_dir: Path) -> None:
    (model_dir / "model.safetensors").unlink()
    # Fixed bytes: random ones are refused as a pickle or fail as truncated, depending on the draw
    (model_dir / "pytorch_model.bin").write_bytes(random.Random(0).randbytes(5000))


class Payload:
    """A pickle that would create a file if unpickled with code allowed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def malicious_pickle(model_dir: Path) -> None:
    (model_dir / "model.safetensors").unlink()
    torch.save({"x": Payload(model_dir / "PWNED")}, model_dir / "pytorch_model.bin")


def edit_config(**changes):
    def edit(model_dir: Path) -> None:
        config = json.loads((model_dir / "config.json").read_text())
        (model_dir / "config.json").write_text(json.dumps({**config, **changes}))

    return edit


def config_is_a_list(model_dir: Path) -> None:
    (model_dir / "config.json").write_text("[1, 2, 3]")


def config_not_json(model_dir: Path) -> None:
    (model_dir / "config.json").write_text('{"hidden_size": 128,')


def short_vocab(model_dir: Path) -> None:
    lines = (model_dir / "vocab.txt").read_text().splitlines()
    (model_dir / "vocab.txt").write_text("\n".join(lines[:-50]) + "\n")


def edit_weights(change):
    def edit(model_dir: Path) -> None:
        weights = load_file(model_dir / "model.safetensors")
        change(weights)
        save_file(weights, model_dir / "model.safetensors")

    return edit


def nan_weights(weights):
    weights["cls.seq_relationship.weight"] = torch.full_like(
        weights["cls.seq_relationship.weight"], float("nan")
    )


def extra_tensor(weights):
    weights["bert.encoder.layer.7.attention.extra.weight"] = torch.zeros(3)


def drop_encoder_layer(weights):
    for name in [n for n in weights if ".layer.1." in n]:
        del weights[name]


@dataclass
class Case:
    """argv with {model} (a good pretrained model), {run} (a run directory to keep unchanged),
    {new} (a directory that does not exist yet) and {bad} (a copy of {model}, spoiled by
    `spoil`). `status` and `message` are what the CLI must answer."""

    name: str
    argv: list[str]
    status: int
    message: str
    spoil: object = None


FILL = ["fill-mask", "the [MASK] sat"]
PRETRAIN = ["pretrain", *TINY, "--steps", "2"]
BENCH = ["bench", "--preset", "tiny", "--batch", "2", "--seq", "16", "--steps", "1", "--vs", "none"]
CASES = [
    # Options: refused before any work, the range named
    Case("max-grad-norm -1", [*PRETRAIN, "--max-grad-norm", "-1", "--out", "{new}"], 2, "> 0"),
    Case("weight-decay -5", [*PRETRAIN, "--weight-decay", "-5", "--out", "{new}"], 2, ">= 0"),
    Case("seed 1e23", [*PRETRAIN, "--seed", "1e23", "--out", "{new}"], 2, "--seed"),
    Case("seed -1", [*PRETRAIN, "--seed", "-1", "--out", "{new}"], 2, "2**63"),
    Case("seed 2**63", [*PRETRAIN, "--seed", str(2**63), "--out", "{new}"], 2, "2**63"),
    Case("max-seq-len 0", [*PRETRAIN, "--max-seq-len", "0", "--out", "{new}"], 2, ">= 8"),
    Case("vocab-size 0", [*PRETRAIN, "--vocab-size", "0", "--out", "{new}"], 2, ">= 100"),
    Case("num-documents 0", [*PRETRAIN, "--num-documents", "0", "--out", "{new}"], 2, ">= 2"),
    Case("lr nan", [*PRETRAIN, "--lr", "nan", "--out", "{new}"], 2, "--lr"),
    Case("lr -1", [*PRETRAIN, "--lr", "-1", "--out", "{new}"], 2, "--lr"),
    Case("grad-accum 0", [*PRETRAIN, "--grad-accum", "0", "--out", "{new}"], 2, "--grad-accum"),
    Case("mlm-probability 1.5", [*PRETRAIN, "--mlm-probability", "1.5", "--out", "{new}"], 2, "]"),
    Case("steps x", [*PRETRAIN, "--steps", "x", "--out", "{new}"], 2, "integer"),
    Case("checkpoint-every 0", [*PRETRAIN, "--checkpoint-every", "0", "--out", "{new}"], 2, ">="),
    Case("resume + overwrite", [*PRETRAIN, "--resume", "--overwrite", "--out", "{run}"], 2, "one"),
    Case("top-k 0", [*FILL, "--model", "{model}", "--top-k", "0"], 2, ">= 1"),
    Case("top-k -1", [*FILL, "--model", "{model}", "--top-k", "-1"], 2, ">= 1"),
    Case("top-k 100000", [*FILL, "--model", "{model}", "--top-k", "100000"], 2, "vocabulary"),
    Case("bench vocab-size 0", [*BENCH, "--vocab-size", "0"], 2, "--vocab-size"),
    Case("bench peak-tflops -1", [*BENCH, "--peak-tflops", "-1"], 2, "--peak-tflops"),
    Case("evaluate batch-size 0", ["evaluate", "--model", "{model}", "--batch-size", "0"], 2, ">="),
    # Run directories: nothing a user made is lost
    Case("pretrain over a run", [*PRETRAIN, "--out", "{run}"], 3, "--overwrite"),
    Case(
        "finetune --out = --model",
        ["finetune", "--model", "{run}", "--steps", "2", "--out", "{run}"],
        2,
        "choose another --out",
    ),
    Case("resume, nothing there", [*PRETRAIN, "--resume", "--out", "{new}"], 3, "no checkpoint"),
    Case("resume, other lr", [*PRETRAIN, "--resume", "--lr", "0.5", "--out", "{run}"], 3, "lr:"),
    Case("resume, no NSP", [*PRETRAIN, "--resume", "--no-nsp", "--out", "{run}"], 3, "nsp:"),
    Case(
        "resume, other preset",
        [*PRETRAIN, "--resume", "--preset", "mini", "--out", "{run}"],
        3,
        "preset: 'tiny' -> 'mini'",
    ),
    Case(
        "resume, other batch",
        [*PRETRAIN, "--resume", "--batch-size", "4", "--out", "{run}"],
        3,
        "batch_size: 8 -> 4",
    ),
    Case(
        "resume, other seed",
        [*PRETRAIN, "--resume", "--seed", "7", "--out", "{run}"],
        3,
        "seed: 0 -> 7",
    ),
    # Spoiled model files: one clear line each
    Case("truncated weights", [*FILL, "--model", "{bad}"], 3, "truncated", truncate),
    Case("garbage weights", [*FILL, "--model", "{bad}"], 3, "unreadable", garbage),
    Case("garbage .bin", [*FILL, "--model", "{bad}"], 3, "pytorch_model.bin", garbage_pickle),
    Case("malicious pickle", [*FILL, "--model", "{bad}"], 3, "never run", malicious_pickle),
    Case(
        "0 heads",
        [*FILL, "--model", "{bad}"],
        3,
        "num_attention_heads",
        edit_config(num_attention_heads=0),
    ),
    Case(
        "heads a list",
        [*FILL, "--model", "{bad}"],
        3,
        "num_attention_heads",
        edit_config(num_attention_heads=[2]),
    ),
    Case("config a list", [*FILL, "--model", "{bad}"], 3, "config.json", config_is_a_list),
    Case("config not JSON", [*FILL, "--model", "{bad}"], 3, "JSON", config_not_json),
    Case("vocab.txt too short", [*FILL, "--model", "{bad}"], 3, "vocab.txt has", short_vocab),
    Case("NaN weights", [*FILL, "--model", "{bad}"], 3, "NaN", edit_weights(nan_weights)),
    Case(
        "extra tensors", [*FILL, "--model", "{bad}"], 3, "does not know", edit_weights(extra_tensor)
    ),
    Case(
        "finetune, encoder missing",
        ["finetune", "--model", "{bad}", "--steps", "2", "--out", "{new}"],
        3,
        "encoder weights",
        edit_weights(drop_encoder_layer),
    ),
]


# ---------------------------------------------------------------------------------------------
# Running them
# ---------------------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `python -m bertmini argv`, in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def snapshot(directory: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `directory` (a missing one: {})."""
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def run_case(case: Case, model: Path, work: Path) -> dict:
    """Run one case in `work`; returns what happened, for the assertions and the sweep."""
    run, new, bad = work / "run", work / "new", work / "bad"
    if "{run}" in " ".join(case.argv) and not run.exists():
        shutil.copytree(model, run)
    if case.spoil is not None:
        shutil.copytree(model, bad)
        case.spoil(bad)
    before = {name: snapshot(path) for name, path in (("run", run), ("new", new), ("bad", bad))}
    argv = [a.format(model=model, run=run, new=new, bad=bad) for a in case.argv]
    status, out, err = run_cli(argv)
    after = {name: snapshot(path) for name, path in (("run", run), ("new", new), ("bad", bad))}
    return dict(
        status=status,
        stdout=out,
        stderr=err,
        changed=[name for name in before if before[name] != after[name]],
        code_ran=(bad / "PWNED").exists(),
    )


pytestmark = pytest.mark.usefixtures("one_thread", "ci_offline")  # tests/conftest.py


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny model pretrained for 2 steps through the CLI, its checkpoint kept."""
    out = tmp_path_factory.mktemp("model") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BERTMINI_PROFILE", "ci")
        status, _, err = run_cli([*PRETRAIN, "--out", str(out), "--keep-optimizer"])
    assert status == 0, err
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gives_one_line_and_changes_nothing(case, model, tmp_path):
    result = run_case(case, model, tmp_path)
    err = result["stderr"]
    assert result["status"] == case.status, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert case.message in err
    assert result["changed"] == [], f"{result['changed']} changed: {err}"
    assert not result["code_ran"]


# ---------------------------------------------------------------------------------------------
# The same checks, through the API
# ---------------------------------------------------------------------------------------------


def test_misspelled_from_pretrained_option_is_refused(model):
    from bertmini.model import BertForPreTraining

    with pytest.raises(TypeError, match="did you mean 'hidden_size'"):
        BertForPreTraining.from_pretrained(model, hiden_size=64)


def test_mlm_loss_of_a_batch_without_masks_is_zero_not_nan():
    from bertmini.model import BertConfig, BertForPreTraining

    model = BertForPreTraining(BertConfig.preset("tiny", vocab_size=50))
    ids = torch.randint(5, 50, (2, 6))
    out = model(ids, labels=torch.full_like(ids, -100), next_sentence_label=torch.tensor([0, 1]))
    assert out.mlm_loss.item() == 0 and math.isfinite(out.loss.item())
    out.loss.backward()  # and a gradient (of the NSP loss) flows
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_accumulated_micro_batches_weigh_by_labelled_tokens():
    """One step over micro-batches with 0, 1 and 5 masks = the step over the whole batch."""
    from bertmini.model import BertConfig, BertForPreTraining
    from bertmini.train import loss_weights, weighted_loss

    torch.manual_seed(0)
    config = BertConfig.preset("tiny", vocab_size=50, hidden_dropout_prob=0.0)
    model = BertForPreTraining(replace_dropout(config)).eval()
    ids = torch.randint(5, 50, (3, 8))
    labels = torch.full_like(ids, -100)
    labels[1, 2] = ids[1, 2]
    labels[2, 1:6] = ids[2, 1:6]
    nsp = torch.tensor([0, 1, 0])
    micro = [
        dict(input_ids=ids[i : i + 1], labels=labels[i : i + 1], next_sentence_label=nsp[i : i + 1])
        for i in range(3)
    ]
    accumulated = sum(
        weighted_loss(model(**batch), weights)
        for batch, weights in zip(micro, loss_weights(micro), strict=True)
    )
    whole = model(ids, labels=labels, next_sentence_label=nsp).loss
    assert torch.allclose(accumulated, whole, atol=1e-6)


def replace_dropout(config):
    from dataclasses import replace

    return replace(config, attention_probs_dropout_prob=0.0)


def test_pretraining_with_many_micro_batches_does_not_diverge(tmp_path):
    """Issue 17: --grad-accum 8 with 16 tokens a row left micro-batches without masks (NaN)."""
    argv = ["pretrain", *TINY, "--max-seq-len", "16", "--batch-size", "8", "--grad-accum", "8"]
    status, _, err = run_cli([*argv, "--steps", "4", "--log-every", "1", "--out", str(tmp_path)])
    assert status == 0, err
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(row["loss"]) for row in rows)


def test_evaluate_with_one_example_per_batch_prints_no_nan(model):
    status, out, err = run_cli(
        ["evaluate", "--model", str(model), "--batch-size", "1", "--max-seq-len", "8"]
    )
    assert status == 0, err
    assert "nan" not in out and "mlm_loss" in out


def test_empty_batch_is_a_clear_error():
    from bertmini.model import BertConfig, BertModel

    with pytest.raises(ValueError, match="empty batch"):
        BertModel(BertConfig.preset("tiny", vocab_size=50))(torch.zeros(0, 5, dtype=torch.long))


def test_saved_files_get_the_usual_permissions(tmp_path):
    from bertmini.model import BertConfig, BertModel

    old = os.umask(0o022)
    try:
        BertModel(BertConfig.preset("tiny", vocab_size=50)).save_pretrained(tmp_path)
    finally:
        os.umask(old)
    assert {oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {"0o644"}


def test_a_finished_run_keeps_the_model_but_not_the_optimizer(tmp_path):
    status, _, err = run_cli([*PRETRAIN, "--out", str(tmp_path / "run")])
    assert status == 0, err
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"model.safetensors", "config.json", "vocab.txt", "metrics.jsonl"} <= names
    assert not names & {"checkpoint", "checkpoint.prev"}


def test_resume_does_not_rewrite_vocab_txt(model, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(model, run)
    before = (run / "vocab.txt").stat()
    status, _, err = run_cli([*PRETRAIN, "--resume", "--keep-optimizer", "--out", str(run)])
    assert status == 0, err
    after = (run / "vocab.txt").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert (run / "checkpoint" / "vocab.txt").read_text() == (run / "vocab.txt").read_text()


def test_overwrite_replaces_the_run(model, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(model, run)
    status, _, err = run_cli([*PRETRAIN, "--seed", "3", "--overwrite", "--out", str(run)])
    assert status == 0, err
    assert snapshot(run)["model.safetensors"] != snapshot(model)["model.safetensors"]


def test_second_ctrl_c_stops_at_once():
    from bertmini.train import _StopAtStepBoundary

    with _StopAtStepBoundary(enabled=True) as stop:
        signal.raise_signal(signal.SIGINT)  # the first: stop after this step
        assert stop.requested
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # the second: now


# ---------------------------------------------------------------------------------------------
# Real processes: two runs on one directory, SIGTERM, SIGKILL mid-write
# ---------------------------------------------------------------------------------------------


def start(argv: list[str], cwd: Path, script: str | None = None) -> subprocess.Popen:
    command = [sys.executable, "-c", script] if script else [sys.executable, "-m", "bertmini"]
    return subprocess.Popen(
        [*command, *argv],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow  # real processes: ~10 s of imports each on a busy machine
def test_two_runs_on_one_directory_and_sigterm(tmp_path):
    """The second run stops at once, naming the first; SIGTERM makes the first checkpoint."""
    out = tmp_path / "run"
    first = start(
        [*PRETRAIN[:-1], "100000", "--checkpoint-every", "100000", "--out", str(out)], tmp_path
    )
    deadline = time.monotonic() + 120
    while not (out / ".bertmini.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    status, _, err = run_cli([*PRETRAIN, "--out", str(out)])
    assert status == 3 and f"PID {first.pid}" in err and str(out) in err, err
    time.sleep(1)  # some steps
    first.send_signal(signal.SIGTERM)
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 130, first_err
    assert "checkpoint" in first_err.strip().splitlines()[-1]
    from bertmini.hub import load_trainer_state

    assert load_trainer_state(out / "checkpoint")["step"] >= 1
    assert (out / "checkpoint" / "vocab.txt").is_file()


KILLER = """
import os, signal, sys
import torch
from bertmini.tokenizer import Tokenizer
from bertmini.__main__ import main

where, at = sys.argv[1], int(sys.argv[2])
calls = {"n": 0}
real_save_vocab, real_torch_save = Tokenizer.save_pretrained, torch.save

def half_then_die(path, data: bytes):
    calls["n"] += 1
    if calls["n"] == at:
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

def save_vocab(self, directory):
    half_then_die(os.path.join(directory, "vocab.txt"), "\\n".join(self.ids_to_tokens).encode())
    return real_save_vocab(self, directory)

def save_state(obj, f, *args, **kwargs):
    half_then_die(f, b"x" * 4096)
    return real_torch_save(obj, f, *args, **kwargs)

if where == "vocab":
    Tokenizer.save_pretrained = save_vocab
else:
    torch.save = save_state
sys.exit(main(sys.argv[3:]))
"""
RESUMABLE = [*PRETRAIN[:-1], "6", "--checkpoint-every", "2", "--seed", "1"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("uninterrupted")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the killed process: the same float sums, so bitwise equal
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BERTMINI_PROFILE", "ci")
        status, _, err = run_cli([*RESUMABLE, "--out", str(out)])
    torch.set_num_threads(threads)
    assert status == 0, err
    return load_file(out / "model.safetensors")


@pytest.mark.slow
@pytest.mark.parametrize(
    "where, at",
    [("vocab", 2), ("vocab", 4), ("state", 2)],
    ids=["vocab in the 2nd checkpoint", "final vocab.txt", "2nd checkpoint's trainer state"],
)
def test_sigkill_mid_write_then_resume_is_bitwise_identical(where, at, uninterrupted, tmp_path):
    out = tmp_path / "run"
    process = start([where, str(at), *RESUMABLE, "--out", str(out)], tmp_path, KILLER)
    _, err = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, err
    status, _, err = run_cli([*RESUMABLE, "--resume", "--out", str(out)])
    assert status == 0, err
    resumed = load_file(out / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[name], uninterrupted[name]) for name in resumed)
    vocab = (out / "vocab.txt").read_text().splitlines()
    assert len(vocab) == json.loads((out / "config.json").read_text())["vocab_size"]


def test_debug_shows_the_traceback(model, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(model, bad)
    truncate(bad)
    status, _, err = run_cli([*FILL, "--model", str(bad), "--debug"])
    assert status == 3 and "Traceback" in err
    assert err.splitlines()[-1].startswith("bertmini fill-mask: error:")
