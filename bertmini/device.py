"""Where a model runs, in what precision, and compiled how.

Taught in chapter 10, chapters/10_scaling_up.ipynb (mixed precision, torch.compile); chapter 00
(chapters/00_setup.ipynb) shows what it picks on your machine.

- **Where?** `choose_device()` takes CUDA, then Apple's MPS, then the CPU.
- **In what precision?** `choose_precision(device)`: bf16 autocast on GPUs that compute in bf16
  natively (compute capability >= 8.0: A100, H100, RTX 30xx+), fp16 autocast with a gradient
  scaler on older GPUs such as Colab's T4, and plain fp32 on the CPU. The T4 is decided by its
  compute capability because `torch.cuda.is_bf16_supported()` answers True there (bf16 is
  emulated, and slow).
- **Compiled how?** `compile_model(model)`: `torch.compile` with the settings that keep a BERT
  training step in one graph, applied only while that model runs.
"""

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16", "fp16")

# The MLM head runs on `hidden[labels != -100]`, whose size depends on the data (how many
# positions carry a label). By default torch.compile ends its graph at such an operator and runs
# the rest eagerly; these settings let it capture the size as a dynamic one instead.
ONE_GRAPH = {"capture_dynamic_output_shape_ops": True, "capture_scalar_outputs": True}


def choose_device(preference: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA if present, else MPS, else CPU. Anything else is checked and returned."""
    if isinstance(preference, torch.device):
        return preference
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(preference)
    except RuntimeError as error:
        raise ValueError(
            f"unknown device {preference!r}: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {preference!r} asked for, but this PyTorch sees no CUDA GPU: "
            "use --device cpu (or 'auto')"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {preference!r} asked for, but MPS is not available: use 'cpu'")
    return device


def choose_precision(device: torch.device, preference: str = "auto") -> str:
    """'fp32', 'bf16' or 'fp16' for training on `device` ('auto' decides by hardware).

    bf16 needs compute capability >= 8.0 to be fast; older GPUs (T4 is 7.5) get fp16, which
    needs a GradScaler because fp16's small range makes small gradients underflow to zero.
    """
    if preference != "auto":
        if preference not in PRECISIONS:
            raise ValueError(
                f"unknown precision {preference!r}: expected 'auto' or one of "
                f"{', '.join(PRECISIONS)}"
            )
        return preference
    if device.type == "cuda":
        major, _minor = torch.cuda.get_device_capability(device)
        return "bf16" if major >= 8 else "fp16"
    return "fp32"  # CPU and MPS: autocast there is slower than fp32 or not supported for training


def cpu_has_fast_bf16() -> bool:
    """Does this CPU compute bf16 matmuls natively (AVX512-BF16 or AMX)?

    There, bf16 autocast makes a mini BERT's training step about 1.5x faster than fp32 (measured
    on this project's AMD EPYC with AVX512-BF16); elsewhere bf16 is emulated and slower.
    """
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The dtype autocast runs matmuls in, or None for plain fp32."""
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def compile_model(model: nn.Module) -> nn.Module:
    """`torch.compile(model)` as one graph: forward and backward with no graph break.

    torch.compile traces when the compiled model is called, so the `ONE_GRAPH` settings are
    switched on around each call of this model, and left as they were for everything else.
    """
    compiled = torch.compile(model)
    compiled.forward = torch._dynamo.config.patch(ONE_GRAPH)(compiled.forward)
    return compiled
