import pytest

from omniseg.errors import ConfigError
from omniseg.registry import Registry


def test_register_get_and_meta():
    reg = Registry("thing")

    @reg.register("alpha", task="semantic")
    def alpha():
        return 1

    assert reg.get("alpha") is alpha
    assert reg.meta("alpha") == {"task": "semantic"}
    assert "alpha" in reg and len(reg) == 1 and reg.names() == ["alpha"]


def test_duplicate_name_is_an_error():
    reg = Registry("thing")
    reg.add("alpha", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("alpha", 2)
    assert reg.get("alpha") == 1


def test_unknown_name_lists_close_matches():
    reg = Registry("model")
    for name in ("unet", "unetplusplus", "segnet"):
        reg.add(name, name)
    with pytest.raises(ConfigError, match="did you mean 'unet'") as info:
        reg.get("unett")
    assert "Known: segnet, unet, unetplusplus" in str(info.value)
