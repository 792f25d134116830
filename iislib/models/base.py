"""One adapter per model family (``Family``), shared by training and prediction."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from iislib.core.clicks import Click
from iislib.core.model import IISModel


class Family(ABC):
    """What a family of networks (one architecture and its click encoding) shares between
    training (``iislib.training.train``) and prediction (its ``IISModel``): one adapter per family,
    so that both feed the network the same inputs.

    Images are float32 (B, H, W, 3) in [0, 1], ``clicks`` per item a list of ``Click`` (or
    (row, col, positive) with float coordinates where the family allows), ``prevs`` float32
    (B, H, W) previous probabilities. Tensors are torch tensors (torch is imported by the
    families' own modules, not here).
    """

    #: family name, e.g. "ritm"
    name: str = "family"

    @abstractmethod
    def compact_arch(self) -> dict[str, Any]:
        """Architecture arguments of the compact member of the family (trained here)."""

    @abstractmethod
    def build_net(self, arch: Mapping[str, Any]) -> Any:
        """A plain network with random weights from architecture arguments."""

    def train_net(self, net: Any) -> Any:
        """``net`` made ready for training (in place; the default changes nothing)."""
        return net

    @abstractmethod
    def inputs(
        self,
        net: Any,
        images: np.ndarray,
        clicks: Sequence[Sequence[Click]],
        prevs: np.ndarray,
        *,
        channels_last: bool = False,
    ) -> tuple:
        """The network's inputs (tensors on ``net``'s device): ``net(*inputs)``.

        ``channels_last``: in the layout of the fast inference path (``iislib.models.fast``);
        the values are the same either way.
        """

    @abstractmethod
    def forward_train(
        self, net: Any, images: np.ndarray, clicks: Sequence[Sequence[Click]], prevs: np.ndarray
    ) -> tuple[Any, Any]:
        """(main output (B, 1, H, W), auxiliary output or None) of a training forward pass."""

    @abstractmethod
    def probabilities(self, main: Any) -> np.ndarray:
        """float32 (B, H, W) probabilities from the main output of ``forward_train``."""

    @abstractmethod
    def loss(self, main: Any, aux: Any, target: Any, recipe: Any) -> Any:
        """The training loss; ``target`` float (B, 1, H, W) in {0, 1}; ``recipe`` the
        training recipe (``iislib.training.train.Recipe``)."""

    @abstractmethod
    def wrap(self, net: Any, *, fast: bool = True, device: str = "cpu") -> IISModel:
        """An ``IISModel`` predicting with ``net`` (frozen, in eval mode; ``fast``: through
        ``iislib.models.fast``)."""
