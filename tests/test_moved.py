"""Renamed and split modules: every old import path (and the `_target_`s saved run configs
hold) still resolves for one release, to the same object, with a DeprecationWarning that
names the new home."""
from __future__ import annotations

import importlib

import pytest
from hydra.utils import get_object

import t2i.pretrained as pretrained

MOVED = [
    ("t2i.data.captions", "CaptionDataModule", "t2i.data.caption_datamodule"),
    ("t2i.data.captions", "CaptionSampler", "t2i.data.caption_dataset"),
    ("t2i.data.captions", "ShapesCaptionsDataModule", "t2i.data.synthetic.shapes_captions"),
    ("t2i.data.caption_files", "decode_part", "t2i.data.caption_file_reader"),
    ("t2i.data.captioned_folder", "CaptionedFolder", "t2i.data.any_folder"),
    ("t2i.data.birds_flowers", "CUBCaptions", "t2i.data.cub"),
    ("t2i.data.birds_flowers", "FlowersCaptions", "t2i.data.flowers"),
    ("t2i.data.birds_flowers", "seeded_class_split", "t2i.data.reed_captions"),
    ("t2i.checks", "read_checkpoint", "t2i.checkpoint_checks"),
    ("t2i.checks", "check_config", "t2i.value_checks"),
    ("t2i.config_check", "check_keys", "t2i.unknown_keys"),
    ("t2i.config_check", "drop_retired", "t2i.retired_options"),
    ("t2i.generator", "ImageGenerator", "t2i.image_generator"),
    ("t2i.evaluation.generators", "score_generator", "t2i.evaluation.image_evaluation"),
]


@pytest.mark.parametrize("old, name, new", MOVED)
def test_an_old_path_resolves_with_a_deprecation_warning(old, name, new):
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} moved to {new}\.{name}"):
        found = getattr(importlib.import_module(old), name)
    assert found is getattr(importlib.import_module(new), name)


@pytest.mark.parametrize("target", ["t2i.data.birds_flowers.CUBCaptions", "t2i.data.birds_flowers.FlowersCaptions",
                                    "t2i.data.captions.ShapesCaptionsDataModule",
                                    "t2i.data.captioned_folder.CaptionedFolder"])
def test_a_saved_run_configs_old_target_still_builds(target):
    with pytest.warns(DeprecationWarning):
        assert get_object(target).__name__ == target.rsplit(".", 1)[-1]


def test_the_exported_generators_old_name():
    with pytest.warns(DeprecationWarning, match="ExportedGenerator"):
        assert pretrained.Generator is pretrained.ExportedGenerator


def test_an_unknown_name_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        importlib.import_module("t2i.data.captions").nope
