"""Training configuration: YAML (safe_load) merged over defaults, with `--set a.b=value` overrides."""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path

import yaml

from lix_ros.core.constants import (
    CAMERA,
    CAMERA_INFO,
    DATA_CACHE_DIR,
    DEPTH,
    GT,
    LIDAR_BEAMS,
    POINTS,
    RENDER_SIZE,
    TEACHER_OUT,
)

DEFAULTS: dict = {
    "seed": 0,
    "out_dir": "runs/default",
    "model": {"kind": "student", "preset": "small"},
    "data": {
        "source": "synthetic",  # synthetic | cityscapes | kitti | vkitti2 | bag
        "root": None,  # data set folder (cityscapes, kitti, vkitti2) or bag path(s) (bag)
        "cache_dir": DATA_CACHE_DIR,  # where synthetic frames are rendered once (Cityscapes layout)
        "train_count": 600,
        "val_count": 60,
        "test_count": 200,  # the shifted family (other weather and layout)
        "test_in_count": 200,  # unseen scenes of the training family
        "render_size": list(RENDER_SIZE),  # height, width of synthetic frames
        "crop_size": [128, 256],
        "scale_range": [0.75, 1.25],
        "flip": True,
        "lidar_beams": LIDAR_BEAMS,
        # Frames are resized to this [height, width] on load for training; it is the size the node runs the model
        # at (the checkpoint's input_size) and the size validation and lix-eval feed the model. null = the native
        # size of the training frames. Crops (crop_size) are taken from frames of this size.
        "frame_size": None,
        "val_fraction": 0.1,  # held out of train when a data set has no val split (kitti, bag, cityscapes w/o val/)
        "workers": 2,  # DataLoader processes decoding frames (0 = in the training process)
        # Decode the train and val frames once into memory (same batches; steps skip PNG decoding). For data sets
        # that fit: 1000 frames of 160x320 with depth take ~0.4 GB.
        "preload": False,
        # Virtual KITTI 2: scenes per split (val: [] = val_fraction of the train scenes), variations, camera.
        # Fine-tuning: frames of these bags (their train portion) fill `share` of every batch (lix-finetune).
        "mix": {"root": None, "share": 0.5},
        # Distillation on unlabelled frames (synthetic source): `count` more scenes of the training family whose
        # labels are withheld fill `share` of every batch; the teacher labels them as it sees them (its argmax is
        # their label for cross-entropy and for the distillation terms). Needs distill.teacher.
        "unlabelled": {"count": 0, "share": 0.5},
        # Bags (source: bag): topic names; frames without `labels` use the teacher's mask (lix-bag label) if any.
        "topics": {"camera": CAMERA, "camera_info": CAMERA_INFO, "depth": DEPTH, "points": POINTS, "labels": GT,
                   "teacher": TEACHER_OUT},
        "vkitti2": {"scenes": {"train": ["Scene01", "Scene02", "Scene06", "Scene18"], "val": [], "test": ["Scene20"]},
                    "variations": ["clone"], "camera": 0},
    },
    "optim": {"name": "adamw", "lr": 2e-3, "weight_decay": 1e-4, "momentum": 0.9, "poly_power": 0.9,
              "warmup_steps": 50, "grad_clip": 5.0},
    "steps": 1000,
    "batch_size": 8,  # global batch (split across DDP ranks)
    "val_every": 250,
    "log_every": 10,
    "checkpoint_every": 100,
    "amp": True,  # used on CUDA only
    "threads": 0,  # torch intra-op threads (0 = torch default)
    "distill": None,  # distillation section (teacher checkpoint + methods), see docs/distillation.md
    "aux_depth": None,  # {weight: w}: auxiliary inverse-depth head on the student (privileged multi-task)
    "init_from": None,  # checkpoint whose weights start the run (fine-tuning), same architecture
}


DATA_SOURCES = ("synthetic", "cityscapes", "kitti", "vkitti2", "bag")


class _Loader(yaml.SafeLoader):
    """safe_load, except that 1e-4 and 2e-05 are floats (YAML 1.2, JSON and Python agree; PyYAML's YAML 1.1
    rule wants a dot and would hand `--set optim.lr=1e-4` to the optimiser as the string '1e-4')."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_yaml(text: str):
    """YAML text as Python values, safely (no object construction), numbers in exponent form as floats."""
    return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader: no object construction


class ConfigError(ValueError):
    pass


def unknown_key(where: str, key: str, known) -> ConfigError:
    """'unknown key' naming the closest known key and listing the others."""
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown config key {where!r}{hint}; known keys here: {', '.join(sorted(known))}")


def _merge(base: dict, override: dict, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        where = f"{path}{key}"
        if key not in base:
            raise unknown_key(where, key, base)
        if isinstance(base[key], dict) and isinstance(value, dict) and key not in ("model", "distill", "aux_depth"):
            out[key] = _merge(base[key], value, f"{where}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def override_keys(text: str) -> list[str]:
    """The key path of a `key.sub=value` override: ["key", "sub"]."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    return text.partition("=")[0].strip().split(".")


