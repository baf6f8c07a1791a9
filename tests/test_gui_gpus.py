"""The Training page offers several GPUs at once only where there are several."""

from __future__ import annotations

import pytest

from cyclestudio.cli import build_parser
from cyclestudio.gui.main_window import MainWindow
from cyclestudio.project import Project

CPU = {"id": "cpu", "name": "CPU", "memory_bytes": None}


def _gpu(index: int) -> dict:
    return {"id": f"cuda:{index}", "name": "a GPU", "memory_bytes": 24 << 30}


@pytest.fixture
def page(qtbot, tmp_path):
    window = MainWindow(refresh=False)
    qtbot.addWidget(window)
    project = Project.create(tmp_path / "project", a_name="horse", b_name="zebra")
    for key in ("A", "B"):
        (tmp_path / key).mkdir()
        project.domain(key).paths = [str(tmp_path / key)]
    window.set_project(project)
    yield window.training
    window.close()


def _devices(page, devices: list[dict]) -> None:
    page.registry.devices = {"devices": devices, "default": devices[0]["id"]}
    page.registry.devices_changed.emit()


def _shown(page) -> bool:
    return page.hyper._form.isRowVisible(page.hyper.field("gpus"))


def test_one_gpu_offers_no_choice_of_gpus(page):
    _devices(page, [_gpu(0), CPU])
    assert not _shown(page)
    assert "--gpus" not in page.train_arguments(page.project.folder / "run")


def test_several_gpus_are_offered_and_reach_the_job(page, tmp_path):
    _devices(page, [_gpu(0), _gpu(1), _gpu(2), CPU])
    assert _shown(page)
    assert page.hyper.field("gpus").maximum() == 3
    page.hyper.set_value("gpus", 3)
    args = build_parser().parse_args(page.train_arguments(tmp_path / "run"))
    assert args.gpus == 3
    # One chosen GPU (or the CPU) means one process: the choice goes away.
    page.device.setCurrentIndex(page.device.findData("cuda:1"))
    assert not _shown(page) and page.hyper.value("gpus") == 1
    assert build_parser().parse_args(page.train_arguments(tmp_path / "run")).gpus is None
