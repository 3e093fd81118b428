"""Everything a user types: command-line options and config files are validated before anything runs.

Each bad input is one line on stderr and exit status 2; a property test throws random option values
and random config files at the parser and the loader and finds no crash and no silent acceptance.
"""

import argparse
import json
import math
import re
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from a3c.cli import build_model, build_parser, main
from a3c.config import Config, read_config_file
from a3c.errors import A3CError, ConfigError
from a3c.presets import build_config
from tests.unit.test_config import keeps_documented_constraints

FIELDS = {f.name: f for f in fields(Config) if f.name != "env_id"}


def train_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["train", *argv])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("a3c: error:"), err
    return err


# --- config files ---------------------------------------------------------------------------------

def test_a_json_config_file_sits_between_the_preset_and_the_command_line(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"env_id": "CartPole-v1", "lr": 3e-4, "n_steps": 7,
                                "hidden_sizes": [32, 16], "max_restarts": 5}))
    cfg = build_model(train_args("--config", str(path), "--n-steps", "9", "--quiet")).config
    assert (cfg.env_id, cfg.lr, cfg.hidden_sizes, cfg.max_restarts) == ("CartPole-v1", 3e-4, (32, 16), 5)
    assert cfg.n_steps == 9  # the command line wins
    assert cfg.gamma == build_config("CartPole-v1").gamma  # the preset fills the rest


def test_a_toml_config_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('env_id = "CartPole-v1"\nalgo = "a2c"\nn_envs = 2\ntotal_steps = 1000\n'
                    'hidden_sizes = [8]\nobs_norm = true\n')
    model = build_model(train_args("Acrobot-v1", "--config", str(path), "--quiet"))
    assert (model.config.env_id, model.config.algo, model.config.n_envs) == ("Acrobot-v1", "a2c", 2)
    assert model.config.obs_norm is True and model.config.hidden_sizes == (8,)


def test_none_in_a_toml_file_is_what_none_is_on_the_command_line(tmp_path):
    # TOML has no null: target_return = "none" is the file's --target-return none.
    path = tmp_path / "run.toml"
    path.write_text('target_return = "none"\nmax_seconds = "None"\n')
    assert read_config_file(path) == {"target_return": None, "max_seconds": None}
    assert build_config("CartPole-v1", **read_config_file(path)).target_return is None
    path.write_text('target_return = "never"\n')
    with pytest.raises(ConfigError, match=re.escape("target_return must be float | None, got 'never'")):
        read_config_file(path)


