
import cv2
from processes import run_module


def run(*args):
    return run_module("lix_ros.cli.data", *args)


def test_preview_writes_a_mosaic(tmp_path):
    out = tmp_path / "preview.png"
    result = run("preview", "--count", "2", "--width", "128", "--height", "64", "--out", str(out))
    assert result.returncode == 0, result.stderr
    image = cv2.imread(str(out))
    assert image.shape == (22 + 2 * 64, 5 * 128, 3)


def test_export_then_preview_cityscapes(tmp_path):
    result = run("export", "--out", str(tmp_path), "--split", "val", "--count", "2", "--width", "96", "--height", "48")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "leftImg8bit" / "val").glob("*/*.png"))) == 2
    result = run("preview", "--cityscapes", str(tmp_path), "--split", "val", "--out", str(tmp_path / "p.png"))
    assert result.returncode == 0, result.stderr


def test_bad_folder_is_one_line_and_nonzero(tmp_path):
    result = run("preview", "--kitti", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lix-data: error:") and "image_2" in lines[0]
    assert "Traceback" not in result.stderr
