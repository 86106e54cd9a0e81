"""Segmentation metrics without ROS or torch: confusion matrix, per-class IoU, mIoU, pixel accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lix_ros.data.classes import IGNORE_ID


def confusion_matrix(target: np.ndarray, prediction: np.ndarray, num_classes: int) -> np.ndarray:
    """num_classes x num_classes counts, rows = ground truth, columns = prediction; 255 in target ignored.

    Predictions outside [0, num_classes) on valid pixels count in no column (they lower recall).
    """
    target = np.asarray(target).ravel()
    prediction = np.asarray(prediction).ravel()
    if target.shape != prediction.shape:
        raise ValueError(f"target and prediction differ in size: {target.size} vs {prediction.size}")
    valid = (target != IGNORE_ID) & (target < num_classes) & (prediction < num_classes)
    index = target[valid].astype(np.int64) * num_classes + prediction[valid].astype(np.int64)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


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
    confusion = np.asarray(confusion, np.float64)
    true_positive = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - true_positive
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
