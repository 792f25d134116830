"""The notebook widgets (iislib.drawing.widgets): an Image under the controls, never an Output widget.

No kernel is needed: ipywidgets builds its models without one, and ``observe`` callbacks fire
when a control's value is set from Python, as they do when a person moves it.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipywidgets import HTML, Dropdown, HBox, Image, IntSlider, Output, VBox, Widget
from matplotlib.figure import Figure

from iislib.drawing import widgets


def _fig(k: int) -> Figure:
    """A 2 x 1 inch figure at 50 dpi whose bar height is k (so each k draws different pixels)."""
    fig = Figure(figsize=(2, 1), dpi=50)
    ax = fig.subplots()
    ax.bar([0], [k])
    ax.set_ylim(0, 10)
    ax.set_axis_off()
    return fig


def _tree(w: Widget) -> list[Widget]:
    return [w, *(d for c in getattr(w, "children", ()) for d in _tree(c))]


class Recorder:
    """draw(*args) that records its calls and returns _fig(last argument)."""

    def __init__(self, fail_on: int | None = None):
        self.calls: list[tuple] = []
        self.fail_on = fail_on

    def __call__(self, *args):
        self.calls.append(args)
        if args[-1] == self.fail_on:
            raise RuntimeError(f"no figure for {args[-1]}")
        return _fig(args[-1])


def test_figure_png_is_the_figure_at_its_own_dpi():
    from PIL import Image as PILImage

    png = widgets.figure_png(_fig(3))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with PILImage.open(io.BytesIO(png)) as im:
        w, h = im.size
    # bbox_inches="tight" crops to the drawn bar (plus padding): at most 2 x 1 inch at 50 dpi
    assert 0 < w <= 2 * 50 + 10 and 0 < h <= 1 * 50 + 10
    assert widgets.figure_png(None) == b""
    assert widgets.figure_png(_fig(3)) != widgets.figure_png(_fig(7))


def test_click_slider_shows_the_start_figure_in_an_image_not_an_output():
    draw = Recorder()
    box = widgets.click_slider_widget(draw, 6, start=3, minimum=0, description="k")
    slider, image, status = box.children
    assert isinstance(box, VBox) and isinstance(slider, IntSlider)
    assert isinstance(image, Image) and isinstance(status, HTML)
    assert (slider.min, slider.max, slider.value, slider.description) == (0, 6, 3, "k")
    assert not slider.continuous_update  # redraw on release, not on every pixel of a drag
    assert draw.calls == [(3,)]
    assert image.format == "png" and image.value == widgets.figure_png(_fig(3))
    # the point of the module: nbclient mirrors Output widgets and then stalls (see docstring)
    assert not any(isinstance(w, Output) for w in _tree(box))


def test_moving_the_slider_redraws():
    draw = Recorder()
    slider, image, status = widgets.click_slider_widget(draw, 5).children
    slider.value = 4
    assert draw.calls == [(1,), (4,)]
    assert image.value == widgets.figure_png(_fig(4))
    assert status.value == ""


def test_a_failing_redraw_keeps_the_image_and_says_why():
    draw = Recorder(fail_on=2)
    slider, image, status = widgets.click_slider_widget(draw, 5).children
    before = image.value
    slider.value = 2
    assert image.value == before
    assert "redraw failed: RuntimeError: no figure for 2" in status.value
    slider.value = 3  # a good redraw clears the message
    assert status.value == "" and image.value == widgets.figure_png(_fig(3))


def test_the_error_message_is_escaped():
    def draw(k):
        if k == 2:
            raise ValueError("<b>bad</b>")
        return None

    slider, image, status = widgets.click_slider_widget(draw, 3).children
    assert image.value == b""  # draw may return None: nothing to show
    slider.value = 2
    assert "&lt;b&gt;bad&lt;/b&gt;" in status.value and "<b>" not in status.value


def test_a_failing_first_draw_fails_the_cell():
    with pytest.raises(RuntimeError, match="no figure for 1"):
        widgets.click_slider_widget(Recorder(fail_on=1), 5)


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError, match=r"max_clicks \(0\) must be at least minimum \(1\)"):
        widgets.click_slider_widget(Recorder(), 0)
    with pytest.raises(ValueError, match="at least one image name"):
        widgets.image_click_picker_widget(Recorder(), [], 5)
    with pytest.raises(ValueError, match=r"max_clicks \(2\) must be at least minimum \(3\)"):
        widgets.image_click_picker_widget(Recorder(), ["a"], 2, minimum=3)


@settings(max_examples=40, deadline=None)
@given(minimum=st.integers(0, 5), span=st.integers(0, 20), start=st.none() | st.integers(-5, 30))
def test_the_start_value_is_clipped_into_the_range(minimum, span, start):
    seen = []
    box = widgets.click_slider_widget(
        lambda k: seen.append(k), minimum + span, start=start, minimum=minimum
    )
    slider = box.children[0]
    expected = minimum if start is None else min(max(start, minimum), minimum + span)
    assert slider.value == expected and seen == [expected]


def test_image_click_picker_redraws_on_either_control():
    draw = Recorder()
    box = widgets.image_click_picker_widget(draw, ["a", "b"], 4, start=9)
    (controls, image, status) = box.children
    assert isinstance(controls, HBox)
    picker, slider = controls.children
    assert isinstance(picker, Dropdown) and list(picker.options) == ["a", "b"]
    assert slider.value == 4  # start clipped to max_clicks
    picker.value = "b"
    slider.value = 2
    assert draw.calls == [("a", 4), ("b", 4), ("b", 2)]
    assert image.value == widgets.figure_png(_fig(2))
    assert not any(isinstance(w, Output) for w in _tree(box))


def test_click_slider_displays_the_box(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    assert widgets.click_slider(Recorder(), 3) is None
    widgets.image_click_picker(Recorder(), ["a"], 3)
    assert [type(w) for w in shown] == [VBox, VBox]
    assert isinstance(shown[0].children[1], Image)
