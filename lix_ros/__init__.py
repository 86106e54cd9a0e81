"""lix_ros: camera-only semantic segmentation distilled from an RGB + geometry teacher."""

__version__ = "0.1.0"
