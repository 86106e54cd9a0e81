"""The ROS-free parts the nodes are made of: image codecs, stamp pairing, the frame slot, point clouds."""

import threading
from types import SimpleNamespace

import numpy as np
import pytest

from lix_ros.core.frame_slot import LatestFrameSlot
from lix_ros.core.image_codec import ImageError, decode_color, decode_compressed, decode_depth, encode_mono8
from lix_ros.core.pairing import ApproximateTimePairer, ExactTimePairer
from lix_ros.core.pointcloud import PointCloudError, pack_xyzi, read_xyz


def test_decode_color_encodings_and_padding():
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    padded = np.zeros((4, 20), np.uint8)
    padded[:, :15] = rgb.reshape(4, 15)
    np.testing.assert_array_equal(decode_color("rgb8", 4, 5, 20, padded.tobytes()), rgb)
    np.testing.assert_array_equal(decode_color("bgr8", 4, 5, 15, rgb[..., ::-1].copy().tobytes()), rgb)
    mono = decode_color("mono8", 4, 5, 5, rgb[..., 0].copy().tobytes())
    assert mono.shape == (4, 5, 3) and (mono[..., 1] == rgb[..., 0]).all()


@pytest.mark.parametrize(("fields", "message"), [
    (("16UC1", 4, 4, 8, bytes(32)), "depth/16-bit/float encoding '16UC1'"),
    (("yuv422", 4, 4, 8, bytes(32)), "unsupported encoding"),
    (("rgb8", 4, 4, 11, bytes(64)), "step 11 is smaller than a row"),
    (("rgb8", 4, 4, 12, bytes(40)), "fewer than height\\*step"),
    (("rgb8", 0, 4, 12, b""), "zero-size"),
    (("rgb8", 8000, 8000, 24000, b""), "pixel limit"),
])
def test_decode_color_rejections(fields, message):
    with pytest.raises(ImageError, match=message):
        decode_color(*fields)


def test_decode_depth_units_and_invalid_values():
    mm = np.array([[1000, 0], [2500, 65535]], np.uint16)
    depth, invalid = decode_depth("16UC1", 2, 2, 4, mm.tobytes())
    np.testing.assert_allclose(depth, [[1.0, 0.0], [2.5, 65.535]])
    metres = np.array([[1.5, np.nan], [-2.0, np.inf]], np.float32)
    depth, invalid = decode_depth("32FC1", 2, 2, 8, metres.tobytes())
    assert invalid == 3 and depth.tolist() == [[1.5, 0.0], [0.0, 0.0]]
    big_endian = metres.astype(">f4")
    assert decode_depth("32FC1", 2, 2, 8, big_endian.tobytes(), is_bigendian=1)[0][0, 0] == 1.5
    with pytest.raises(ImageError, match="expected 32FC1"):
        decode_depth("rgb8", 2, 2, 6, bytes(12))


def test_compressed_and_mono8_encode():
    import cv2

    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    png = cv2.imencode(".png", rgb[..., ::-1])[1].tobytes()
    np.testing.assert_array_equal(decode_compressed("png", png), rgb)
    with pytest.raises(ImageError, match="could not decode"):
        decode_compressed("jpeg", b"not a jpeg")
    assert encode_mono8(np.ones((2, 3), np.uint8))[:4] == (2, 3, "mono8", 3)


def test_approximate_pairing_matches_within_slop_and_drops_the_rest():
    got = []
    pairer = ApproximateTimePairer(3, queue_size=5, slop=0.01, callback=lambda *items: got.append(items))
    pairer.add(0, 1.000, "img1")
    pairer.add(1, 1.004, "depth1")
    assert not got
    pairer.add(2, 0.998, "info1")
    assert got == [("img1", "depth1", "info1")]
    pairer.add(0, 2.0, "img2")  # its depth never comes
    pairer.add(0, 3.0, "img3")
    pairer.add(1, 3.002, "depth3")
    pairer.add(2, 3.001, "info3")
    assert got[-1] == ("img3", "depth3", "info3")
    assert pairer.dropped >= 1 and pairer.matched == 2


def test_approximate_pairing_bounded_queue():
    pairer = ApproximateTimePairer(2, queue_size=3, slop=0.01)
    for i in range(100):
        pairer.add(0, float(i), i)  # the other stream is silent
    assert len(pairer.queues[0]) == 3 and pairer.dropped == 97


def test_exact_pairing():
    pairer = ExactTimePairer(queue_size=2)
    assert pairer.add(0, "a", 1) is None
    assert pairer.add(1, "a", 2) == (1, 2)
    for key in "bcd":
        pairer.add(1, key, 0)
    assert pairer.dropped == 1 and pairer.add(0, "b", 5) is None  # "b" aged out
    assert pairer.add(0, "d", 7) == (7, 0)


def test_frame_slot_keeps_newest_and_counts_drops():
    slot = LatestFrameSlot()
    for i in range(5):
        slot.put(i)
    assert slot.take(0.1) == 4 and slot.dropped == 4 and slot.received == 5
    assert slot.take(0.01) is None
    results = []
    worker = threading.Thread(target=lambda: results.append(slot.take(2.0)))
    worker.start()
    slot.put("late")
    worker.join()
    assert results == ["late"]


def test_point_cloud_round_trip_and_errors():
    points = np.array([[1, 2, 3, 0.5], [4, 5, 6, 0.1], [np.nan, 0, 0, 0]], np.float32)
    fields, step, data = pack_xyzi(points)
    fields = [SimpleNamespace(name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields]
    xyz = read_xyz(fields, 1, 3, step, 3 * step, data)
    np.testing.assert_array_equal(xyz, points[:2, :3])  # NaN point dropped
    with pytest.raises(PointCloudError, match="empty"):
        read_xyz(fields, 1, 0, step, 0, b"")
    with pytest.raises(PointCloudError, match="no field"):
        read_xyz(fields[2:], 1, 3, step, 3 * step, data)
    with pytest.raises(PointCloudError, match="expected height\\*row_step"):
        read_xyz(fields, 1, 3, step, 3 * step, data[:20])
    with pytest.raises(PointCloudError, match="malformed"):
        read_xyz(fields, 1, 3, 0, 0, data)
    with pytest.raises(PointCloudError, match="overruns point_step 4"):
        read_xyz(fields, 1, 3, 4, 12, data)


def test_counters_hold_warn_and_skip_stamps_from_another_clock():
    from lix_ros.core.node_counters import InferenceCounters

    now = [100.0]
    counters = InferenceCounters(warn_hold_s=10.0, clock=lambda: now[0])
    counters.record(0.02, 0.05)
    counters.record(0.02, 95_314_531.5)  # a 2023 stamp replayed without sim time: not a latency
    ok, _, values = counters.report()
    assert ok and values["end_to_end_ms_median"] == pytest.approx(50.0) and values["stamps_not_comparable"] == 1
    counters.reject(ValueError("bad frame"))
    now[0] += 9.0
    ok, message, values = counters.report()
    assert not ok and "1 frames rejected so far" in message and values["frames_rejected"] == 1
    now[0] += 2.0  # past the hold time: OK again, the running total stays
    ok, message, values = counters.report()
    assert ok and message == "ok" and values["frames_rejected"] == 1
    only_foreign = InferenceCounters()
    only_foreign.record(0.02, -5_000.0)
    assert only_foreign.report()[2]["end_to_end_ms_median"].startswith("n/a (no camera stamp on this node's clock)")
