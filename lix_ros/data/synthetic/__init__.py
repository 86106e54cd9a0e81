"""Procedural RGB-D-LiDAR driving scenes, deterministic per seed, with Cityscapes train-id labels.

The scenes exist to make geometry matter (the LIX setting): classes that share colour and texture but
differ in shape or height are made ambiguous in RGB and left clear in depth.

* road, sidewalk and terrain often share one material; they differ by a curb a few cm high;
* cars are often painted in the road's grey and lit like it;
* walls are often grey concrete that fog turns into the colour of the sky, which has no depth.

World frame: x right, y up, z along the road. The camera's optical frame is x right, y down, z forward;
the LiDAR's frame is x forward, y left, z up (REP 103). Every surface is a planar convex polygon, so a
frame is rendered by a z-buffer over polygons: for a plane, inverse depth is affine in pixel
coordinates, so each polygon costs one `cv2.fillConvexPoly` and one affine evaluation over its box.
The LiDAR is ray-cast from its own mount (with parallax to the camera) through the same renderer.

Seeds select a family: train [0, 1e6), val [1e6, 2e6), test [2e6, 3e6). The test family has its own
weather (denser fog, dusk light) and layout (wider roads, more traffic, other camera heights).
"""

from lix_ros.data.synthetic.families import FAMILIES, SPLIT_FAMILY, FamilyConfig, LidarConfig, family_of, split_seeds
from lix_ros.data.synthetic.render import Frame, drive, render, render_frame
from lix_ros.data.synthetic.scene import Scene, scene_tables
from lix_ros.data.synthetic.street import generate_scene

__all__ = ["FAMILIES", "SPLIT_FAMILY", "FamilyConfig", "Frame", "LidarConfig", "Scene", "drive", "family_of",
           "generate_scene", "render", "render_frame", "scene_tables", "split_seeds"]
