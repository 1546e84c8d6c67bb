"""Click groups whose subcommands' modules are imported only when they run."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import ClassVar

import click


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is used.

    A subclass names its subcommands in ``modules``: subcommand name ->
    module exporting a click object named ``command``.
    """

    modules: ClassVar[Mapping[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.modules)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.modules:
            return None
        return importlib.import_module(self.modules[name]).command
