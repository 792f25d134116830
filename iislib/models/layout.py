"""Memory-layout helpers for fast CPU inference in channels_last (NHWC) layout.

Inference nets are converted to ``torch.channels_last`` (oneDNN convolutions are faster in
NHWC). Two stock operations undo that layout and cost more than the convolutions around them:
``torch.cat`` along channels of NHWC tensors takes a slow strided path, and a bilinear
upsampling of a 1x1 map returns NCHW, after which the next convolution copies its whole input
back to NHWC. And with one thread and a batch under 16, PyTorch sends every 1x1 convolution to
its generic GEMM path instead of oneDNN, which on NHWC input is up to 6x slower when there
are few input channels (``Conv2d`` below).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _is_nhwc(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)


def cat_channels(tensors: Sequence[torch.Tensor], nhwc: bool | None = None) -> torch.Tensor:
    """``torch.cat(tensors, 1)`` for (B, C_i, H, W) tensors; NHWC in, NHWC out.

    When the first tensor is channels_last (inference), or ``nhwc`` is True, the concatenation
    runs on the NHWC views, which is a plain copy of contiguous rows (3-6x faster than
    ``torch.cat`` on this layout) and gives a channels_last result whatever the layout of the
    others. Otherwise (training, NCHW) it is ``torch.cat``. The values are identical either way.
    """
    if nhwc is None:
        nhwc = _is_nhwc(tensors[0]) and not tensors[0].is_contiguous()
    if not nhwc:
        return torch.cat(list(tensors), 1)
    return torch.cat([t.permute(0, 2, 3, 1) for t in tensors], 3).permute(0, 3, 1, 2)


POINTWISE_MIN_OUT = 8
"""1x1 convolutions with fewer outputs stay on PyTorch's own path, which is faster for them."""


def _onednn_pointwise(x: torch.Tensor, weight: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Whether ``conv`` applied to ``x`` is an inference 1x1 convolution that oneDNN runs faster."""
    return (
        conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding in ((0, 0), "valid")
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and weight.shape[0] >= POINTWISE_MIN_OUT
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and _is_nhwc(x)
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
        and torch.backends.mkldnn.is_available()
    )


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state-dict keys) that runs NHWC inference 1x1
    convolutions with oneDNN.

    PyTorch picks its generic path for 1x1 convolutions when it runs one thread on a batch
    under 16, a rule tuned for NCHW; on NHWC input oneDNN is faster for them (224x224, batch 7:
    5 -> 8 channels 8.7 -> 1.4 ms, 3 -> 16 3.8 -> 2.0 ms, 180 -> 180 at 56x56 26 -> 21 ms).
    Training (gradients, NCHW) and every other convolution take ``nn.Conv2d``'s path. Outputs
    agree with it to float rounding (~1e-6).
    """

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if self.padding_mode == "zeros" and _onednn_pointwise(input, weight, self):
            return torch.mkldnn_convolution(input, weight, bias, [0, 0], [1, 1], [1, 1], 1)
        return super()._conv_forward(input, weight, bias)
