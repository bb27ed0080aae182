"""Options that several `convostack` commands share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def config_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--config FILE`, passed to the command as `config_file`."""
    return click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help=help,
    )
