"""The benchmark runs at smoke size on CPU, compares with Hugging Face on identical weights, and
counts FLOPs as the formula in its docstring says."""

import argparse
import json
import math

import pytest
import torch

from bertmini import bench
from bertmini.device import ONE_GRAPH, compile_model
from bertmini.model import BertConfig, training_flops_per_step

pytest.importorskip("transformers")

SMOKE = ["--preset", "tiny", "--vocab-size", "500", "--batch", "4", "--seq", "32"]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(argv)


def test_run_json_has_the_keys_and_the_losses_agree(capsys):
    torch.manual_seed(0)
    args = parse([*SMOKE, "--steps", "2", "--warmup", "1", "--device", "cpu", "--vs", "hf"])
    args.json = True
    result = bench.run(args)
    printed = json.loads(capsys.readouterr().out)
    for key in ("speedup", "loss_diff"):
        assert key in printed
    for side in ("bertmini", "hf"):
        assert {"samples_per_s", "mfu"} <= set(printed[side])
        assert math.isfinite(printed[side]["samples_per_s"]) and printed[side]["samples_per_s"] > 0
        assert printed[side]["mfu"] is None  # CPU without --peak-tflops: no MFU
    assert math.isfinite(printed["speedup"]) and printed["speedup"] > 0
    assert printed["loss_diff"] < 1e-4 and printed["losses_agree"]
    assert math.log(500) - 1 < printed["loss_bertmini"] < math.log(500) + 2  # near-uniform start
    assert result["speedup"] == printed["speedup"]
    # 15% of 32 positions rounds to 5 labels per row.
    assert result["mlm_positions"] == 4 * 5


def test_benchmark_with_a_peak_gives_mfu_consistent_with_throughput():
    config = BertConfig.preset("tiny", vocab_size=300)
    result = bench.benchmark(config, 2, 16, "cpu", vs_hf=False, steps=1, warmup=0, peak_tflops=1.0)
    ours = result["bertmini"]
    assert result["hf"] is None and result["speedup"] is None
    seconds = ours["step_ms"] / 1e3
    assert ours["mfu"] == pytest.approx(result["flops_per_step"] / seconds / 1e12)
    # bertmini runs the MLM head on the labelled positions only: fewer FLOPs actually done.
    assert ours["mfu_actual"] < ours["mfu"]


def test_report_mentions_speedup_and_missing_peak(capsys):
    bench.run(parse([*SMOKE, "--steps", "1", "--warmup", "0", "--device", "cpu"]))
    report = capsys.readouterr().out
    assert "speed-up:" in report and "agree" in report and "--peak-tflops" in report


def test_flops_formula_matches_a_hand_count():
    # L=2, H=4, I=8, V=10, B=3, S=5, 7 labelled positions.
    config = BertConfig(
        vocab_size=10,
        hidden_size=4,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=8,
    )
    per_token_layer = 4 * 4 * 4 + 2 * 4 * 8  # Q, K, V, out (4 H^2) + FFN in and out (2 H I) = 128
    encoder = 6 * 3 * 5 * 2 * per_token_layer  # 23040
    attention = 2 * (2 * 5 * 5 * 4) * 3 * 2 * 3  # QK^T and AV, fwd + 2x bwd, B, L = 7200
    head = 6 * 7 * (4 * 4 + 4 * 10)  # 2352
    assert training_flops_per_step(config, 3, 5, 7) == encoder + attention + head == 32592
    dense = training_flops_per_step(config, 3, 5, 15)
    assert dense - (encoder + attention) == 6 * 15 * 56


def test_peak_table_matches_gpu_names_longest_first():
    def lookup(name):
        return next(peak for key, peak in bench.PEAK_TFLOPS if key in name)

    assert lookup("NVIDIA H100 80GB HBM3") == 989
    assert lookup("NVIDIA H100 PCIe") == 756
    assert lookup("NVIDIA A100-SXM4-80GB") == 312
    assert lookup("NVIDIA A10G") == 125
    assert lookup("NVIDIA L40S") == 362
    assert lookup("NVIDIA L4") == 121
    assert lookup("Tesla T4") == 65
    assert bench.lookup_peak_tflops("cpu") is None


def test_bad_inputs_get_clear_errors():
    config = BertConfig.preset("tiny", vocab_size=100, max_position_embeddings=16)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        bench.benchmark(config, 2, 32, "cpu", vs_hf=False)
    with pytest.raises(ValueError, match="vs_hf=False"):
        bench.benchmark(BertConfig.preset("tiny", vocab_size=100, pre_layer_norm=True), 2, 8)


def test_compiled_training_step_has_no_graph_break_and_the_eager_loss():
    """The data-dependent sizes (labelled positions) must not split the compiled graph, and the
    compiled step (forward and backward, through Inductor) must compute what eager does."""
    import torch._dynamo as dynamo

    from bertmini.model import BertForPreTraining

    config = BertConfig.preset("tiny", vocab_size=500, max_position_embeddings=64)
    model = BertForPreTraining(config).eval()
    batch = bench.make_batch(config, 4, 32, "cpu")
    dynamo.reset()
    with dynamo.config.patch(ONE_GRAPH):  # the options compile_model keeps data-dependent sizes in
        explanation = dynamo.explain(model)(**batch)
    compiled = compile_model(model)
    assert explanation.graph_break_count == 0, [r.reason for r in explanation.break_reasons]
    assert explanation.graph_count == 1
    loss = compiled(**batch).loss
    loss.backward()
    assert model.bert.layers[0].ffn_in.weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert loss.item() == pytest.approx(model(**batch).loss.item(), abs=1e-4)
    # The options were on while the compiled model ran, and are off for everything else.
    assert not dynamo.config.capture_dynamic_output_shape_ops


def test_finetuning_bench_compares_random_and_bucketed_batches(capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(
        ["--finetune", "--preset", "tiny", "--device", "cpu", "--batch", "16", "--steps", "3"]
    )
    result = bench.run(args)
    random_side, bucketed = result["random batches"], result["length-bucketed"]
    assert bucketed["padding_share"] < random_side["padding_share"] / 3
    assert bucketed["padded_tokens_per_example"] < random_side["padded_tokens_per_example"]
    assert result["speedup"] == bucketed["examples_per_s"] / random_side["examples_per_s"]
    assert "speed-up of length bucketing" in capsys.readouterr().out


def test_hugging_face_with_a_sparse_head_has_the_same_loss():
    """The calibration side: Hugging Face's modules, MLM head on labelled positions only."""
    config = BertConfig.preset("tiny", vocab_size=300)
    result = bench.benchmark(config, 2, 16, "cpu", steps=1, warmup=0, hf_sparse_head=True)
    assert result["loss_hf_sparse"] == pytest.approx(result["loss_hf"], abs=1e-5)
    assert result["hf_sparse"]["samples_per_s"] > 0
    assert result["speedup_vs_hf_sparse"] == pytest.approx(
        result["bertmini"]["samples_per_s"] / result["hf_sparse"]["samples_per_s"]
    )
    assert "labelled positions only" in bench.format_report({**result, "preset": "tiny"})


def test_finetuning_bench_rejects_an_empty_batch():
    config = BertConfig.preset("tiny", vocab_size=500)
    with pytest.raises(ValueError, match="batch_size and steps must be >= 1"):
        bench.benchmark_finetuning(config, 0, "cpu")
