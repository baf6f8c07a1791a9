"""A model file from a stranger: a header that asks for a giant network, a header of the
wrong shape, or weights that are NaN are refused in one clear line, before anything big
is allocated, and a job run for the app always ends with its `error` event."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import events
from model_helpers import make_run
from PIL import Image
from safetensors.torch import load_file, save_file

from cyclestudio.cli import main
from cyclestudio.core.modelfile import METADATA_KEY, export_model, load_model
from cyclestudio.errors import UserError


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    return export_model(make_run(folder / "run"), folder / "tiny.csmodel")


def forged(model: Path, out: Path, header=None, tensors=None) -> Path:
    """``model`` with its header (JSON-able value, or raw text) and tensors replaced."""
    from safetensors import safe_open

    with safe_open(str(model), framework="pt") as f:
        real = json.loads(f.metadata()[METADATA_KEY])
    weights = load_file(str(model)) if tensors is None else tensors
    if callable(header):
        header = header(real)
    text = header if isinstance(header, str) else json.dumps(real if header is None else header)
    save_file(weights, str(out), metadata={METADATA_KEY: text})
    return out


def test_a_header_asking_for_a_giant_network_is_refused_before_it_is_built(model, tmp_path):
    # width 128 and 64 blocks are each within the plugin's ranges; together they ask for
    # 300 million parameters (1.2 GB) from a file that holds 60 thousand.
    giant = forged(model, tmp_path / "giant.csmodel",
                   lambda h: {**h, "options": {**h["options"], "width": 128, "blocks": 64}})
    code = ("import resource, sys\nfrom pathlib import Path\n"
            "from cyclestudio.core.modelfile import load_model\n"
            "from cyclestudio.errors import UserError\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"try:\n    load_model(Path({str(giant)!r}))\nexcept UserError as e:\n"
            "    print(e.message)\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=240)
    message, grown_mb = done.stdout.strip().splitlines()
    assert int(grown_mb) < 200, f"{grown_mb} MB allocated before refusing"
    assert "giant.csmodel does not hold the network its header describes" in message
    assert "model.1.weight" in message and "(128, 3, 7, 7)" in message


def test_options_outside_the_plugins_ranges_are_refused(model, tmp_path):
    bad = forged(model, tmp_path / "bad.csmodel",
                 lambda h: {**h, "options": {**h["options"], "width": 100_000}})
    with pytest.raises(UserError, match="option 'width' of resnet_6blocks is out of range"):
        load_model(bad)


@pytest.mark.parametrize("header", [
    [1, 2, 3],
    "not json at all",
    lambda h: {**h, "format_version": None},
    lambda h: {**h, "options": ["width", 4]},
    lambda h: {**h, "size": "big"},
    lambda h: {**h, "channels": 7},
    lambda h: {**h, "generator": {"name": "resnet_6blocks"}},
], ids=["a list", "not JSON", "null version", "options a list", "size text", "7 channels",
        "generator an object"])
def test_a_header_of_the_wrong_shape_is_an_error_event_not_a_traceback(
        model, tmp_path, capsys, header):
    bad = forged(model, tmp_path / "bad.csmodel", header)
    Image.new("RGB", (16, 16)).save(tmp_path / "in.png")
    code = main(["translate", str(bad), str(tmp_path / "in.png"), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--events"])
    out = capsys.readouterr()
    assert code == 2
    (error,) = events(out.out)
    assert error["event"] == "error" and error["kind"] == "user"
    assert "bad.csmodel" in error["message"] and "header" in error["message"]
    assert "Traceback" not in out.err


def test_weights_that_are_not_finite_are_refused(model, tmp_path):
    weights = load_file(str(model))
    name = sorted(k for k in weights if k.startswith("G_A.") and k.endswith("weight"))[0]
    weights[name] = weights[name].clone()
    weights[name].view(-1)[0] = float("nan")
    nan = forged(model, tmp_path / "nan.csmodel", tensors=weights)
    with pytest.raises(UserError) as caught:
        load_model(nan)
    assert f"{name} holds NaN or infinite values" in caught.value.message
    weights[name].view(-1)[0] = float("inf")
    with pytest.raises(UserError, match="NaN or infinite"):
        load_model(forged(model, tmp_path / "inf.csmodel", tensors=weights))


def test_a_checkpoint_whose_config_asks_for_another_network_is_refused(tmp_path):
    run = make_run(tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    state["config"] = {**config, "generator": {"name": "resnet_6blocks",
                                               "options": {"width": 128, "blocks": 64}}}
    torch.save(state, run / "checkpoints" / "latest.pt")
    with pytest.raises(UserError, match="does not hold the network its header describes"):
        load_model(run)


def test_an_unexpected_failure_in_any_job_ends_with_an_error_event(model, tmp_path, capsys,
                                                                   monkeypatch):
    from cyclestudio.core import translate as core_translate

    def broken(*_args, **_kwargs):
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(core_translate.Translator, "translate_batch", broken)
    Image.new("RGB", (16, 16)).save(tmp_path / "in.png")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    Image.new("RGB", (16, 16)).save(inbox / "in.png")
    for job in (["translate", str(model), str(tmp_path / "in.png"), "--out",
                 str(tmp_path / "out")],
                ["watch", str(model), "--in", str(inbox), "--out", str(tmp_path / "w")]):
        code = main([*job, "--device", "cpu", "--events"])
        seen = events(capsys.readouterr().out)
        assert code == 1, job[0]
        assert seen[-1]["event"] == "error", (job[0], seen)
        assert seen[-1]["kind"] == "internal"
        assert "something nobody expected" in seen[-1]["message"]
        assert "RuntimeError" in seen[-1]["traceback"]


def test_jobs_without_events_say_what_is_wrong_in_one_line(model, tmp_path, capsys):
    bad = forged(model, tmp_path / "bad.csmodel", [1, 2])
    (tmp_path / "a").mkdir()
    Image.new("RGB", (16, 16)).save(tmp_path / "a" / "x.png")
    for job in (["eval", str(bad), "--a", str(tmp_path / "a"), "--truth", str(tmp_path / "a"),
                 "--device", "cpu"],
                ["export", str(tmp_path / "missing-run"), "--out", str(tmp_path / "m")]):
        assert main(job) == 2
        err = capsys.readouterr().err
        assert err.startswith("cyclestudio: error: "), err
        assert "Traceback" not in err


def test_a_bad_command_line_for_the_app_is_an_error_event_too(model, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["translate", str(model), str(tmp_path), "--out", str(tmp_path / "o"),
              "--tile-size", "9", "--events"])
    assert exited.value.code == 2
    (error,) = events(capsys.readouterr().out)
    assert error["event"] == "error" and "--tile-size" in error["message"]


def test_loading_a_model_does_not_start_torchs_compiler(tmp_path):
    """The meta-device check of an untrusted file must not pull in torch's compiler: that
    added 2.5 s and ~100 MiB to every translate, watch and export command."""
    import subprocess
    import sys

    from cyclestudio.core.demo import demo_model_path

    code = ("import sys\nfrom cyclestudio.core.modelfile import load_model\n"
            f"load_model({str(demo_model_path())!r})\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"
