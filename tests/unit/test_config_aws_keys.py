"""AWS access keys in the settings: ferrymq.toml tables and FERRYMQ_AWS_ACCESS_KEYS parse into typed
keys; a bad entry is one error line that names it and never shows a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ferrymq.cli import app
from ferrymq.config import AwsAccessKey, load_settings


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ferrymq.toml"
    path.write_text(text)
    return path


def test_no_keys_are_configured_by_default() -> None:
    assert load_settings(env={}).aws_access_keys == []


def test_toml_aws_access_keys_tables_parse_with_vhost_defaulting_to_root(tmp_path: Path) -> None:
    path = toml(tmp_path, '[[aws.access_keys]]\nid = "AKIA1"\nsecret = "s:e,c/r+et"\nuser = "guest"\n'
                          '[[aws.access_keys]]\nid = "AKIA2"\nsecret = "x"\nuser = "bob"\nvhost = "prod"\n')
    assert load_settings(path, env={}).aws_access_keys == [
        AwsAccessKey("AKIA1", "s:e,c/r+et", "guest", "/"), AwsAccessKey("AKIA2", "x", "bob", "prod")]


def test_toml_flat_spelling_is_the_same_setting(tmp_path: Path) -> None:
    path = toml(tmp_path, '[[aws_access_keys]]\nid = "AKIA1"\nsecret = "s"\nuser = "guest"\n')
    assert load_settings(path, env={}).aws_access_keys == [AwsAccessKey("AKIA1", "s", "guest")]


def test_environment_keys_parse_and_override_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, '[[aws.access_keys]]\nid = "AKIA1"\nsecret = "s"\nuser = "guest"\n')
    env = {"FERRYMQ_AWS_ACCESS_KEYS": "AKIA9:se/cr+et:alice, AKIA8:x:bob:/prod,"}
    assert load_settings(path, env=env).aws_access_keys == [
        AwsAccessKey("AKIA9", "se/cr+et", "alice"), AwsAccessKey("AKIA8", "x", "bob", "/prod")]


@pytest.mark.parametrize(("value", "expected"), [
    ("AKIA1:topsecret", "aws_access_keys entry 1: expected id:secret:user[:vhost], got 2 field(s)"),
    ("AKIA1:s:guest,AKIA2::bob", "aws_access_keys entry 2: 'secret' must be a non-empty string"),
    ("AKIA1:s:guest,AKIA1:t:bob", "aws_access_keys: access key id 'AKIA1' is configured twice"),
])
def test_a_bad_environment_entry_is_one_error_naming_it(value: str, expected: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_settings(env={"FERRYMQ_AWS_ACCESS_KEYS": value})
    assert str(caught.value).startswith(expected)
    assert "topsecret" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_toml_entry_is_one_error_naming_its_fields(tmp_path: Path) -> None:
    path = toml(tmp_path, '[[aws.access_keys]]\nid = "AKIA1"\nsecret = "s"\nusr = "guest"\n')
    with pytest.raises(ValueError, match=r"^aws_access_keys entry 1: unknown field 'usr'; "
                                         r"'user' must be a non-empty string"):
        load_settings(path, env={})


def test_a_key_never_shows_its_secret_in_repr() -> None:
    assert "hunter2" not in repr(AwsAccessKey("AKIA1", "hunter2", "guest"))


def test_serve_with_a_bad_key_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = toml(tmp_path, '[[aws.access_keys]]\nid = "AKIA1"\nuser = "guest"\n')
    result = CliRunner().invoke(app, ["serve", "--config", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "ferrymq: aws_access_keys entry 1: 'secret' must be a non-empty string"]
