"""Data sets as users bring them: Virtual KITTI 2 layout, lazy splits, held-out val, frame size, lix-eval defaults."""

import json
import pickle

import cv2
import numpy as np
import pytest
import torch
from processes import run_module, run_python

from lix_ros.data.classes import IGNORE_ID, TRAIN_ID
from lix_ros.data.sample import DataError
from lix_ros.data.vkitti2 import DEFAULT_COLORS, VirtualKitti2Dataset
from lix_training.config import ConfigError, load_config
from lix_training.data import StepBatches, hold_out, open_split, step_loader

H, W = 40, 96


def write_vkitti2(root, scene="Scene01", variation="clone", frames=3, colors_file=True):
    """A Virtual KITTI 2 scene as the release lays it out: left half Road, right half Car, top rows Sky (far)."""
    base = root / scene / variation
    for folder in ("rgb", "depth", "classSegmentation"):
        (base / "frames" / folder / "Camera_0").mkdir(parents=True, exist_ok=True)
    classes = np.zeros((H, W, 3), np.uint8)
    classes[:, : W // 2] = DEFAULT_COLORS["Road"]
    classes[:, W // 2:] = DEFAULT_COLORS["Car"]
    classes[:4] = DEFAULT_COLORS["Sky"]
    classes[4, :3] = (1, 2, 3)  # a colour no class has
    depth = np.full((H, W), 1234, np.uint16)  # 12.34 m
    depth[:4] = 65535  # sky: saturated
    rows = ["frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]"]
    for frame in range(frames):
        rgb = np.full((H, W, 3), 20 * frame % 256, np.uint8)
        cv2.imwrite(str(base / "frames" / "rgb" / "Camera_0" / f"rgb_{frame:05d}.jpg"), rgb)
        cv2.imwrite(str(base / "frames" / "depth" / "Camera_0" / f"depth_{frame:05d}.png"), depth)
        cv2.imwrite(str(base / "frames" / "classSegmentation" / "Camera_0" / f"classgt_{frame:05d}.png"),
                    classes[..., ::-1])
        rows += [f"{frame} 0 725.0087 725.0087 620.5 187.0", f"{frame} 1 725.0087 725.0087 620.5 187.0"]
    (base / "intrinsic.txt").write_text("\n".join(rows) + "\n")
    if colors_file:
        (base / "colors.txt").write_text("Category r g b\n" + "".join(
            f"{name} {r} {g} {b}\n" for name, (r, g, b) in DEFAULT_COLORS.items()))
    return base


def test_vkitti2_classes_depth_and_intrinsics(tmp_path):
    write_vkitti2(tmp_path, frames=2)
    dataset = VirtualKitti2Dataset(tmp_path, ["Scene01"], ["clone"])
    assert len(dataset) == 2
    sample = dataset[1]
    assert sample.rgb.shape == (H, W, 3) and sample.name == "Scene01_clone_00001"
    assert (sample.label[10:, : W // 2] == TRAIN_ID["road"]).all()
    assert (sample.label[10:, W // 2:] == TRAIN_ID["car"]).all()
    assert (sample.label[:4] == TRAIN_ID["sky"]).all()
    assert (sample.label[4, :3] == IGNORE_ID).all() and dataset.invalid_label_pixels == 3
    assert sample.depth[10, 10] == pytest.approx(12.34) and (sample.depth[:4] == 0).all()  # sky = unknown
    assert sample.K[0, 0] == pytest.approx(725.0087) and sample.K[0, 2] == pytest.approx(620.5)


def test_vkitti2_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        VirtualKitti2Dataset(tmp_path / "nope", ["Scene01"], ["clone"])
    base = write_vkitti2(tmp_path, frames=1)
    with pytest.raises(DataError, match=r"Scene02/clone.*expected"):
        VirtualKitti2Dataset(tmp_path, ["Scene02"], ["clone"])
    (base / "colors.txt").write_text("Category r g b\nSpaceship 1 2 3\n")
    with pytest.raises(DataError, match="Spaceship"):
        VirtualKitti2Dataset(tmp_path, ["Scene01"], ["clone"])[0]
    (base / "colors.txt").unlink()  # the release's table is used when colors.txt is absent
    assert (VirtualKitti2Dataset(tmp_path, ["Scene01"], ["clone"])[0].label[20, 2] == TRAIN_ID["road"])
    (base / "intrinsic.txt").write_text("frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]\n7 0 1 1 1 1\n")
    with pytest.raises(DataError, match="no row for frame 0 camera 0"):
        VirtualKitti2Dataset(tmp_path, ["Scene01"], ["clone"])[0]
    (base / "intrinsic.txt").write_text("frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]\n0 0 725.0 725.0 620.5\n")
    with pytest.raises(DataError, match=r"intrinsic.txt line 2: expected 'frame cameraID fx fy cx cy'"):
        VirtualKitti2Dataset(tmp_path, ["Scene01"], ["clone"])[0]
    (base / "intrinsic.txt").write_text("frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]\n0 0 725.0 725.0 620.5 187.0\n")
    (base / "colors.txt").write_text("Category r g b\nRoad 100 60\n")
    with pytest.raises(DataError, match=r"colors.txt line 2: expected 'Category r g b', got 'Road 100 60'"):
        VirtualKitti2Dataset(tmp_path, ["Scene01"], ["clone"])[0]


def test_vkitti2_splits_by_scene_with_val_held_out(tmp_path):
    write_vkitti2(tmp_path, "Scene01", frames=10)
    write_vkitti2(tmp_path, "Scene20", frames=4)
    data = load_config(None, ["data.source=vkitti2", f"data.root={tmp_path}",
                              "data.vkitti2.scenes={train: [Scene01], test: [Scene20]}"])["data"]
    train, val, test = (open_split(data, s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (9, 1, 4)
    assert not {train[i].name for i in range(len(train))} & {val[0].name}
    assert "val_fraction" in val.description and test[0].name.startswith("Scene20")


def test_held_out_fraction_and_bad_values():
    kept, held = hold_out(30, 0.2)
    assert held == [0, 5, 10, 15, 20, 25] and not set(kept) & set(held) and len(kept) + len(held) == 30
    assert hold_out(3, 0.1) == ([0, 1, 2], [0, 1, 2])  # too few to hold out: validate on what there is
    for bad in ("data.val_fraction=1.5", "data.workers=-1", "data.frame_size=[64]", "data.source=nuscenes"):
        with pytest.raises(ConfigError, match=bad.split("=")[0].split(".")[-1]):
            load_config(None, [bad])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return load_config(None, [f"data.cache_dir={cache}", "data.render_size=[48, 96]", "data.train_count=12",
                              "data.val_count=3", "data.crop_size=[32, 64]"])["data"]


def test_a_split_holds_paths_not_pixels(synthetic):
    split = open_split(synthetic, "train")
    assert len(split) == 12 and split[0].rgb.shape == (48, 96, 3)
    # What a DataLoader worker receives: the split without any decoded frame.
    assert len(pickle.dumps(split)) < 4000


def test_loader_workers_yield_the_batches_of_the_in_process_loader(synthetic):
    from lix_ros.data.augment import Augment

    batches = StepBatches(open_split(synthetic, "train"), 4, 3, Augment((32, 64), (0.75, 1.25), True), [None, "depth"])
    inline = list(step_loader(batches, 5, 9, workers=0))
    parallel = list(step_loader(batches, 5, 9, workers=2))
    assert len(inline) == len(parallel) == 4
    for a, b in zip(inline, parallel):
        assert a.keys() == b.keys() == {"rgb", "label", "x:depth"}
        assert all(torch.equal(a[k], b[k]) for k in a)


def train(out, *overrides):
    args = [a for o in overrides for a in ("--set", o)]
    return run_module("lix_training.cli", "--quiet", "--out", str(out), *args)


def test_frame_size_is_the_checkpoint_input_size_and_eval_uses_the_training_data(synthetic, tmp_path):
    base = [f"data.cache_dir={synthetic['cache_dir']}", "data.render_size=[48, 96]", "data.train_count=12",
            "data.val_count=3", "data.crop_size=[16, 32]", "model.preset=tiny", "steps=2", "threads=1",
            "data.workers=0"]
    for name, extra in (("a", ["data.frame_size=[24, 48]"]), ("b", [])):
        result = train(tmp_path / name / "run", *base, *extra)
        assert result.returncode == 0, result.stderr
    a = torch.load(tmp_path / "a" / "run" / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "run" / "final.pt", weights_only=True)
    assert a["input_size"] == [24, 48]  # the chosen frame size, not the 16x32 crop
    assert b["input_size"] == [48, 96]  # native frame size
    # Two checkpoints named final.pt in folders named run: distinct rows, distinct plots; the data is the
    # checkpoints' own (3 val frames of the 48x96 family), not the synthetic defaults.
    out = tmp_path / "eval"
    result = run_module("lix_training.evaluate", str(tmp_path / "a" / "run" / "final.pt"),
                        str(tmp_path / "b" / "run" / "final.pt"), "--split", "val", "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["name"] for m in metrics] == ["a/run/final", "b/run/final"]
    assert all(m["frames"] == 3 and m["data"] == "synthetic val family" for m in metrics)
    assert metrics[0]["input_size"] == [24, 48]
    assert "on synthetic val family (3 frames, input 24x48" in result.stdout
    assert {p.name for p in out.glob("confusion_*.png")} == {"confusion_a_run_final.png", "confusion_b_run_final.png"}
    # --set changes one data key on top of each checkpoint's own data (still its 3 val frames of the 48x96
    # family), not on top of the synthetic defaults (60 frames at 160x320); a key outside data is refused.
    result = run_module("lix_training.evaluate", str(tmp_path / "a" / "run" / "final.pt"), "--split", "val", "--set",
                        "data.workers=0", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["frames"] == 3
    result = run_module("lix_training.evaluate", str(tmp_path / "a" / "run" / "final.pt"), "--split", "val", "--set",
                        "steps=3", "--out", str(out))
    assert result.returncode != 0
    assert result.stderr.strip() == ("lix-eval: error: override 'steps=3': only data.* keys apply here "
                                     "(e.g. data.cache_dir=/path)")


def test_preloaded_frames_train_the_same_weights(synthetic, tmp_path):
    """data.preload decodes train and val once (here by 2 workers, resized to frame_size): the run is
    bit-identical to one decoding every step in process."""
    base = [f"data.cache_dir={synthetic['cache_dir']}", "data.render_size=[48, 96]", "data.train_count=12",
            "data.val_count=3", "data.crop_size=[16, 32]", "data.frame_size=[24, 48]", "model.preset=tiny",
            "steps=3", "val_every=3", "threads=1"]
    for name, extra in (("lazy", ["data.workers=0"]), ("preload", ["data.preload=true", "data.workers=2"])):
        result = train(tmp_path / name, *base, *extra)
        assert result.returncode == 0, result.stderr
    lazy, loaded = (torch.load(tmp_path / n / "final.pt", weights_only=True) for n in ("lazy", "preload"))
    assert lazy["state_dict"].keys() == loaded["state_dict"].keys()
    assert all(torch.equal(lazy["state_dict"][k], loaded["state_dict"][k]) for k in lazy["state_dict"])
    assert lazy["training"]["best_val_miou"] == loaded["training"]["best_val_miou"]
    with pytest.raises(ConfigError, match=r"data\.preload must be true or false"):
        load_config(None, ["data.preload=1"])


def test_loader_workers_do_not_hang_after_the_parent_used_opencv_threads(synthetic):
    """A parallel cv2 call in the parent before the workers fork used to hang the first worker (OpenCV's pool)."""
    script = f"""
import cv2, numpy as np
cv2.resize(np.zeros((2048, 4096, 3), np.uint8), (1024, 512))  # starts OpenCV's thread pool in the parent
from lix_training.config import load_config
from lix_training.data import open_split, sample_loader
frames = open_split(load_config(None, ["data.cache_dir={synthetic['cache_dir']}", "data.render_size=[48, 96]",
                                       "data.val_count=3"])["data"], "val")
frames.frame_size = (512, 1024)  # large enough for cv2.resize to go parallel in the workers
print(sum(1 for _ in sample_loader(frames, 2)))
"""
    result = run_python("-c", script, timeout=90)  # a hang fails with the workers' parent's stacks
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"
