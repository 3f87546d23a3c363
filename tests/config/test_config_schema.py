"""The schema table agrees with default.yaml, the docs and the model spec."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from yaml.nodes import MappingNode

import kelly_edge
from kelly_edge.config.loader import load_config, parse_config
from kelly_edge.config.schema import (
    Config,
    ModelConfig,
    ModelsConfig,
    default_config,
    default_yaml,
    models_dir,
    schema_markdown,
    schema_rows,
    yaml_scalar,
)
from kelly_edge.models import spec

REPO = Path(__file__).resolve().parents[2]
DEFAULT_YAML = REPO / "config" / "default.yaml"

KEY_ROWS = [row for row in schema_rows() if row.spec is not None]


def _leaves(node: MappingNode, prefix: str = "") -> dict[str, tuple[int, object]]:
    """Dotted leaf key -> (1-based line, safe-loaded value), independent of the loader."""
    out: dict[str, tuple[int, object]] = {}
    for knode, vnode in node.value:
        path = f"{prefix}.{knode.value}" if prefix else knode.value
        if isinstance(vnode, MappingNode):
            out.update(_leaves(vnode, path))
        else:
            out[path] = (knode.start_mark.line + 1, yaml.safe_load(yaml.serialize(vnode)))
    return out


def test_default_yaml_loads_and_equals_default_config() -> None:
    config = load_config(DEFAULT_YAML)
    assert config == default_config()
    assert config.source == str(DEFAULT_YAML)


def test_every_schema_key_is_in_default_yaml_with_its_default_and_a_comment_and_vice_versa() -> None:
    text = DEFAULT_YAML.read_text(encoding="utf-8")
    lines = text.splitlines()
    leaves = _leaves(yaml.compose(text, Loader=yaml.SafeLoader))
    assert set(leaves) == {row.path for row in KEY_ROWS}
    for row in KEY_ROWS:
        line, value = leaves[row.path]
        assert value == row.default and type(value) is type(row.default), row.path
        _, _, comment = lines[line - 1].partition("#")
        assert comment.strip(), f"{row.path} (line {line}) has no comment"


def test_default_yaml_is_the_generated_text() -> None:
    assert DEFAULT_YAML.read_text(encoding="utf-8") == default_yaml(), (
        "config/default.yaml is stale: python -c 'from kelly_edge.config.schema import default_yaml; "
        "print(default_yaml(), end=\"\")' > config/default.yaml"
    )


def test_schema_defaults_satisfy_their_own_rules() -> None:
    for row in KEY_ROWS:
        value, problem = row.spec.check(row.default)
        assert problem is None, f"{row.path}: {problem}"
        assert value == row.default
    assert parse_config(default_yaml()) == default_config()


def test_markdown_lists_every_key_with_type_default_and_allowed_values() -> None:
    md = schema_markdown()
    table_lines = {line.split("|")[1].strip().strip("`"): line for line in md.splitlines() if line.startswith("| `")}
    for row in KEY_ROWS:
        line = table_lines[row.path]
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert cells[1] == row.spec.type_name
        assert cells[2] == f"`{yaml_scalar(row.default)}`"
        if row.spec.rule.choices:
            assert all(str(choice) in cells[3] for choice in row.spec.rule.choices)
        assert row.doc.replace("|", "\\|") in cells[4]
    for name in ("audio", "tempo", "scheduler", "models", "generator", "midi", "emotion"):
        assert f"## `{name}`" in md


def test_yaml_scalar_round_trips() -> None:
    for value in (True, False, None, 0, -50.0, 0.7, "", "pyaudio", "no", "a: b", "1"):
        assert yaml.safe_load(f"k: {yaml_scalar(value)}") == {"k": value}


def test_models_section_matches_the_model_spec() -> None:
    models = default_config().models
    names = [f.name for f in dataclasses.fields(ModelsConfig) if f.type in ("ModelConfig", ModelConfig)]
    assert tuple(names) == spec.MODEL_NAMES
    for name in spec.MODEL_NAMES:
        assert models.get(name) is getattr(models, name)
    with pytest.raises(KeyError, match="groove"):
        models.get("grove")
    with pytest.raises(KeyError):
        models.get("dir")


def test_config_is_frozen_and_hashable() -> None:
    config = default_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.generator.melody.channel = 5  # type: ignore[misc]
    assert hash(config) == hash(default_config())


def test_models_dir_null_is_the_bundled_folder() -> None:
    expected = Path(kelly_edge.__file__).resolve().parent.parent / "models_tflite"
    assert models_dir(default_config()) == expected


def test_models_dir_relative_to_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "box"
    folder.mkdir()
    path = folder / "config.yaml"
    path.write_text("models:\n  dir: ../nets\n", encoding="utf-8")
    assert models_dir(load_config(path)) == tmp_path.resolve() / "nets"


def test_models_dir_absolute_is_kept(tmp_path: Path) -> None:
    config = parse_config(f"models:\n  dir: {tmp_path}\n")
    assert models_dir(config) == tmp_path


def test_config_source_is_not_compared() -> None:
    assert parse_config("", source="a.yaml") == parse_config("", source="b.yaml")
    assert parse_config("", source="a.yaml").source == "a.yaml"
    assert isinstance(default_config(), Config)


def test_docs_config_md_is_generated_from_the_schema() -> None:
    from pathlib import Path

    from kelly_edge.config.schema import schema_markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert doc.read_text() == schema_markdown(), (
        "docs/config.md is stale: regenerate with python -c 'from kelly_edge.config.schema import "
        "schema_markdown; open(\"docs/config.md\", \"w\").write(schema_markdown())'"
    )
