"""Segmentation metrics without ROS or torch: confusion matrix, per-class IoU, mIoU, pixel accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lix_ros.data.classes import IGNORE_ID


def empty_confusion(num_classes: int) -> np.ndarray:
    """An all-zero confusion matrix of the shape `confusion_matrix` returns."""
    return np.zeros((num_classes, num_classes + 1), np.int64)


def confusion_matrix(target: np.ndarray, prediction: np.ndarray, num_classes: int) -> np.ndarray:
    """num_classes x (num_classes + 1) counts: rows = ground truth, columns = prediction.

    Ground truth 255 (or any id >= num_classes) is ignored. A valid ground-truth pixel whose prediction is
    outside [0, num_classes) (e.g. 255 in a recorded mask) is counted in the last column: a false negative
    of its class that is no class's false positive, as the Cityscapes evaluation counts it.
    """
    target = np.asarray(target).ravel()
    prediction = np.asarray(prediction).ravel()
    if target.shape != prediction.shape:
        raise ValueError(f"target and prediction differ in size: {target.size} vs {prediction.size}")
    valid = (target != IGNORE_ID) & (target < num_classes)
    predicted = prediction[valid].astype(np.int64)
    predicted = np.where((predicted >= 0) & (predicted < num_classes), predicted, num_classes)
    index = target[valid].astype(np.int64) * (num_classes + 1) + predicted
    return np.bincount(index, minlength=num_classes * (num_classes + 1)).reshape(num_classes, num_classes + 1)


@dataclass
class SegmentationScores:
    iou: np.ndarray  # per class, NaN where the class is neither in the ground truth nor predicted
    miou: float
    pixel_accuracy: float
    support: np.ndarray  # ground-truth pixels per class

    def as_dict(self, class_names: list[str] | tuple[str, ...]) -> dict:
        return {
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "per_class_iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(class_names, self.iou)},
            "support": {n: int(s) for n, s in zip(class_names, self.support)},
        }


def scores_from_confusion(confusion: np.ndarray) -> SegmentationScores:
    """Scores from a K x (K + 1) matrix (last column: no valid prediction) or a square K x K one."""
    confusion = np.asarray(confusion, np.float64)
    k = confusion.shape[0]
    true_positive = np.diag(confusion[:, :k])
    union = confusion[:, :k].sum(0) + confusion.sum(1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, true_positive / union, np.nan)
    total = confusion.sum()
    present = ~np.isnan(iou)
    return SegmentationScores(
        iou=iou,
        miou=float(np.mean(iou[present])) if present.any() else float("nan"),
        pixel_accuracy=float(true_positive.sum() / total) if total else float("nan"),
        support=confusion.sum(1).astype(np.int64),
    )


def labelled_miou(per_class_iou: dict[str, float | None], support: dict[str, int]) -> float:
    """Mean IoU over the classes the ground truth contains (support > 0).

    The standard mIoU (`scores_from_confusion`) also averages a class no label of the set contains as
    soon as one pixel is predicted as it, with IoU 0: on a set with 14 labelled classes of 19, a single such
    pixel among millions moves mIoU by ~4.5 points. That pixel is still an error here — a false negative of
    its true class — it only no longer zeroes a class the set cannot measure.
    """
    labelled = [name for name, count in support.items() if count > 0]
    if not labelled:
        return float("nan")
    return float(np.mean([per_class_iou.get(name) or 0.0 for name in labelled]))

