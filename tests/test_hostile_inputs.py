"""Inputs a batch meets in the wild: links that loop or point nowhere, and animations.
A bad entry is one failed item with its reason, never the end of the batch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers import events
from model_helpers import make_run
from PIL import Image

from cyclestudio.cli import main
from cyclestudio.core.modelfile import export_model


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    return export_model(make_run(folder / "run"), folder / "tiny.csmodel")


def links_folder(folder: Path) -> Path:
    """A folder with one good image, a link to itself, a broken link and a folder loop."""
    folder.mkdir()
    Image.new("RGB", (20, 12), (30, 140, 90)).save(folder / "good.png")
    os.symlink("loop.png", folder / "loop.png")
    os.symlink("missing.png", folder / "dangling.png")
    os.symlink(".", folder / "again")  # a folder that contains itself
    return folder


def test_a_looping_link_in_the_input_folder_is_one_failed_file(model, tmp_path, capsys):
    src = links_folder(tmp_path / "in")
    code = main(["translate", str(model), str(src), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--events"])
    seen = events(capsys.readouterr().out)
    files = {Path(e["input"]).name: e for e in seen if e["event"] == "file"}
    assert code == 1 and seen[-1]["event"] == "finished"
    assert files["good.png"]["status"] == "translated"
    assert files["loop.png"]["status"] == "failed"
    assert files["loop.png"]["reason"] == "a symbolic link that loops back on itself"
    assert files["dangling.png"]["reason"] == ("a symbolic link to 'missing.png', which does "
                                               "not exist")
    assert len(files) == 3  # the folder loop is not followed
    assert (tmp_path / "out" / "good_zebra.png").is_file()
    # Named on the command line, the same: one failed file, not a crash.
    code = main(["translate", str(model), str(src / "loop.png"), str(src / "good.png"),
                 "--out", str(tmp_path / "out2"), "--device", "cpu", "--events"])
    files = {Path(e["input"]).name: e for e in events(capsys.readouterr().out)
             if e["event"] == "file"}
    assert code == 1 and files["loop.png"]["status"] == "failed"
    assert files["good.png"]["status"] == "translated"
    assert np.asarray(Image.open(tmp_path / "out2" / "good_zebra.png")).shape == (12, 20, 3)


def test_an_animated_gif_comes_out_animated_with_every_frame_translated(model, tmp_path,
                                                                         capsys):
    from cyclestudio.core.modelfile import load_translator

    rng = np.random.default_rng(5)
    frames = [Image.fromarray((rng.random((14, 22, 3)) * 255).astype(np.uint8)).convert(
        "P", palette=Image.Palette.ADAPTIVE) for _ in range(3)]
    frames[0].save(tmp_path / "wave.gif", save_all=True, append_images=frames[1:],
                   duration=[80, 120, 200], loop=0)
    code = main(["translate", str(model), str(tmp_path / "wave.gif"), "--out",
                 str(tmp_path / "out"), "--device", "cpu", "--precision", "fp32", "--events"])
    (done,) = [e for e in events(capsys.readouterr().out) if e["event"] == "file"]
    assert code == 0 and done["status"] == "translated"
    assert "all 3 frames translated" in done["reason"]
    translator = load_translator(model, "cpu", precision="fp32")
    with Image.open(tmp_path / "wave.gif") as source, Image.open(
            tmp_path / "out" / "wave_zebra.png") as out:
        assert out.n_frames == 3 and out.info["loop"] == 0
        for index in range(3):
            source.seek(index)
            out.seek(index)
            assert out.info["duration"] == [80, 120, 200][index]
            expected = translator.translate(np.asarray(source.convert("RGB")))
            assert np.array_equal(np.asarray(out.convert("RGB")),
                                  np.rint(expected * 255).astype(np.uint8))
    # JPEG holds one frame: the first is written, and the note says so.
    main(["translate", str(model), str(tmp_path / "wave.gif"), "--out", str(tmp_path / "jpg"),
          "--device", "cpu", "--format", "jpg", "--events"])
    (done,) = [e for e in events(capsys.readouterr().out) if e["event"] == "file"]
    assert "only the first of 3 frames" in done["reason"]
