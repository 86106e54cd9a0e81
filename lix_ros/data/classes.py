"""The Cityscapes 19-class train-id table, its palette, and the labelId <-> trainId lookup tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE_ID = 255


@dataclass(frozen=True)
class ClassInfo:
    train_id: int
    name: str
    label_id: int
    color: tuple[int, int, int]


# Cityscapes train ids (cityscapesScripts labels.py): train id, name, label id, colour.
CITYSCAPES_CLASSES: tuple[ClassInfo, ...] = (
    ClassInfo(0, "road", 7, (128, 64, 128)),
    ClassInfo(1, "sidewalk", 8, (244, 35, 232)),
    ClassInfo(2, "building", 11, (70, 70, 70)),
    ClassInfo(3, "wall", 12, (102, 102, 156)),
    ClassInfo(4, "fence", 13, (190, 153, 153)),
    ClassInfo(5, "pole", 17, (153, 153, 153)),
    ClassInfo(6, "traffic light", 19, (250, 170, 30)),
    ClassInfo(7, "traffic sign", 20, (220, 220, 0)),
    ClassInfo(8, "vegetation", 21, (107, 142, 35)),
    ClassInfo(9, "terrain", 22, (152, 251, 152)),
    ClassInfo(10, "sky", 23, (70, 130, 180)),
    ClassInfo(11, "person", 24, (220, 20, 60)),
    ClassInfo(12, "rider", 25, (255, 0, 0)),
    ClassInfo(13, "car", 26, (0, 0, 142)),
    ClassInfo(14, "truck", 27, (0, 0, 70)),
    ClassInfo(15, "bus", 28, (0, 60, 100)),
    ClassInfo(16, "train", 31, (0, 80, 100)),
    ClassInfo(17, "motorcycle", 32, (0, 0, 230)),
    ClassInfo(18, "bicycle", 33, (119, 11, 32)),
)
NUM_CLASSES = len(CITYSCAPES_CLASSES)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CITYSCAPES_CLASSES)
TRAIN_ID = {c.name: c.train_id for c in CITYSCAPES_CLASSES}

# Cityscapes label ids run from 0 to 33 (-1 = license plate is stored as 255 in PNGs is not used).
# Ids in that range that have no train id (unlabeled, ego vehicle, ground, ...) map to ignore;
# ids above it are not part of the table at all and are counted as invalid by the loaders.
MAX_LABEL_ID = 33


def palette(ignore_color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """A 256x3 uint8 lookup table: train id -> RGB colour (everything else -> ignore_color)."""
    lut = np.tile(np.array(ignore_color, np.uint8), (256, 1))
    for c in CITYSCAPES_CLASSES:
        lut[c.train_id] = c.color
    return lut


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """HxW train ids -> HxWx3 RGB image in the Cityscapes palette."""
    return palette()[train_ids]


def label_id_to_train_id_lut() -> np.ndarray:
    """A 256-entry lookup table from Cityscapes label ids to train ids (255 = ignore)."""
    lut = np.full(256, IGNORE_ID, np.uint8)
    for c in CITYSCAPES_CLASSES:
        lut[c.label_id] = c.train_id
    return lut


def train_id_to_label_id_lut() -> np.ndarray:
    """A 256-entry lookup table from train ids to Cityscapes label ids (ignore -> 0 'unlabeled')."""
    lut = np.zeros(256, np.uint8)
    for c in CITYSCAPES_CLASSES:
        lut[c.train_id] = c.label_id
    return lut


def label_ids_to_train_ids(label_ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Map label ids to train ids; returns (train ids, number of pixels whose id is not in the table)."""
    label_ids = np.asarray(label_ids)
    out_of_table = int(np.count_nonzero(label_ids > MAX_LABEL_ID))
    return label_id_to_train_id_lut()[label_ids.astype(np.uint8, copy=False)], out_of_table


def sanitize_train_ids(train_ids: np.ndarray, num_classes: int = NUM_CLASSES) -> tuple[np.ndarray, int]:
    """Set train ids outside [0, num_classes) (other than 255) to 255; returns (ids, count replaced)."""
    train_ids = np.asarray(train_ids)
    bad = (train_ids >= num_classes) & (train_ids != IGNORE_ID)
    count = int(np.count_nonzero(bad))
    if count:
        train_ids = train_ids.copy()
        train_ids[bad] = IGNORE_ID
    return train_ids.astype(np.uint8, copy=False), count
