"""The configuration reference (docs/configuration.md), generated from the config classes'
field descriptions, so it cannot go stale: `convostack config --reference` prints it, and
a test fails when the committed page differs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

HEADER = """# Configuration reference

Generated from the config classes by `convostack config --reference > docs/configuration.md`
(a test fails when this page and the code differ). Every setting can come from the
command line (where it has a flag), from `CONVOSTACK_<NAME>` in the environment, or from
a YAML config file (`--config`, or `CONVOSTACK_CONFIG`), in that order of precedence.
`convostack config --sample` prints a commented config file with every default.
"""


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    factory = field.default_factory
    if factory is not None and factory not in (dict, list) and factory.__name__ != "<lambda>":
        return "see description"  # computed on the machine (the home folder, threads)
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text.replace("|", "\\|")


def _table(
    model: type[BaseModel],
    env: bool,
    skip: tuple[str, ...] = (),
    base: type[BaseModel] | None = None,
) -> list[str]:
    columns = ["setting", "default", *(["environment"] if env else []), "description"]
    rows = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        # A type's own default for a common field (its id) hides the base's description.
        common = base.model_fields.get(name) if base is not None else None
        description = (field.description or (common and common.description) or "").replace(
            "|", "\\|"
        )
        cells = [f"`{name}`", f"`{_default(field)}`"]
        if env:
            cells.append(f"`CONVOSTACK_{name.upper()}`")
        rows.append("| " + " | ".join([*cells, description]) + " |")
    return rows


def render() -> str:
    from convostack.config import Config
    from convostack.providers.registry import PROVIDER_TYPES
    from convostack.providers.settings import ProviderSettings

    lines = [HEADER, "## Server settings", "", *_table(Config, env=True), ""]
    lines += [
        "## Providers",
        "",
        "Each entry of `providers:` has a `type` and the settings of that type "
        "(`id` names it in logs, errors and model prefixes).",
        "",
    ]
    for kind, spec in PROVIDER_TYPES.items():
        table = _table(spec.settings, env=False, skip=("type",), base=ProviderSettings)
        lines += [f"### `type: {kind}`", "", *table, ""]
    try:
        from convostack.storage.postgres import PostgresSettings
    except ImportError:  # asyncpg, the 'postgres' extra, is not installed
        return "\n".join(lines)
    lines += [
        "## PostgreSQL pool",
        "",
        "Given as query parameters of the database URL, e.g. "
        "`postgresql://user:password@db:5432/convostack?pool_max_size=20`.",
        "",
        *_table(PostgresSettings, env=False),
        "",
    ]
    return "\n".join(lines)
