"""Every default and choice is defined once (cyclestudio/options.py), and the command line,
the config files and the app's Training form all follow it."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

from cyclestudio import options
from cyclestudio.cli import build_parser
from cyclestudio.core.config import DataConfig, OptimConfig, RunConfig
from cyclestudio.gui.main_window import MainWindow
from cyclestudio.gui.training_form import HyperParameters, form_settings
from cyclestudio.jobs.train import config_from_args
from cyclestudio.plugins import registry
from cyclestudio.project import Project


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: a for a in parser._actions for flag in a.option_strings}


def test_the_train_command_line_is_the_settings_table():
    actions = _actions(_subparser("train"))
    for s in options.TRAIN:
        action = actions[s.option]
        assert action.default is None, s.name  # so the job knows what was given
        if s.choices is not None:
            assert list(action.choices) == list(s.choices)
        assert s.help in action.help
        if s.default is not None and s.type is not bool:
            assert f"default {s.default}" in action.help


def test_the_translate_and_watch_command_lines_are_their_table():
    for job in ("translate", "watch"):
        actions = _actions(_subparser(job))
        for s in options.TRANSLATE:
            if s.option not in actions:
                continue
            action = actions[s.option]
            if s.choices is not None:
                assert list(action.choices) == list(s.choices), (job, s.name)
            assert s.help in action.help, (job, s.name)


def test_the_export_command_line_is_its_table():
    actions = _actions(_subparser("export"))
    for s in options.EXPORT:
        action = actions[s.option]
        assert action.default is None and list(action.choices) == list(s.choices), s.name
        assert s.help in action.help and f"default {s.default}" in action.help


def test_config_defaults_are_the_settings_defaults():
    # The settings' own defaults are the paper's recipe; the default preset is laid on
    # top of them when a run is made from the command line or the app.
    assert options.PRESETS["paper"].settings == {}
    resolved = options.resolve({"preset": "paper"})
    made = {"data": DataConfig(a=("a",), b=("b",)), "optim": OptimConfig(), "run": RunConfig()}
    assert RunConfig().preset == "paper"  # what these defaults are
    for cls_name, obj in made.items():
        for f in fields(obj):
            if f.name in options.TRAIN_BY_NAME and f.name != "preset":
                assert getattr(obj, f.name) == resolved[f.name], (cls_name, f.name)


def test_the_training_form_is_the_settings_table(qtbot):
    form = HyperParameters()
    qtbot.addWidget(form)
    shown = {s.name for s in form_settings()}
    assert shown == {s.name for s in options.TRAIN if s.in_app}
    for s in form_settings():
        widget = form.field(s.name)
        assert form.value(s.name) == options.baseline()[s.name], s.name  # the default preset
        if s.choices is not None:
            assert isinstance(widget, QComboBox)
            assert [widget.itemData(i) for i in range(widget.count())] == list(s.choices)
        elif s.type is bool:
            assert isinstance(widget, QCheckBox)
        else:
            assert isinstance(widget, QSpinBox | QDoubleSpinBox)
            low = widget.minimum() + (1 if widget.specialValueText() and s.type is int else 0)
            assert (low, widget.maximum()) == pytest.approx((s.min, s.max)) or (
                widget.specialValueText() and s.type is float), s.name
    assert form.arguments() == []  # nothing changed: the job uses its defaults


@pytest.fixture
def page(qtbot, tmp_path):
    window = MainWindow(refresh=False)
    qtbot.addWidget(window)
    window.registry.plugins = registry().to_json()  # the real plugins, as the worker lists them
    window.registry.plugins_changed.emit()
    project = Project.create(tmp_path / "project", a_name="horse", b_name="zebra")
    for key in ("A", "B"):
        folder = tmp_path / key
        folder.mkdir()
        project.domain(key).paths = [str(folder)]
    window.set_project(project)
    yield window.training
    window.close()


@pytest.mark.parametrize("epochs", [1, 3, 50, 99, 199, 200, 201, 1000])
def test_any_epochs_on_the_form_makes_a_run_the_job_accepts(page, tmp_path, epochs):
    page.hyper.set_value("epochs", epochs)
    args = build_parser().parse_args(page.train_arguments(tmp_path / "run"))
    config = config_from_args(args)  # raised "--decay-epochs 100 must be 0..--epochs" before
    assert config.optim.epochs == epochs
    assert config.optim.decay_epochs == epochs // 2


@pytest.mark.parametrize("name,value", [
    ("size", 64), ("decay_epochs", 0), ("decay_epochs", 150), ("lr_d", 0.0004),
    ("lambda_identity", 0.0), ("flip", False), ("preprocess", "crop"), ("batch_size", 4),
    ("iterations", 123), ("load_size", 300), ("lr_policy", "cosine"), ("precision", "bf16"),
])
def test_each_setting_on_the_form_reaches_the_job_as_set(page, tmp_path, name, value):
    page.hyper.set_value(name, value)
    args = build_parser().parse_args(page.train_arguments(tmp_path / "run"))
    config = config_from_args(args)
    section = {"data": config.data, "optim": config.optim, "run": config.run}
    assert getattr(section[options.TRAIN_BY_NAME[name].section], name) == value
    assert page.hyper.resolved()[name] == value
