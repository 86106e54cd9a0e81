"""Property-based fuzz of the ROS-free decoders the nodes are made of: whatever the fields and bytes, a
decoder returns a well-formed array or raises its own error type naming what is wrong — never another
exception, never a wrong-sized result."""

from types import SimpleNamespace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lix_ros.core.image_codec import ImageError, decode_color, decode_compressed, decode_depth
from lix_ros.core.pointcloud import PointCloudError, read_xyz
from lix_ros.core.teacher_inputs import camera_intrinsics

ENCODINGS = ["rgb8", "bgr8", "mono8", "rgba8", "bgra8", "16UC1", "32FC1", "mono16", "yuv422", "", "RGB8", "8UC3"]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def image_fields(draw):
    height = draw(st.integers(-2, 40))
    width = draw(st.integers(-2, 40))
    encoding = draw(st.sampled_from(ENCODINGS))
    channel_bytes = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4, "16UC1": 2, "32FC1": 4}.get(encoding, 1)
    step = draw(st.one_of(st.just(max(width, 0) * channel_bytes), st.integers(-4, 200)))
    size = draw(st.one_of(st.just(max(height, 0) * max(step, 0)), st.integers(0, 5000)))
    fill = draw(st.sampled_from(["zeros", "random", "nan"]))
    if fill == "nan" and encoding == "32FC1":
        data = np.full(size // 4 + 1, np.nan, np.float32).tobytes()[:size]
    elif fill == "random":
        data = np.random.default_rng(size).integers(0, 256, size, np.uint8).tobytes()
    else:
        data = bytes(size)
    return encoding, height, width, step, data, draw(st.integers(0, 1))


@FUZZ
@given(image_fields())
def test_decode_color_returns_the_image_or_an_image_error(fields):
    encoding, height, width, step, data, bigendian = fields
    try:
        rgb = decode_color(encoding, height, width, step, data, bigendian)
    except ImageError as error:
        assert str(error)
        return
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8


@FUZZ
@given(image_fields())
def test_decode_depth_returns_finite_metres_or_an_image_error(fields):
    encoding, height, width, step, data, bigendian = fields
    try:
        depth, invalid = decode_depth(encoding, height, width, step, data, bigendian)
    except ImageError as error:
        assert str(error)
        return
    assert depth.shape == (height, width) and depth.dtype == np.float32
    assert np.isfinite(depth).all() and (depth >= 0).all() and 0 <= invalid <= height * width


@FUZZ
@given(st.sampled_from(["jpeg", "png", "", "bmp", "rgb8; jpeg compressed bgr8"]), st.binary(max_size=600))
def test_decode_compressed_returns_rgb_or_an_image_error(fmt, data):
    try:
        rgb = decode_compressed(fmt, data)
    except ImageError as error:
        assert str(error)
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3


@st.composite
def cloud_fields(draw):
    names = draw(st.lists(st.sampled_from(["x", "y", "z", "intensity", "ring"]), max_size=5, unique=True))
    fields = [SimpleNamespace(name=n, offset=draw(st.integers(0, 20)), datatype=draw(st.integers(0, 9)), count=1)
              for n in names]
    height, width = draw(st.integers(0, 3)), draw(st.integers(0, 20))
    point_step = draw(st.integers(-1, 24))
    row_step = draw(st.one_of(st.just(width * max(point_step, 0)), st.integers(-1, 400)))
    size = draw(st.one_of(st.just(height * max(row_step, 0)), st.integers(0, 800)))
    values = draw(st.sampled_from([0.0, np.nan, np.inf, 1.5]))
    data = np.full(size // 4 + 1, values, np.float32).tobytes()[:size]
    return fields, height, width, point_step, row_step, data, draw(st.booleans())


@FUZZ
@given(cloud_fields())
def test_read_xyz_returns_finite_points_or_a_point_cloud_error(fields):
    try:
        xyz = read_xyz(*fields)
    except PointCloudError as error:
        assert str(error)
        return
    assert xyz.ndim == 2 and xyz.shape[1] == 3 and np.isfinite(xyz).all()


@FUZZ
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=9, max_size=9),
       st.integers(0, 4000), st.integers(0, 4000), st.integers(1, 4000), st.integers(1, 4000))
def test_camera_info_gives_usable_intrinsics_or_an_image_error(k, info_w, info_h, image_w, image_h):
    info = SimpleNamespace(k=k, width=info_w, height=info_h)
    try:
        K = camera_intrinsics(info, image_w, image_h)
    except ImageError as error:
        assert str(error)
        return
    assert K.shape == (3, 3) and K[0, 0] > 0 and K[1, 1] > 0
