"""Plugins: found like a third party's, options checked, broken ones listed and skipped."""

import json
import textwrap

import pytest
from helpers import cli

from cyclestudio.errors import UserError
from cyclestudio.plugins import Architecture, Option
from cyclestudio.plugins.discovery import PLUGIN_PATH_ENV, load_registry

GOOD = '''
from torch import nn
from cyclestudio.plugins import Architecture, Option, hookimpl

class Tiny(nn.Module):
    def __init__(self, i, o, width):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(i, width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(width, o, 3, padding=1), nn.Tanh())
    def forward(self, x):
        return self.net(x)

@hookimpl
def generators():
    return [Architecture("tiny_gen", "Tiny", lambda i, o, width: Tiny(i, o, width),
                         [Option("width", int, 8, "channels", min=1, max=64)])]
'''


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    folder = tmp_path / "user-plugins"
    folder.mkdir()
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(folder))
    return folder


def test_builtins_come_through_the_entry_point_group():
    reg = load_registry()
    assert {"resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128"} <= set(reg.generators)
    assert {"patchgan", "pixel"} <= set(reg.discriminators)
    assert all("cyclestudio_plugins" in a.source for a in reg.generators.values())
    assert reg.errors == []


def test_a_broken_plugin_is_listed_with_its_error_while_others_load(plugin_dir):
    (plugin_dir / "good.py").write_text(GOOD)
    (plugin_dir / "syntax.py").write_text("def generators(:\n")
    (plugin_dir / "raises.py").write_text(textwrap.dedent('''
        from cyclestudio.plugins import hookimpl
        @hookimpl
        def discriminators():
            raise RuntimeError("no GPU driver for my fancy layer")
    '''))
    (plugin_dir / "badspec.py").write_text(textwrap.dedent('''
        from cyclestudio.plugins import Architecture, Option, hookimpl
        @hookimpl
        def generators():
            return [Architecture("Bad Name", "x", print)]
    '''))
    (plugin_dir / "baddefault.py").write_text(textwrap.dedent('''
        from cyclestudio.plugins import Architecture, Option, hookimpl
        @hookimpl
        def generators():
            return [Architecture("odd", "x", print, [Option("n", int, 99, max=10)])]
    '''))
    reg = load_registry()
    assert "tiny_gen" in reg.generators and "resnet_9blocks" in reg.generators
    assert "patchgan" in reg.discriminators
    errors = {e.source.rsplit("/", 1)[-1]: e.message for e in reg.errors}
    assert "SyntaxError" in errors["syntax.py"]
    assert "no GPU driver" in errors["raises.py"]
    assert "lower-case" in errors["badspec.py"]
    assert "out of range" in errors["baddefault.py"]

    listed = cli("plugins", "list", "--json")
    assert listed.returncode == 0
    data = json.loads(listed.stdout)
    assert "tiny_gen" in [g["name"] for g in data["generators"]]
    assert len(data["errors"]) == 4
    human = cli("plugins", "list")
    assert "raises.py: RuntimeError: no GPU driver" in human.stdout


def test_a_plugin_cannot_take_over_a_builtin_name(plugin_dir):
    (plugin_dir / "dupe.py").write_text(GOOD.replace('"tiny_gen"', '"resnet_9blocks"'))
    reg = load_registry()
    assert "cyclestudio_plugins" in reg.generators["resnet_9blocks"].source
    assert any("already provided" in e.message for e in reg.errors)


def test_options_are_typed_and_checked():
    arch = Architecture("x", "X", print, [
        Option("blocks", int, 9, min=1, max=32),
        Option("norm", str, "instance", choices=("instance", "batch")),
        Option("dropout", bool, False),
        Option("rate", float, 0.5, min=0, max=1),
    ])
    assert arch.resolve_options({"blocks": "6", "dropout": "yes", "rate": "0.25"}) == {
        "blocks": 6, "norm": "instance", "dropout": True, "rate": 0.25}
    with pytest.raises(UserError, match="option 'blocks' of x is out of range: 40"):
        arch.resolve_options({"blocks": "40"})
    with pytest.raises(UserError, match="takes int, not '2.5'"):
        arch.resolve_options({"blocks": "2.5"})
    with pytest.raises(UserError, match="cannot be 'group'"):
        arch.resolve_options({"norm": "group"})
    with pytest.raises(UserError, match="has no option 'depth'") as err:
        arch.resolve_options({"depth": 3})
    assert "blocks, norm, dropout, rate" in err.value.hint


def test_plugins_new_writes_a_plugin_that_passes_check(plugin_dir):
    made = cli("plugins", "new", "my_net", "--dir", str(plugin_dir))
    assert made.returncode == 0, made.stderr
    checked = cli("plugins", "check", str(plugin_dir / "my_net.py"))
    assert checked.returncode == 0, checked.stderr
    assert "ok   my_net" in checked.stdout
    assert "my_net" in load_registry().generators


def test_plugins_check_reports_a_generator_that_changes_the_size(tmp_path):
    bad = tmp_path / "shrinks.py"
    bad.write_text(GOOD.replace("padding=1), nn.ReLU()", "padding=0), nn.ReLU()"))
    checked = cli("plugins", "check", str(bad))
    assert checked.returncode == 1
    assert "FAIL tiny_gen" in checked.stderr and "output shape" in checked.stderr


def test_on_windows_the_apps_data_folder_holds_the_plugin_folder(monkeypatch):
    # The app opens data_dir()/plugins for the user; discovery must load from there.
    import appdirs

    from cyclestudio.gui.settings import data_dir
    from cyclestudio.plugins.discovery import user_plugin_dir

    monkeypatch.delenv("CYCLESTUDIO_DATA_DIR", raising=False)
    monkeypatch.setattr(appdirs, "system", "win32")
    monkeypatch.setattr(appdirs, "_get_win_folder", lambda const: r"C:\Users\ada\AppData\Local",
                        raising=False)
    assert user_plugin_dir() == data_dir() / "plugins"
    assert "cyclestudio" in str(data_dir())
