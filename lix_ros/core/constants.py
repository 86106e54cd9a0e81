"""Names and numbers shared across the package, defined once (ROS-free).

Topics are the absolute defaults of a root-namespace bring-up; the nodes themselves use the relative
names (`image`, `lix/semantic`, ...) so that namespaces and remappings apply.
"""

from __future__ import annotations

# ------------------------------------------------------------------ topics
CAMERA = "/camera/image_raw"
CAMERA_INFO = "/camera/camera_info"
DEPTH = "/camera/depth"
POINTS = "/lidar/points"
GT = "/lix/gt/semantic"  # ground truth in synthetic bags (mono8 train ids)
STUDENT_OUT = "/lix/semantic"
TEACHER_OUT = "/lix/teacher/semantic"
AB_OUT = "/lix/ab/agreement"
DIAGNOSTICS = "/diagnostics"
TF_STATIC = "/tf_static"

# ------------------------------------------------------------------ synthetic data
RENDER_SIZE = (160, 320)  # height, width of the rendered training frames
LIDAR_BEAMS = 32
TEST_FAMILY_SEED = 2_000_000  # first seed of the shifted (held-out) test family
DATA_CACHE_DIR = "data/cache"  # where synthetic frames are rendered once
STEREO_BASELINE_M = 0.22  # used to turn depth into disparity when a data set has no stereo baseline
