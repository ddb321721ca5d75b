"""The course's settings: how big things are (profiles), where they run, and in what precision.

Every chapter and `make demo` ask this module three questions instead of hard-coding answers:

- **How big?** A *profile* names the sizes one machine can afford: `ci` (seconds, for tests),
  `cpu` (minutes on a laptop) and `gpu` (a Colab T4 or better). Pick one with the environment
  variable `BERTMINI_PROFILE=ci|cpu|gpu`; by default it is `gpu` when CUDA is there, else `cpu`.
- **Where?** `choose_device()` takes CUDA, then Apple's MPS, then the CPU.
- **In what precision?** `choose_precision(device)`: bf16 autocast on GPUs that compute in bf16
  natively (compute capability >= 8.0: A100, H100, RTX 30xx+), fp16 autocast with a gradient
  scaler on older GPUs such as Colab's T4, and plain fp32 on the CPU. The T4 is decided by its
  compute capability because `torch.cuda.is_bf16_supported()` answers True there (bf16 is
  emulated, and slow).
"""

import os
from dataclasses import dataclass, field

import torch

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Profile:
    """Sizes for one kind of machine. Every chapter reads its sizes from here."""

    name: str
    preset: str  # BertConfig.preset name of the model to pretrain
    num_documents: int  # documents of the embedded corpus to generate
    vocab_size: int  # WordPiece vocabulary trained on the embedded corpus
    max_seq_len: int  # tokens per pretraining example ([CLS] A [SEP] B [SEP])
    batch_size: int  # examples per optimizer step
    pretrain_steps: int
    pretrain_lr: float
    finetune_steps: int
    finetune_lr: float
    finetune_seq_len: int = 48  # the sentiment task's reviews fit in 48 tokens
    # NSP pairs are built this many times over the corpus (other splits, other random Bs):
    # Google's dupe_factor. A small corpus seen as one fixed set of pairs lets NSP memorise them.
    dupe_factor: int = 1
    # BertConfig overrides for pretraining. A short run from scratch learns faster with pre-LN
    # (stable at a high learning rate) and without dropout (too few steps to overfit): the
    # "cramming" recipe. The gpu profile trains long enough for BERT's own post-LN + dropout.
    model_options: dict = field(default_factory=dict)
    # Short documents first (chapter 07): `short_steps` steps on comment threads alone, in
    # sequences of `short_seq_len` tokens, before `pretrain_steps` on the whole corpus, of which
    # `comment_share` are comment threads. short_steps=0: one phase, the whole corpus.
    short_steps: int = 0
    short_seq_len: int = 16
    comment_share: float = 0.0

    def defaults(self, stage: str) -> dict:
        """The settings this profile gives a recipe's `stage` ("pretrain" or "finetune"), by
        the names of the recipe's fields (PretrainRecipe, FinetuneRecipe) and TrainConfig's."""
        training = {"steps": getattr(self, f"{stage}_steps"), "lr": getattr(self, f"{stage}_lr")}
        if stage == "finetune":
            return {"max_seq_len": self.finetune_seq_len, "batch_size": self.batch_size, **training}
        sizes = ("preset", "vocab_size", "num_documents", "max_seq_len", "batch_size")
        sizes += ("dupe_factor", "model_options", "comment_share")
        return {name: getattr(self, name) for name in sizes} | training


PROFILES: dict[str, Profile] = {
    # Seconds: enough to run every code path, not to learn much.
    "ci": Profile(
        name="ci",
        preset="tiny",
        num_documents=200,
        vocab_size=1000,
        max_seq_len=32,
        batch_size=16,
        pretrain_steps=20,
        pretrain_lr=1e-3,
        finetune_steps=20,
        finetune_lr=1e-3,
        model_options=dict(
            pre_layer_norm=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        ),
        short_steps=10,
        comment_share=0.3,
    ),
    # Minutes on a laptop's CPU. A tiny BERT (2 layers, hidden 128) gets through ~4,000 steps in
    # the time a mini one does ~1,300, and learns the corpus further; 4,096 vocabulary entries
    # keep every word of the corpus whole (fewer pieces than that split even "the").
    "cpu": Profile(
        name="cpu",
        preset="tiny",
        num_documents=3000,
        vocab_size=4096,
        max_seq_len=64,
        batch_size=32,
        pretrain_steps=1500,  # after 1,500 short steps on comment threads (short_steps)
        pretrain_lr=1e-3,  # 3e-3 kept the stance lookup from forming (chapter 07)
        finetune_steps=300,  # the same for every arm; 150 left the tiny arms near 50% on validation
        finetune_lr=5e-4,
        dupe_factor=8,  # without it NSP memorises the corpus's few thousand sentence pairs
        model_options=dict(
            pre_layer_norm=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        ),
        short_steps=3000,  # the stance lookup appeared near step 1,500 of 3,000 (chapter 07)
        comment_share=0.4,
    ),
    # Minutes on a GPU: a bigger model, longer sequences, more steps.
    "gpu": Profile(
        name="gpu",
        preset="small",
        num_documents=20000,
        vocab_size=4000,
        max_seq_len=128,
        batch_size=128,
        pretrain_steps=3000,
        pretrain_lr=5e-4,
        finetune_steps=500,
        finetune_lr=5e-5,
        short_steps=3000,  # not measured on a GPU yet: the cpu profile's short phase
        comment_share=0.4,
    ),
}


def get_profile(name: "str | Profile | None" = None) -> Profile:
    """The profile `name`, else `$BERTMINI_PROFILE`, else `gpu` with CUDA and `cpu` without."""
    if isinstance(name, Profile):
        return name
    if name is None:
        name = os.environ.get("BERTMINI_PROFILE") or ("gpu" if torch.cuda.is_available() else "cpu")
    key = name.strip().lower()
    if key not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r}: expected one of {', '.join(PROFILES)} "
            "(set BERTMINI_PROFILE=ci|cpu|gpu, or leave it unset to choose by hardware)"
        )
    return PROFILES[key]


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
