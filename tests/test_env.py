"""a2dkit._env: one offline check, one dtype table, one choice check for every layer."""

import pytest
import torch

from a2dkit import _env


@pytest.mark.parametrize("flag", _env.OFFLINE_FLAGS)
@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_any_offline_flag_set_on_means_offline(monkeypatch, flag, value):
    for name in _env.OFFLINE_FLAGS:
        monkeypatch.delenv(name, raising=False)
    assert not _env.hub_offline()  # control: nothing set, online
    monkeypatch.setenv(flag, value)
    assert _env.hub_offline()


@pytest.mark.parametrize("value", ["0", "false", "", "no", "off"])
def test_flags_set_off_mean_online(monkeypatch, value):
    for name in _env.OFFLINE_FLAGS:
        monkeypatch.setenv(name, value)
    assert not _env.hub_offline()


def test_the_dtype_table_and_its_errors():
    assert _env.torch_dtype("float64") is torch.float64 and _env.torch_dtype("auto") == "auto"
    assert set(_env.MODEL_DTYPES) == set(_env.DTYPES) - {"float64"}
    with pytest.raises(ValueError, match=r"dtype='float8' is not supported; use one of \['auto'"):
        _env.torch_dtype("float8")
    with pytest.raises(ValueError, match=r"dtype='float64'.*'float16'\]"):
        _env.torch_dtype("float64", choices=_env.MODEL_DTYPES)


def test_check_choice_names_the_option_the_value_and_the_choices():
    _env.check_choice("norm_type", "token", ("token", "batch"))  # control: a valid choice passes
    with pytest.raises(ValueError, match=r"norm_type='row' is not valid; choose one of \['token'"):
        _env.check_choice("norm_type", "row", ("token", "batch"))


def test_the_cache_dir_follows_a2dkit_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("A2DKIT_CACHE", str(tmp_path / "c"))
    assert _env.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
