"""The one checkpoint file: format version, architecture, class table, normalisation, input size and
modalities, training metadata, the state dict and a SHA-256 of the weights; optionally the class ids the
training labels contained (`trained_classes`: the only ids its output is read as, see `output_classes`).
Loaded only with weights_only=True, schema-checked, and the weights verified: torch.load does not check the
zip CRCs, so overwritten tensor bytes would otherwise load and serve garbage."""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from lix_ros.core.default_checkpoints import packaged_checkpoints, resolve_checkpoint
from lix_ros.data.classes import CLASS_NAMES
from lix_ros.models.build import ModelConfig, build_model

FORMAT = "lix_ros.segmentation"
FORMAT_VERSION = 1
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file and the field."""


def weights_digest(state_dict: dict) -> str:
    """SHA-256 over the state dict's names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        # flattened first: a 0-dim tensor (BatchNorm's num_batches_tracked) has no last dim to view as bytes
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def checkpoint_sha256(ckpt: dict) -> str:
    """The weights checksum a checkpoint records, or its digest if it predates the field: what a teacher is
    named by (lix-bench-kd's run settings, lix-train's resume check)."""
    return ckpt.get("weights_sha256") or weights_digest(ckpt["state_dict"])


def with_digest(ckpt: dict) -> dict:
    """The checkpoint with its `weights_sha256` field (re)computed."""
    return {**ckpt, "weights_sha256": weights_digest(ckpt["state_dict"])}


def make_checkpoint(model: nn.Module, config: ModelConfig, input_size: tuple[int, int],
                    training: dict | None = None, class_names: tuple[str, ...] = CLASS_NAMES,
                    trained_classes: list[int] | None = None) -> dict:
    extra = {} if trained_classes is None else {"trained_classes": sorted(int(c) for c in trained_classes)}
    return with_digest({
        **extra,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": config.to_dict(),
        "classes": list(class_names),
        "normalization": {"mean": list(RGB_MEAN), "std": list(RGB_STD)},
        "input_size": [int(input_size[0]), int(input_size[1])],
        "modalities": config.modalities,
        "training": dict(training or {}),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    })


