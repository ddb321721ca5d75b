"""From a matplotlib figure to a picture: the plumbing every visualizer shares.

Every visual in `bertmini.viz` is a plain matplotlib `Figure` first: it shows up in nbval,
on GitHub and in PDFs, and saves to PNG in a terminal. Two small details make that work well:

* a figure made through pyplot is also *registered* with pyplot, and the notebook's inline
  backend shows every registered figure at the end of a cell. A function that returns its
  figure would then be shown twice (once as the cell's value, once by the backend). So each
  new figure is closed in pyplot right away: it still draws, saves and displays as a value.
* in a notebook, a widget shows the figure as PNG bytes in an `ipywidgets.Image`. Replacing
  those bytes swaps one picture for another in place: no flicker, no growing output, and no
  JavaScript beyond core ipywidgets (which Colab, VS Code and JupyterLab all ship).
"""

import io
import sys

import matplotlib.pyplot as plt
from matplotlib.figure import Figure


def new_figure(width: float, height: float, dpi: int = 100) -> Figure:
    """A fresh figure of `width` x `height` inches that pyplot will not show a second time."""
    figure = plt.figure(figsize=(width, height), dpi=dpi)
    plt.close(figure)  # still drawable and displayable; just not auto-shown by the backend
    return figure


def figure_to_png(figure: Figure, dpi: int | None = None, tight: bool = True) -> bytes:
    """The figure as PNG bytes (what an `ipywidgets.Image` and a saved file hold).

    tight=True crops the margins, at the price of drawing the figure twice.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buffer.getvalue()


def save_figure(figure: Figure, path) -> None:
    """Write the figure to `path` (the format follows the suffix: .png, .pdf, .svg)."""
    figure.savefig(path, dpi=figure.dpi, bbox_inches="tight")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, VS Code), False in a terminal or pytest."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    # Kernel shells (ipykernel's, and Colab's subclass of it) have a kernel; terminal IPython not.
    return getattr(shell, "kernel", None) is not None
