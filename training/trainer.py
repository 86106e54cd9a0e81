"""The training loop: supervised or distilled, single process or DDP (torchrun), exact resume."""

from __future__ import annotations

import copy
import csv
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from lix_ros.core.checkpoint import atomic_save, checkpoint_sha256, geometry_modality, load_model, make_checkpoint
from lix_ros.core.metrics import confusion_matrix, empty_confusion, scores_from_confusion
from lix_ros.data.augment import Augment, resize_sample
from lix_ros.data.classes import CLASS_NAMES, IGNORE_ID
from lix_ros.models.build import ModelConfig, build_model
from lix_training.data import (
    Split,
    StepBatches,
    open_split,
    open_unlabelled,
    preload,
    sample_loader,
    step_loader,
    to_tensors,
)


def _distributed() -> tuple[int, int]:
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.default_rng([seed, step, rank, 11]).integers(2**62))


# What a resumed run may change: bookkeeping that does not alter the weights (and steps, with a warning).
RESUME_MAY_CHANGE = {"steps", "out_dir", "threads", "val_every", "log_every", "checkpoint_every", "data.workers",
                     "data.cache_dir", "data.preload"}


class _StopRequests:
    """SIGINT / SIGTERM during training: finish the current step, then stop (the caller saves last.pt).

    A step is never cut in half, so the saved state resumes exactly; a second Ctrl-C stops at once.
    """

    def __init__(self):
        self.requested: str | None = None
        self._previous: dict = {}

    def _handle(self, signum, _frame) -> None:
        if self.requested == "SIGINT" and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> _StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and key != "distill":
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def poly_lr(step: int, total: int, power: float, warmup: int) -> float:
    """Learning-rate factor: linear warm-up, then (1 - step/total)^power."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    return max(0.0, 1.0 - step / total) ** power


def supervised_loss(logits: torch.Tensor, label: torch.Tensor, valid_total: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over valid pixels / the valid pixels of the *global* batch.

    DDP averages gradients over ranks; scaling by world size makes the result the gradient of the
    global-batch mean, whatever the split of valid pixels between ranks.
    """
    summed = F.cross_entropy(logits, label, ignore_index=IGNORE_ID, reduction="sum")
    return summed / valid_total.clamp(min=1)


