"""The documentation's commands run, and the CLI reference matches the CLI."""

import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

DOCS = os.path.join(REPO_ROOT, "docs")


def _bash_commands(markdown_path):
    """Commands of the ```bash blocks, continuation lines joined, skipping blocks marked `# needs:`."""
    text = open(markdown_path, encoding="utf-8").read()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        if re.search(r"^# needs:", block, flags=re.M):
            continue
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


@pytest.mark.slow
def test_every_quick_start_command_runs(tmp_path):
    commands = _bash_commands(os.path.join(DOCS, "quickstart.md"))
    assert any(c.startswith("skyseg train") for c in commands) and len(commands) >= 7
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    for command in commands:
        done = subprocess.run(shlex.split(command), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert (tmp_path / "runs" / "demo-quick" / "report.md").is_file()
    assert (tmp_path / "runs" / "quick" / "export" / "1" / "saved_model.pb").is_file()
    assert list((tmp_path / "runs" / "quick" / "predictions").glob("*_mask.png"))


def test_cli_reference_is_generated_from_the_cli():
    from skyseg_tf.cli_docs import render_cli_reference

    with open(os.path.join(DOCS, "cli.md"), encoding="utf-8") as handle:
        assert handle.read() == render_cli_reference(), "docs/cli.md is stale: run `make docs-cli`"


def test_readme_gives_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8").read()
    assert "make demo" in readme and "make test" in readme
    ci = open(os.path.join(REPO_ROOT, ".ci", "run"), encoding="utf-8").read()
    assert "make test" in ci


def test_docs_links_resolve():
    for name in os.listdir(DOCS) + ["../README.md"]:
        if not name.endswith(".md"):
            continue
        path = os.path.join(DOCS, name)
        text = open(path, encoding="utf-8").read()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith("http"):
                continue
            assert os.path.exists(os.path.join(os.path.dirname(path), target)), f"{name}: broken link {target}"


@pytest.mark.slow
def test_every_hemisphere_command_runs(tmp_path):
    """docs/hemisphere.md's quick start, as written (examples/ resolved from the repository)."""
    commands = _bash_commands(os.path.join(DOCS, "hemisphere.md"))
    assert len(commands) == 3 and commands[0].startswith("python examples/sky_view_factor.py")
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    for command in commands:
        arguments = [os.path.join(REPO_ROOT, a) if a.startswith("examples/") else a for a in shlex.split(command)]
        arguments = [sys.executable if a == "python" else a for a in arguments]
        done = subprocess.run(arguments, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    demo = tmp_path / "runs" / "hemisphere_demo"
    assert (demo / "up_polar.png").is_file() and (demo / "panorama" / "panorama_polar.png").is_file()
    import json

    record = json.loads((demo / "fisheye" / "predictions.jsonl").read_text().splitlines()[0])
    example = json.loads((demo / "figures.json").read_text())
    # The CLI measures what the Python example measured on the same photo (the CLI runs the
    # inference rewrite of the model: equal to float rounding).
    [svf] = [entry["svf"] for path, entry in example.items() if path.endswith("up.png")]
    assert record["svf"] == pytest.approx(svf, abs=2e-3)