def atomic_save(obj: dict, path: str | Path) -> None:
    """Write to a temporary file in the same directory, fsync, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a checkpoint is shared like any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _require(ckpt: dict, path: Path, field: str, kind: type | tuple[type, ...]):
    if field not in ckpt:
        raise CheckpointError(f"{path}: missing field {field!r}")
    if not isinstance(ckpt[field], kind):
        raise CheckpointError(f"{path}: field {field!r} has type {type(ckpt[field]).__name__}")
    return ckpt[field]


def read_checkpoint(path: str | Path) -> dict:
    """Load and schema-check a checkpoint file (no model built)."""
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (packaged: {', '.join(packaged_checkpoints())})")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, pickle with disallowed globals, not a torch file
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({reason})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(ckpt).__name__}")
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: field 'format' is {ckpt.get('format')!r}, expected {FORMAT!r}")
    version = _require(ckpt, path, "format_version", int)
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: field 'format_version' is {version}, this lix_ros reads {FORMAT_VERSION}")
    _require(ckpt, path, "arch", dict)
    classes = _require(ckpt, path, "classes", list)
    if not classes or not all(isinstance(c, str) for c in classes):
        raise CheckpointError(f"{path}: field 'classes' must be a non-empty list of names")
    norm = _require(ckpt, path, "normalization", dict)
    for key in ("mean", "std"):
        if not (isinstance(norm.get(key), list) and len(norm[key]) == 3):
            raise CheckpointError(f"{path}: field 'normalization.{key}' must be 3 numbers")
    size = _require(ckpt, path, "input_size", list)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise CheckpointError(f"{path}: field 'input_size' must be [height, width], got {size}")
    _require(ckpt, path, "modalities", list)
    _require(ckpt, path, "training", dict)
    _require(ckpt, path, "state_dict", dict)
    _check_weights(ckpt, path)
    try:
        config = ModelConfig.from_dict(ckpt["arch"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: field 'arch' is invalid: {error}") from None
    if config.num_classes != len(classes):
        raise CheckpointError(f"{path}: field 'classes' has {len(classes)} names but arch.num_classes is "
                              f"{config.num_classes}")
    if ckpt["modalities"] != config.modalities:
        raise CheckpointError(f"{path}: field 'modalities' {ckpt['modalities']} does not match arch "
                              f"{config.modalities}")
    trained = ckpt.get("trained_classes")
    if trained is not None and not (isinstance(trained, list) and trained
                                    and all(type(c) is int and 0 <= c < len(classes) for c in trained)
                                    and len(set(trained)) == len(trained)):
        raise CheckpointError(f"{path}: field 'trained_classes' must be a non-empty list of distinct class ids in "
                              f"[0, {len(classes)}), got {trained!r:.120}")
    return ckpt


def output_classes(ckpt: dict) -> list[int] | None:
    """The class ids a checkpoint's output is read as (its argmax is taken over these only): the classes its
    training labels contained, or None (all) for a checkpoint that does not record them.

    A class no training label contains was never taught; its logit is whatever the rest of the training left
    it, and distillation can lift it (channel-wise KD matches each class map's spatial distribution whatever the
    class's level, docs/distillation.md). A pixel predicted as such a class can only be wrong, and on a set
    without that class it also adds a class of IoU 0 to the mean."""
    trained = ckpt.get("trained_classes")
    if trained is None or len(trained) == len(ckpt["classes"]):
        return None
    return list(trained)


def _check_weights(ckpt: dict, path: Path) -> None:
    state = ckpt["state_dict"]
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: field 'state_dict' must map names to tensors")
    expected = ckpt.get("weights_sha256")
    if expected is None:
        warnings.warn(f"{path}: no field 'weights_sha256' (written before lix_ros stored it): its weights "
                      "cannot be verified; re-save it to add one", stacklevel=3)
    elif weights_digest(state) != expected:
        raise CheckpointError(f"{path}: field 'state_dict' does not match field 'weights_sha256' (the file is "
                              "corrupted or was edited)")
    bad = [name for name, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        count = sum(int((~torch.isfinite(state[n])).sum()) for n in bad)
        raise CheckpointError(f"{path}: field 'state_dict' has {count} non-finite weights (first in {bad[0]!r})")


def geometry_modality(ckpt: dict) -> str | None:
    """The "X" modality a checkpoint's model needs beside RGB (depth, disparity, normals, lidar), or None
    for an RGB-only student: the one place that reads this from a checkpoint."""
    modalities = list(ckpt["modalities"])
    return modalities[1] if len(modalities) > 1 else None


def check_fits(ckpt: dict, path: str | Path, expect_classes: list[str] | tuple[str, ...] | None = None,
               expect_modalities: list[str] | None = None) -> None:
    """CheckpointError unless the checkpoint has the caller's class table and modalities."""
    if expect_classes is not None and list(expect_classes) != ckpt["classes"]:
        raise CheckpointError(f"{path}: field 'classes' {ckpt['classes'][:4]}... does not match the expected "
                              f"class table {list(expect_classes)[:4]}... ({len(expect_classes)} classes)")
    if expect_modalities is not None and list(expect_modalities) != ckpt["modalities"]:
        raise CheckpointError(f"{path}: field 'modalities' is {ckpt['modalities']}, expected {list(expect_modalities)}")


def model_from_checkpoint(ckpt: dict, path: str | Path) -> nn.Module:
    """The network of a checkpoint already read (read_checkpoint), weights loaded, in eval mode."""
    model = build_model(ckpt["arch"])
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        raise CheckpointError(f"{path}: field 'state_dict' does not fit arch {ckpt['arch']}: "
                              f"{' '.join(first[:2])[:300]}") from None
    return model.eval()


def load_model(path: str | Path, expect_classes: list[str] | tuple[str, ...] | None = None,
               expect_modalities: list[str] | None = None) -> tuple[nn.Module, dict]:
    """Read a checkpoint, check it fits the caller, build its model (eval mode): (model, checkpoint)."""
    ckpt = read_checkpoint(path)
    check_fits(ckpt, path, expect_classes, expect_modalities)
    return model_from_checkpoint(ckpt, path), ckpt
