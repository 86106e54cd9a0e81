"""`lix-bag eval`: offline, deterministic evaluation of a bag.

Runs the student (and the teacher when the bag has the geometry its checkpoint needs) on every camera
frame, or reads node outputs recorded in the bag (/lix/semantic, /lix/teacher/semantic), and compares
them with the ground truth when present and with each other. Writes report.json, report.md and a
self-contained report.html (per-class IoU, confusion matrices, sample frames, latency figures).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lix_ros.bag.frames import BagFrames, TopicMap, tf_static_extrinsic
from lix_ros.bag.io import (
    MessageStream,
    image_mono8,
    image_rgb,
    missing_topics_error,
    open_reader,
    topic_types,
)
from lix_ros.core.constants import DIAGNOSTICS
from lix_ros.core.image_codec import ImageError
from lix_ros.core.metrics import confusion_matrix, empty_confusion, scores_from_confusion
from lix_ros.core.pointcloud import PointCloudError
from lix_ros.core.teacher_inputs import teacher_inputs
from lix_ros.data.classes import CLASS_NAMES, NUM_CLASSES, colorize


@dataclass
class EvalOptions:
    mode: str = "auto"  # run | recorded | auto (recorded when the bag has student outputs)
    student: str | None = None
    teacher: str | None = None
    lidar_to_camera: np.ndarray | None = None
    samples: int = 6
    max_frames: int | None = None
    quiet: bool = False
    backend: str = "onnxruntime"  # as the nodes run the models
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    threads: int = 0  # intra-op threads (0: the engine's default), as the nodes' parameter


def _checkpoint_name(path: str | None, kind: str) -> str:
    """What the report names as a model: the given path, or the packaged default's file."""
    from lix_ros.core.default_checkpoints import default_checkpoint

    return path or f"packaged default ({Path(default_checkpoint(kind)).name})"


