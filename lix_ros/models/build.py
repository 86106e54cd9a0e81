"""Build any model from a config: kind (student/teacher), preset (tiny/small/base), fusion, modality."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from torch import nn

from lix_ros.data.classes import NUM_CLASSES
from lix_ros.data.sample import MODALITY_CHANNELS, check_modality
from lix_ros.models.layers import NORMS
from lix_ros.models.segmentation import IntermediateFusionTeacher, LateFusionTeacher, StudentNet

# widths of the four stages, blocks per stage, decoder channels
PRESETS: dict[str, dict] = {
    "tiny": {"widths": (8, 16, 24, 32), "depths": (1, 1, 1, 1), "decoder_channels": 16},  # tests
    "small": {"widths": (16, 32, 64, 96), "depths": (1, 1, 2, 1), "decoder_channels": 48},  # default, CPU
    "base": {"widths": (64, 128, 256, 512), "depths": (2, 2, 2, 2), "decoder_channels": 128},  # GPU
}
FUSIONS = ("intermediate", "late")


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "student"  # student | teacher
    preset: str = "small"
    num_classes: int = NUM_CLASSES
    modality: str | None = None  # teachers: depth | disparity | normals | lidar
    fusion: str = "intermediate"  # teachers: intermediate | late
    width_multiplier: float = 1.0
    norm: str = "group"
    dropout: float = 0.1  # before the classifier

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys {sorted(unknown)}; expected {sorted(known)}")
        config = cls(**data)
        config.validate()
        return config

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        if self.kind not in ("student", "teacher"):
            raise ValueError(f"model kind must be 'student' or 'teacher', got {self.kind!r}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; expected one of {sorted(PRESETS)}")
        if self.kind == "teacher":
            if self.modality is None:
                raise ValueError("a teacher needs a modality (depth, disparity, normals or lidar)")
            check_modality(self.modality)
            if self.fusion not in FUSIONS:
                raise ValueError(f"unknown fusion {self.fusion!r}; expected one of {FUSIONS}")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; expected one of {NORMS}")
        if not 0 < self.width_multiplier <= 8:
            raise ValueError(f"width_multiplier must be in (0, 8], got {self.width_multiplier}")

    @property
    def modalities(self) -> list[str]:
        return ["rgb"] if self.kind == "student" else ["rgb", self.modality]


def build_model(config: ModelConfig | dict) -> nn.Module:
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    config.validate()
    preset = PRESETS[config.preset]
    widths = tuple(max(4, round(w * config.width_multiplier / 4) * 4) for w in preset["widths"])
    decoder = max(8, round(preset["decoder_channels"] * config.width_multiplier / 4) * 4)
    if config.kind == "student":
        return StudentNet(widths, preset["depths"], decoder, config.num_classes, config.norm, config.dropout)
    cls = IntermediateFusionTeacher if config.fusion == "intermediate" else LateFusionTeacher
    return cls(widths, preset["depths"], decoder, config.num_classes, MODALITY_CHANNELS[config.modality], config.norm,
               config.dropout)
