"""ResNet v1.5 with GroupNorm and weight-standardised convolutions, dilated to a chosen output stride.

This is the encoder family of gto99 (Forte et al. 2020), whose checkpoint stores a ResNet-50 built
this way. Nothing here is specific to interactive segmentation, so other networks may reuse it.

Conventions: tensors are (B, C, H, W) float32; "output stride" is input size / feature size.

State-dict layout (what ``ResNetGN`` produces, which is the torchvision ResNet layout without the
classifier): ``conv1``, ``bn1`` (a GroupNorm despite the name), ``layer{1..4}.{i}.{conv1,bn1,conv2,
bn2,conv3,bn3}`` and ``layer{1..4}.0.downsample.{0 (1x1 conv), 1 (GroupNorm)}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class WSConv2d(nn.Conv2d):
    """Conv2d whose filters are standardised before use (weight standardisation, Qiao et al. 2019).

    Each output filter w (shape (C_in, kh, kw)) is replaced by (w - mean(w)) / (s + 1e-5), with
    s = sqrt(var(w) + 1e-12) and var the *unbiased* variance over the C_in*kh*kw entries. The
    1e-12 and 1e-5 constants are those of the checkpoints trained with it (gto99, FBA matting),
    so a constant filter gives zeros instead of NaNs.
    """

    def standardised_weight(self) -> torch.Tensor:
        """The filters actually convolved, same shape as ``self.weight``."""
        return self._standardise(self.weight)

    @staticmethod
    def _standardise(w: torch.Tensor) -> torch.Tensor:
        # Three successive means (not one over (1, 2, 3)): the same float operations as the code
        # the checkpoints were trained with, so that outputs match it bit for bit.
        w = w - w.mean(dim=1, keepdim=True).mean(dim=2, keepdim=True).mean(dim=3, keepdim=True)
        std = torch.sqrt(w.reshape(w.shape[0], -1).var(dim=1, unbiased=True) + 1e-12) + 1e-5
        return w / std.reshape(-1, 1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.standardised_weight(), self.bias)


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm(groups, channels), eps 1e-5; a clear error when ``groups`` does not divide."""
    if channels % groups:
        raise ValueError(f"GroupNorm: {groups} groups do not divide {channels} channels")
    return nn.GroupNorm(groups, channels)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (1x1 -> 3x3 with the stride -> 1x1 expanding by 4), GN + WS.

    Args:
        inplanes: input channels.
        planes: inner width; the output has ``4 * planes`` channels.
        stride: stride of the 3x3 convolution.
        dilation: dilation (= padding) of the 3x3 convolution.
        gn_groups: groups of every GroupNorm.
        downsample: 1x1 projection of the identity path when the shape changes.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        gn_groups: int = 32,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = WSConv2d(inplanes, planes, 1, bias=False)
        self.bn1 = group_norm(planes, gn_groups)
        self.conv2 = WSConv2d(
            planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = group_norm(planes, gn_groups)
        self.conv3 = WSConv2d(planes, out, 1, bias=False)
        self.bn3 = group_norm(out, gn_groups)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


class ResNetGN(nn.Module):
    """Bottleneck ResNet with GroupNorm + WS, without avgpool/fc, returning multi-scale features.

    Layers past the requested output stride keep stride 1 and dilate instead, exactly as the
    "ResnetDilated" wrapper of the semantic-segmentation code that gto99 uses: in a dilated
    layer the first block's 3x3 keeps the previous dilation and the other blocks double it
    (output stride 8: layer3 = 1, 2, 2, ...; layer4 = 2, 4, 4).

    Args:
        layers: blocks per stage, e.g. (3, 4, 6, 3) for ResNet-50 or (1, 1, 1, 1).
        in_channels: channels of the input image tensor (gto99: 3 RGB + 6 click maps).
        width: stem width and inner width of layer1 (64 for ResNet-50); stage k has inner
            width ``width * 2**(k-1)`` and outputs 4x that.
        gn_groups: groups of every GroupNorm (32 in the ResNet-50 checkpoints).
        output_stride: 8, 16 or 32.

    Forward returns ``[stem, layer1, layer2, layer3, layer4]``: stem = relu(bn1(conv1(x))) at 1/2
    (``width`` channels), layer1 at 1/4, layer2 at 1/8, layer3 and layer4 at the output stride
    (or 1/16, 1/32 when not dilated).
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        in_channels: int = 3,
        width: int = 64,
        gn_groups: int = 32,
        output_stride: int = 8,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or any(int(n) < 1 for n in layers):
            raise ValueError(f"layers must be 4 positive block counts, got {list(layers)}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        self.width = width
        self.out_channels = [width] + [width * 2**k * Bottleneck.expansion for k in range(4)]
        self.conv1 = WSConv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = group_norm(width, gn_groups)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        inplanes = width
        current_stride, dilation = 4, 1
        for k, blocks in enumerate(layers):
            planes = width * 2**k
            stride = 1 if k == 0 else 2
            first_dilation = dilation
            if stride == 2:
                if current_stride >= output_stride:
                    # Dilate instead of striding; the first block keeps the old dilation.
                    stride, dilation = 1, dilation * 2
                else:
                    current_stride *= 2
            stage, inplanes = self._make_stage(
                inplanes, planes, int(blocks), stride, first_dilation, dilation, gn_groups
            )
            self.add_module(f"layer{k + 1}", stage)

    @staticmethod
    def _make_stage(
        inplanes: int,
        planes: int,
        blocks: int,
        stride: int,
        first_dilation: int,
        dilation: int,
        gn_groups: int,
    ) -> tuple[nn.Sequential, int]:
        out = planes * Bottleneck.expansion
        downsample = None
        if stride != 1 or inplanes != out:
            downsample = nn.Sequential(
                WSConv2d(inplanes, out, 1, stride=stride, bias=False), group_norm(out, gn_groups)
            )
        mods = [Bottleneck(inplanes, planes, stride, first_dilation, gn_groups, downsample)]
        mods += [Bottleneck(out, planes, 1, dilation, gn_groups) for _ in range(1, blocks)]
        return nn.Sequential(*mods), out

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (B, C_in, H, W) -> [stem, layer1, layer2, layer3, layer4] feature maps."""
        stem = self.relu(self.bn1(self.conv1(x)))
        y = self.layer1(self.maxpool(stem))
        feats = [stem, y]
        for layer in (self.layer2, self.layer3, self.layer4):
            y = layer(y)
            feats.append(y)
        return feats
