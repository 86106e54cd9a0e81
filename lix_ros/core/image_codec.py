"""sensor_msgs/Image and CompressedImage <-> numpy, without ROS (no cv_bridge needed).

Functions take the message's fields (or any object with them) so the node stays thin and this module
is tested without DDS. Every rejection raises ImageError with a message that names what was wrong.
"""

from __future__ import annotations

import cv2
import numpy as np

COLOR_ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}
DEPTH_ENCODINGS = {"32FC1": np.dtype("<f4"), "16UC1": np.dtype("<u2")}
MAX_PIXELS = 4096 * 4096  # larger frames are rejected (8000x8000 would stall inference for seconds)


class ImageError(ValueError):
    """A frame that cannot be used; the message says why."""


def _check_geometry(height: int, width: int, step: int, data_len: int, bytes_per_pixel: int, encoding: str) -> None:
    if height <= 0 or width <= 0:
        raise ImageError(f"zero-size image ({width}x{height})")
    if height * width > MAX_PIXELS:
        raise ImageError(f"image {width}x{height} exceeds the {MAX_PIXELS} pixel limit")
    row = width * bytes_per_pixel
    if step < row:
        raise ImageError(f"step {step} is smaller than a row of {width} {encoding} pixels ({row} bytes)")
    if data_len < height * step:
        raise ImageError(f"data holds {data_len} bytes, fewer than height*step = {height}*{step} = {height * step}")


def _rows(data, height: int, width: int, step: int, dtype: np.dtype, channels: int) -> np.ndarray:
    buffer = np.frombuffer(memoryview(data), dtype=np.uint8, count=height * step)
    rows = buffer.reshape(height, step)[:, : width * channels * dtype.itemsize]
    return np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels) if channels > 1 else \
        np.ascontiguousarray(rows).view(dtype).reshape(height, width)


def decode_color(encoding: str, height: int, width: int, step: int, data, is_bigendian: int = 0) -> np.ndarray:
    """Image fields -> HxWx3 uint8 RGB. Accepts rgb8, bgr8, mono8, rgba8, bgra8."""
    if encoding not in COLOR_ENCODINGS:
        kind = "depth/16-bit/float" if encoding in DEPTH_ENCODINGS or "16" in encoding or "32" in encoding else \
            "unsupported"
        raise ImageError(f"{kind} encoding {encoding!r} for a camera image; expected one of "
                         f"{sorted(COLOR_ENCODINGS)}")
    channels = COLOR_ENCODINGS[encoding]
    _check_geometry(height, width, step, len(data), channels, encoding)
    pixels = _rows(data, height, width, step, np.dtype(np.uint8), channels)
    if encoding == "rgb8":
        return pixels
    if encoding == "bgr8":
        return np.ascontiguousarray(pixels[..., ::-1])
    if encoding == "mono8":
        return np.repeat(pixels[..., None], 3, axis=2)
    if encoding == "rgba8":
        return np.ascontiguousarray(pixels[..., :3])
    return np.ascontiguousarray(pixels[..., 2::-1])  # bgra8


def decode_compressed(fmt: str, data) -> np.ndarray:
    """CompressedImage (jpeg/png) -> HxWx3 uint8 RGB."""
    raw = np.frombuffer(memoryview(data), dtype=np.uint8)
    if raw.size == 0:
        raise ImageError("empty compressed image")
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"could not decode compressed image (format {fmt!r}, {raw.size} bytes)")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError(f"image {image.shape[1]}x{image.shape[0]} exceeds the {MAX_PIXELS} pixel limit")
    return np.ascontiguousarray(image[..., ::-1])


def decode_depth(encoding: str, height: int, width: int, step: int, data, is_bigendian: int = 0
                 ) -> tuple[np.ndarray, int]:
    """Depth image -> (HxW float32 metres, 0 = unknown; number of invalid pixels: NaN, inf, negative).

    32FC1 is metres; 16UC1 is millimetres (0 = no measurement), as in REP 118.
    """
    if encoding not in DEPTH_ENCODINGS:
        raise ImageError(f"depth encoding {encoding!r}; expected 32FC1 (metres) or 16UC1 (millimetres)")
    dtype = DEPTH_ENCODINGS[encoding].newbyteorder(">" if is_bigendian else "<")
    _check_geometry(height, width, step, len(data), dtype.itemsize, encoding)
    values = _rows(data, height, width, step, dtype, 1).astype(np.float32)
    if encoding == "16UC1":
        return values / 1000.0, 0
    bad = ~np.isfinite(values) | (values < 0)
    invalid = int(np.count_nonzero(bad))
    values[bad] = 0.0
    return values, invalid


def encode_mono8(ids: np.ndarray) -> tuple[int, int, str, int, bytes]:
    """HxW uint8 -> (height, width, encoding, step, data)."""
    ids = np.ascontiguousarray(ids, dtype=np.uint8)
    return ids.shape[0], ids.shape[1], "mono8", ids.shape[1], ids.tobytes()


def encode_rgb8(rgb: np.ndarray) -> tuple[int, int, str, int, bytes]:
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    return rgb.shape[0], rgb.shape[1], "rgb8", rgb.shape[1] * 3, rgb.tobytes()

