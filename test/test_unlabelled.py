"""Distillation on unlabelled frames (data.unlabelled): labels withheld, the teacher's argmax in their place."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lix_ros.data.classes import IGNORE_ID
from lix_ros.data.synthetic.families import SPLIT_FAMILY, split_seeds, split_size
from lix_training.config import ConfigError, load_config

TEACHER = "lix_ros/checkpoints/teacher_depth_small.pt"
DISTILL = f"distill={{teacher: {TEACHER}, methods: [{{name: lix_channel, weight: 1.0}}]}}"


def test_splits_of_one_family_never_share_a_seed():
    ranges = {split: (family, split_seeds(split, 1)[0], split_seeds(split, split_size(split))[-1])
              for split, (family, _) in SPLIT_FAMILY.items()}
    with pytest.raises(ValueError, match="has only"):
        split_seeds("train", split_size("train") + 1)
    for a, (family_a, first_a, last_a) in ranges.items():
        for b, (family_b, first_b, last_b) in ranges.items():
            if a < b and family_a == family_b:
                assert last_a < first_b or last_b < first_a, (a, b, ranges[a], ranges[b])
    assert ranges["unlabelled"][0] == "train" and ranges["train"][2] < ranges["unlabelled"][1]


def test_unlabelled_needs_a_teacher_synthetic_frames_and_no_mix():
    with pytest.raises(ConfigError, match="needs a teacher"):
        load_config(None, ["data.unlabelled.count=4"])
    with pytest.raises(ConfigError, match="for the synthetic source"):
        load_config(None, ["data.unlabelled.count=4", "data.source=kitti", "data.root=/x", DISTILL])
    with pytest.raises(ConfigError, match="cannot be combined"):
        load_config(None, ["data.unlabelled.count=4", "data.mix.root=a.mcap", DISTILL])
    for bad, message in (("data.unlabelled.share=1", r"share must be a number in \(0, 1\)"),
                         ("data.unlabelled.count=-1", "count must be an integer >= 0")):
        with pytest.raises(ConfigError, match=message):
            load_config(None, [bad, DISTILL])
    assert load_config(None, ["data.unlabelled.count=4", DISTILL])["data"]["unlabelled"] == {"count": 4, "share": 0.5}


def test_teacher_labels_replace_only_the_withheld_ones():
    from lix_training.trainer import with_teacher_labels

    torch.manual_seed(0)
    label = torch.randint(0, 5, (3, 8, 16))
    label[0, 0] = IGNORE_ID
    teacher = torch.randn(3, 5, 8, 16)
    labelled = torch.tensor([True, False, True])
    out = with_teacher_labels(label, labelled, teacher)
    assert torch.equal(out[[0, 2]], label[[0, 2]])  # ignore pixels of a labelled frame stay ignored
    assert torch.equal(out[1], teacher[1].argmax(0))
    coarse = torch.randn(3, 5, 4, 8)  # logits at another size: upsampled to the labels' size first
    expected = F.interpolate(coarse, size=(8, 16), mode="bilinear", align_corners=False).argmax(1)
    assert torch.equal(with_teacher_labels(label, labelled, coarse)[1], expected[1])
    assert with_teacher_labels(label, torch.ones(3, dtype=torch.bool), teacher) is label


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unlabelled")
    return load_config(None, ["model.preset=tiny", "model.kind=student", f"data.cache_dir={tmp / 'cache'}",
                              "data.render_size=[64, 128]", "data.crop_size=[48, 96]", "data.train_count=4",
                              "data.val_count=2", "data.unlabelled.count=3", "data.unlabelled.share=0.25",
                              "batch_size=8", "steps=2", "val_every=1000", "threads=1", f"out_dir={tmp / 'run'}",
                              DISTILL])


def test_batches_carry_unlabelled_frames_without_their_labels(tiny_config):
    from lix_training.data import open_split, open_unlabelled

    frames = open_unlabelled(tiny_config["data"], quiet=True)
    assert len(frames) == 3 and not frames.labelled
    rendered = open_split({**tiny_config["data"], "train_count": 3}, "train", quiet=True)
    for i in range(3):
        assert (frames[i].label == IGNORE_ID).all()  # withheld, although the renderer wrote them
        assert frames.source[i].label is not None and (frames.source[i].label != IGNORE_ID).any()
        assert not np.array_equal(frames[i].rgb, rendered[i].rgb)  # other scenes than the training frames

    from lix_training.trainer import Trainer

    trainer = Trainer(tiny_config, quiet=True)
    batch = trainer.batches[0]
    assert batch["labelled"].tolist() == [False, False] + [True] * 6  # round(0.25 * 8) unlabelled first
    assert (batch["label"][:2] == IGNORE_ID).all() and (batch["label"][2:] != IGNORE_ID).any()


def test_a_withheld_frame_is_trained_on_the_teachers_labels(tiny_config):
    """train_step's cross-entropy on a batch marked unlabelled is cross-entropy against the teacher's argmax, not
    against the labels the batch carries."""
    from lix_training.trainer import Trainer, _step_seed, supervised_loss

    trainer = Trainer(tiny_config, quiet=True)
    batch = trainer.batches[0]
    batch["labelled"][:] = False
    with torch.no_grad():
        teacher = trainer.teacher(batch["rgb"], batch[f"x:{trainer.teacher_modality}"])["logits"]
        pseudo = teacher.argmax(1)
        trainer.model.train()
        torch.manual_seed(_step_seed(tiny_config["seed"], 0, 0))
        logits = trainer.model(batch["rgb"], None)["logits"]
        expected = supervised_loss(logits, pseudo, torch.tensor(float(pseudo.numel())))
        ground_truth = supervised_loss(logits, batch["label"], (batch["label"] != IGNORE_ID).sum().float())
    result = trainer.train_step(0, batch)
    assert result["loss_ce"] == pytest.approx(float(expected), rel=1e-4)
    assert abs(float(ground_truth) - float(expected)) > 1e-2  # the check tells the two label sources apart


def test_finetuning_a_run_with_unlabelled_frames_mixes_in_only_the_bags(tmp_path):
    import argparse

    from lix_training.finetune import finetune_config

    trained = load_config(None, ["data.unlabelled.count=2000", DISTILL])
    args = argparse.Namespace(mix=0.5, lr=None, steps=10, run_dir=tmp_path / "ft", threads=0)
    config = finetune_config({"training": {"config": trained}}, "student.pt", ["hard.mcap"], args)
    assert config["data"]["mix"] == {"root": ["hard.mcap"], "share": 0.5}
    assert config["data"]["unlabelled"]["count"] == 0
