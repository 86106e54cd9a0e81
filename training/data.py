"""Training data that streams from disk: lazy splits, and a batch for every step that depends only on (seed, step).

A `Split` holds file paths, not pixels: frames are decoded when indexed (in DataLoader worker processes during
training), so memory does not grow with the size of a data set. Keying the data order and the augmentation on
the step (not on an iterator's state) makes a resumed run, a run with any number of loader workers and a DDP
run draw exactly the batches an unbroken single-process run draws.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lix_ros.core.checkpoint import RGB_MEAN, RGB_STD
from lix_ros.data.augment import Augment, resize_sample
from lix_ros.data.cityscapes import CityscapesDataset, export_frames
from lix_ros.data.classes import IGNORE_ID
from lix_ros.data.kitti import KittiSemanticDataset
from lix_ros.data.sample import DataError, Sample, sample_modality
from lix_ros.data.synthetic import LidarConfig, render_frame, split_seeds

SPLITS = ("train", "val", "test", "test_in")


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


class _InMemory:
    """Samples already decoded (bags are read sequentially, so they are decoded once, up front)."""

    def __init__(self, samples: list[Sample]):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


@dataclass
class Split:
    """One split of a data set: `source[indices[i]]`, decoded on access, resized to `frame_size` if set."""

    source: object  # __len__ and __getitem__(int) -> Sample
    indices: list[int]
    description: str  # e.g. "cityscapes /data/cs, split val"
    frame_size: tuple[int, int] | None = None
    labelled: bool = True  # False: every label reads as ignore (the trainer gives these frames the teacher's)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Sample:
        sample = self.source[self.indices[index]]
        if self.frame_size is not None and sample.rgb.shape[:2] != tuple(self.frame_size):
            sample = resize_sample(sample, tuple(self.frame_size))
        if not self.labelled:  # withheld here, so no later step can see a label it should not
            sample = replace(sample, label=np.full(sample.rgb.shape[:2], IGNORE_ID, np.uint8))
        return sample


def hold_out(count: int, fraction: float) -> tuple[list[int], list[int]]:
    """(kept, held out): every k-th frame (k = round(1 / fraction)) is held out; too few frames -> none."""
    if not 0 < fraction < 1:
        raise DataError(f"data.val_fraction must be between 0 and 1, got {fraction}")
    k = max(2, round(1 / fraction))
    if count < k:
        return list(range(count)), list(range(count))  # too few to hold any out: validate on what there is
    held = [i for i in range(count) if i % k == 0]
    return [i for i in range(count) if i % k], held


def _from_held_out(source, split: str, fraction: float, description: str) -> Split:
    kept, held = hold_out(len(source), fraction)
    if split == "train":
        return Split(source, kept, f"{description}, train (all but every {round(1 / fraction)}th frame)")
    return Split(source, held, f"{description}, every {max(2, round(1 / fraction))}th frame held out "
                               f"(data.val_fraction {fraction})")


def open_split(data_cfg: dict, split: str, quiet: bool = False) -> Split:
    """The frames of `split` as a lazy `Split` (first `<split>_count` frames for synthetic data)."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {SPLITS}")
    source, root = data_cfg["source"], data_cfg.get("root")
    fraction = data_cfg["val_fraction"]
    if source == "synthetic":
        return _synthetic_split(data_cfg, split, data_cfg[f"{split}_count"], f"synthetic {split} family", quiet)
    if source == "cityscapes":
        if split in ("train", "val") and not (Path(root) / "leftImg8bit" / "val").is_dir():
            return _from_held_out(CityscapesDataset(root, "train"), split, fraction, f"cityscapes {root} (no val/)")
        dataset = CityscapesDataset(root, split)
        return Split(dataset, list(range(len(dataset))), f"cityscapes {root}, split {split}")
    if source == "kitti":
        # KITTI semantics has one labelled split: the held-out frames are both val and test.
        return _from_held_out(KittiSemanticDataset(root, "training"), "train" if split == "train" else "val",
                              fraction, f"kitti {root}")
    if source == "vkitti2":
        from lix_ros.data.vkitti2 import VirtualKitti2Dataset

        options = data_cfg["vkitti2"]
        scenes = options["scenes"].get("test" if split == "test_in" else split) or []
        if split == "val" and not scenes:
            dataset = VirtualKitti2Dataset(root, options["scenes"]["train"], options["variations"], options["camera"])
            return _from_held_out(dataset, "val", fraction, f"vkitti2 {root}")
        dataset = VirtualKitti2Dataset(root, scenes, options["variations"], options["camera"])
        if split == "train" and not options["scenes"].get("val"):
            return _from_held_out(dataset, "train", fraction, f"vkitti2 {root}")
        return Split(dataset, list(range(len(dataset))), f"vkitti2 {root}, scenes {scenes}")
    if source == "bag":
        from lix_ros.bag.dataset import load_bag_samples

        paths = root if isinstance(root, list) else [root]
        samples = _InMemory(load_bag_samples(paths, data_cfg["topics"]))
        return _from_held_out(samples, "train" if split == "train" else "val", fraction,
                              f"bag {', '.join(map(str, paths))}")
    raise DataError(f"unknown data source {source!r}")


def open_unlabelled(data_cfg: dict, quiet: bool = False) -> Split:
    """data.unlabelled: `count` more scenes of the synthetic training family, their labels withheld."""
    count = data_cfg["unlabelled"]["count"]
    if data_cfg["source"] != "synthetic":
        raise DataError("data.unlabelled is for the synthetic source (other data: `lix-bag label` and data.mix)")
    return _synthetic_split(data_cfg, "unlabelled", count, "synthetic training family, labels withheld", quiet,
                            labelled=False)


