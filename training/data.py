"""Training data: samples in memory, a batch for every step that depends only on (seed, step).

Keying the data order and the augmentation on the step (not on an iterator's state) makes a resumed run
and a DDP run draw exactly the batches an unbroken single-process run draws.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from lix_ros.core.checkpoint import RGB_MEAN, RGB_STD
from lix_ros.data.augment import Augment
from lix_ros.data.cityscapes import CityscapesDataset, export_frames
from lix_ros.data.kitti import KittiSemanticDataset
from lix_ros.data.sample import DataError, Sample, sample_modality
from lix_ros.data.synthetic import LidarConfig, render_frame, split_seeds

SPLIT_FOLDERS = {"train": "train", "val": "val", "test": "test", "test_in": "test_in"}


def synthetic_root(data_cfg: dict) -> Path:
    h, w = data_cfg["render_size"]
    return Path(data_cfg["cache_dir"]) / f"synth_{w}x{h}_b{data_cfg['lidar_beams']}"


def ensure_synthetic(data_cfg: dict, split: str, count: int, quiet: bool = False) -> Path:
    """Render the first `count` frames of a synthetic family once, into the Cityscapes layout."""
    root = synthetic_root(data_cfg)
    folder = root / "leftImg8bit" / split
    have = len(list(folder.glob("*/*_leftImg8bit.png"))) if folder.is_dir() else 0
    if have < count:
        from tqdm import tqdm

        h, w = data_cfg["render_size"]
        seeds = split_seeds(split, count)[have:]
        lidar = LidarConfig(beams=data_cfg["lidar_beams"])
        frames = (render_frame(s, w, h, lidar) for s in tqdm(seeds, desc=f"render {split}", unit="frame",
                                                              file=sys.stderr, disable=quiet))
        export_frames(frames, root, split)
    return root


def load_samples(data_cfg: dict, split: str, quiet: bool = False) -> list[Sample]:
    """All samples of a split, in memory (first `<split>_count` for synthetic data)."""
    source = data_cfg["source"]
    if source == "synthetic":
        count = data_cfg[f"{split}_count"]
        dataset = CityscapesDataset(ensure_synthetic(data_cfg, split, count, quiet), SPLIT_FOLDERS[split])
        return [dataset[i] for i in range(min(count, len(dataset)))]
    if source == "cityscapes":
        dataset = CityscapesDataset(data_cfg["root"], SPLIT_FOLDERS[split])
        return [dataset[i] for i in range(len(dataset))]
    if source == "kitti":
        dataset = KittiSemanticDataset(data_cfg["root"], "training")
        samples = [dataset[i] for i in range(len(dataset))]
        # KITTI semantics has one labelled split: every 10th frame is held out for val/test.
        held_out = [s for i, s in enumerate(samples) if i % 10 == 0]
        return ([s for i, s in enumerate(samples) if i % 10 != 0] or samples) if split == "train" else held_out
    if source == "bag":
        from lix_ros.bag.dataset import load_bag_samples

        return load_bag_samples(data_cfg["root"], split)
    raise DataError(f"unknown data source {source!r}")


def normalize_rgb(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float, ImageNet mean/std (stored in every checkpoint)."""
    # np.require copies read-only views (frames decoded straight from message buffers)
    tensor = torch.from_numpy(np.require(rgb, requirements=["C", "W"])).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(RGB_MEAN).view(3, 1, 1)
    std = torch.tensor(RGB_STD).view(3, 1, 1)
    return (tensor - mean) / std


def to_tensors(sample: Sample, modality: str | None) -> dict[str, torch.Tensor]:
    out = {"rgb": normalize_rgb(sample.rgb)}
    if sample.label is not None:
        out["label"] = torch.from_numpy(sample.label.astype(np.int64))
    if modality is not None:
        out["x"] = torch.from_numpy(np.ascontiguousarray(sample_modality(sample, modality))).permute(2, 0, 1).float()
    return out


class StepBatcher:
    """The global batch of step s is a fixed function of (seed, s); rank r takes its contiguous share."""

    def __init__(self, samples: list[Sample], batch_size: int, seed: int, augment: Augment | None,
                 modalities: list[str | None], rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {world_size} processes")
        if not samples:
            raise DataError("no training samples")
        self.samples = samples
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.modalities = modalities
        self.rank = rank
        self.local = batch_size // world_size

    def indices(self, step: int) -> list[int]:
        n = len(self.samples)
        out = []
        for j in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch, position = divmod(j, n)
            out.append(int(np.random.default_rng([self.seed, epoch]).permutation(n)[position]))
        return out

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        chosen = self.indices(step)[self.rank * self.local:(self.rank + 1) * self.local]
        items = []
        for offset, index in enumerate(chosen):
            sample = self.samples[index]
            if self.augment is not None:
                j = self.rank * self.local + offset
                sample = self.augment(sample, np.random.default_rng([self.seed, step, j, 7]))
            item: dict[str, torch.Tensor] = {}
            for modality in self.modalities:
                tensors = to_tensors(sample, modality)
                if modality is None:
                    item.update(tensors)
                else:
                    item[f"x:{modality}"] = tensors["x"]
                    item.setdefault("rgb", tensors["rgb"])
                    item.setdefault("label", tensors["label"])
            items.append(item)
        return {key: torch.stack([it[key] for it in items]) for key in items[0]}
