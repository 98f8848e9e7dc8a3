"""The route into the stages: plain stage functions, and commands that plugins register."""

import types

import click
from click.testing import CliRunner

from deepseg_core import cli, hookimpl
from deepseg_core.config import STAGES
from deepseg_core.errors import DeepSegError
from deepseg_core.plugins.manager import load_plugins
from deepseg_core.plugins.registry import CORE_COMMANDS
from deepseg_core.stages import STAGE_FUNCTIONS


def command_plugin(name: str, command) -> types.ModuleType:
    """An in-memory plugin module registering one command as ``name``."""
    mod = types.ModuleType(f"{name}_mod")

    @hookimpl
    def deepseg_register_commands(registry):
        registry.add_command(name, command)

    mod.deepseg_register_commands = deepseg_register_commands
    return mod


@click.command()
@click.argument("who")
def hello(who):
    """Say hello (a third-party command)."""
    if who == "nobody":
        raise DeepSegError("hello: nobody to greet; name someone")
    click.echo(f"hello {who}")


def test_every_stage_has_one_plain_function_in_run_order():
    assert list(STAGE_FUNCTIONS) == list(STAGES)
    assert all(callable(f) and f.__module__ == "deepseg_core.stages"
               for f in STAGE_FUNCTIONS.values())


def test_the_reserved_names_are_the_core_commands():
    assert set(CORE_COMMANDS) == set(cli.main.commands)


def test_the_built_in_command_plugins_register_the_cluster_commands_and_demo():
    loaded = load_plugins()
    rows = {p.name: p for p in loaded.plugins}
    assert rows["deepseg:hpc"].registered == {"command": ["files", "sbatch", "shards"]}
    assert rows["deepseg:demo"].registered == {"command": ["demo"]}


def test_a_plugin_command_is_listed_runs_and_fails_in_one_line(monkeypatch):
    loaded = load_plugins(extra=[("greeter", command_plugin("hello", hello))])
    monkeypatch.setattr("deepseg_core.plugins.manager._cached", loaded)
    runner = CliRunner()
    listing = runner.invoke(cli.main, ["--help"])
    assert listing.exit_code == 0 and "hello" in listing.output and "sbatch" in listing.output
    done = runner.invoke(cli.main, ["hello", "world"])
    assert done.exit_code == 0 and done.output == "hello world\n"
    failed = runner.invoke(cli.main, ["hello", "nobody"])
    assert failed.exit_code == 2 and "Traceback" not in failed.output
    assert failed.output.strip() == "error: hello: nobody to greet; name someone"


def test_a_plugin_may_not_take_a_core_command_name():
    loaded = load_plugins(extra=[("rogue", command_plugin("train", hello))])
    [rogue] = [p for p in loaded.plugins if p.name == "rogue"]
    assert rogue.error == ("register commands: TypeError: command 'train' of plugin 'rogue': "
                           "'deepseg train' is one of the core's own commands")
    assert "train" not in loaded.registry.names("command")