def _parse_override(text: str) -> tuple[list[str], object]:
    return override_keys(text), parse_yaml(text.partition("=")[2])


def _deep_update(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _deep_update(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) \
            else copy.deepcopy(value)
    return out


def read_config_file(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A training YAML as a mapping; `base: other.yaml` (relative to this file) is read first and this
    file's keys are merged over it, so a config states only what differs from its base."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    try:
        data = parse_yaml(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    base = data.pop("base", None)
    if base is None:
        return data
    return _deep_update(read_config_file(path.parent / base, (*_seen, path.resolve())), data)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    data = read_config_file(path) if path is not None else {}
    return apply_overrides(_merge(DEFAULTS, data), overrides or [])


def apply_overrides(config: dict, overrides: list[str]) -> dict:
    """`config` (a full config, changed in place) with `key.sub=value` overrides applied, then validated."""
    for text in overrides:
        keys, value = _parse_override(text)
        node = config
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                raise ConfigError(f"override {text!r}: {key!r} is not a section")
            node = node[key]
        if keys[-1] not in node and node is not config["model"] and node is not config.get("distill") \
                and node is not config.get("aux_depth"):
            raise unknown_key(".".join(keys), keys[-1], node)
        node[keys[-1]] = value
    _validate(config)
    return config


def data_with_overrides(data: dict, overrides: list[str]) -> dict:
    """A data section (e.g. the one a checkpoint was trained on) with `data.key=value` overrides on top,
    checked like a config's; any other key is an error, not silently ignored."""
    for text in overrides:
        if not text.strip().startswith("data."):
            raise ConfigError(f"override {text!r}: only data.* keys apply here (e.g. data.cache_dir=/path)")
    config = copy.deepcopy(DEFAULTS)
    config["data"] = _merge(DEFAULTS["data"], data, "data.")
    return apply_overrides(config, overrides)["data"]


def _validate(config: dict) -> None:
    for key in ("steps", "batch_size", "val_every", "log_every", "checkpoint_every"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ConfigError(f"{key} must be a positive integer, got {config[key]!r}")
    data = config["data"]
    if data["source"] not in DATA_SOURCES:
        raise ConfigError(f"data.source must be one of {', '.join(DATA_SOURCES)}; got {data['source']!r}")
    if data["source"] != "synthetic" and not data["root"]:
        raise ConfigError(f"data.source {data['source']!r} needs data.root (the data set folder or bag path)")
    if not isinstance(data["val_fraction"], (int, float)) or not 0 < data["val_fraction"] < 1:
        raise ConfigError(f"data.val_fraction must be a number between 0 and 1, got {data['val_fraction']!r}")
    if not isinstance(data["workers"], int) or data["workers"] < 0:
        raise ConfigError(f"data.workers must be an integer >= 0, got {data['workers']!r}")
    if not isinstance(data["preload"], bool):
        raise ConfigError(f"data.preload must be true or false, got {data['preload']!r}")
    share = data["mix"]["share"]
    if not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ConfigError(f"data.mix.share must be a number in (0, 1], got {share!r}")
    unlabelled = data["unlabelled"]
    if isinstance(unlabelled["count"], bool) or not isinstance(unlabelled["count"], int) or unlabelled["count"] < 0:
        raise ConfigError(f"data.unlabelled.count must be an integer >= 0, got {unlabelled['count']!r}")
    if not isinstance(unlabelled["share"], (int, float)) or not 0 < unlabelled["share"] < 1:
        raise ConfigError(f"data.unlabelled.share must be a number in (0, 1), got {unlabelled['share']!r}")
    if unlabelled["count"]:
        if data["source"] != "synthetic":
            raise ConfigError("data.unlabelled is for the synthetic source; label other data with the teacher "
                              "(`lix-bag label`) and mix it in (data.mix)")
        if not (config.get("distill") or {}).get("teacher"):
            raise ConfigError("data.unlabelled needs a teacher to label its frames (distill.teacher)")
        if data["mix"]["root"]:
            raise ConfigError("data.unlabelled and data.mix cannot be combined: both fill part of every batch")
    for key in ("frame_size", "crop_size", "render_size"):
        value = data[key]
        if value is None and key == "frame_size":
            continue
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
            raise ConfigError(f"data.{key} must be [height, width] in pixels, got {value!r}")
    optim = config["optim"]
    if optim["name"] not in ("adamw", "sgd"):
        raise ConfigError(f"optim.name must be adamw or sgd, got {optim['name']!r}")
    for key in ("lr", "weight_decay", "momentum", "poly_power", "grad_clip"):
        if isinstance(optim[key], bool) or not isinstance(optim[key], (int, float)) or optim[key] < 0:
            raise ConfigError(f"optim.{key} must be a number >= 0, got {optim[key]!r}")
    if not optim["lr"] > 0:
        raise ConfigError(f"optim.lr must be > 0, got {optim['lr']!r}")
    if isinstance(optim["warmup_steps"], bool) or not isinstance(optim["warmup_steps"], int) \
            or optim["warmup_steps"] < 0:
        raise ConfigError(f"optim.warmup_steps must be an integer >= 0, got {optim['warmup_steps']!r}")
