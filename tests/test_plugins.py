"""Plugins: found like a third party's, options checked, broken ones listed and skipped."""

import json
import textwrap

import pytest
from helpers import cli

from cyclestudio.errors import UserError
from cyclestudio.plugins import Architecture, DiscriminatorSpec, GeneratorSpec, Option
from cyclestudio.plugins.discovery import PLUGIN_PATH_ENV, load_registry

GOOD = '''
from torch import nn
from cyclestudio.plugins import GeneratorSpec, Option, hookimpl

class Tiny(nn.Module):
    def __init__(self, i, o, width):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(i, width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(width, o, 3, padding=1), nn.Tanh())
    def forward(self, x):
        return self.net(x)

@hookimpl
def generators():
    return [GeneratorSpec("tiny_gen", "Tiny", lambda i, o, width: Tiny(i, o, width),
                          [Option("width", int, 8, "channels", min=1, max=64)])]
'''


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    folder = tmp_path / "user-plugins"
    folder.mkdir()
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(folder))
    return folder


def write(folder, name, text):
    (folder / name).write_text(textwrap.dedent(text))


def test_builtins_come_through_the_entry_point_group():
    reg = load_registry()
    assert {"resnet_9blocks", "resnet_6blocks", "resnet_attention", "unet_256",
            "unet_128"} <= set(reg.generators)
    assert {"patchgan", "multiscale_patchgan", "pixel"} <= set(reg.discriminators)
    assert all("cyclestudio_plugins" in a.source for a in reg.generators.values())
    assert reg.errors == []
    builtins = [p for p in reg.plugins if p.origin == "built-in"]
    assert {p.id for p in builtins} >= {"resnet_generator", "patchgan_discriminator"}
    assert all(p.status == "ok" and p.version for p in builtins)
    assert isinstance(reg.generators["unet_256"], GeneratorSpec)
    assert isinstance(reg.discriminators["patchgan"], DiscriminatorSpec)


def test_a_broken_plugin_is_listed_with_its_error_while_others_load(plugin_dir):
    (plugin_dir / "good.py").write_text(GOOD)
    (plugin_dir / "syntax.py").write_text("def generators(:\n")
    write(plugin_dir, "raises.py", '''
        from cyclestudio.plugins import hookimpl
        @hookimpl
        def discriminators():
            raise RuntimeError("no GPU driver for my fancy layer")
    ''')
    write(plugin_dir, "badspec.py", '''
        from cyclestudio.plugins import GeneratorSpec, hookimpl
        @hookimpl
        def generators():
            return [GeneratorSpec("Bad Name", "x", print)]
    ''')
    write(plugin_dir, "baddefault.py", '''
        from cyclestudio.plugins import GeneratorSpec, Option, hookimpl
        @hookimpl
        def generators():
            return [GeneratorSpec("odd", "x", lambda i, o, n: None, [Option("n", int, 99, max=10)])]
    ''')
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
    broken = {p["name"]: p for p in data["plugins"] if p["origin"] == "file"}
    assert broken["good"]["status"] == "ok" and broken["good"]["generators"] == ["tiny_gen"]
    assert broken["raises"]["status"] == "error"
    assert "no GPU driver" in broken["raises"]["error"]
    assert "Traceback" in broken["raises"]["traceback"]
    human = cli("plugins", "list")
    assert "raises.py: RuntimeError: no GPU driver" in human.stdout


def test_a_plugin_that_offers_nothing_is_an_error_that_says_why(plugin_dir):
    write(plugin_dir, "misspelt.py", '''
        from cyclestudio.plugins import GeneratorSpec, hookimpl
        @hookimpl
        def generator():
            return []
    ''')
    write(plugin_dir, "pending.py", '''
        from cyclestudio.plugins import hookimpl
        @hookimpl
        def check_pending():
            return []
    ''')
    write(plugin_dir, "unmarked.py", '''
        def discriminators():
            return []
    ''')
    write(plugin_dir, "empty.py", '''
        import math
    ''')
    reg = load_registry()
    errors = {e.source.rsplit("/", 1)[-1]: e.message for e in reg.errors}
    assert errors["misspelt.py"] == ("'generator' is not a cyclestudio hook (did you mean "
                                     "'generators'?); the hooks are generators, discriminators")
    assert "'check_pending' is not a cyclestudio hook" in errors["pending.py"]
    assert "discriminators() is not marked @hookimpl" in errors["unmarked.py"]
    assert "registers no hooks" in errors["empty.py"]
    assert {p.status for p in reg.plugins if p.origin == "file"} == {"error"}


def test_an_option_that_build_does_not_take_is_an_error_when_the_plugin_loads(plugin_dir):
    write(plugin_dir, "renamed.py", '''
        from cyclestudio.plugins import GeneratorSpec, Option, hookimpl
        def build(in_channels, out_channels, width):
            raise AssertionError("never called")
        @hookimpl
        def generators():
            return [GeneratorSpec("renamed", "x", build, [Option("channels", int, 8)])]
    ''')
    write(plugin_dir, "missing.py", '''
        from cyclestudio.plugins import DiscriminatorSpec, Option, hookimpl
        def build(in_channels, width, depth):
            raise AssertionError("never called")
        @hookimpl
        def discriminators():
            return [DiscriminatorSpec("missing", "x", build, [Option("width", int, 8)])]
    ''')
    write(plugin_dir, "badtype.py", '''
        from cyclestudio.plugins import GeneratorSpec, Option, hookimpl
        @hookimpl
        def generators():
            return [GeneratorSpec("badtype", "x", lambda i, o, size: None,
                                  [Option("size", tuple, (1, 2))])]
    ''')
    write(plugin_dir, "wrongkind.py", '''
        from cyclestudio.plugins import GeneratorSpec, hookimpl
        @hookimpl
        def discriminators():
            return [GeneratorSpec("wrongkind", "x", lambda i, o: None)]
    ''')
    reg = load_registry()
    errors = {e.source.rsplit("/", 1)[-1]: e.message for e in reg.errors}
    assert "option 'channels' is not a parameter of build(in_channels, out_channels, width)" \
        in errors["renamed.py"]
    assert "build requires 'depth', which is not one of its options" in errors["missing.py"]
    assert "option types are int, float, bool, str" in errors["badtype.py"]
    assert "return it from generators()" in errors["wrongkind.py"]
    assert not {"renamed", "missing", "badtype", "wrongkind"} & {*reg.generators,
                                                               *reg.discriminators}


