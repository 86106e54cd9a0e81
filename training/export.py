"""`lix-export`: export a checkpoint's network to ONNX (logits only) and check it with onnxruntime."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lix_ros.cli.common import DefaultsHelpFormatter, friendly_errors
from lix_ros.core.checkpoint import CheckpointError, geometry_modality, load_model
from lix_ros.data.sample import MODALITY_CHANNELS


class LogitsOnly(nn.Module):
    def __init__(self, model: nn.Module, with_x: bool):
        super().__init__()
        self.model = model
        self.with_x = with_x

    def forward(self, rgb: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(rgb, x if self.with_x else None)["logits"]


def export_onnx(checkpoint: str | Path, out: str | Path, check: bool = True, opset: int = 17) -> float:
    """Export; returns the max |onnxruntime - torch| over a random input (NaN when check is False)."""
    model, ckpt = load_model(checkpoint)
    h, w = ckpt["input_size"]
    modality = geometry_modality(ckpt)
    with_x = modality is not None
    wrapper = LogitsOnly(model, with_x).eval()
    generator = torch.Generator().manual_seed(0)
    rgb = torch.randn(1, 3, h, w, generator=generator)
    inputs: tuple = (rgb,)
    names = ["rgb"]
    if with_x:
        channels = MODALITY_CHANNELS[modality]
        inputs = (rgb, torch.rand(1, channels, h, w, generator=generator))
        names.append("x")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(wrapper, inputs, str(out), input_names=names, output_names=["logits"], opset_version=opset,
                      dynamic_axes={n: {0: "batch"} for n in [*names, "logits"]}, dynamo=False)
    if not check:
        return float("nan")
    import onnxruntime as ort

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})[0]
    with torch.no_grad():
        want = wrapper(*inputs).numpy()
    return float(np.abs(got - want).max())


@friendly_errors("lix-export")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lix-export", description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--out", required=True)
    parser.add_argument("--no-check", action="store_true")
    args = parser.parse_args(argv)
    try:
        error = export_onnx(args.checkpoint, args.out, check=not args.no_check)
    except CheckpointError as exc:
        raise ValueError(str(exc)) from None
    print(f"wrote {args.out}; max |onnxruntime - torch| = {error:.2e}")
    if not args.no_check and not error <= 1e-4:
        print(f"lix-export: error: ONNX output differs from PyTorch by {error:.2e} (> 1e-4)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
