"""Tests of the command line (`python -m bertmini ...`) and of the demo pipeline, at tiny sizes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bertmini import demo
from bertmini.__main__ import build_parser, main

REPO = Path(__file__).resolve().parents[1]
TINY_PRETRAIN = [
    "--preset",
    "tiny",
    "--num-documents",
    "60",
    "--vocab-size",
    "300",
    "--max-seq-len",
    "32",
    "--batch-size",
    "8",
    "--no-progress",
]


pytestmark = pytest.mark.usefixtures("one_thread", "ci_offline")  # tests/conftest.py


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny model pretrained for 3 steps through the CLI."""
    out = tmp_path_factory.mktemp("pretrained")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BERTMINI_PROFILE", "ci")
        status = main(
            ["pretrain", *TINY_PRETRAIN, "--steps", "3", "--out", str(out), "--keep-optimizer"]
        )
    torch.set_num_threads(threads)
    assert status == 0
    return out


def subcommands() -> dict:
    parser = build_parser()
    return next(a for a in parser._actions if hasattr(a, "choices") and a.choices).choices


@pytest.mark.parametrize(
    "command", ["pretrain", "finetune", "evaluate", "fill-mask", "bench", "demo", "student"]
)
def test_help_explains_every_option(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    subparser = subcommands()[command]
    for action in subparser._actions:
        for option in action.option_strings:
            assert option in text, f"{command} --help does not mention {option}"
        if action.option_strings and action.help is not argparse_suppress():
            assert action.help, f"{command} {action.option_strings} has no help text"


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def test_pretrain_has_the_required_options():
    options = {o for a in subcommands()["pretrain"]._actions for o in a.option_strings}
    required = {"--preset", "--corpus", "--steps", "--batch-size", "--lr", "--out", "--resume"}
    assert required <= options


def test_pretrain_writes_a_model_that_fill_mask_reads(pretrained, capsys):
    for name in ("config.json", "model.safetensors", "vocab.txt", "metrics.jsonl"):
        assert (pretrained / name).is_file(), name
    rows = [json.loads(line) for line in (pretrained / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert (
        main(
            [
                "fill-mask",
                "the [MASK] is called maria .",
                "--model",
                str(pretrained),
                "--top-k",
                "3",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[MASK] 1:")
    assert lines[0].count("(") == 3  # three (probability) entries


def test_pretrain_resume_continues_the_run(pretrained, capsys):
    more_steps = ["pretrain", *TINY_PRETRAIN, "--steps", "5", "--out", str(pretrained)]
    assert main([*more_steps, "--resume"]) == 3  # 5 steps, not 3: another schedule
    assert "steps: 3 -> 5" in capsys.readouterr().err
    assert main([*more_steps, "--resume-with-changes", "--keep-optimizer"]) == 0
    assert "step 5" in capsys.readouterr().out
    rows = [json.loads(line) for line in (pretrained / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4, 5]


def test_finetune_and_evaluate(pretrained, tmp_path, capsys):
    out = tmp_path / "finetuned"
    assert (
        main(
            [
                "finetune",
                "--model",
                str(pretrained),
                "--steps",
                "2",
                "--batch-size",
                "8",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "validation: " in printed and "test: " in printed and "accuracy" in printed
    assert main(["evaluate", "--model", str(out)]) == 0
    assert "test: loss" in capsys.readouterr().out
    assert main(["evaluate", "--model", str(pretrained)]) == 0
    assert "mlm_accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["fill-mask", "no mask here", "--model", "{model}"], "[MASK]"),
        (["fill-mask", "a [MASK]", "--model", "{missing}"], "no model directory"),
        (["pretrain", "--corpus", "wikitext-2", "--out", "{tmp}"], "embedded"),
        (["pretrain", "--corpus", "no-such-corpus", "--out", "{tmp}"], "unknown corpus"),
        (["pretrain", *TINY_PRETRAIN, "--dupe-factor", "0", "--out", "{tmp}"], "--dupe-factor"),
        (["pretrain", *TINY_PRETRAIN, "--batch-size", "0", "--out", "{tmp}"], "--batch-size"),
        (["pretrain", *TINY_PRETRAIN, "--steps", "0", "--out", "{tmp}"], "--steps: must be >= 1"),
        (["finetune", "--model", "{model}", "--batch-size", "0", "--out", "{tmp}"], "--batch-size"),
        (
            [
                "pretrain",
                *TINY_PRETRAIN,
                "--batch-size",
                "7",
                "--grad-accum",
                "2",
                "--out",
                "{tmp}",
            ],
            "divisible",
        ),
    ],
)
def test_bad_input_gives_one_clear_line(argv, expected, pretrained, tmp_path, capsys):
    fill = {"model": str(pretrained), "missing": str(tmp_path / "missing"), "tmp": str(tmp_path)}
    status = main([arg.format(**fill) for arg in argv])
    error = capsys.readouterr().err.strip()
    assert status != 0
    assert expected in error
    assert "Traceback" not in error
    assert error.splitlines()[-1].startswith("bertmini ")
    assert not (tmp_path / "vocab.txt").exists()  # refused before any work was written


def test_real_process_exits_nonzero_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bertmini", "fill-mask", "a [MASK]", "--model", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3  # a data error: the folder holds no model
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("bertmini fill-mask: error:")


@pytest.mark.slow
def test_demo_pipeline_at_tiny_size(tmp_path, capsys):
    results = demo.main(tmp_path, profile="ci", seeds=(0, 1), real_seeds=(0,))
    printed = capsys.readouterr().out
    for line in ("NSP accuracy", "held-out words", "from scratch", "95% interval", "wall time"):
        assert line in printed
    assert f"stance-word probe {demo.percent(results['stance_probe'])}" in printed
    assert f"review-word probe {demo.percent(results['review_probe'])}" in printed
    assert results["review_probe"] is None  # no review fits the ci profile's 32 tokens
    accuracy = results["accuracy"]
    assert set(accuracy) == {"real BERT (MiniLM)", "ours, pretrained", "from scratch"}
    assert [len(accuracy[arm]["test"]) for arm in accuracy] == [1, 2, 2]  # seeds per arm
    assert all(0 <= a <= 1 for arm in accuracy.values() for a in arm["test"] + arm["validation"])
    assert json.loads((tmp_path / "results.json").read_text())["nsp_accuracy"] == pytest.approx(
        results["nsp_accuracy"]
    )
    assert (tmp_path / "pretraining.png").read_bytes()[:4] == b"\x89PNG"


def test_bucketed_finetuning_resumes_exactly(pretrained, tmp_path):
    """Fine-tuning batches come from the length-bucketing sampler; resuming replays its epoch."""
    from safetensors.torch import load_file

    from bertmini.recipes import finetune

    class Interrupt(Exception):
        pass

    def stop_at_3(history):
        if history[-1]["step"] == 3:
            raise Interrupt

    options = dict(steps=6, batch_size=8, seed=0, log_every=1, progress=False, checkpoint_every=3)
    finetune(tmp_path / "whole", pretrained, **options)
    with pytest.raises(Interrupt):
        finetune(tmp_path / "split", pretrained, callbacks=[stop_at_3], **options)
    finetune(tmp_path / "split", pretrained, resume=True, **options)
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    split = load_file(tmp_path / "split" / "model.safetensors")
    assert whole.keys() == split.keys()
    assert all(torch.equal(whole[name], split[name]) for name in whole)