def _stats(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    array = np.array(values)
    return {"count": len(values), "median_ms": float(np.median(array)), "p99_ms": float(np.percentile(array, 99)),
            "mean_ms": float(array.mean())}


def node_diagnostics(path: str | Path) -> dict[str, dict[str, str]]:
    """The last /diagnostics status of each lix_ros node recorded in the bag: its counters at the end."""
    reader = open_reader(path)
    last: dict[str, dict[str, str]] = {}
    try:
        if DIAGNOSTICS in topic_types(reader):
            for message in MessageStream(reader, [DIAGNOSTICS]):
                for status in message.msg.status:
                    if status.name.startswith("lix_ros: "):
                        last[status.name.removeprefix("lix_ros: ")] = {
                            "level": int(status.level), "message": status.message,
                            **{kv.key: kv.value for kv in status.values}}
    finally:
        reader.close()
    return last


def disagreement_image(rgb: np.ndarray, student: np.ndarray, teacher: np.ndarray | None) -> np.ndarray:
    out = (rgb.astype(np.float32) * 0.35).astype(np.uint8)
    if teacher is not None:
        out[student != teacher] = (255, 40, 40)
    return out


@dataclass
class _Models:
    """What `run` mode evaluates: the student, the teacher when the bag has its geometry, the extrinsic."""

    student: object = None
    teacher: object = None
    teacher_modality: str | None = None
    extrinsic: np.ndarray | None = None
    teacher_not_run: str | None = None  # why the teacher could not run on this bag


def load_teacher(path: str | Path, frames: BagFrames, options: EvalOptions, topics: TopicMap) -> _Models:
    """The teacher of `options` (its modality read from its checkpoint, once) and the LiDAR extrinsic, or
    the reason it cannot run on this bag (`teacher_not_run`) when the bag lacks its inputs."""
    from lix_ros.core.default_checkpoints import default_checkpoint
    from lix_ros.core.inference import ANY_GEOMETRY, Segmenter

    models = _Models()
    # Warmed up only once it is known to run: a bag without its geometry should not pay for it.
    teacher = Segmenter(options.teacher or default_checkpoint("teacher"), expect_modality=ANY_GEOMETRY,
                        backend=options.backend, providers=options.providers, threads=options.threads, warmup=False)
    models.teacher_modality = teacher.modality
    needs = "points" if models.teacher_modality == "lidar" else "depth"
    missing = [getattr(topics, role) for role in (needs, "camera_info") if not frames.has(role)]
    models.extrinsic = options.lidar_to_camera
    if not missing and needs == "points" and models.extrinsic is None:
        models.extrinsic = tf_static_extrinsic(path)
        if models.extrinsic is None:
            missing = ["/tf_static (or --lidar-to-camera) for the LiDAR-to-camera transform"]
    if missing:
        option = "--points" if needs == "points" else "--depth"
        models.teacher_not_run = (f"the {models.teacher_modality} teacher did not run: the bag has no "
                                  f"{' and no '.join(missing)} (other topic names: {option}, --camera-info)")
    else:
        teacher.warm_up()
        models.teacher = teacher
    return models


def load_models(path: str | Path, frames: BagFrames, options: EvalOptions, topics: TopicMap) -> _Models:
    """The student and (see load_teacher) the teacher that `run` mode evaluates."""
    from lix_ros.core.default_checkpoints import default_checkpoint
    from lix_ros.core.inference import Segmenter

    models = load_teacher(path, frames, options, topics)
    models.student = Segmenter(options.student or default_checkpoint("student"), backend=options.backend,
                               providers=options.providers, threads=options.threads)
    return models


def _run_models(models: _Models, m: dict, rgb: np.ndarray, latency: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """Student ids and (when its inputs are in the frame) teacher ids; model times into `latency`."""
    prediction = models.student.predict(rgb)
    latency["student"].append(prediction.seconds * 1000)
    lidar = models.teacher_modality == "lidar"
    has_geometry = ("points" in m and models.extrinsic is not None) if lidar else "depth" in m
    if models.teacher is None or "camera_info" not in m or not has_geometry:
        return prediction.ids, None
    inputs = teacher_inputs(m["camera"], m["camera_info"], depth=None if lidar else m["depth"],
                            points=m["points"] if lidar else None, T_cam_from_lidar=models.extrinsic, rgb=rgb)
    tp = models.teacher.predict(inputs.rgb, depth=inputs.depth, lidar_depth=inputs.lidar_depth, K=inputs.K)
    latency["teacher"].append(tp.seconds * 1000)
    return prediction.ids, tp.ids


def _recorded_outputs(frame, latency: dict) -> tuple[np.ndarray, np.ndarray | None]:
    m = frame.messages
    # Camera receipt -> mask receipt on the recorder's clock when the camera was recorded too;
    # else log time - header stamp (valid for live stamps, not for replayed synthetic ones).
    reference = frame.log_times.get("camera", frame.stamp)
    for role in ("student", "teacher"):
        if role in m:
            latency[role].append((frame.log_times[role] - reference) / 1e6)
    return image_mono8(m["student"]), image_mono8(m["teacher"]) if "teacher" in m else None


class _Scores:
    """Confusion matrices (student vs GT, teacher vs GT, student vs teacher) and per-frame figures."""

    def __init__(self):
        self.confusions = {k: empty_confusion(NUM_CLASSES) for k in ("student", "teacher", "agreement")}
        self.per_frame: list[dict] = []

    def _add(self, name: str, target: np.ndarray, prediction: np.ndarray) -> tuple[float, float]:
        """Adds one frame; returns its pixel accuracy and its mIoU (over the classes present in it)."""
        c = confusion_matrix(target, prediction, NUM_CLASSES)
        self.confusions[name] += c
        return float(np.trace(c) / max(c.sum(), 1)), scores_from_confusion(c).miou

    def add(self, stamp: int, gt, s_ids: np.ndarray, t_ids, latency_ms: dict[str, float]) -> None:
        record = {"stamp": stamp, **{f"{role}_ms": ms for role, ms in latency_ms.items()}}
        if gt is not None and gt.shape == s_ids.shape:
            record["student_pixel_accuracy"], record["student_miou"] = self._add("student", gt, s_ids)
        if t_ids is not None and t_ids.shape == s_ids.shape:
            if gt is not None:
                record["teacher_pixel_accuracy"], record["teacher_miou"] = self._add("teacher", gt, t_ids)
            record["student_teacher_agreement"], _ = self._add("agreement", t_ids, s_ids)
        self.per_frame.append(record)

    def scores(self, name: str) -> dict | None:
        c = self.confusions[name]
        return scores_from_confusion(c).as_dict(CLASS_NAMES) if c.sum() else None


def evaluate_bag(path: str | Path, options: EvalOptions, topics: TopicMap | None = None) -> dict:
    topics = topics or TopicMap()
    frames = BagFrames(path, topics)
    mode = options.mode
    if mode == "auto":
        mode = "recorded" if frames.has("student") else "run"
    if mode == "recorded" and not frames.has("student"):
        raise missing_topics_error(path, [topics.student], frames.available, what="recorded")
    models = load_models(path, frames, options, topics) if mode == "run" else _Models()

    scores = _Scores()
    latency = {"student": [], "teacher": []}
    samples, skipped = [], []
    total = frames.total if options.max_frames is None else min(frames.total, options.max_frames)
    bar = tqdm(total=total, desc="lix-bag eval", unit="frame", disable=options.quiet)
    for index, frame in enumerate(frames):
        if options.max_frames is not None and index >= options.max_frames:
            break
        bar.update(1)
        m = frame.messages
        counts = {role: len(values) for role, values in latency.items()}
        try:
            rgb = image_rgb(m["camera"])
            gt = image_mono8(m["gt"]) if "gt" in m else None
            s_ids, t_ids = _run_models(models, m, rgb, latency) if mode == "run" else _recorded_outputs(frame, latency)
        except (ImageError, PointCloudError, KeyError) as error:
            skipped.append({"stamp": frame.stamp, "reason": str(error)})
            continue
        scores.add(frame.stamp, gt, s_ids, t_ids,
                   {role: values[-1] for role, values in latency.items() if len(values) > counts[role]})
        if len(samples) < options.samples and index % max(1, total // max(options.samples, 1)) == 0:
            samples.append({"stamp": frame.stamp, "rgb": rgb, "gt": gt, "student": s_ids, "teacher": t_ids})
    bar.close()

    report = {
        "bag": str(path), "mode": mode, "frames": len(scores.per_frame), "skipped": skipped,
        "partial": frames.partial, "partial_reason": frames.stream.partial_reason,
        "unknown_message_types": sorted(frames.stream.unknown_types),
        "topics": {role: topic for role, topic in topics.__dict__.items() if frames.has(role)},
        "student_checkpoint": _checkpoint_name(options.student, "student") if mode == "run" else topics.student,
        "teacher_checkpoint": (_checkpoint_name(options.teacher, "teacher") if models.teacher else None)
        if mode == "run"
        else (topics.teacher if frames.has("teacher") else None),
        "teacher_not_run": models.teacher_not_run if mode == "run" else (
            None if frames.has("teacher") else f"the bag has no recorded teacher output ({topics.teacher})"),
        "student_vs_gt": scores.scores("student"), "teacher_vs_gt": scores.scores("teacher"),
        "student_vs_teacher": scores.scores("agreement"),
        "backend": options.backend if mode == "run" else None,
        "latency": {"kind": f"model-only time ({options.backend})" if mode == "run" else (
            "end to end (camera receipt -> mask receipt, recorder clock)" if frames.has("camera")
            else "end to end (bag log time - header stamp)"),
                    "student": _stats(latency["student"]), "teacher": _stats(latency["teacher"])},
        "confusion": {k: v.tolist() for k, v in scores.confusions.items() if v.sum()},
        "per_frame": scores.per_frame,
        "node_diagnostics": node_diagnostics(path) if mode == "recorded" else {},
    }
    report["_samples"] = samples
    return report


def _missing(shape: tuple[int, ...], text: str) -> np.ndarray:
    import cv2

    tile = np.full(shape, 40, np.uint8)
    cv2.putText(tile, text, (8, shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1, cv2.LINE_AA)
    return tile


def _titled(tile: np.ndarray, title: str) -> np.ndarray:
    """A tile with its name in a strip above it."""
    import cv2

    strip = np.full((22, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    return np.concatenate([strip, tile], axis=0)


def sample_mosaic(sample: dict) -> np.ndarray:
    rgb = sample["rgb"]
    tiles = [("RGB", rgb),
             ("ground truth", colorize(sample["gt"]) if sample["gt"] is not None
              else _missing(rgb.shape, "no ground truth")),
             ("student", colorize(sample["student"])),
             ("teacher", colorize(sample["teacher"]) if sample["teacher"] is not None
              else _missing(rgb.shape, "no teacher output")),
             ("disagreement (red)", disagreement_image(rgb, sample["student"], sample["teacher"]))]
    gap = np.full((rgb.shape[0] + 22, 4, 3), 255, np.uint8)
    columns = []
    for title, tile in tiles:
        columns += [_titled(tile, title), gap]
    return np.concatenate(columns[:-1], axis=1)


def write_report(report: dict, out: str | Path) -> dict[str, Path]:
    from lix_ros.bag.report import render_html, render_markdown

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = report.pop("_samples", [])
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(report, indent=2))
    paths["md"].write_text(render_markdown(report))
    paths["html"].write_text(render_html(report, [sample_mosaic(s) for s in samples],
                                         [s["stamp"] for s in samples]))
    return paths
