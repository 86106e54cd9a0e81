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
    camera_matrix,
    image_depth,
    image_mono8,
    image_rgb,
    missing_topics_error,
    open_reader,
    topic_types,
)
from lix_ros.core.checkpoint import geometry_modality, read_checkpoint
from lix_ros.core.constants import DIAGNOSTICS
from lix_ros.core.image_codec import ImageError
from lix_ros.core.metrics import confusion_matrix, empty_confusion, scores_from_confusion
from lix_ros.core.pointcloud import PointCloudError, cloud_to_sparse_depth
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


def evaluate_bag(path: str | Path, options: EvalOptions, topics: TopicMap | None = None) -> dict:
    from lix_ros.core.default_checkpoints import default_checkpoint
    from lix_ros.core.inference import Segmenter

    topics = topics or TopicMap()
    frames = BagFrames(path, topics)
    mode = options.mode
    if mode == "auto":
        mode = "recorded" if frames.has("student") else "run"
    if mode == "recorded" and not frames.has("student"):
        raise missing_topics_error(path, [topics.student], frames.available, what="recorded")

    student = teacher = None
    teacher_modality = None
    if mode == "run":
        student = Segmenter(options.student or default_checkpoint("student"))
        teacher_path = options.teacher or default_checkpoint("teacher")
        teacher_modality = geometry_modality(read_checkpoint(teacher_path))
        needs = "points" if teacher_modality == "lidar" else "depth"
        if frames.has(needs) and frames.has("camera_info"):
            teacher = Segmenter(teacher_path, expect_modality=teacher_modality)
    extrinsic = options.lidar_to_camera
    if teacher is not None and teacher_modality == "lidar" and extrinsic is None:
        extrinsic = tf_static_extrinsic(path)

    confusions = {k: empty_confusion(NUM_CLASSES) for k in ("student", "teacher", "agreement")}
    latency = {"student": [], "teacher": []}
    per_frame, samples, skipped = [], [], []
    total = frames.total if options.max_frames is None else min(frames.total, options.max_frames)
    bar = tqdm(total=total, desc="lix-bag eval", unit="frame", disable=options.quiet)
    for index, frame in enumerate(frames):
        if options.max_frames is not None and index >= options.max_frames:
            break
        bar.update(1)
        m = frame.messages
        try:
            rgb = image_rgb(m["camera"])
            gt = image_mono8(m["gt"]) if "gt" in m else None
            if mode == "run":
                prediction = student.predict(rgb)
                s_ids = prediction.ids
                latency["student"].append(prediction.seconds * 1000)
                t_ids = None
                if teacher is not None and "camera_info" in m and ("depth" in m or "points" in m):
                    K = camera_matrix(m["camera_info"])
                    depth = image_depth(m["depth"]) if teacher_modality != "lidar" and "depth" in m else None
                    lidar = None
                    if teacher_modality == "lidar" and "points" in m and extrinsic is not None:
                        lidar = cloud_to_sparse_depth(m["points"], extrinsic, K, rgb.shape[:2])
                    if depth is not None or lidar is not None:
                        tp = teacher.predict(rgb, depth=depth, lidar_depth=lidar, K=K)
                        t_ids = tp.ids
                        latency["teacher"].append(tp.seconds * 1000)
            else:
                s_ids = image_mono8(m["student"])
                t_ids = image_mono8(m["teacher"]) if "teacher" in m else None
                # Camera receipt -> mask receipt on the recorder's clock when the camera was recorded too;
                # else log time - header stamp (valid for live stamps, not for replayed synthetic ones).
                reference = frame.log_times.get("camera", frame.stamp)
                for role in ("student", "teacher"):
                    if role in m:
                        latency[role].append((frame.log_times[role] - reference) / 1e6)
        except (ImageError, PointCloudError, KeyError) as error:
            skipped.append({"stamp": frame.stamp, "reason": str(error)})
            continue
        record = {"stamp": frame.stamp}
        if gt is not None and gt.shape == s_ids.shape:
            c = confusion_matrix(gt, s_ids, NUM_CLASSES)
            confusions["student"] += c
            record["student_pixel_accuracy"] = float(np.trace(c) / max(c.sum(), 1))
        if t_ids is not None and t_ids.shape == s_ids.shape:
            if gt is not None:
                c = confusion_matrix(gt, t_ids, NUM_CLASSES)
                confusions["teacher"] += c
                record["teacher_pixel_accuracy"] = float(np.trace(c) / max(c.sum(), 1))
            c = confusion_matrix(t_ids, s_ids, NUM_CLASSES)
            confusions["agreement"] += c
            record["student_teacher_agreement"] = float(np.trace(c) / max(c.sum(), 1))
        per_frame.append(record)
        if len(samples) < options.samples and index % max(1, total // max(options.samples, 1)) == 0:
            samples.append({"stamp": frame.stamp, "rgb": rgb, "gt": gt, "student": s_ids, "teacher": t_ids})
    bar.close()

    def scores(name):
        c = confusions[name]
        return scores_from_confusion(c).as_dict(CLASS_NAMES) if c.sum() else None

    report = {
        "bag": str(path), "mode": mode, "frames": len(per_frame), "skipped": skipped,
        "partial": frames.partial, "partial_reason": frames.stream.partial_reason,
        "unknown_message_types": sorted(frames.stream.unknown_types),
        "student_checkpoint": (options.student or "packaged default") if mode == "run" else topics.student,
        "teacher_checkpoint": ((options.teacher or "packaged default") if teacher else None) if mode == "run"
        else (topics.teacher if frames.has("teacher") else None),
        "student_vs_gt": scores("student"), "teacher_vs_gt": scores("teacher"),
        "student_vs_teacher": scores("agreement"),
        "latency": {"kind": "model-only time" if mode == "run" else (
            "end to end (camera receipt -> mask receipt, recorder clock)" if frames.has("camera")
            else "end to end (bag log time - header stamp)"),
                    "student": _stats(latency["student"]), "teacher": _stats(latency["teacher"])},
        "confusion": {k: v.tolist() for k, v in confusions.items() if v.sum()},
        "per_frame": per_frame,
        "node_diagnostics": node_diagnostics(path) if mode == "recorded" else {},
    }
    report["_samples"] = samples
    return report


def _missing(shape: tuple[int, ...], text: str) -> np.ndarray:
    import cv2

    tile = np.full(shape, 40, np.uint8)
    cv2.putText(tile, text, (8, shape[0] // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1, cv2.LINE_AA)
    return tile


def sample_mosaic(sample: dict) -> np.ndarray:
    rgb = sample["rgb"]
    tiles = [rgb, colorize(sample["gt"]) if sample["gt"] is not None else _missing(rgb.shape, "no ground truth"),
             colorize(sample["student"]),
             colorize(sample["teacher"]) if sample["teacher"] is not None else _missing(rgb.shape, "no teacher output"),
             disagreement_image(rgb, sample["student"], sample["teacher"])]
    return np.concatenate(tiles, axis=1)


def write_report(report: dict, out: str | Path) -> dict[str, Path]:
    from lix_ros.bag.report import render_html, render_markdown

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = report.pop("_samples", [])
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(report, indent=2))
    paths["md"].write_text(render_markdown(report))
    paths["html"].write_text(render_html(report, [sample_mosaic(s) for s in samples]))
    return paths
