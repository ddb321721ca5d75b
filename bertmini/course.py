"""The course's profiles: how big things are on each kind of machine.

Every chapter and `make demo` read their sizes here instead of hard-coding them. A *profile*
names the sizes one machine can afford: `ci` (seconds, for tests), `cpu` (minutes on a laptop)
and `gpu` (a Colab T4 or better). Pick one with the environment variable
`BERTMINI_PROFILE=ci|cpu|gpu`; by default it is `gpu` when CUDA is there, else `cpu`.

Where and in what precision things run is `bertmini.device`; its choices are importable from
here too, as chapters 00 and 07 import them.
"""

import os
from dataclasses import dataclass, field

import torch

from .device import choose_device, choose_precision, cpu_has_fast_bf16

__all__ = [
    "PROFILES",
    "Profile",
    "choose_device",
    "choose_precision",
    "cpu_has_fast_bf16",
    "get_profile",
]


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
    # sequences of `short_seq_len` tokens, before `pretrain_steps` on short one-stance documents
    # ("embedded-short"). short_steps=0: one phase, the whole corpus, of which `comment_share`
    # are comment threads (that corpus also trains the vocabulary).
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
        pretrain_steps=3000,  # phase 2: the review lookup formed near step 1,250 (chapter 07)
        pretrain_lr=1e-3,  # 3e-3 kept the stance lookup from forming (chapter 07)
        finetune_steps=200,  # every arm; MiniLM's 3 seeds at 200 steps fit beside pretraining
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