BAD_FILES = {
    "bad.json": ('{"lr": 0.1, "bogus": 1}', "unknown option(s) 'bogus'"),
    "type.json": ('{"n_steps": "20"}', "n_steps must be int"),
    "bool.json": ('{"workers": true}', "workers must be int"),
    "width.json": ('{"hidden_sizes": 64}', "hidden_sizes must be"),
    "nan.json": ('{"lr": NaN}', "lr must be a finite number"),
    "twice.json": ('{"lr": 0.1, "lr": 0.2}', "duplicate key(s) lr"),
    "list.json": ("[1, 2]", "must hold a table of options"),
    "syntax.json": ('{"lr": 0.1,', "is not valid JSON"),
    "syntax.toml": ("lr = ", "is not valid TOML"),
    "twice.toml": ("lr = 0.1\nlr = 0.2\n", "is not valid TOML"),
    "range.toml": ("gamma = 1.5\n", "gamma must be in [0, 1]"),
    "config.yaml": ("lr: 0.1\n", "expected a .json or .toml file"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_config_files_are_one_line_naming_the_file_and_exit_status_2(tmp_path, capsys, name):
    text, words = BAD_FILES[name]
    path = tmp_path / name
    path.write_text(text)
    assert main(["train", "CartPole-v1", "--config", str(path), "--run-dir", str(tmp_path / "r")]) == 2
    error = one_line_error(capsys)
    assert words in error
    if name != "range.toml":  # range errors come from the whole config, and name the field
        assert str(path) in error
    assert not (tmp_path / "r").exists()  # nothing ran


def test_missing_unreadable_and_binary_config_files(tmp_path, capsys):
    directory = tmp_path / "dir.json"
    directory.mkdir()
    for path, words in ((tmp_path / "none.json", "cannot read config file"),
                        (directory, "cannot read config file")):
        assert main(["train", "CartPole-v1", "--config", str(path)]) == 2
        assert words in one_line_error(capsys)
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"\xff\xfe\x00lr = 1")
    assert main(["train", "CartPole-v1", "--config", str(binary)]) == 2
    assert "is not UTF-8 text" in one_line_error(capsys)


def test_without_an_env_id_anywhere(capsys):
    assert main(["train", "--quiet"]) == 2
    assert "name an env id" in one_line_error(capsys)


# --- properties -----------------------------------------------------------------------------------

SMALL = ("hidden_sizes", "core_size")  # sizes of the network built here: kept small
TEXT = st.one_of(
    st.sampled_from(["0", "1", "-1", "2", "0.5", "1e-3", "-0.0", "nan", "NaN", "inf", "-inf", "1e999",
                     "none", "None", "", " ", "true", "abc", "64,64", "8,0", "8,-8", "3.0", "0x10",
                     "2147483647", "2147483648", "1_000", "\n", "--lr"]),
    st.integers(-5, 10**6).map(str), st.floats().map(repr), st.text(max_size=6),
)


def _option(name: str) -> st.SearchStrategy[list[str]]:
    flag = "--" + name.replace("_", "-")
    f = FIELDS[name]
    if f.type == "bool":
        return st.sampled_from([[flag], ["--no-" + flag[2:]]])
    if name in SMALL:
        value = st.one_of(st.integers(-2, 16).map(str), st.sampled_from(["8,8", "4,0", "x", "", "16 8"]))
    elif "choices" in f.metadata:
        value = st.one_of(st.sampled_from(f.metadata["choices"]), TEXT)
    else:
        value = TEXT
    return value.map(lambda v: [flag, v])


ARGV = st.lists(st.sampled_from(sorted(FIELDS)).flatmap(_option), max_size=5).map(
    lambda options: [token for option in options for token in option])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ARGV)
@example(["--preset", "none"])  # was read as None, and the preset then chosen from the env id
@example(["--policy-sizes", "2147483647"])  # a layer of 2**31 units: an error, not a huge allocation
def test_random_command_lines_give_one_line_errors_or_exactly_what_was_typed(argv):
    try:
        args = train_args("CartPole-v1", "--quiet", *argv)
    except SystemExit as exc:  # argparse: one line, status 2 (see _Parser.error)
        assert exc.code == 2
        return
    try:
        model = build_model(args)
    except A3CError as exc:
        assert "\n" not in str(exc)
        return
    cfg = model.config
    keeps_documented_constraints(cfg)
    typed = {k: v for k, v in vars(args).items() if k in FIELDS}
    for name, value in typed.items():  # nothing typed was changed or dropped on the way
        got = getattr(cfg, name)
        assert got == value or (isinstance(value, float) and math.isnan(value) and math.isnan(got)), name


JSON_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(),
                       st.text(max_size=8), st.lists(st.integers(-3, 10**6), max_size=3),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
KEYS = st.one_of(st.sampled_from(["env_id", "preset", *sorted(FIELDS)]), st.text(max_size=8))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, JSON_VALUE, max_size=6))
@example({"workers": 2**32})  # was accepted, and the workers' env seeds would pass numpy's 2**32
@example({"env_kwargs": {"": 0}})  # an argument the env does not take: an EnvError naming it
def test_random_config_files_give_a_one_line_error_or_exactly_their_values(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "run.json"
    path.write_text(json.dumps(data))  # NaN and Infinity included, as JSON readers accept them
    try:
        values = read_config_file(path)
        cfg = build_config("CartPole-v1", **values)
    except A3CError as exc:  # ConfigError, or an EnvError for env_kwargs the env does not take
        assert "\n" not in str(exc)
        return
    keeps_documented_constraints(cfg)
    for name, value in data.items():
        if name == "preset" and value is None:
            continue  # none: the env's own preset, as on the command line
        expected = tuple(value) if name in FIELDS and FIELDS[name].type.startswith("tuple[") else value
        if name in FIELDS and FIELDS[name].type == "float | None" and str(value).lower() == "none":
            expected = None  # as --target-return none on the command line
        assert getattr(cfg, name) == expected, name
