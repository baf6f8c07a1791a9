"""Model files describe themselves: they load without their run and rebuild the same outputs."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import make_run
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from cyclestudio.cli import main
from cyclestudio.core.checkpoint import load_checkpoint
from cyclestudio.core.modelfile import (
    METADATA_KEY,
    export_model,
    load_model,
    load_translator,
    read_info,
)
from cyclestudio.errors import UserError


def test_a_model_file_loads_with_no_run_folder_and_rebuilds_the_checkpoints_outputs(tmp_path):
    run = make_run(tmp_path / "run")
    model = export_model(run, tmp_path / "elsewhere" / "horse2zebra")
    assert model.suffix == ".csmodel"
    moved = tmp_path / "moved.csmodel"
    shutil.copy(model, moved)
    from_checkpoint = load_translator(run, "cpu", precision="fp32")
    shutil.rmtree(run)  # nothing of the run is left
    from_file = load_translator(moved, "cpu", precision="fp32")
    image = (np.random.default_rng(1).random((40, 52, 3)) * 255).astype(np.uint8)
    for direction in ("a2b", "b2a"):
        expected = from_checkpoint.translate(image, direction)
        assert np.array_equal(from_file.translate(image, direction), expected)
    assert not np.allclose(from_file.translate(image, "a2b"), from_file.translate(image, "b2a"))


def test_the_header_says_what_the_model_is(tmp_path):
    run = make_run(tmp_path / "run", options={"width": 4, "blocks": 2}, iteration=42)
    path = export_model(run)
    assert path == run / "model.csmodel"
    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()[METADATA_KEY])
        keys = set(f.keys())
    assert header["format"] == "cyclestudio.model"
    assert header["generator"] == "resnet_6blocks"
    assert header["options"] == {"width": 4, "blocks": 2}
    assert (header["a_name"], header["b_name"], header["size"]) == ("horse", "zebra", 32)
    assert header["channels"] == 3 and header["iteration"] == 42
    assert "cyclestudio_version" in header
    assert {k.split(".")[0] for k in keys} == {"G_A", "G_B"}
    assert read_info(path).generator == "resnet_6blocks"


def test_a_model_whose_plugin_is_missing_names_it(tmp_path):
    path = export_model(make_run(tmp_path / "run"))
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()[METADATA_KEY])
    header["generator"] = "fancy_diffusion_unet"
    forged = tmp_path / "forged.csmodel"
    save_file(tensors, str(forged), metadata={METADATA_KEY: json.dumps(header)})
    with pytest.raises(UserError) as caught:
        load_model(forged)
    assert "fancy_diffusion_unet" in caught.value.message
    assert "not installed" in caught.value.message


def test_damaged_and_foreign_files_are_user_errors(tmp_path):
    garbage = tmp_path / "garbage.csmodel"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="not a readable model file"):
        load_model(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(UserError, match="not a cyclestudio model file"):
        load_model(foreign)
    with pytest.raises(UserError, match="not a cyclestudio run folder"):
        load_model(tmp_path)


def test_export_command_writes_the_model_file(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert main(["export", str(run), "--out", str(tmp_path / "m.csmodel")]) == 0
    assert "resnet_6blocks" in capsys.readouterr().out
    assert read_info(tmp_path / "m.csmodel").b_name == "zebra"
    assert main(["export", str(tmp_path / "nothing-here")]) == 2


def test_a_greyscale_unet_model_round_trips(tmp_path):
    run = make_run(tmp_path / "run", generator="unet_128", options={"width": 4}, channels=1)
    model = load_model(export_model(run))
    assert model.multiple == 128 and model.info.channels == 1
    translator = load_translator(run / "model.csmodel", "cpu")
    out = translator.translate(np.full((50, 70, 1), 128, np.uint8))
    assert out.shape == (50, 70, 1)


class Payload:
    """Unpickling this makes a folder: proof that a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def _hostile(marker: Path) -> dict:
    return {"format": "cyclestudio.checkpoint", "format_version": 1, "config": {},
            "nets": {"G_A": Payload(marker)}}


def test_the_payloads_are_live(tmp_path):
    # Were they inert, the tests below would pass whatever the loaders did.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.is_dir()
    marker.rmdir()
    torch.save(_hostile(marker), tmp_path / "hostile.pt")
    torch.load(tmp_path / "hostile.pt", weights_only=False)
    assert marker.is_dir()


def test_a_model_file_is_never_unpickled(tmp_path):
    marker = tmp_path / "ran"
    for name, payload in (("pickled.csmodel", pickle.dumps(Payload(marker))),
                          ("torch-saved.csmodel", None)):
        path = tmp_path / name
        if payload is None:
            torch.save(_hostile(marker), path)
        else:
            path.write_bytes(payload)
        with pytest.raises(UserError, match="not a readable model file"):
            load_model(path)
        with pytest.raises(UserError):
            read_info(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch, on the raw pickle
def test_a_checkpoint_or_run_folder_is_never_unpickled(tmp_path):
    marker = tmp_path / "ran"
    run = make_run(tmp_path / "run")
    latest = run / "checkpoints" / "latest.pt"
    torch.save(_hostile(marker), latest)  # a run folder someone handed us
    loose = tmp_path / "shared.pt"
    loose.write_bytes(pickle.dumps(Payload(marker)))
    for source in (run, latest, loose):
        with pytest.raises(UserError, match="not a readable cyclestudio checkpoint"):
            load_model(source)
        with pytest.raises(UserError):
            read_info(source)
        with pytest.raises(UserError):
            load_checkpoint(latest if source == run else source)
    assert main(["translate", str(run), str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert main(["train", "--resume", str(run), "--device", "cpu"]) == 2
    assert not marker.exists()
