"""YAML configuration: one schema (``schema.py``) from which validation, defaults and docs come."""

from kelly_edge.config.loader import check_config_main, load_config, parse_config
from kelly_edge.config.schema import Config, default_config, models_dir, schema_markdown

__all__ = ["Config", "check_config_main", "default_config", "load_config", "models_dir", "parse_config", "schema_markdown"]
