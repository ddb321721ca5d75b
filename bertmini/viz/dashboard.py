"""Watching training: loss, accuracies, learning rate, gradient norm and throughput per step.

The trainer hands each step's metrics to its callbacks as a dict, e.g.

    {"step": 120, "loss": 4.1, "mlm_accuracy": 0.21, "nsp_accuracy": 0.74,
     "lr": 4.8e-4, "grad_norm": 1.3, "tokens_per_s": 5200.0}

(any key may be missing) and appends it to `metrics.jsonl`. Two ways to look at them:

* `plot_history(history_or_path, save="curves.png")`: one static figure, in a terminal or at
  the end of a notebook.
* `LiveDashboard(update_every_s=1.0)`: a trainer callback that keeps ONE figure and, in a
  notebook, shows it as PNG bytes in one `ipywidgets.Image`. A redraw costs a tenth of a
  second or more on a CPU, so it redraws at most once every `update_every_s` seconds (plus
  once at the end): the picture is replaced in place, nothing new is printed per step, and
  nothing flickers.

Shown in chapter 07 (`chapters/07_pretraining.ipynb`).
"""

import math
import time
from pathlib import Path

import IPython.display
import ipywidgets
from matplotlib.figure import Figure

from ..train import read_metrics
from .render import figure_to_png, in_notebook, new_figure, save_figure

# Panel title -> the metric keys it draws (one line each, when present).
PANELS = {
    # Training metrics every step; eval_* (what the trainer logs for the validation set) when
    # it was evaluated.
    "loss": ("loss", "mlm_loss", "nsp_loss", "eval_loss"),
    "accuracy": (
        "mlm_accuracy",
        "nsp_accuracy",
        "accuracy",
        "eval_mlm_accuracy",
        "eval_nsp_accuracy",
        "eval_accuracy",
    ),
    "learning rate": ("lr",),
    "gradient norm": ("grad_norm",),
    "throughput (tokens/s)": ("tokens_per_s",),
}


def _as_history(history_or_path) -> list[dict]:
    if isinstance(history_or_path, (str, Path)):
        return read_metrics(history_or_path)
    history = list(history_or_path)
    for record in history:
        if not isinstance(record, dict):
            raise TypeError(f"each history entry must be a dict of metrics, got {type(record)}")
    return history


def _series(history: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one metric over the records that have it (and a finite value)."""
    steps, values = [], []
    for index, record in enumerate(history):
        value = record.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            steps.append(record.get("step", index))
            values.append(float(value))
    return steps, values


class _Curves:
    """One figure with a panel per metric group; `draw(history)` updates its lines in place."""

    def __init__(self):
        self.figure = new_figure(12.0, 6.0)
        axes = self.figure.subplots(2, 3).ravel()
        self.axes = dict(zip(PANELS, axes, strict=False))
        self.summary = axes[-1]  # the sixth panel: latest values as text
        self.summary.axis("off")
        self.text = self.summary.text(0.02, 0.98, "", va="top", family="monospace", fontsize=10)
        self.lines = {}
        for title, ax in self.axes.items():
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            for key in PANELS[title]:
                (self.lines[key],) = ax.plot([], [], label=key)
        self.axes["accuracy"].set_ylim(0.0, 1.0)
        self.axes["learning rate"].ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        self.figure.tight_layout()

    def draw(self, history: list[dict]) -> Figure:
        for title, ax in self.axes.items():
            present = []
            for key in PANELS[title]:
                steps, values = _series(history, key)
                self.lines[key].set_data(steps, values)
                self.lines[key].set_visible(bool(values))
                if values:
                    present.append(self.lines[key])
            ax.relim(visible_only=True)
            ax.set_autoscaley_on(title != "accuracy")  # set_ylim below turns it off: back on
            ax.autoscale_view()
            if title.startswith("throughput") and present:
                ax.set_ylim(bottom=0.0)  # from zero: small jitter should look small
            if len(present) > 1:
                ax.legend(handles=present, fontsize=8)
            elif ax.get_legend() is not None:
                ax.get_legend().remove()
        latest = {}
        for record in history:
            latest.update(record)
        lines = [f"{key:>14} {_format(value)}" for key, value in latest.items()]
        self.text.set_text("latest\n" + "\n".join(lines) if lines else "waiting for step 1 ...")
        return self.figure


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def plot_history(history_or_path, save=None) -> Figure:
    """The training curves of a list of metric dicts or a `metrics.jsonl` path, as one figure.

    save: a path to also write the figure to (PNG, PDF or SVG by suffix).
    """
    figure = _Curves().draw(_as_history(history_or_path))
    if save is not None:
        save_figure(figure, save)
    return figure


class LiveDashboard:
    """A trainer callback drawing live curves, at most once every `update_every_s` seconds.

    Use `trainer = Trainer(..., callbacks=[LiveDashboard()])`, or call it yourself:
    `dashboard(record)` / `dashboard.update(record)` adds one step's dict, `dashboard(history)`
    replaces the whole list, `dashboard.close()` draws the final state. In a notebook the
    figure appears once (as an `ipywidgets.Image`) and is replaced in place; elsewhere it is
    only redrawn (and written to `save`, if given), so a terminal run can watch a PNG file.
    """

    def __init__(self, update_every_s: float = 1.0, save=None, display: bool | None = None):
        if update_every_s < 0:
            raise ValueError(f"update_every_s must be >= 0 seconds, got {update_every_s}")
        self.update_every_s = update_every_s
        self.save = save
        self.history: list[dict] = []
        self.redraws = 0  # how many times the figure was drawn (bounded by the rate)
        self._curves = _Curves()
        self._next_draw = -math.inf  # time.monotonic() after which the next redraw may run
        self.image = None  # the ipywidgets.Image, in a notebook
        if display if display is not None else in_notebook():
            self.show()

    @property
    def figure(self) -> Figure:
        return self._curves.figure

    def show(self):
        """Display the dashboard's single picture (done for you in a notebook)."""
        if self.image is None:
            self.image = ipywidgets.Image(format="png", value=self._render())
        IPython.display.display(self.image)
        return self.image

    def __call__(self, record_or_history) -> None:
        if isinstance(record_or_history, dict):
            self.history.append(record_or_history)
        else:
            self.history = _as_history(record_or_history)
        self._maybe_draw()

    def update(self, record: dict) -> None:
        """Add one step's metrics; redraws only if `update_every_s` passed since the last draw."""
        if not isinstance(record, dict):
            raise TypeError(f"update takes one step's metrics as a dict, got {type(record)}")
        self(record)

    def _maybe_draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now >= self._next_draw:
            self.redraw()
            # A redraw costs ~0.1-0.5 s on a laptop CPU: wait at least 4x that long before the
            # next one, so drawing never takes more than ~20% of the training time.
            cost = time.monotonic() - now
            self._next_draw = now + max(self.update_every_s, 4 * cost)

    def redraw(self) -> None:
        png = self._render()
        if self.image is not None:
            self.image.value = png
        if self.save is not None:
            Path(self.save).write_bytes(png)

    def _render(self) -> bytes:
        self.redraws += 1
        return figure_to_png(self._curves.draw(self.history), tight=False)  # layout is fixed

    def close(self) -> Figure:
        """Draw the final state (whatever the rate limit) and return the figure."""
        self._maybe_draw(force=True)
        return self.figure