def test_not_installed_names_the_plugin_that_failed_to_load(plugin_dir, tmp_path):
    (plugin_dir / "tiny_gen.py").write_text(GOOD.replace("nn.Tanh())", "nn.Tanh()"))
    with pytest.raises(UserError, match="no generator plugin named 'tiny_gen'") as err:
        load_registry().generator("tiny_gen")
    assert "failed to load: tiny_gen (SyntaxError" in err.value.hint

    done = cli("train", "--a", str(tmp_path), "--b", str(tmp_path), "--out",
               str(tmp_path / "run"), "--generator", "tiny_gen")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "tiny_gen (SyntaxError" in done.stderr
    assert not (tmp_path / "run").exists()


def test_a_plugin_cannot_take_over_a_builtin_name(plugin_dir):
    (plugin_dir / "dupe.py").write_text(GOOD.replace('"tiny_gen"', '"resnet_9blocks"'))
    reg = load_registry()
    assert "cyclestudio_plugins" in reg.generators["resnet_9blocks"].source
    assert any("already provided" in e.message for e in reg.errors)


def test_a_plugin_written_for_0_1_with_architecture_still_loads_as_the_right_kind(plugin_dir):
    write(plugin_dir, "old.py", '''
        from torch import nn
        from cyclestudio.plugins import Architecture, Option, hookimpl
        @hookimpl
        def discriminators():
            return [Architecture("old_d", "Old", lambda i, width: nn.Conv2d(i, 1, 3),
                                 [Option("width", int, 8)])]
    ''')
    with pytest.warns(DeprecationWarning, match="GeneratorSpec or DiscriminatorSpec"):
        reg = load_registry()
    assert isinstance(reg.discriminators["old_d"], DiscriminatorSpec)
    assert reg.errors == []


def test_options_are_typed_and_checked():
    arch = GeneratorSpec("x", "X", print, [
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
    assert Option("blocks", int, 9, min=1, max=32).extremes() == [1, 32]
    assert Option("norm", str, "a", choices=("a", "b", "c")).extremes() == ["b", "c"]
    with pytest.warns(DeprecationWarning):
        assert isinstance(Architecture("y", "Y", print).as_kind("generator"), GeneratorSpec)


def test_a_disabled_plugin_is_not_imported_and_stays_off_until_enabled(plugin_dir, tmp_path):
    marker = tmp_path / "imported"
    (plugin_dir / "good.py").write_text(
        f"open({str(marker)!r}, 'a').write('x')\n" + GOOD)
    off = cli("plugins", "disable", "good", "--json")
    assert off.returncode == 0, off.stderr
    data = json.loads(off.stdout)
    assert not marker.exists()
    assert "tiny_gen" not in [g["name"] for g in data["generators"]]
    (good,) = [p for p in data["plugins"] if p["name"] == "good"]
    assert good["status"] == "disabled" and good["origin"] == "file"

    # Remembered: every later job (and the app's worker) skips it.
    with pytest.raises(UserError) as err:
        load_registry().generator("tiny_gen")
    assert "disabled plugins: good" in err.value.hint
    assert not marker.exists()

    on = cli("plugins", "enable", str(plugin_dir / "good.py"))
    assert on.returncode == 0 and "good enabled" in on.stdout
    assert "tiny_gen" in load_registry().generators and marker.exists()


def test_plugins_list_json_has_what_the_plugins_page_and_the_forms_need(tmp_path):
    from cyclestudio.paths import user_plugin_dir

    listed = cli("plugins", "list", "--json")
    data = json.loads(listed.stdout)
    assert data["user_plugin_folder"] == str(user_plugin_dir())
    (multi,) = [d for d in data["discriminators"] if d["name"] == "multiscale_patchgan"]
    assert multi["kind"] == "discriminator" and multi["plugin"] == "multiscale_discriminator"
    assert multi["min_size"] == 48 and multi["keeps_own_init"] is True
    rules = multi["size_rules"]
    assert rules["depends_on"] == ["n_layers", "scales"]
    table = {(r["options"]["n_layers"], r["options"]["scales"]): r["min_size"]
             for r in rules["table"]}
    assert table[(3, 3)] == 96 and table[(1, 2)] == 12
    (resnet,) = [g for g in data["generators"] if g["name"] == "resnet_9blocks"]
    assert resnet["size_multiple"] == 4 and resnet["size_rules"] is None
    plugin = next(p for p in data["plugins"] if p["id"] == "resnet_generator")
    assert plugin["origin"] == "built-in" and plugin["kinds"] == ["generator"]
    assert plugin["status"] == "ok" and plugin["version"]


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


def test_the_plugin_api_and_the_registry_import_without_torch():
    # The command line's parser and the app's plugin cache rely on it.
    import subprocess
    import sys

    code = ("import sys, cyclestudio.plugins, cyclestudio.plugins.discovery\n"
            "from cyclestudio.plugins import GeneratorSpec, load_registry\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
