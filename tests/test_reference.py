"""Pulumi.yaml and the README document every config key, generated from the model."""

from __future__ import annotations

import yaml

from tests.program import ROOT
from settings.model import LangflowStackConfig
from settings.reference import leaves, pulumi_yaml, readme_reference


def test_pulumi_yaml_is_generated_from_the_model():
    assert (ROOT / "Pulumi.yaml").read_text() == pulumi_yaml(), "run `make docs`"


def test_every_key_is_declared_with_type_and_description():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == {f"langflow:{name}" for name in LangflowStackConfig.model_fields}
    for key, declaration in declared.items():
        assert declaration["type"] in {"string", "integer", "boolean", "array", "object"}, key
        assert declaration["description"].strip(), key
        # Without a default the CLI refuses to run a stack that does not set the key.
        assert "default" in declaration, key


def test_declared_defaults_are_the_model_defaults():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    defaults = {key.split(":", 1)[1]: d["default"] for key, d in declared.items()}
    assert LangflowStackConfig.model_validate(defaults) == LangflowStackConfig()


def test_readme_reference_is_current_and_covers_every_key():
    readme = (ROOT / "README.md").read_text()
    assert readme_reference() in readme, "run `make docs`"
    for path, info in leaves():
        assert f"`langflow:{path}`" in readme
        assert info.description, f"{path} has no description"


def test_stack_files_only_use_declared_keys():
    declared = set(yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"])
    for stack in ("dev", "prod"):
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert {k for k in config if k.startswith("langflow:")} <= declared, stack
