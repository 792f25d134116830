"""What every interactive segmentation model offers the loop: ``IISModel`` and the checks of
its inputs. The networks that implement it live in ``iislib.models``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from iislib.core.clicks import Click, check_clicks


def as_float_image(image: np.ndarray) -> np.ndarray:
    """RGB image as float32 (H, W, 3) in [0, 1].

    Accepts uint8 (H, W, 3) (divided by 255) or a float array already in [0, 1] (the ``ipol``
    settings pass min-max normalised floats).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be an (H, W, 3) RGB array, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if np.issubdtype(image.dtype, np.floating):
        if image.size and (image.min() < 0 or image.max() > 1):
            raise ValueError("a float image must lie in [0, 1]")
        return image.astype(np.float32, copy=False)
    raise ValueError(f"image must be uint8 or float in [0, 1], got dtype {image.dtype}")


def check_prev(prev: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """Previous probability map as float32 (H, W); zeros when ``prev`` is None."""
    if prev is None:
        return np.zeros(shape, dtype=np.float32)
    prev = np.asarray(prev, dtype=np.float32)
    if prev.shape != shape:
        raise ValueError(f"prev has shape {prev.shape} but the image is {shape}")
    return prev


def validate_batch(
    images: Sequence[np.ndarray],
    clicks: Sequence[Sequence[Click]],
    prevs: Sequence[np.ndarray | None],
) -> list[tuple[np.ndarray, list[Click], np.ndarray]]:
    """Checked (float32 image, clicks, float32 prev) per trajectory of a ``predict_batch`` call."""
    if not len(images) == len(clicks) == len(prevs):
        raise ValueError(
            f"got {len(images)} images, {len(clicks)} click lists and {len(prevs)} prevs"
        )
    out = []
    for image, cl, prev in zip(images, clicks, prevs, strict=True):
        img = as_float_image(image)
        check_clicks(cl, img.shape[:2])
        out.append((img, list(cl), check_prev(prev, img.shape[:2])))
    return out


class IISModel(ABC):
    """An interactive segmentation model: image + clicks + previous output -> probability map.

    Subclasses implement ``_predict``; ``predict`` validates the arguments first. A model that
    carries something from one click of a trajectory to the next (RITM's zoom-in box, the
    random walker's graph of the image) returns it from ``start``; the loop opens one state per
    trajectory, passes it back with every call of that trajectory and closes it with ``finish``
    after the last click. Such a model's ``_predict`` takes it as a fourth argument, ``state``.
    """

    #: registry name, set by ``get_model``
    name: str = "model"

    def start(self, image: np.ndarray) -> Any:
        """Open a trajectory on ``image``: its state, or None (the default) for a model whose
        every call depends on its arguments alone."""
        return None

    def finish(self, state: Any) -> None:  # noqa: B027 - a hook: most models keep nothing
        """Close a trajectory's state (the default has nothing to release)."""

    def predict(
        self,
        image: np.ndarray,
        clicks: Sequence[Click],
        prev: np.ndarray | None = None,
        state: Any = None,
    ) -> np.ndarray:
        """Foreground probability after ``clicks``.

        Args:
            image: uint8 (H, W, 3) RGB, or float32 (H, W, 3) in [0, 1].
            clicks: every click so far, oldest first, (row, col) in image pixels.
            prev: float32 (H, W) in [0, 1], the previous output (the auxiliary input z of
                Algorithm 1), or None before the first click.
            state: the trajectory's state from ``start(image)``; None calls the model as if
                the trajectory had no history beyond ``clicks`` and ``prev``.

        Returns:
            float32 (H, W) in [0, 1].
        """
        img = as_float_image(image)
        shape = img.shape[:2]
        check_clicks(clicks, shape)
        prev = check_prev(prev, shape)
        if state is None:
            prob = self._predict(img, list(clicks), prev)
        else:
            prob = self._predict(img, list(clicks), prev, state)  # type: ignore[call-arg]
        return np.clip(np.asarray(prob, dtype=np.float32), 0.0, 1.0)

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        clicks: Sequence[Sequence[Click]],
        prevs: Sequence[np.ndarray | None],
        states: Sequence[Any] | None = None,
    ) -> list[np.ndarray]:
        """``predict`` for several trajectories at once; networks override it to batch.

        ``states``: one per trajectory (``start``), or None for a model that keeps none.
        """
        if states is None:
            states = [None] * len(images)
        if len(states) != len(images):
            raise ValueError(f"got {len(images)} images and {len(states)} states")
        return [
            self.predict(i, c, p, s)
            for i, c, p, s in zip(images, clicks, prevs, states, strict=True)
        ]

    @abstractmethod
    def _predict(self, image: np.ndarray, clicks: list[Click], prev: np.ndarray) -> np.ndarray:
        """``image`` float32 (H, W, 3) in [0, 1]; ``prev`` float32 (H, W) (zeros at first)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
