"""Model loading and inference for the nodes and the bag tools (no ROS).

A Segmenter loads a checkpoint once (schema-checked, weights_only), warms up, and maps an RGB frame of any
size to class ids (and confidence) at that same size: the frame is resized to the model's input size
("stretch") or padded to a multiple of 32 at its own size ("native"), and the argmax is mapped back with
nearest neighbour. The argmax is over the classes the checkpoint's training labels contained
(`output_classes`; all classes for a checkpoint that does not record them). The network runs in PyTorch
(`backend="torch"`) or in ONNX Runtime (`"onnxruntime"`: the checkpoint exported once to a cached ONNX file, run
with the first installed of `providers`); pre- and post-processing are this one code path for both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from lix_ros.core.checkpoint import (
    CheckpointError,
    check_fits,
    geometry_modality,
    model_from_checkpoint,
    output_classes,
    read_checkpoint,
)
from lix_ros.data.classes import CLASS_NAMES
from lix_ros.data.sample import encode_modality

RESIZE_POLICIES = ("stretch", "native")
BACKENDS = ("torch", "onnxruntime")
ANY_GEOMETRY = "any"  # expect_modality for a teacher: whichever X the checkpoint was trained with


class NonFiniteOutputError(RuntimeError):
    """The model's output has NaN or inf: counted as a failed frame, nothing is published."""


@dataclass
class Prediction:
    ids: np.ndarray  # HxW uint8 class ids at the input size
    confidence: np.ndarray | None  # HxW uint8 0..255 (max softmax probability), if asked for
    seconds: float  # model time (preprocess + forward + postprocess)


def class_ids(scores: np.ndarray, classes: list[int] | None = None) -> np.ndarray:
    """argmax over the class axis of a C x H x W float array, as uint8 (first maximum wins, like argmax),
    over the class ids `classes` only (ascending; None = all C).

    A running maximum over the classes: contiguous H x W passes instead of a strided reduction over C
    (3-4x faster than torch's argmax(dim=1) on one thread at 160x320; it was a third of the frame time).
    """
    order = list(range(scores.shape[0])) if classes is None else sorted(classes)
    best = scores[order[0]].copy()
    ids = np.full(scores.shape[1:], order[0], np.uint8)
    for c in order[1:]:
        better = scores[c] > best
        np.maximum(best, scores[c], out=best)
        ids[better] = c
    return ids


def set_torch_threads(requested: list[int]) -> int:
    """Torch's intra-op thread count is one per process: set it once, to the largest of the nodes'
    `threads` parameters (0 = torch's default). Returns the count in effect."""
    wanted = max([t for t in requested if t > 0], default=0)
    if wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


