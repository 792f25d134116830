"""Sliders over the click index (and an image picker) for the notebooks.

The pattern: compute everything first (trajectories with their probability maps), then give a
``draw(k) -> Figure`` that only draws. The callbacks display the figure and return None (a
returned value would be printed under the figure, and nbval would compare it).

    widgets.click_slider(lambda k: figures.fig_qualitative(ep, k), max_clicks=20)

Headless runs (papermill, nbval) store the figure of the initial value; Jupyter and Voilà redraw
it on every move of the slider.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from matplotlib.figure import Figure


def _show(fig: Figure | None) -> None:
    """Display ``fig`` as a PNG (works whatever matplotlib backend the kernel has)."""
    if fig is None:
        return
    from IPython.display import display

    display(fig)


def click_slider(
    draw: Callable[[int], Figure | None],
    max_clicks: int,
    *,
    start: int | None = None,
    minimum: int = 1,
    description: str = "clicks",
) -> None:
    """Show a slider over the click index k in [minimum, max_clicks] and ``draw(k)`` under it.

    Args:
        draw: builds the figure for click k (no computation beyond drawing).
        max_clicks: the last click index.
        start: initial value (default ``minimum``).
        minimum: the first click index (0 shows the state before any click, where meaningful).
        description: the slider's label.
    """
    from IPython.display import display
    from ipywidgets import IntSlider, VBox, interactive_output

    if max_clicks < minimum:
        raise ValueError(f"max_clicks ({max_clicks}) must be at least minimum ({minimum})")
    value = minimum if start is None else min(max(start, minimum), max_clicks)
    slider = IntSlider(value=value, min=minimum, max=max_clicks, description=description,
                       continuous_update=False)  # fmt: skip

    def update(k: int) -> None:
        _show(draw(k))

    display(VBox([slider, interactive_output(update, {"k": slider})]))


def image_click_picker(
    draw: Callable[[str, int], Figure | None],
    names: Sequence[str],
    max_clicks: int,
    *,
    start: int = 1,
    minimum: int = 1,
) -> None:
    """A Dropdown over image ``names`` and a click slider; ``draw(name, k)`` under them.

    ``draw`` may compute what an image needs the first time it is picked (cache it, e.g. with
    ``iislib.notebooks.Episodes``); moving the slider afterwards only draws.
    """
    from IPython.display import display
    from ipywidgets import Dropdown, HBox, IntSlider, VBox, interactive_output

    if not names:
        raise ValueError("image_click_picker needs at least one image name")
    picker = Dropdown(options=list(names), value=names[0], description="image")
    slider = IntSlider(value=min(max(start, minimum), max_clicks), min=minimum, max=max_clicks,
                       description="clicks", continuous_update=False)  # fmt: skip

    def update(name: str, k: int) -> None:
        _show(draw(name, k))

    display(
        VBox([HBox([picker, slider]), interactive_output(update, {"name": picker, "k": slider})])
    )
