"""`lix-export`: export a checkpoint's network to ONNX (logits only) and check it against PyTorch.

The ONNX file has dynamic batch, height and width unless --height/--width fix them, and carries the
checkpoint's metadata (class table, normalisation, input size, modalities, weights digest) as metadata
properties. The check runs onnxruntime and PyTorch on the same random input at two sizes (the checkpoint's
input size and another one when the size is dynamic) and fails above 1e-4.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from lix_ros.cli.common import CliError, DefaultsHelpFormatter, friendly_errors, number
from lix_ros.core.checkpoint import CheckpointError, geometry_modality, load_model
from lix_ros.core.onnx_backend import export_onnx, onnx_metadata, ort_session
from lix_ros.data.sample import MODALITY_CHANNELS

TOLERANCE = 1e-4


def check_onnx(model: torch.nn.Module, ckpt: dict, onnx_path: str | Path, sizes: list[tuple[int, int]]) -> float:
    """Largest |onnxruntime - torch| of the logits over random inputs of the given sizes."""
    modality = geometry_modality(ckpt)
    session = ort_session(onnx_path, ["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for h, w in sizes:
        rgb = torch.randn(1, 3, h, w, generator=generator)
        x = torch.rand(1, MODALITY_CHANNELS[modality], h, w, generator=generator) if modality else None
        feeds = {"rgb": rgb.numpy(), **({"x": x.numpy()} if x is not None else {})}
        got = session.run(["logits"], feeds)[0]
        with torch.no_grad():
            want = model(rgb, x)["logits"].numpy()
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


@friendly_errors("lix-export")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lix-export", description=__doc__, formatter_class=DefaultsHelpFormatter)
    parser.add_argument("checkpoint", help="the checkpoint (.pt) to export")
    parser.add_argument("--out", type=Path, required=True, help="the ONNX file to write")
    parser.add_argument("--height", type=number(int, 1, 8192), help="fix the input height (default: dynamic)")
    parser.add_argument("--width", type=number(int, 1, 8192), help="fix the input width (default: dynamic)")
    parser.add_argument("--opset", type=number(int, 13, 21), default=17, help="ONNX opset version")
    parser.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch check")
    args = parser.parse_args(argv)
    if (args.height is None) != (args.width is None):
        raise CliError("--height and --width go together (a fixed size), or neither (dynamic)")
    fixed = (args.height, args.width) if args.height else None
    try:
        model, ckpt = load_model(args.checkpoint)
        export_onnx(model, ckpt, args.out, fixed, args.opset)
        metadata = onnx_metadata(args.out)
        h, w = fixed or metadata["input_size"]
        sizes = [(h, w)] if fixed else [(h, w), (h // 2 + 32, w // 2 + 64)]
        error = float("nan") if args.no_check else check_onnx(model, ckpt, args.out, sizes)
    except CheckpointError as exc:
        raise ValueError(str(exc)) from None
    checked = ", ".join(f"{a}x{b}" for a, b in sizes)
    size = f"{h}x{w} fixed" if fixed else f"dynamic height and width (checked at {checked})"
    print(f"wrote {args.out}: {'+'.join(metadata['modalities'])}, {size}, {len(metadata['classes'])} classes; "
          f"max |onnxruntime - torch| = {error:.2e}")
    if not args.no_check and not error <= TOLERANCE:
        print(f"lix-export: error: ONNX output differs from PyTorch by {error:.2e} (> {TOLERANCE})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