class Segmenter:
    def __init__(self, checkpoint: str, device: str = "cpu", input_size: tuple[int, int] | None = None,
                 resize_policy: str = "stretch", expect_modality: str | None = None,
                 warmup: bool = True, backend: str = "torch", providers: list[str] | tuple[str, ...] | None = None,
                 threads: int = 0):
        if resize_policy not in RESIZE_POLICIES:
            raise ValueError(f"resize_policy must be one of {RESIZE_POLICIES}, got {resize_policy!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        # The checkpoint is read once: the ONNX backend builds a torch model only to export a new checkpoint.
        ckpt = read_checkpoint(checkpoint)
        check_fits(ckpt, checkpoint, expect_classes=CLASS_NAMES)
        if expect_modality == ANY_GEOMETRY:
            expect_modality = geometry_modality(ckpt)
            if expect_modality is None:
                raise CheckpointError(f"{checkpoint}: field 'modalities' is {ckpt['modalities']}; a teacher needs an "
                                      "RGB + X checkpoint")
        expected = ["rgb"] if expect_modality is None else ["rgb", expect_modality]
        if ckpt["modalities"] != expected:
            raise CheckpointError(f"{checkpoint}: field 'modalities' is {ckpt['modalities']}, this node needs "
                                  f"{expected}")
        self.backend = backend
        self.providers: list[str] = []
        self.skipped_providers: list[str] = []
        if backend == "onnxruntime":
            from lix_ros.core.onnx_backend import DEFAULT_PROVIDERS, OnnxModel

            self.device = torch.device("cpu")  # tensors meet the session on the host; providers pick the device
            onnx_model = OnnxModel(ckpt, checkpoint, providers or DEFAULT_PROVIDERS, threads)
            self.providers, self.skipped_providers = onnx_model.providers, onnx_model.skipped
            self.onnx_path, self.onnx_exported = onnx_model.path, onnx_model.exported
            self.model = onnx_model
        else:
            self.device = torch.device(device)
            self.model = model_from_checkpoint(ckpt, checkpoint).to(self.device)
        self.checkpoint = ckpt
        self.modality = expect_modality
        self.class_names = ckpt["classes"]
        self.output_classes = output_classes(ckpt)  # None: every class
        self.input_size = tuple(input_size) if input_size and all(input_size) else tuple(ckpt["input_size"])
        self.resize_policy = resize_policy
        norm = ckpt["normalization"]
        self.mean = torch.tensor(norm["mean"], device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(norm["std"], device=self.device).view(1, 3, 1, 1)
        if warmup:
            self.warm_up()

    def warm_up(self) -> None:
        """Two passes on a blank frame, so the first real frame's latency is not the allocator's."""
        dummy = np.zeros((*self.input_size, 3), np.uint8)
        x = np.zeros(self.input_size, np.float32) if self.modality else None
        for _ in range(2):
            self.predict(dummy, depth=x, lidar_depth=x, K=np.eye(3))

    def _target_size(self, h: int, w: int) -> tuple[int, int]:
        if self.resize_policy == "stretch":
            return self.input_size
        return (int(np.ceil(h / 32) * 32), int(np.ceil(w / 32) * 32))

    def _resize(self, image: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
        if image.shape[:2] == size:
            return image
        if self.resize_policy == "native":  # pad bottom/right, keep pixels as they are
            pad = ((0, size[0] - image.shape[0]), (0, size[1] - image.shape[1])) + ((0, 0),) * (image.ndim - 2)
            return np.pad(image, pad)
        interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
        return cv2.resize(image, (size[1], size[0]), interpolation=interpolation)

    @torch.no_grad()
    def predict(self, rgb: np.ndarray, depth: np.ndarray | None = None, lidar_depth: np.ndarray | None = None,
                K: np.ndarray | None = None, with_confidence: bool = False) -> Prediction:
        start = time.perf_counter()
        h, w = rgb.shape[:2]
        size = self._target_size(h, w)
        resized = self._resize(rgb, size, nearest=False)
        tensor = torch.from_numpy(np.require(resized, requirements=["C", "W"])).to(self.device)
        tensor = tensor.permute(2, 0, 1)[None].float()
        tensor = (tensor / 255.0 - self.mean) / self.std
        x = None
        if self.modality is not None:
            x = self._geometry(depth, lidar_depth, K, (h, w), size)
        logits = self.model(tensor, x)["logits"]
        if self.resize_policy == "native":
            logits = logits[..., :h, :w]
        # A NaN or inf anywhere makes the sum non-finite: one cheap reduction instead of an elementwise check.
        if not bool(torch.isfinite(logits.sum())):  # a broken model or input: never publish its argmax
            raise NonFiniteOutputError(f"the model produced {int((~torch.isfinite(logits)).sum())} non-finite logits")
        ids = class_ids(logits[0].float().cpu().numpy(), self.output_classes)
        confidence = None
        if with_confidence:  # the probability of the class published, among the classes that can be
            kept = logits if self.output_classes is None else logits[:, self.output_classes]
            confidence = (F.softmax(kept, 1).amax(1)[0] * 255).round().to(torch.uint8).cpu().numpy()
        if ids.shape != (h, w):
            ids = cv2.resize(ids, (w, h), interpolation=cv2.INTER_NEAREST)
            if confidence is not None:
                confidence = cv2.resize(confidence, (w, h), interpolation=cv2.INTER_NEAREST)
        return Prediction(ids, confidence, time.perf_counter() - start)

    def _geometry(self, depth, lidar_depth, K, original: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
        K = np.array(K if K is not None else np.eye(3), np.float64)
        if self.resize_policy == "stretch" and original != size:
            sy, sx = size[0] / original[0], size[1] / original[1]
            K = K.copy()
            K[0, 0] *= sx
            K[1, 1] *= sy
            K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
            K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
        depth_r = self._resize(depth, size, nearest=True) if depth is not None else None
        lidar_r = self._resize(lidar_depth, size, nearest=True) if lidar_depth is not None else None
        x = encode_modality(self.modality, K, depth_r, lidar_r)
        return torch.from_numpy(np.ascontiguousarray(x)).to(self.device).permute(2, 0, 1)[None].float()
