"""Sliders over the click index (and an image picker) for the notebooks.

The pattern: compute everything first (trajectories with their probability maps), then give a
``draw(k) -> Figure`` that only draws.

    widgets.click_slider(lambda k: figures.fig_qualitative(ep, k), max_clicks=20)

The figure is shown as PNG bytes in an ``ipywidgets.Image`` under the controls, redrawn when a
control moves, and never through an ``Output`` widget (nor ``interact``/``interactive_output``,
which use one). Why: a headless runner (nbclient, hence papermill and ``jupyter nbconvert
--execute``) mirrors every Output widget and sends its captured outputs back to the kernel on
the shell channel while it waits for the cell's ``execute_reply`` on that same socket.
jupyter_client (>= 7.4.2, up to 8.10 at least) sends through a synchronous shadow of the asyncio
socket, which consumes the socket's edge-triggered wake-up: when the reply has already arrived,
the runner sleeps until the cell timeout, or forever without one. Headless runs store the figure
of the initial value in the notebook's widget state; Jupyter and Voilà redraw it on every move.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from html import escape
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

if TYPE_CHECKING:
    from ipywidgets import HTML, Image, VBox


def figure_png(fig: Figure | None) -> bytes:
    """``fig`` as PNG bytes at its own dpi, cropped as the inline backend crops it (None: b"")."""
    if fig is None:
        return b""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight")
    return buf.getvalue()


def _figure_view(draw: Callable[[], Figure | None]) -> tuple[Image, HTML, Callable[[], None]]:
    """An Image widget showing ``draw()`` now, an HTML status line, and the redraw function.

    A failing redraw keeps the previous image and writes the error into the status line:
    exceptions raised in widget callbacks only reach the kernel's log, where nobody sees them.
    The first draw is not caught: a broken figure must fail the cell (and the smoke runs).
    """
    from ipywidgets import HTML, Image

    image = Image(value=figure_png(draw()), format="png")
    status = HTML(value="")

    def redraw() -> None:
        try:
            image.value = figure_png(draw())
        except Exception as e:  # shown to the user instead of lost in the kernel's log
            status.value = f"<pre>redraw failed: {escape(f'{type(e).__name__}: {e}')}</pre>"
        else:
            status.value = ""

    return image, status, redraw


def click_slider_widget(
    draw: Callable[[int], Figure | None],
    max_clicks: int,
    *,
    start: int | None = None,
    minimum: int = 1,
    description: str = "clicks",
) -> VBox:
    """A slider over the click index k in [minimum, max_clicks] with ``draw(k)`` under it.

    Args:
        draw: builds the figure for click k (no computation beyond drawing).
        max_clicks: the last click index.
        start: initial value (default ``minimum``; clipped into the range).
        minimum: the first click index (0 shows the state before any click, where meaningful).
        description: the slider's label.

    Returns:
        ``VBox([IntSlider, Image, HTML])``; the HTML line shows a failed redraw.
    """
    from ipywidgets import IntSlider, VBox

    if max_clicks < minimum:
        raise ValueError(f"max_clicks ({max_clicks}) must be at least minimum ({minimum})")
    value = minimum if start is None else min(max(start, minimum), max_clicks)
    slider = IntSlider(value=value, min=minimum, max=max_clicks, description=description,
                       continuous_update=False)  # fmt: skip
    image, status, redraw = _figure_view(lambda: draw(slider.value))
    slider.observe(lambda _: redraw(), names="value")
    return VBox([slider, image, status])


def click_slider(
    draw: Callable[[int], Figure | None],
    max_clicks: int,
    *,
    start: int | None = None,
    minimum: int = 1,
    description: str = "clicks",
) -> None:
    """Display ``click_slider_widget(...)`` (same arguments)."""
    from IPython.display import display

    display(click_slider_widget(draw, max_clicks, start=start, minimum=minimum,
                                description=description))  # fmt: skip


def image_click_picker_widget(
    draw: Callable[[str, int], Figure | None],
    names: Sequence[str],
    max_clicks: int,
    *,
    start: int = 1,
    minimum: int = 1,
) -> VBox:
    """A Dropdown over image ``names`` and a click slider; ``draw(name, k)`` under them.

    ``draw`` may compute what an image needs the first time it is picked (cache it, e.g. with
    ``iislib.apps.paper.Episodes``); moving the slider afterwards only draws.

    Returns:
        ``VBox([HBox([Dropdown, IntSlider]), Image, HTML])``.
    """
    from ipywidgets import Dropdown, HBox, IntSlider, VBox

    if not names:
        raise ValueError("image_click_picker needs at least one image name")
    if max_clicks < minimum:
        raise ValueError(f"max_clicks ({max_clicks}) must be at least minimum ({minimum})")
    picker = Dropdown(options=list(names), value=names[0], description="image")
    slider = IntSlider(value=min(max(start, minimum), max_clicks), min=minimum, max=max_clicks,
                       description="clicks", continuous_update=False)  # fmt: skip
    image, status, redraw = _figure_view(lambda: draw(picker.value, slider.value))
    picker.observe(lambda _: redraw(), names="value")
    slider.observe(lambda _: redraw(), names="value")
    return VBox([HBox([picker, slider]), image, status])


def image_click_picker(
    draw: Callable[[str, int], Figure | None],
    names: Sequence[str],
    max_clicks: int,
    *,
    start: int = 1,
    minimum: int = 1,
) -> None:
    """Display ``image_click_picker_widget(...)`` (same arguments)."""
    from IPython.display import display

    display(image_click_picker_widget(draw, names, max_clicks, start=start, minimum=minimum))
