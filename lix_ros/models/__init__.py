"""Segmentation networks shared by training and the nodes (plain PyTorch, no torchvision)."""

from lix_ros.models.build import PRESETS, ModelConfig, build_model

__all__ = ["PRESETS", "ModelConfig", "build_model"]
