"""How long does a tiny BERT take to learn a two-word lookup? (Chapter 07, "Why so slow?")

A made-up corpus with one pattern: "i loved the superb food." / "i hated the awful food.". The
verb's sentiment always matches the adjective two words on, so a model that masks the verb can
tell loved-like from hated-like verbs by looking at the adjective. Every few steps we ask the
MLM head, for each of the 48 polarity adjectives, whether "i [MASK] the <adjective> food."
gets more probability on the positive verbs or on the negative ones (chance 50%).

    python scripts/lookup_jump.py --seq-len 64 --steps 3000   # stayed at 50% in our run
    python scripts/lookup_jump.py --seq-len 32 --steps 1500   # jumped to 100% near step 1,400

    python scripts/lookup_jump.py --seq-len 16 --steps 1500   # 100% from step 1,300 (2026-11-30)
    python scripts/lookup_jump.py --seq-len 16 --steps 1500 --lr 3e-3   # 50% at every step

Measured on this project's 2-core CPU (OMP_NUM_THREADS=1, about 2 minutes per 1,000 steps when
the machine is idle).
"""

import argparse
import random

import torch

from bertmini.data.corpus import POLARITY_WORDS
from bertmini.data.pretraining import PretrainingCollator, PretrainingDataset
from bertmini.model import BertConfig, BertForPreTraining
from bertmini.tokenizer import Tokenizer

VERBS = {
    1: ("loved", "enjoyed", "liked", "adored"),
    0: ("hated", "disliked", "loathed", "regretted"),
}
NOUNS = "food service soup room view screen battery story".split()
ADJECTIVES = {p: [w for w, (sign, _) in POLARITY_WORDS.items() if sign == p] for p in (0, 1)}


def documents(count: int, seed: int) -> list[list[str]]:
    """`count` documents of six sentences, each with a random sentiment."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        sentences = []
        for _ in range(6):
            p = rng.randrange(2)
            verb, adjective = rng.choice(VERBS[p]), rng.choice(ADJECTIVES[p])
            sentences.append(f"i {verb} the {adjective} {rng.choice(NOUNS)}.")
        out.append(sentences)
    return out


@torch.no_grad()
def verb_probe(model, tokenizer) -> float:
    """Share of the 48 adjectives for which the masked verb leans to the right sentiment."""
    model.eval()
    verb_ids = {p: tokenizer.convert_tokens_to_ids(list(VERBS[p])) for p in (0, 1)}
    right = 0
    for p, adjectives in ADJECTIVES.items():
        for adjective in adjectives:
            ids = torch.tensor([tokenizer.encode(f"i [MASK] the {adjective} food.")])
            mask = (ids[0] == tokenizer.mask_token_id).nonzero().item()
            probabilities = model(ids).mlm_logits[0, mask].softmax(-1)
            positive = probabilities[verb_ids[1]].sum() > probabilities[verb_ids[0]].sum()
            right += bool(positive) == (p == 1)
    model.train()
    return right / sum(len(a) for a in ADJECTIVES.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=64, help="tokens per example")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    train = documents(2000, seed=0)
    tokenizer = Tokenizer.train([s for d in train for s in d], vocab_size=4096, fast=True)
    dataset = PretrainingDataset.from_documents(train, tokenizer, args.seq_len, seed=0)
    collator = PretrainingCollator(tokenizer, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    config = BertConfig.preset(
        "tiny", vocab_size=len(tokenizer), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    model = BertForPreTraining(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sampler = torch.Generator().manual_seed(0)
    for step in range(1, args.steps + 1):
        rows = torch.randint(len(dataset), (32,), generator=sampler).tolist()
        loss = model(**collator([dataset[i] for i in rows])).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 100 == 0:
            probe = verb_probe(model, tokenizer)
            print(f"step {step:>5}: loss {loss.item():.2f}, verb probe {probe:.0%}")


if __name__ == "__main__":
    main()
