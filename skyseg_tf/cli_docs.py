"""Renders docs/cli.md from the click commands themselves, so the reference cannot drift.

Run ``python -m skyseg_tf.cli_docs > docs/cli.md`` (``make docs-cli``).
"""

from __future__ import annotations

import click

from skyseg_tf.cli import main


def _walk(command: click.Command, path: list[str]):
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _walk(command.commands[name], path + [name])


def render_cli_reference() -> str:
    """The Markdown reference: one section per command with its ``--help`` text.

    Example:
        >>> render_cli_reference().startswith("# CLI reference")
        True
    """
    parts = [
        "# CLI reference",
        "",
        "Generated from the commands' own help by `make docs-cli`; `tests/test_docs.py` checks it is current.",
        "",
    ]
    for path, command in _walk(main, ["skyseg"]):
        context = click.Context(
            command,
            info_name=" ".join(path),
            terminal_width=100,
            max_content_width=100,
            help_option_names=main.context_settings["help_option_names"],  # what `skyseg` users see
        )
        parts += [f"## `{' '.join(path)}`", "", "```text", command.get_help(context).rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    print(render_cli_reference(), end="")
