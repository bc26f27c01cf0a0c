"""Sources of a ``copdata build``: one module each, registered the same way.

Every source module defines

* ``NAME`` (the ``--source`` value) and ``HELP`` (one line for ``--help``);
* ``add_cli_arguments(group)``: its own options, added to an argparse group
  titled "<NAME> source";
* ``source_from_args(args)``: the :class:`~copdata.sources.base.Source` from
  parsed arguments (``args`` also carries the build's shared options ``out``,
  ``seed`` and ``test_fraction``).

Adding a source is one new module plus its line in :data:`SOURCE_MODULES`;
no other source and nothing in ``copdata/cli.py`` changes.
"""

from __future__ import annotations

import importlib
from types import ModuleType

SOURCE_MODULES = {
    "synth": "copdata.sources.synth",
    "local": "copdata.sources.local",
    "youtube": "copdata.sources.youtube",
}


def source_module(name: str) -> ModuleType:
    """The module of source ``name`` (see :data:`SOURCE_MODULES`)."""
    if name not in SOURCE_MODULES:
        from ..errors import CopDataError

        raise CopDataError(f"unknown source {name!r}; choose one of {', '.join(SOURCE_MODULES)}")
    return importlib.import_module(SOURCE_MODULES[name])


def add_source_arguments(parser) -> None:
    """``--source`` and every source's own option group."""
    modules = {name: source_module(name) for name in SOURCE_MODULES}
    parser.add_argument("--source", choices=list(modules), default="synth",
                        help="; ".join(f"{name}: {m.HELP}" for name, m in modules.items()))
    for name, module in modules.items():
        module.add_cli_arguments(parser.add_argument_group(f"{name} source"))


def source_from_args(args):
    """The source that ``args.source`` names, built from the parsed arguments."""
    return source_module(args.source).source_from_args(args)
