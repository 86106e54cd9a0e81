"""ONNX export of a checkpoint and an ONNX Runtime session for it (no ROS).

The export has dynamic batch, height and width, and carries the checkpoint's metadata (class table, trained
classes, normalisation, input size, modalities, weights digest) as ONNX metadata properties. `cached_onnx` exports
once per checkpoint content (keyed by its weights digest) into a cache folder, so every node start after the first
loads the file directly; `ort_session` opens it with the first of an ordered list of execution providers that is
installed (the rest are reported, not fatal).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lix_ros.core.checkpoint import CheckpointError, geometry_modality, model_from_checkpoint
from lix_ros.data.sample import MODALITY_CHANNELS

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)
METADATA_KEYS = ("classes", "trained_classes", "normalization", "input_size", "modalities", "weights_sha256",
                 "arch")


class _LogitsOnly(nn.Module):
    def __init__(self, model: nn.Module, with_x: bool):
        super().__init__()
        self.model = model
        self.with_x = with_x

    def forward(self, rgb: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(rgb, x if self.with_x else None)["logits"]


def cache_dir() -> Path:
    """$LIX_ROS_CACHE, else $XDG_CACHE_HOME/lix_ros, else ~/.cache/lix_ros."""
    if os.environ.get("LIX_ROS_CACHE"):
        return Path(os.environ["LIX_ROS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lix_ros"


def checkpoint_key(ckpt: dict, path: str | Path) -> str:
    """The checkpoint's content: its weights digest (the file's bytes for files without one)."""
    digest = ckpt.get("weights_sha256")
    if not digest:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    arch = hashlib.sha256(json.dumps([ckpt["arch"], ckpt["input_size"], ckpt["modalities"]],
                                     sort_keys=True).encode()).hexdigest()
    return f"{digest[:24]}_{arch[:8]}"


def export_onnx(model: nn.Module, ckpt: dict, out: str | Path, fixed_size: tuple[int, int] | None = None,
                opset: int = 17) -> Path:
    """Write the checkpoint's network (logits only) as ONNX: dynamic batch, height and width unless
    `fixed_size` (h, w); the checkpoint's metadata as ONNX metadata properties."""
    h, w = fixed_size or ckpt["input_size"]
    modality = geometry_modality(ckpt)
    wrapper = _LogitsOnly(model, modality is not None).eval()
    generator = torch.Generator().manual_seed(0)
    inputs: tuple = (torch.randn(1, 3, h, w, generator=generator),)
    names = ["rgb"]
    if modality is not None:
        inputs += (torch.rand(1, MODALITY_CHANNELS[modality], h, w, generator=generator),)
        names.append("x")
    axes = {0: "batch"} if fixed_size else {0: "batch", 2: "height", 3: "width"}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    # The tracer's warnings (shape-dependent Python branches, constant folding) concern export internals,
    # not the user: keep them off the console.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, inputs, str(partial), input_names=names, output_names=["logits"],
                          opset_version=opset, dynamic_axes={n: axes for n in [*names, "logits"]}, dynamo=False)
    import onnx

    proto = onnx.load(str(partial))
    for key in METADATA_KEYS:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(ckpt.get(key))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "dynamic_size", json.dumps(fixed_size is None)
    onnx.save(proto, str(partial))
    partial.replace(out)  # atomic: a concurrent reader never sees half a file
    return out


def onnx_metadata(path: str | Path) -> dict:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: json.loads(p.value) for p in proto.metadata_props}


def cached_onnx(ckpt: dict, path: str | Path, folder: Path | None = None) -> tuple[Path, bool]:
    """(ONNX file of this checkpoint (read from `path`), whether it was exported now); exported once per
    checkpoint content. A cache hit builds no torch model at all."""
    folder = folder or cache_dir() / "onnx"
    onnx_path = folder / f"{checkpoint_key(ckpt, path)}.onnx"
    if onnx_path.is_file():
        return onnx_path, False
    model = model_from_checkpoint(ckpt, path)
    try:
        export_onnx(model, ckpt, onnx_path)
    except OSError:  # read-only cache: export into a temporary folder instead
        onnx_path = Path(tempfile.mkdtemp(prefix="lix_onnx_")) / onnx_path.name
        export_onnx(model, ckpt, onnx_path)
    return onnx_path, True


def choose_providers(requested: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(the installed providers of `requested`, in order; the ones skipped)."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    chosen = [p for p in requested if p in available]
    skipped = [p for p in requested if p not in available]
    if not chosen:
        raise CheckpointError(f"none of the execution providers {list(requested)} is installed; this onnxruntime "
                              f"has {sorted(available)}")
    return chosen, skipped


def ort_session(path: str | Path, providers: list[str], threads: int = 0):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: the node reports what matters itself
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


class OnnxModel:
    """Callable like the torch model for inference: (rgb, x) tensors -> {"logits": tensor}."""

    def __init__(self, ckpt: dict, path: str | Path, providers: list[str] | tuple[str, ...] = DEFAULT_PROVIDERS,
                 threads: int = 0):
        self.path, self.exported = cached_onnx(ckpt, path)
        self.providers, self.skipped = choose_providers(list(providers))
        self.session = ort_session(self.path, self.providers, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, rgb: torch.Tensor, x: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        feeds = {"rgb": np.ascontiguousarray(rgb.detach().cpu().numpy(), np.float32)}
        if "x" in self.input_names:
            feeds["x"] = np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)
        return {"logits": torch.from_numpy(self.session.run(["logits"], feeds)[0])}