@torch.no_grad()
def with_teacher_labels(label: torch.Tensor, labelled: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """The labels of labelled samples; the teacher's argmax (at the labels' size) on samples whose labels were
    withheld (data.unlabelled): what cross-entropy and the distillation terms then see."""
    if bool(labelled.all()):
        return label
    if teacher_logits.shape[-2:] != label.shape[-2:]:
        teacher_logits = F.interpolate(teacher_logits.float(), size=label.shape[-2:], mode="bilinear",
                                       align_corners=False)
    return torch.where(labelled.bool()[:, None, None], label, teacher_logits.argmax(1))


@torch.no_grad()
def evaluate(model: nn.Module, frames: Split, modality: str | None, device: torch.device, num_classes: int,
             input_size: tuple[int, int], workers: int = 0, batch_size: int = 8, progress: str | None = None,
             classes: list[int] | None = None) -> np.ndarray:
    """Confusion matrix over frames scored at their native size, the way the node runs the model.

    Each frame is resized to the checkpoint's `input_size` (a no-op when it already has that size), and the
    predicted ids are resized back with nearest neighbour, as `Segmenter` does for a camera image. `classes`:
    the ids the argmax is taken over (the checkpoint's `output_classes`; None = all), as the node reads it.
    """
    model.eval()
    excluded = None if classes is None else sorted(set(range(num_classes)) - set(classes))
    confusion = empty_confusion(num_classes)
    input_size = tuple(input_size)
    chunk: list = []

    def flush() -> None:
        inputs = [to_tensors(s if s.rgb.shape[:2] == input_size else resize_sample(s, input_size), modality)
                  for s in chunk]
        rgb = torch.stack([c["rgb"] for c in inputs]).to(device)
        x = torch.stack([c["x"] for c in inputs]).to(device) if modality else None
        logits = model(rgb, x)["logits"]
        if excluded:
            logits[:, excluded] = -torch.inf
        prediction = logits.argmax(1).to(torch.uint8).cpu().numpy()
        for sample, ids in zip(chunk, prediction):
            h, w = sample.label.shape
            if (h, w) != input_size:
                ids = cv2.resize(ids, (w, h), interpolation=cv2.INTER_NEAREST)
            confusion[:] += confusion_matrix(sample.label, ids, num_classes)
        chunk.clear()

    from tqdm import tqdm

    for sample in tqdm(sample_loader(frames, workers), total=len(frames), desc=progress, unit="frame",
                       file=sys.stderr, disable=progress is None, mininterval=1.0):
        if sample.label is None:
            raise ValueError(f"{frames.description}: frame {sample.name!r} has no ground truth to score against")
        chunk.append(sample)
        if len(chunk) == batch_size:
            flush()
    if chunk:
        flush()
    return confusion


class Trainer:
    def __init__(self, config: dict, resume: bool = False, quiet: bool = False):
        self.config = config
        self.rank, self.world = _distributed()
        self.is_main = self.rank == 0
        self.quiet = quiet or not self.is_main
        if config["threads"]:
            torch.set_num_threads(int(config["threads"]))
        self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() \
            else torch.device("cpu")
        self.out_dir = Path(config["out_dir"])
        self._clip_warmups()
        self._build_model()
        self._build_objectives()
        self._build_optimizer()
        self._wrap_ddp()
        self._build_data()
        self.step = 0
        self.best_miou = -1.0
        self.history: list[dict] = []
        # Which classes the ground-truth labels of the trained batches contained: the checkpoint's
        # trained_classes, the only ids its output is read as (lix_ros.core.checkpoint.output_classes).
        self.seen_classes = torch.zeros(self.model_config.num_classes, dtype=torch.bool)
        if resume:
            self._resume()

    # ------------------------------------------------------------------ construction
    def console(self, message: str) -> None:
        """A line for the user, also kept in <out>/console.log."""
        if not self.is_main:
            return
        if not self.quiet:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with (self.out_dir / "console.log").open("a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def _clip_warmups(self) -> None:
        """A warm-up longer than the run would never reach full strength: use the run's length, and say so.

        The config keeps what was asked for (a resumed, longer run then gets the warm-up it asked for).
        """
        steps, optim = self.config["steps"], self.config["optim"]
        self.warmup_steps = min(optim["warmup_steps"], steps)
        if optim["warmup_steps"] > steps:
            self.console(f"warning: optim.warmup_steps {optim['warmup_steps']} > steps {steps}: clipped to {steps}")
        self.distill_config = copy.deepcopy(self.config.get("distill"))
        for method in (self.distill_config or {}).get("methods") or []:
            if isinstance(method, dict) and method.get("warmup_steps", 0) > steps:
                self.console(f"warning: {method.get('name')} warmup_steps {method['warmup_steps']} > steps {steps}: "
                             f"clipped to {steps}")
                method["warmup_steps"] = steps

    def _build_model(self) -> None:
        config = self.config
        self.model_config = ModelConfig.from_dict(config["model"])
        self.modality = self.model_config.modality if self.model_config.kind == "teacher" else None
        torch.manual_seed(config["seed"])  # initial weights: identical on every rank
        self.model = build_model(self.model_config).to(self.device)
        if config.get("init_from"):
            initial, initial_ckpt = load_model(config["init_from"], expect_classes=CLASS_NAMES,
                                               expect_modalities=self.model_config.modalities)
            if initial_ckpt["arch"] != self.model_config.to_dict():
                raise ValueError(f"init_from {config['init_from']}: its arch {initial_ckpt['arch']} differs from "
                                 f"model {self.model_config.to_dict()}")
            self.model.load_state_dict(initial.state_dict())

    def _build_objectives(self) -> None:
        """The frozen teacher and its distillation methods, and the auxiliary depth head, when configured."""
        config = self.config
        self.distiller = self.teacher = self.teacher_modality = self.aux_depth = self.teacher_sha256 = None
        if self.distill_config:
            from lix_training.distill import build_distiller

            self.teacher, teacher_ckpt = load_model(self.distill_config["teacher"], expect_classes=CLASS_NAMES)
            self.teacher.to(self.device).eval().requires_grad_(False)
            self.teacher_modality = geometry_modality(teacher_ckpt)
            self.teacher_sha256 = checkpoint_sha256(teacher_ckpt)  # the teacher by its weights, not its path
            self.distiller = build_distiller(self.distill_config, self.model, self.teacher).to(self.device)
        if config.get("aux_depth"):
            from lix_training.aux_depth import AuxDepthHead

            if self.model_config.kind != "student":
                raise ValueError("aux_depth is a baseline for the RGB student (model.kind: student)")
            self.aux_depth = AuxDepthHead(self.model.embedding_channels, **config["aux_depth"]).to(self.device)

    def _build_optimizer(self) -> None:
        config, optim = self.config, self.config["optim"]
        params = list(self.model.parameters()) + (list(self.distiller.parameters()) if self.distiller else []) \
            + (list(self.aux_depth.parameters()) if self.aux_depth else [])
        if optim["name"] == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=optim["lr"], weight_decay=optim["weight_decay"])
        else:
            self.optimizer = torch.optim.SGD(params, lr=optim["lr"], momentum=optim["momentum"],
                                             weight_decay=optim["weight_decay"], nesterov=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: poly_lr(s, config["steps"], optim["poly_power"], self.warmup_steps))
        self.use_amp = bool(config["amp"]) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)

    def _wrap_ddp(self) -> None:
        self.ddp_model = self.model
        self.ddp_distiller = self.distiller
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            if self.distiller is not None and any(p.requires_grad for p in self.distiller.parameters()):
                self.ddp_distiller = nn.parallel.DistributedDataParallel(self.distiller, device_ids=ids)

    def _build_data(self) -> None:
        config, data_cfg = self.config, self.config["data"]
        self.train_frames = open_split(data_cfg, "train", quiet=self.quiet)
        self.val_frames = open_split(data_cfg, "val", quiet=self.quiet)
        frame_size = data_cfg["frame_size"]
        self.train_frames.frame_size = tuple(frame_size) if frame_size else None
        # The size the node will run the model at: the frames the crops came from.
        self.input_size = tuple(frame_size) if frame_size else self.train_frames[0].rgb.shape[:2]
        if data_cfg["preload"]:
            show = not (self.quiet or self.rank)  # one progress bar, from the main process
            self.train_frames = preload(self.train_frames, data_cfg["workers"], "preload train" if show else None)
            self.val_frames = preload(self.val_frames, data_cfg["workers"], "preload val" if show else None)
        augment = Augment(tuple(data_cfg["crop_size"]), tuple(data_cfg["scale_range"]), data_cfg["flip"])
        # Every input the student, the teacher and the depth head need, once each.
        modalities = [None] + ([self.modality] if self.modality else [])
        if self.teacher_modality and self.teacher_modality not in modalities:
            modalities.append(self.teacher_modality)
        if self.aux_depth is not None and "depth" not in modalities:
            modalities.append("depth")
        self.mix_frames, share = None, data_cfg["mix"]["share"]
        if data_cfg["mix"]["root"]:
            self.mix_frames = open_split({**data_cfg, "source": "bag", "root": data_cfg["mix"]["root"]}, "train")
        elif data_cfg["unlabelled"]["count"]:
            self.mix_frames, share = open_unlabelled(data_cfg, quiet=self.quiet), data_cfg["unlabelled"]["share"]
            if data_cfg["preload"]:
                self.mix_frames = preload(self.mix_frames, data_cfg["workers"],
                                          None if self.quiet or self.rank else "preload unlabelled")
        if self.mix_frames is not None:
            self.mix_frames.frame_size = self.train_frames.frame_size
        self.batches = StepBatches(self.train_frames, config["batch_size"], config["seed"], augment, modalities,
                                   self.rank, self.world, self.mix_frames, share)

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, include_resume: bool) -> dict:
        training = {"config": self.config, "step": self.step, "best_val_miou": self.best_miou,
                    "world_size": self.world}
        if self.teacher_sha256:
            training["teacher_sha256"] = self.teacher_sha256
        ckpt = make_checkpoint(self.model, self.model_config, self.input_size, training,
                               trained_classes=self.trained_classes())
        if include_resume:
            ckpt["resume"] = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "distiller": self.distiller.state_dict() if self.distiller else {},
                "aux_depth": self.aux_depth.state_dict() if self.aux_depth else {},
                "step": self.step,
                "best_val_miou": self.best_miou,
                "seen_classes": self.seen_classes.clone(),
                "torch_rng": torch.get_rng_state(),
            }
        return ckpt

    def save(self, name: str, include_resume: bool = True) -> Path:
        path = self.out_dir / name
        if self.is_main:
            atomic_save(self._checkpoint(include_resume), path)
        return path

    def _resume(self) -> None:
        path = self.out_dir / "last.pt"
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no {path} to resume from")
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if "resume" not in ckpt:
            raise ValueError(f"--resume: {path} holds no training state (field 'resume')")
        self._check_resumed_config(ckpt["training"].get("config", {}), ckpt["training"].get("teacher_sha256"))
        self.model.load_state_dict(ckpt["state_dict"])
        state = ckpt["resume"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.distiller is not None:
            self.distiller.load_state_dict(state["distiller"])
        if self.aux_depth is not None:
            self.aux_depth.load_state_dict(state["aux_depth"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        self._truncate_log(self.step)
        self.best_miou = float(state["best_val_miou"])
        if "seen_classes" in state:  # a run saved before lix_ros recorded them counts from here on
            self.seen_classes = state["seen_classes"].bool().clone()

    def _check_resumed_config(self, saved: dict, saved_teacher_sha256: str | None = None) -> None:
        """A resumed run must be the run that was started: refuse any change that alters the weights. The
        teacher is named by its weights: the same teacher moved to another path resumes (runs saved before
        the checksum was recorded compare the path)."""
        from lix_training.config import DEFAULTS

        before, now, defaults = _flatten(saved), _flatten(self.config), _flatten(DEFAULTS)
        if saved_teacher_sha256 is not None:
            for flat, sha in ((before, saved_teacher_sha256), (now, self.teacher_sha256)):
                flat["distill"] = {k: v for k, v in (flat.get("distill") or {}).items() if k != "teacher"}
                flat["teacher weights_sha256"] = sha
        # A key the saved run predates (added to the harness later) is unchanged if it has its default.
        changed = [key for key in sorted(set(before) | set(now)) if key not in RESUME_MAY_CHANGE
                   and before.get(key, defaults.get(key)) != now.get(key)]
        if changed:
            details = "; ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in changed)
            raise ValueError(f"--resume: the config differs from the run in {self.out_dir} ({details}); "
                             "resume with the same config, or start a new run in another --out")
        if saved.get("steps") != self.config["steps"]:
            self.console(f"warning: steps changed {saved.get('steps')} -> {self.config['steps']}: the learning-rate "
                         "schedule of the remaining steps changes")

    # ------------------------------------------------------------------ loop
    def _log(self, row: dict) -> None:
        if not self.is_main:
            return
        path = self.out_dir / "log.csv"
        fields = ["step", "lr", "loss", "loss_ce", "loss_kd", "val_miou", "sec_per_step", "terms"]
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _truncate_log(self, step: int) -> None:
        """Rows logged after the checkpoint a run resumes from are about to be redone: drop them."""
        path = self.out_dir / "log.csv"
        if not self.is_main or not path.is_file():
            return
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
            fields = list(rows[0]) if rows else None
        if fields and any(int(r["step"]) > step for r in rows):
            with path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=fields)
                writer.writeheader()
                writer.writerows(r for r in rows if int(r["step"]) <= step)

    def train_step(self, step: int, batch: dict[str, torch.Tensor] | None = None) -> dict:
        self.ddp_model.train()
        torch.manual_seed(_step_seed(self.config["seed"], step, self.rank))  # dropout: a function of the step
        batch = self.batches[step] if batch is None else batch
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        label = batch["label"]
        self._note_classes(label)
        x = batch.get(f"x:{self.modality}") if self.modality else None
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
            if self.distiller is not None:
                with torch.no_grad():
                    tx = batch.get(f"x:{self.teacher_modality}") if self.teacher_modality else None
                    teacher_out = self.teacher(batch["rgb"], tx)
                if "labelled" in batch:
                    label = with_teacher_labels(label, batch["labelled"], teacher_out["logits"])
            valid = (label != IGNORE_ID).sum().to(torch.float32)
            if self.world > 1:
                dist.all_reduce(valid)
                valid = valid / self.world  # each rank's loss is then scaled by world size through the average
            out = self.ddp_model(batch["rgb"], x)
            loss_ce = supervised_loss(out["logits"].float(), label, valid)
            terms = {}
            loss = loss_ce
            if self.distiller is not None:
                terms = self.ddp_distiller(out, teacher_out, label, step=step, total_steps=self.config["steps"])
            if self.aux_depth is not None:
                terms.update(self.aux_depth(out["embedding"], batch["x:depth"]))
            if terms:
                loss = loss + sum(terms.values())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config["optim"]["grad_clip"]:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config["optim"]["grad_clip"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return {"loss": float(loss.detach()), "loss_ce": float(loss_ce.detach()),
                "terms": {k: float(v.detach()) for k, v in terms.items()}}

    def _note_classes(self, label: torch.Tensor) -> None:
        """Adds the classes of a batch's ground truth (before any teacher labels fill withheld ones) to
        seen_classes; under DDP, every rank's."""
        k = self.model_config.num_classes
        present = torch.bincount(label[label < k].flatten().long(), minlength=k) > 0
        if self.world > 1:
            present = present.int()
            dist.all_reduce(present, op=dist.ReduceOp.MAX)
        self.seen_classes |= present.bool().cpu()

    def trained_classes(self) -> list[int] | None:
        """The class ids the trained batches' labels contained (None before any labelled pixel)."""
        ids = torch.nonzero(self.seen_classes).flatten().tolist()
        return ids or None

    def validate(self) -> float:
        confusion = evaluate(self.model, self.val_frames, self.modality, self.device, self.model_config.num_classes,
                             self.input_size, self.config["data"]["workers"], classes=self.trained_classes())
        return scores_from_confusion(confusion).miou

    def fit(self, stop_after: int | None = None) -> dict:
        from tqdm import tqdm

        cfg = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.is_main:
            import yaml

            (self.out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        what = f"{self.model_config.kind} ({self.model_config.preset})"
        self.console(f"{'resuming' if self.step else 'training'} {what} at step {self.step}/{cfg['steps']} on "
                     f"{self.train_frames.description} ({len(self.train_frames)} frames, model input "
                     f"{self.input_size[0]}x{self.input_size[1]}, crops {cfg['data']['crop_size']}); "
                     f"val: {self.val_frames.description} ({len(self.val_frames)} frames)"
                     + (f"; {self.batches.extra_count} of every {cfg['batch_size']} samples from "
                        f"{self.mix_frames.description} ({len(self.mix_frames)} frames)" if self.mix_frames else ""))
        bar = tqdm(total=cfg["steps"], initial=self.step, desc=f"train {self.model_config.kind}", unit="step",
                   file=sys.stderr, disable=self.quiet, mininterval=2.0)
        started = time.perf_counter()
        batches = step_loader(self.batches, self.step, cfg["steps"], cfg["data"]["workers"])
        with _StopRequests() as stop:
            last = self._loop(batches, bar, stop_after, stop)
        bar.close()
        if self.step < cfg["steps"]:  # stopped early (--stop-after, Ctrl-C, SIGTERM): resumable from here
            self.save("last.pt")
        if stop.requested:
            self.console(f"interrupted ({stop.requested}) at step {self.step}: saved {self.out_dir / 'last.pt'}; "
                         f"continue with the same command and --resume")
            raise KeyboardInterrupt
        elapsed = time.perf_counter() - started
        if self.step >= cfg["steps"]:
            self.save("final.pt", include_resume=False)
            if self.is_main:
                plot_curves(self.out_dir / "log.csv", self.out_dir / "curves.png")
            self.console(f"finished: {self.out_dir / 'final.pt'} (best val mIoU {100 * self.best_miou:.2f})")
        return {"step": self.step, "seconds": elapsed, "best_val_miou": self.best_miou, **last}

    def _loop(self, batches, bar, stop_after: int | None, stop: _StopRequests) -> dict:
        cfg = self.config
        done_here = 0
        last: dict = {}
        while self.step < cfg["steps"] and not stop.requested:
            t0 = time.perf_counter()
            last = self.train_step(self.step, next(batches))
            self.step += 1
            done_here += 1
            row = {"step": self.step, "lr": self.scheduler.get_last_lr()[0], "loss": last["loss"],
                   "loss_ce": last["loss_ce"], "loss_kd": sum(last["terms"].values()),
                   "sec_per_step": time.perf_counter() - t0,
                   "terms": ";".join(f"{k}={v:.5f}" for k, v in last["terms"].items())}
            if not math.isfinite(last["loss"]):
                raise FloatingPointError(f"loss became {last['loss']} at step {self.step}")
            if self.step % cfg["val_every"] == 0 or self.step == cfg["steps"]:
                row["val_miou"] = self.validate()
                if row["val_miou"] > self.best_miou:
                    self.best_miou = row["val_miou"]
                self.console(f"step {self.step}: loss {last['loss']:.4f}, val mIoU {100 * row['val_miou']:.2f}")
            if self.step % cfg["log_every"] == 0 or "val_miou" in row:
                self._log(row)
                self.history.append(row)
                bar.set_postfix(loss=f"{last['loss']:.3f}", best_val=f"{100 * max(self.best_miou, 0):.1f}")
            if self.step % cfg["checkpoint_every"] == 0 or self.step == cfg["steps"]:
                self.save("last.pt")
            bar.update(1)
            if stop_after is not None and done_here >= stop_after:
                break
        return last


def plot_curves(log_path: Path, out_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses, val_steps, vals = [], [], [], []
    with log_path.open() as handle:
        for row in csv.DictReader(handle):
            steps.append(int(row["step"]))
            losses.append(float(row["loss"]))
            if row.get("val_miou"):
                val_steps.append(int(row["step"]))
                vals.append(100 * float(row["val_miou"]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.plot(steps, losses)
    left.set(xlabel="step", ylabel="training loss", title="loss")
    right.plot(val_steps, vals, marker="o")
    right.set(xlabel="step", ylabel="val mIoU (%)", title="validation mIoU")
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
