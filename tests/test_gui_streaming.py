"""Workers seen from the window: a run that logs fast must not freeze it (events arrive in
batches, the loss plot draws a bounded number of points), and a CPU run must not crawl."""

from __future__ import annotations

import sys
import textwrap

import numpy as np

from cyclestudio.gui import jobs
from cyclestudio.gui.jobs import JobRunner
from cyclestudio.gui.loss_plot import MAX_DRAWN, LossPlot, Series

FLOOD = textwrap.dedent("""
    import json, sys
    out = sys.stdout
    for i in range(1, 40001):
        out.write(json.dumps({"event": "progress", "iteration": i,
                              "losses": {"G_A": 1.0, "D_A": 0.5}, "pad": "x" * 200}) + "\\n")
    out.write(json.dumps({"event": "stopped", "iteration": 40000}) + "\\n")
""")


def trailing_mean(values: np.ndarray, window: int) -> np.ndarray:
    return np.array([values[max(i + 1 - window, 0):i + 1].mean() for i in range(len(values))])


def test_a_flooding_worker_delivers_every_event_in_batches_before_it_ends(
        qtbot, tmp_path, monkeypatch):
    script = tmp_path / "flood.py"
    script.write_text(FLOOD)
    monkeypatch.setattr(jobs, "worker_command", lambda args: [sys.executable, str(script)])
    runner = JobRunner()
    batches: list[int] = []
    iterations: list[int] = []
    ended_after: list[int] = []

    def got(events: list[dict]) -> None:
        batches.append(len(events))
        iterations.extend(e["iteration"] for e in events if e["event"] == "progress")

    runner.events.connect(got)
    runner.ended.connect(lambda *_: ended_after.append(len(iterations)))
    with qtbot.waitSignal(runner.ended, timeout=60000) as ended:
        runner.start(["flood"])
    assert ended.args[:2] == [0, False] and ended.args[2]["event"] == "stopped"
    assert iterations == list(range(1, 40001))  # all of them, in order
    assert ended_after == [40000]  # `ended` comes after the last event
    # One slot call per read of the pipe, not one per line.
    assert len(batches) < len(iterations) / 5


def test_a_short_run_is_drawn_point_for_point_with_the_chosen_smoothing():
    rng = np.random.default_rng(0)
    ys = rng.random(300)
    series = Series()
    for i in range(0, 300, 37):
        series.extend(np.arange(i, min(i + 37, 300)) * 2.0, ys[i:i + 37])
    xs, drawn = series.display(window=10, max_points=MAX_DRAWN)
    assert np.allclose(xs, np.arange(300) * 2.0)
    assert np.allclose(drawn, trailing_mean(ys, 10))
    assert np.allclose(series.display(window=1, max_points=MAX_DRAWN)[1], ys)


def test_a_long_run_is_drawn_as_a_bounded_number_of_averages_not_a_noisy_subsample():
    n = 150_000  # more than one storage block
    rng = np.random.default_rng(1)
    ys = 1.0 + rng.normal(0, 0.5, n)
    series = Series()
    series.extend(np.arange(n, dtype=float), ys)
    assert series.n == n and np.allclose(series.y, ys)
    xs, drawn = series.display(window=1, max_points=1000)
    assert len(xs) <= 1000 and xs[-1] == n - 1
    per_point = -(-n // 1000)
    i = int(xs[500])
    assert np.isclose(drawn[500], ys[i + 1 - per_point:i + 1].mean())
    assert drawn[1:].std() < 0.1  # the 0.5 noise is averaged away


def test_the_plot_adds_a_batch_of_progress_events_per_curve(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.add_many([(i, {"G_A": 1.0 / i, "D_A": 0.5, "note": "not a number"})
                   for i in range(1, 5001)])
    assert set(plot.curves) == {"G_A", "D_A"}
    assert plot.points() == 10000
    plot._redraw_if_dirty()
    x, _ = plot.curves["G_A"].getData()
    assert len(x) == MAX_DRAWN and x[-1] == 5000


def test_the_colour_loss_starts_hidden_so_the_other_losses_keep_their_scale(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.add_many([(i, {"G_A": 0.3, "cycle_A": 0.2, "colour_A": 12.0}) for i in range(1, 51)])
    plot._redraw_if_dirty()
    assert plot.toggles["G_A"].isChecked() and not plot.toggles["colour_A"].isChecked()
    view = plot.plot.getViewBox()
    view.autoRange()
    assert view.viewRange()[1][1] < 1  # the axis is the small losses'
    plot.toggles["colour_A"].setChecked(True)  # the user asks for it
    assert plot.curves["colour_A"].isVisible()
    view.autoRange()
    assert view.viewRange()[1][1] > 12


ENV_WORKER = textwrap.dedent("""
    import json, os
    print(json.dumps({"event": "finished", "omp": os.environ.get("OMP_WAIT_POLICY")}))
""")


def test_workers_ask_openmp_to_sleep_not_spin_unless_the_user_chose(qtbot, tmp_path,
                                                                      monkeypatch):
    # Spinning OpenMP threads made a CPU training run 50x slower whenever the window
    # (or anything else) wanted one of the machine's two cores.
    script = tmp_path / "env.py"
    script.write_text(ENV_WORKER)
    monkeypatch.setattr(jobs, "worker_command", lambda args: [sys.executable, str(script)])
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    runner = JobRunner()
    with qtbot.waitSignal(runner.ended, timeout=30000) as ended:
        runner.start(["env"])
    assert ended.args[2]["omp"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with qtbot.waitSignal(runner.ended, timeout=30000) as ended:
        runner.start(["env"])
    assert ended.args[2]["omp"] == "ACTIVE"
