"""copmodel config files and --set values are type- and range-checked at load,
and YAML alias expansion is bounded (issue 19, item 12). Oracle: a one-line
ConfigError naming the field, before any model is built."""

import time

import pytest

from copmodel.errors import ConfigError
from copmodel.presets import load_config


def test_a_yaml_1_1_string_number_is_read_as_the_number(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("preset: micro\ntrain:\n  lr: 3e-4\n  batch_size: '2'\n")
    cfg = load_config(str(cfg_file))
    assert cfg.train.lr == 3e-4 and isinstance(cfg.train.lr, float) and cfg.train.batch_size == 2


@pytest.mark.parametrize("setting,field", [
    ("net.heads=0", "net.heads"), ("train.batch_size=-3", "train.batch_size"),
    ("audio.sample_rate=0", "audio.sample_rate"), ("net.dim=4000000", "net.dim"),
    ("train.lr=nan", "train.lr"), ("train.lr=0", "train.lr"), ("net.heads=3", "net.heads"),
    ("sample.steps=0", "sample.steps")])
def test_out_of_range_values_are_config_errors(setting, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config("micro", [setting])


@pytest.mark.parametrize("body,match", [
    ("train:\n  lr: [1, 2]\n", "train.lr takes a float"),
    ("train:\n  max_steps: true\n", "train.max_steps takes a int"),
    ("net: 5\n", "net must be a mapping"),
    ("net:\n  dim: 4000000\n", "net.dim")])
def test_wrong_types_in_a_file_are_config_errors(tmp_path, body, match):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("preset: micro\n" + body)
    with pytest.raises(ConfigError, match=match):
        load_config(str(cfg_file))


def test_an_alias_bomb_is_refused_before_expansion(tmp_path):
    # 10^8 leaves once expanded: printing or walking it takes minutes
    levels = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    cfg_file = tmp_path / "bomb.yaml"
    cfg_file.write_text("preset: micro\nname: [" + ", ".join(levels) + "]\n"
                        "sample:\n  guidance: *a8\n")
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="YAML aliases"):
        load_config(str(cfg_file))
    print(f"refused in {time.perf_counter() - started:.3f} s")  # a figure, not an assertion