def _synthetic_split(data_cfg: dict, split: str, count: int, description: str, quiet: bool,
                     labelled: bool = True) -> Split:
    """The first `count` frames of a synthetic split, rendered once into the cache."""
    dataset = CityscapesDataset(ensure_synthetic(data_cfg, split, count, quiet), split)
    return Split(dataset, list(range(min(count, len(dataset)))), description, labelled=labelled)


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


@lru_cache(maxsize=4)
def _epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(count)


class StepBatches(torch.utils.data.Dataset):
    """`batches[step]`: the global batch of a step is a fixed function of (seed, step); rank r takes its share.

    A map-style dataset indexed by step, so a DataLoader with any number of workers yields the same batches.
    With `extra` frames (hard frames for fine-tuning, or unlabelled frames) the first
    round(extra_share * batch_size) samples of every batch come from them, each source walking through its own
    per-epoch permutation; unlabelled extra frames add `labelled` (a bool per sample) to the batch.
    """

    def __init__(self, frames: Split, batch_size: int, seed: int, augment: Augment | None,
                 modalities: list[str | None], rank: int = 0, world_size: int = 1, extra: Split | None = None,
                 extra_share: float = 0.0):
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {world_size} processes")
        if not len(frames):
            raise DataError("no training samples")
        self.frames = frames
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.modalities = modalities
        self.rank = rank
        self.local = batch_size // world_size
        self.extra = extra if extra is not None and len(extra) else None
        self.extra_count = round(extra_share * batch_size) if self.extra is not None else 0
        # batch["labelled"] (per sample) when some frames have their labels withheld
        self.flag_labelled = self.extra is not None and not self.extra.labelled

    @staticmethod
    def _walk(seed: int, count: int, start: int, n: int) -> list[int]:
        out = []
        for j in range(start, start + n):
            epoch, position = divmod(j, count)
            out.append(int(_epoch_order(seed, epoch, count)[position]))
        return out

    def indices(self, step: int) -> list[tuple[Split, int]]:
        k = self.extra_count
        main = self.batch_size - k
        chosen = [(self.extra, i) for i in self._walk(self.seed + 1_000_003, len(self.extra), step * k, k)] if k \
            else []
        return chosen + [(self.frames, i) for i in self._walk(self.seed, len(self.frames), step * main, main)]

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        chosen = self.indices(step)[self.rank * self.local:(self.rank + 1) * self.local]
        items = []
        for offset, (frames, index) in enumerate(chosen):
            sample = frames[index]
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
            if self.flag_labelled:
                item["labelled"] = torch.tensor(frames.labelled)
            items.append(item)
        return {key: torch.stack([it[key] for it in items]) for key in items[0]}


def _alive(pid: int) -> bool:
    """Whether process pid runs (a zombie does not: killed, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no procfs
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _exit_when_gone(trainer_pid: int, period: float = 1.0) -> None:
    while _alive(trainer_pid):
        time.sleep(period)
    os._exit(0)


def _worker_init(_: int, trainer_pid: int) -> None:
    import signal

    import cv2

    cv2.setNumThreads(1)  # one core per worker: the trainer's threads are set separately
    # Ctrl-C reaches the whole process group: the trainer finishes its step and stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker's parent is the fork server, not the trainer, so PyTorch's parent check never fires when the
    # trainer is killed (SIGKILL, OOM, a session cut off): without this the workers, and the fork server and
    # resource tracker waiting on them, stay behind holding their memory.
    threading.Thread(target=_exit_when_gone, args=(trainer_pid,), daemon=True).start()


def _first(items: list) -> object:
    return items[0]


def _worker_context():
    """Workers start from a fork server that imported this module once (fast starts) and never ran OpenCV's
    thread pool: forking the trainer itself would copy a pool another thread may hold locked (a worker forked
    after a parallel cv2 call in the parent can hang in its first cv2 call)."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["lix_training.data"])
    return context


def _worker_options() -> dict:
    """DataLoader options shared by every loader with workers."""
    return {"prefetch_factor": 2, "worker_init_fn": partial(_worker_init, trainer_pid=os.getpid()),
            "multiprocessing_context": _worker_context()}


def step_loader(batches: StepBatches, start: int, stop: int, workers: int):
    """Batches of steps start..stop-1 in order, decoded by `workers` background processes (0 = in process).
    Frames already in memory (bags) are batched in process: copying them to workers would cost more."""
    if workers == 0 or isinstance(batches.frames.source, _InMemory):
        return (batches[step] for step in range(start, stop))
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(start, stop), num_workers=workers,
                                         **_worker_options())
    return iter(loader)


def preload(frames: Split, workers: int, desc: str | None = None) -> Split:
    """The split decoded once into memory (`data.preload`), resized to its frame_size: the same samples in the
    same order, so the batches of every step are unchanged; steps then skip the per-step PNG decoding."""
    samples = list(tqdm(sample_loader(frames, workers), total=len(frames), desc=desc, unit="frame",
                        disable=desc is None))
    return Split(_InMemory(samples), list(range(len(samples))), frames.description, labelled=frames.labelled)


def sample_loader(frames: Split, workers: int):
    """The frames of a split in order, decoded by `workers` background processes (0 = in process)."""
    if workers == 0 or isinstance(frames.source, _InMemory):
        return (frames[i] for i in range(len(frames)))
    return iter(torch.utils.data.DataLoader(frames, batch_size=1, collate_fn=_first, num_workers=workers,
                                            **_worker_options()))
