"""``ferroq plugins``."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version

import click

from ferroq_core.cli.base import CliContext, pass_context


def register(cli: click.Group) -> None:
    cli.add_command(plugins)


# Registry hooks whose records are listed under "provides", with their label.
_REGISTRIES = (
    ("ferroq_backends", "backend"),
    ("ferroq_serializers", "serializer"),
    ("ferroq_backoff_policies", "backoff"),
)


def describe_plugins(obj: CliContext) -> list[dict[str, object]]:
    pm = obj.pm
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    out: list[dict[str, object]] = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: str(item[0])):
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        if dist is not None:
            dist_name, dist_version = dist.project_name, dist.version
        else:
            dist_name = "ferroq-core"
            try:
                dist_version = version("ferroq-core")
            except PackageNotFoundError:
                dist_version = "unknown"
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        provides: list[str] = []
        for hook, label in _REGISTRIES:
            if hook in hooks:
                provides += [f"{label}:{item.name}" for item in getattr(plugin, hook)()]
        out.append(
            {
                "name": str(name),
                "distribution": dist_name,
                "version": dist_version,
                "hooks": hooks,
                "provides": provides,
            }
        )
    return out


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def plugins(obj: CliContext, as_json: bool) -> None:
    """List loaded plugins with their distribution, version, hooks and what they provide.

    \b
    Limit which plugins load with FERROQ_LOAD_PLUGINS=sqlite,tenancy.
    """
    rows = describe_plugins(obj)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        provides = ", ".join(row["provides"]) or "-"  # type: ignore[arg-type]
        click.echo(f"{row['name']}  ({row['distribution']} {row['version']})")
        click.echo(f"  provides: {provides}")
        click.echo(f"  hooks:    {', '.join(row['hooks'])}")  # type: ignore[arg-type]
