"""The ``config/*.env.example`` templates document every setting and only real ones."""

from __future__ import annotations

import re

import pytest

from config.settings import ENV_PREFIX, PROJECT_ROOT, Settings, _Group

_GROUP_FIELDS = {
    name: field.annotation
    for name, field in Settings.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, _Group)
}


def _all_variables() -> set[str]:
    names = {
        f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields if name not in _GROUP_FIELDS
    }
    for group in _GROUP_FIELDS.values():
        assert isinstance(group, type)
        prefix = str(group.model_config.get("env_prefix"))
        names |= {f"{prefix}{name}".upper() for name in group.model_fields}
    return names


def _mentioned(text: str) -> set[str]:
    return set(re.findall(r"^#?\s*(SPOTREC_[A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_local_example_documents_every_variable() -> None:
    text = (PROJECT_ROOT / "config" / "local.env.example").read_text()
    assert _mentioned(text) == _all_variables()


@pytest.mark.parametrize("name", ["local.env.example", "test.env.example"])
def test_examples_name_only_real_variables(name: str) -> None:
    text = (PROJECT_ROOT / "config" / name).read_text()
    unknown = _mentioned(text) - _all_variables() - {"SPOTREC_ENV_FILE"}
    assert not unknown


def test_compose_file_uses_only_real_variables() -> None:
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\b(SPOTREC_[A-Z0-9_]+)\b", text))
    assert used
    assert used <= _all_variables()
