"""A third party's plugin package: installed, it is found, trains, and its model translates.

"Installed" is done the way pip lays a package out, without a network or a build:
the module copied into a folder on PYTHONPATH, beside a dist-info with the METADATA
and entry_points.txt that pip would write from the package's own pyproject.toml.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import cli, make_domain, visible
from PIL import Image

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "plugins" / "examples" / "cyclestudio-mobile-resnet"


def install(project: Path, target: Path) -> Path:
    """Lay out ``project`` in ``target`` as `pip install --target` would; return target."""
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    name, version = meta["project"]["name"], meta["project"]["version"]
    info = target / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    groups = meta["project"]["entry-points"]
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
        for group, eps in groups.items()), encoding="utf-8")
    for module in meta["tool"]["setuptools"]["py-modules"]:
        shutil.copy(project / f"{module}.py", target / f"{module}.py")
    return target


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """PYTHONPATH for the subprocesses: the example package, installed."""
    target = install(EXAMPLE, tmp_path / "site")
    monkeypatch.setenv("PYTHONPATH", str(target))
    return target


def run_package_tests(projects: list[Path], sites: list[Path]) -> subprocess.CompletedProcess:
    """pytest on each project's tests/, with the packages installed (one process for all)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(s) for s in sites)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *(str(p / "tests") for p in projects)], cwd=projects[0], env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_installed_example_is_found_through_its_entry_point(installed):
    listed = cli("plugins", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    (plugin,) = [p for p in data["plugins"] if p["id"] == "mobile_resnet"]
    assert plugin["origin"] == "package" and plugin["status"] == "ok"
    assert plugin["version"] == "0.1.0" and plugin["distribution"] == "cyclestudio-mobile-resnet"
    (spec,) = [g for g in data["generators"] if g["name"] == "mobile_resnet"]
    assert spec["plugin"] == "mobile_resnet" and spec["size_multiple"] == 4


def test_the_example_trains_and_its_model_file_translates(installed, tmp_path, monkeypatch):
    a = make_domain(tmp_path / "a", 4, "warm")
    b = make_domain(tmp_path / "b", 4, "cool")
    run = tmp_path / "run"
    done = cli("train", "--a", str(a), "--b", str(b), "--out", str(run), "--size", "32",
               "--load-size", "36", "--workers", "0", "--device", "cpu", "--iterations", "3",
               "--generator", "mobile_resnet", "--generator-option", "width=4",
               "--generator-option", "blocks=2", "--discriminator-option", "width=4")
    assert done.returncode == 0, done.stderr
    model = run / "model.csmodel"
    Image.new("RGB", (45, 30), (40, 90, 200)).save(tmp_path / "in.png")
    out = cli("translate", str(model), str(tmp_path / "in.png"), "--out", str(tmp_path / "t"))
    assert out.returncode == 0, out.stderr
    assert Image.open(visible(tmp_path / "t")[0]).size == (45, 30)

    # Without the package, the model file names what is missing.
    monkeypatch.delenv("PYTHONPATH")
    missing = cli("translate", str(model), str(tmp_path / "in.png"), "--out", str(tmp_path / "u"))
    assert missing.returncode == 2
    assert "needs the generator plugin 'mobile_resnet', which is not installed" in missing.stderr


def test_the_examples_and_the_package_templates_own_tests_pass_once_installed(tmp_path):
    projects, sites = [EXAMPLE], [install(EXAMPLE, tmp_path / "site-example")]
    for kind in ("generator", "discriminator"):
        made = cli("plugins", "new", f"my_{kind}", "--kind", kind, "--package",
                   "--dir", str(tmp_path))
        assert made.returncode == 0, made.stderr
        project = tmp_path / f"cyclestudio-my-{kind}"
        meta = tomllib.loads((project / "pyproject.toml").read_text())
        assert meta["project"]["entry-points"]["cyclestudio"] == {
            f"my_{kind}": f"cyclestudio_my_{kind}"}
        projects.append(project)
        sites.append(install(project, tmp_path / f"site-{kind}"))
    done = run_package_tests(projects, sites)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 passed" in done.stdout  # 3 of the example's, 2 of each template's
