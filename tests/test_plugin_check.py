"""Writing a plugin: templates that pass `plugins check`, checks that catch each mistake,
and a training run that refuses a broken plugin before it writes anything."""


import pytest
from helpers import TINY, cli, make_domain
from test_plugins import GOOD

from cyclestudio.errors import UserError
from cyclestudio.plugins.checks import (
    check_architecture,
    check_spec,
    preflight,
    resolve_target,
)
from cyclestudio.plugins.discovery import PLUGIN_PATH_ENV, load_registry


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    folder = tmp_path / "user-plugins"
    folder.mkdir()
    monkeypatch.setenv(PLUGIN_PATH_ENV, str(folder))
    return folder


@pytest.fixture(scope="module")
def domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return make_domain(root / "a", 4, "warm", size=40), make_domain(root / "b", 4, "cool", size=40)


# Each mistake a plugin author met, as a change to the GOOD tiny generator.
BROKEN = {
    "shrinks": (("padding=1), nn.ReLU()", "padding=0), nn.ReLU()"), "output shape"),
    "no_tanh": ((", nn.Tanh())", ")"), "end the generator with tanh"),
    "unused": (("self.net = nn", "self.spare = nn.Linear(2, 2)\n        self.net = nn"),
               "2 of 6 parameters get no gradient: spare.weight, spare.bias"),
    "noisy": (("return self.net(x)", "return self.net(x + 0.1 * torch.randn_like(x))"),
              "eval mode gives a different output"),
    "detached": (("return self.net(x)", "return self.net(x.detach())"),
                 "no gradient reaches the input"),
}


def broken_plugin(folder, case):
    (old, new), _ = BROKEN[case]
    text = "import torch\n" + GOOD.replace(old, new)
    assert text != GOOD
    path = folder / f"{case}.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_plugins_check_names_each_mistake(tmp_path, case):
    path = broken_plugin(tmp_path, case)
    reg, specs, errors = resolve_target(str(path))
    assert errors == [] and [s.name for s in specs] == ["tiny_gen"]
    (report,) = check_spec(specs[0], extremes=False, timing=False)
    assert not report.ok
    assert BROKEN[case][1] in " ".join(report.failures())


def test_plugins_check_passes_a_good_plugin_at_its_defaults_and_extremes(tmp_path):
    path = tmp_path / "good.py"
    path.write_text(GOOD)
    reports = check_architecture("tiny_gen", plugin_files=[path], timing=True)
    assert [r.label for r in reports] == ["defaults", "width=1", "width=64"]
    assert all(r.ok for r in reports), "\n".join(r.text() for r in reports)
    defaults = reports[0]
    assert defaults.parameters == 3 * 8 * 9 + 8 + 8 * 3 * 9 + 3
    assert defaults.forward_ms is not None and defaults.forward_ms > 0
    text = defaults.text()
    for expected in ("64×64 → (3, 64, 64)", "71×67 → (3, 71, 67)", "64×128 → (3, 64, 128)",
                     "bounded to [-1, 1]", "a gradient reaches all 4 parameter tensors",
                     "eval mode is deterministic"):
        assert expected in text
    assert reports[2].parameters == 3 * 64 * 9 + 64 + 64 * 3 * 9 + 3


def test_plugins_new_writes_a_plugin_file_that_passes_check(plugin_dir):
    # (Both kinds' code is also checked as packages in test_example_plugin.py.)
    kind = "generator"
    made = cli("plugins", "new", "my_net", "--kind", kind, "--dir", str(plugin_dir))
    assert made.returncode == 0, made.stderr
    path = plugin_dir / "my_net.py"
    assert "from cyclestudio.plugins.layers import NORMS" in path.read_text()
    checked = cli("plugins", "check", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "all checks passed: my_net" in checked.stdout
    assert f"{kind} my_net (defaults)" in checked.stdout
    assert "my_net" in getattr(load_registry(), kind + "s")
    again = cli("plugins", "new", "my_net", "--kind", kind, "--dir", str(plugin_dir))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_plugins_check_a_file_shows_the_plugins_own_traceback(tmp_path):
    bad = tmp_path / "typo.py"
    bad.write_text(GOOD.replace("class Tiny", "WIDTH = undefined_name\nclass Tiny"))
    checked = cli("plugins", "check", str(bad))
    assert checked.returncode == 1
    assert "NameError: name 'undefined_name' is not defined" in checked.stderr
    assert "Traceback" in checked.stderr and "typo.py" in checked.stderr


def test_plugins_check_takes_the_plugin_name_that_plugins_list_prints():
    checked = cli("plugins", "check", "pixel_discriminator", "--no-extremes")
    assert checked.returncode == 0, checked.stderr
    assert "discriminator pixel (defaults)" in checked.stdout
    assert "raw scores" in checked.stdout
    with pytest.raises(UserError, match="no plugin file, architecture or plugin named"):
        resolve_target("pixel_discriminatorr")


def test_preflight_says_which_size_a_discriminator_needs():
    reg = load_registry()
    multi = reg.discriminator("multiscale_patchgan")
    gen = reg.generator("resnet_6blocks")
    with pytest.raises(UserError) as err:
        preflight(gen, gen.resolve_options({"width": 4}), multi,
                  multi.resolve_options({"width": 4, "scales": 3}), channels=3, size=64)
    assert err.value.message == ("discriminator multiscale_patchgan needs images of at least "
                                 "96×96 with these options; --size 64 is smaller")
    assert "use --size 96 or more" in err.value.hint


@pytest.mark.parametrize("case", ["shrinks", "no_tanh"])
def test_a_broken_generator_is_refused_before_the_run_folder_is_made(
        plugin_dir, domains, tmp_path, case):
    broken_plugin(plugin_dir, case)
    a, b = domains
    run = tmp_path / "run"
    done = cli("train", "--a", str(a), "--b", str(b), "--out", str(run), *TINY,
               "--generator", "tiny_gen", "--generator-option", "width=4", "--iterations", "2")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("cyclestudio: error: generator plugin 'tiny_gen'")
    assert "fails the pre-flight check" in first and BROKEN[case][1] in first
    assert "plugins check tiny_gen" in done.stderr
    assert not run.exists()
