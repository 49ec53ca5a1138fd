import pytest

from omniseg.config import RunConfig, apply_overrides, load_config, save_config, to_dict
from omniseg.errors import ConfigError


def test_yaml_round_trip(tmp_path):
    config = apply_overrides(RunConfig(), ["optim.lr=0.02", "data.scale_range=[0.8, 1.2]", "model.kwargs.depth=3"])
    save_config(config, tmp_path / "c.yaml")
    loaded = load_config(tmp_path / "c.yaml")
    assert loaded == config
    assert loaded.data.scale_range == (0.8, 1.2) and loaded.model.kwargs == {"depth": 3}


def test_partial_yaml_keeps_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  epochs: 3\n")
    config = load_config(tmp_path / "c.yaml")
    assert config.train.epochs == 3 and config.optim.lr == RunConfig().optim.lr


def test_override_types_are_checked():
    assert apply_overrides(RunConfig(), ["train.time_budget=null"]).train.time_budget is None
    assert apply_overrides(RunConfig(), ["optim.lr=1"]).optim.lr == 1.0  # int widens to float
    assert apply_overrides(RunConfig(), ["optim.lr=5e-3"]).optim.lr == 0.005  # YAML 1.1 reads this as text
    with pytest.raises(ConfigError, match="optim.lr"):
        apply_overrides(RunConfig(), ["optim.lr=fast"])
    with pytest.raises(ConfigError, match="needs an integer"):
        apply_overrides(RunConfig(), ["data.batch_size=many"])
    with pytest.raises(ConfigError, match="'train.epochs': 'many' matches none of int | None"):
        apply_overrides(RunConfig(), ["train.epochs=many"])
    assert apply_overrides(RunConfig(), ["data.mean=[0.5]"]).data.mean == (0.5,)  # one value per channel, any count
    with pytest.raises(ConfigError, match="did you mean epochs"):
        apply_overrides(RunConfig(), ["train.epoch=3"])
    with pytest.raises(ConfigError, match="not of the form"):
        apply_overrides(RunConfig(), ["train.epochs"])
    with pytest.raises(ConfigError, match="unknown config key 'nope'"):
        apply_overrides(RunConfig(), ["nope.x=1"])


def test_to_dict_is_plain():
    values = to_dict(RunConfig())
    assert values["data"]["mean"] == [0.485, 0.456, 0.406]
    assert isinstance(values["data"]["scale_range"], list)
