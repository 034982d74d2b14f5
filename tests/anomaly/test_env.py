"""The environment helper: every value parsed, every bad value refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomaly.env import Env, EnvError


def test_it_treats_missing_and_blank_values_as_unset():
    env = Env({"BLANK": "   ", "EMPTY": ""})

    assert env.raw("MISSING") is None
    assert env.raw("BLANK") is None
    assert env.raw("EMPTY") is None


def test_it_strips_surrounding_whitespace():
    assert Env({"NAME": "  value \n"}).raw("NAME") == "value"


def test_it_reads_a_string_or_falls_back_to_the_default():
    env = Env({"NAME": "value", "BLANK": " "})

    assert env.str("NAME") == "value"
    assert env.str("NAME", "other") == "value"
    assert env.str("MISSING") is None
    assert env.str("MISSING", "fallback") == "fallback"
    assert env.str("BLANK", "fallback") == "fallback"


@pytest.mark.parametrize("value", ["1", "true", "True", "TRUE", "yes", "on", " On "])
def test_it_reads_true_values(value):
    assert Env({"FLAG": value}).bool("FLAG", default=False) is True


@pytest.mark.parametrize("value", ["0", "false", "False", "no", "off", "OFF"])
def test_it_reads_false_values(value):
    assert Env({"FLAG": value}).bool("FLAG", default=True) is False


@pytest.mark.parametrize("default", [True, False])
def test_it_uses_the_bool_default_when_unset(default):
    assert Env({}).bool("FLAG", default=default) is default
    assert Env({"FLAG": ""}).bool("FLAG", default=default) is default


@pytest.mark.parametrize("value", ["2", "y", "enabled", "tru", "-1", "none"])
def test_it_refuses_a_bool_it_cannot_read(value):
    with pytest.raises(EnvError, match=r"^FLAG=") as excinfo:
        Env({"FLAG": value}).bool("FLAG", default=False)
    assert repr(value) in str(excinfo.value)
    assert "true/false" in str(excinfo.value)


def test_it_reads_an_integer():
    env = Env({"PORT": "8080", "NEGATIVE": "-3"})

    assert env.int("PORT", 8000) == 8080
    assert env.int("NEGATIVE", 0) == -3
    assert env.int("MISSING", 8000) == 8000


@pytest.mark.parametrize("value", ["eighty", "80.0", "1e3", "0x10", "8 0"])
def test_it_refuses_an_integer_it_cannot_read(value):
    with pytest.raises(EnvError, match=r"^PORT=.*expected an integer"):
        Env({"PORT": value}).int("PORT", 8000)


def test_it_enforces_integer_bounds_inclusively():
    env = Env({"LOW": "1", "HIGH": "10"})

    assert env.int("LOW", 5, minimum=1) == 1
    assert env.int("HIGH", 5, maximum=10) == 10
    with pytest.raises(EnvError, match=r"^LOW=1: must be at least 2"):
        env.int("LOW", 5, minimum=2)
    with pytest.raises(EnvError, match=r"^HIGH=10: must be at most 9"):
        env.int("HIGH", 5, maximum=9)


def test_it_reads_a_float():
    env = Env({"RATE": "0.25", "WHOLE": "3"})

    assert env.float("RATE", 0.05) == 0.25
    assert env.float("WHOLE", 0.05) == 3.0
    assert env.float("MISSING", 0.05) == 0.05


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e400"])
def test_it_refuses_a_float_that_is_not_finite(value):
    with pytest.raises(EnvError, match=r"^RATE=.*expected a finite number"):
        Env({"RATE": value}).float("RATE", 0.05)


@pytest.mark.parametrize("value", ["five percent", "0,25", "1/4"])
def test_it_refuses_a_float_it_cannot_read(value):
    with pytest.raises(EnvError, match=r"^RATE=.*expected a number"):
        Env({"RATE": value}).float("RATE", 0.05)


def test_it_enforces_float_bounds():
    env = Env({"RATE": "0.6"})

    assert env.float("RATE", 0.05, minimum=0.6, maximum=0.6) == 0.6
    with pytest.raises(EnvError, match=r"^RATE=0.6: must be at most 0.5"):
        env.float("RATE", 0.05, maximum=0.5)
    with pytest.raises(EnvError, match=r"^RATE=0.6: must be at least 0.7"):
        env.float("RATE", 0.05, minimum=0.7)


def test_it_splits_a_comma_separated_list_and_drops_empty_items():
    env = Env({"HOSTS": " a.example , b.example,,  ,c.example "})

    assert env.list("HOSTS", []) == ["a.example", "b.example", "c.example"]


def test_it_returns_a_copy_of_the_list_default():
    default = ["localhost"]
    hosts = Env({}).list("HOSTS", default)

    hosts.append("evil.example")

    assert default == ["localhost"]


def test_it_reads_one_of_the_allowed_choices():
    env = Env({"MODE": "production"})

    assert env.choice("MODE", "local", ("local", "production")) == "production"
    assert env.choice("MISSING", "local", ("local", "production")) == "local"


@pytest.mark.parametrize("value", ["prod", "Production", "local,production"])
def test_it_refuses_a_value_outside_the_choices(value):
    with pytest.raises(EnvError, match=r"^MODE=.*expected one of local, production$"):
        Env({"MODE": value}).choice("MODE", "local", ("local", "production"))


def test_it_reads_a_path_as_absolute(tmp_path):
    env = Env({"DIR": str(tmp_path / "sub" / ".." / "artifacts")})

    assert env.path("DIR", Path("/unused")) == tmp_path / "artifacts"


def test_it_expands_the_home_directory_in_a_path():
    path = Env({"DIR": "~/artifacts"}).path("DIR", Path("/unused"))

    assert path.is_absolute()
    assert path == Path.home().resolve() / "artifacts"


def test_it_uses_the_path_default_when_unset():
    default = Path("/srv/artifacts")

    assert Env({}).path("DIR", default) == default
