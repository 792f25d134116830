"""HRNet backbone with an OCR head: the feature extractor of RITM (Sofiiuk et al. 2022), written anew.

The module names and their order reproduce RITM's ``HighResolutionNet`` so that its official
state dicts load key for key (``conv1``, ``bn1``, ``conv2``, ``bn2``, ``layer1``, ``transitionK``,
``stageK``, ``conv3x3_ocr``, ``ocr_distri_head``, ``cls_head``, ``aux_head``). The official
network is the 4-branch HRNetV2 with branch widths [w, 2w, 4w, 8w]; the constructor also accepts
fewer branches, fewer blocks and modules, a narrower stem and no OCR head, so that compact members
of the same family can be built from the same modules.

Tensors are (B, C, H, W) float32; the output logits have stride 4 (H/4, W/4, rounded up by the
two stride-2 stem convolutions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

NormLayer = Callable[[int], nn.Module]


def _interp(x: torch.Tensor, size: Sequence[int], align_corners: bool) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity shortcut (ResNet V1b basic block, expansion 1)."""

    expansion = 1

    def __init__(self, channels: int, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = norm_layer(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = norm_layer(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4 channels) with a projected shortcut when the width changes."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, norm_layer: NormLayer = nn.BatchNorm2d) -> None:
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = norm_layer(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = norm_layer(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, bias=False), norm_layer(out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def conv_bn(
    cin: int,
    cout: int,
    kernel: int,
    stride: int = 1,
    relu: bool = True,
    norm_layer: NormLayer = nn.BatchNorm2d,
) -> nn.Sequential:
    """``Sequential(conv (no bias), norm[, ReLU])``: keys ``.0.weight`` and ``.1.*``."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        norm_layer(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HRModule(nn.Module):
    """One multi-resolution module: parallel branches of basic blocks, then exchange.

    Every output branch i sums all inputs j: j == i as is, j > i through a 1x1 conv + norm then
    bilinear upsampling, j < i through (i - j) stride-2 3x3 convs (ReLU between them, not after
    the last), and then a ReLU.
    """

    def __init__(
        self,
        channels: Sequence[int],
        num_blocks: int,
        norm_layer: NormLayer = nn.BatchNorm2d,
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        self.align_corners = align_corners
        n = len(channels)
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(c, norm_layer) for _ in range(num_blocks))) for c in channels
        )
        fuse: list[nn.ModuleList] = []
        for i in range(n):
            row: list[nn.Module | None] = []
            for j in range(n):
                if j > i:
                    row.append(
                        conv_bn(channels[j], channels[i], 1, relu=False, norm_layer=norm_layer)
                    )
                elif j == i:
                    row.append(None)
                else:
                    steps = [
                        conv_bn(
                            channels[j],
                            channels[i] if k == i - j - 1 else channels[j],
                            3,
                            stride=2,
                            relu=k != i - j - 1,
                            norm_layer=norm_layer,
                        )
                        for k in range(i - j)
                    ]
                    row.append(nn.Sequential(*steps))
            fuse.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        out = []
        for i, row in enumerate(self.fuse_layers):
            # Summation order j = 0, 1, ... as in the reference, so float rounding matches it.
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, len(xs)):
                if j == i:
                    y = y + xs[j]
                elif j > i:
                    y = y + _interp(row[j](xs[j]), xs[i].shape[-2:], self.align_corners)
                else:
                    y = y + row[j](xs[j])
            out.append(self.relu(y))
        return out


class ObjectAttention(nn.Module):
    """Pixel-to-object attention of OCR (key names as RITM's ``ObjectAttentionBlock2D``)."""

    def __init__(self, channels: int, key_channels: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.key_channels = key_channels

        def proj(cin: int, cout: int) -> nn.Sequential:
            # conv, then Sequential(norm, ReLU): keys ``.0.weight`` and ``.1.0.*``
            return nn.Sequential(
                nn.Conv2d(cin, cout, 1, bias=False), nn.Sequential(norm_layer(cout), nn.ReLU(True))
            )

        self.f_pixel = nn.Sequential(
            *proj(channels, key_channels), *proj(key_channels, key_channels)
        )
        self.f_object = nn.Sequential(
            *proj(channels, key_channels), *proj(key_channels, key_channels)
        )
        self.f_down = proj(channels, key_channels)
        self.f_up = proj(key_channels, channels)

    def forward(self, x: torch.Tensor, proxy: torch.Tensor) -> torch.Tensor:
        """``x`` (B, C, H, W) pixel features; ``proxy`` (B, C, K, 1) object features."""
        b, _, h, w = x.shape
        query = self.f_pixel(x).view(b, self.key_channels, -1).permute(0, 2, 1)  # B, HW, Ck
        key = self.f_object(proxy).view(b, self.key_channels, -1)  # B, Ck, K
        value = self.f_down(proxy).view(b, self.key_channels, -1).permute(0, 2, 1)  # B, K, Ck
        sim = torch.softmax(torch.matmul(query, key) * self.key_channels**-0.5, dim=-1)
        context = torch.matmul(sim, value).permute(0, 2, 1).contiguous()
        return self.f_up(context.view(b, self.key_channels, h, w))


class SpatialOCR(nn.Module):
    """Object-contextual representation: attention context concatenated with the features."""

    def __init__(
        self, channels: int, key_channels: int, norm_layer: NormLayer, dropout: float = 0.05
    ) -> None:
        super().__init__()
        self.object_context_block = ObjectAttention(channels, key_channels, norm_layer)
        self.conv_bn_dropout = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 1, bias=False),
            nn.Sequential(norm_layer(channels), nn.ReLU(True)),
            nn.Dropout2d(dropout),
        )

    def forward(self, feats: torch.Tensor, proxy: torch.Tensor) -> torch.Tensor:
        context = self.object_context_block(feats, proxy)
        return self.conv_bn_dropout(torch.cat([context, feats], 1))


def spatial_gather(feats: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Object features: ``feats`` (B, C, H, W) averaged with softmax-over-space weights of
    ``logits`` (B, K, H, W); returns (B, C, K, 1)."""
    b, k = logits.shape[:2]
    weights = torch.softmax(logits.view(b, k, -1), dim=2)
    context = torch.matmul(weights, feats.view(b, feats.shape[1], -1).permute(0, 2, 1))
    return context.permute(0, 2, 1).unsqueeze(3)


class HRNetOCR(nn.Module):
    """HRNetV2 + OCR, as RITM's ``HighResolutionNet`` (``num_classes`` logit maps at stride 4).

    Args:
        width: channels of the highest-resolution branch; branch b has ``width * 2**b``.
        ocr_width: OCR key channels (the OCR mid width is twice this); 0 builds no OCR head.
        small: RITM's "s" variants: 2 blocks per branch and (1, 3, 2) modules instead of 4 and
            (1, 4, 3). Explicit ``num_blocks`` / ``num_modules`` override it.
        num_branches: 2, 3 or 4 parallel resolutions (the official network has 4).
        num_blocks: basic blocks per branch in every module (also bottlenecks in ``layer1``
            unless ``layer1_blocks`` is given).
        num_modules: modules of stage 2, 3, 4 (first ``num_branches - 1`` entries used).
        layer1_blocks: bottleneck blocks of ``layer1``.
        stem_width: channels of the two stride-2 stem convolutions (64 officially); ``layer1``
            outputs ``4 * stem_width``.
        light_head: with ``ocr_width == 0``, a single 1x1 conv as head instead of RITM's
            3x3 conv + norm + ReLU + 1x1 conv.
        num_classes: output maps (1 for interactive segmentation).
        norm_layer: ``norm_layer(channels) -> nn.Module`` (BatchNorm2d officially).
        align_corners: of every bilinear upsampling (True officially).
    """

    def __init__(
        self,
        width: int = 18,
        ocr_width: int = 64,
        small: bool = False,
        *,
        num_branches: int = 4,
        num_blocks: int | None = None,
        num_modules: Sequence[int] | None = None,
        layer1_blocks: int | None = None,
        stem_width: int = 64,
        light_head: bool = False,
        num_classes: int = 1,
        norm_layer: NormLayer = nn.BatchNorm2d,
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        if not 2 <= num_branches <= 4:
            raise ValueError(f"num_branches must be 2, 3 or 4, got {num_branches}")
        if num_blocks is None:
            num_blocks = 2 if small else 4
        if num_modules is None:
            num_modules = (1, 3, 2) if small else (1, 4, 3)
        num_modules = tuple(int(m) for m in num_modules)
        if len(num_modules) < num_branches - 1 or min(num_modules[: num_branches - 1]) < 1:
            raise ValueError(
                f"num_modules needs {num_branches - 1} positive entries, got {num_modules}"
            )
        if num_blocks < 1 or width < 1 or stem_width < 1 or ocr_width < 0:
            raise ValueError("width, stem_width, num_blocks must be positive, ocr_width >= 0")
        layer1_blocks = num_blocks if layer1_blocks is None else layer1_blocks

        self.width = width
        self.ocr_width = ocr_width
        self.num_branches = num_branches
        self.align_corners = align_corners
        self.stem_width = stem_width

        self.conv1 = nn.Conv2d(3, stem_width, 3, stride=2, padding=1, bias=False)
        self.bn1 = norm_layer(stem_width)
        self.conv2 = nn.Conv2d(stem_width, stem_width, 3, stride=2, padding=1, bias=False)
        self.bn2 = norm_layer(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(
            Bottleneck(stem_width, stem_width, norm_layer),
            *(Bottleneck(4 * stem_width, stem_width, norm_layer) for _ in range(layer1_blocks - 1)),
        )

        prev = [4 * stem_width]
        for s in range(2, num_branches + 1):
            cur = [width * 2**b for b in range(s)]
            self.add_module(f"transition{s - 1}", self._transition(prev, cur, norm_layer))
            modules = [
                HRModule(cur, num_blocks, norm_layer, align_corners)
                for _ in range(num_modules[s - 2])
            ]
            self.add_module(f"stage{s}", nn.Sequential(*modules))
            prev = cur
        feat = sum(prev)
        self.feat_channels = feat

        if ocr_width > 0:
            mid = 2 * ocr_width
            self.conv3x3_ocr = nn.Sequential(
                nn.Conv2d(feat, mid, 3, padding=1), norm_layer(mid), nn.ReLU(inplace=True)
            )
            self.ocr_distri_head = SpatialOCR(mid, ocr_width, norm_layer)
            self.cls_head: nn.Module = nn.Conv2d(mid, num_classes, 1)
            self.aux_head = nn.Sequential(
                nn.Conv2d(feat, feat, 1),
                norm_layer(feat),
                nn.ReLU(inplace=True),
                nn.Conv2d(feat, num_classes, 1),
            )
        elif light_head:
            self.cls_head = nn.Conv2d(feat, num_classes, 1)
        else:
            self.cls_head = nn.Sequential(
                nn.Conv2d(feat, feat, 3, padding=1),
                norm_layer(feat),
                nn.ReLU(inplace=True),
                nn.Conv2d(feat, num_classes, 1),
            )

    @staticmethod
    def _transition(prev: list[int], cur: list[int], norm_layer: NormLayer) -> nn.ModuleList:
        """Branch i of ``cur`` from branch i of ``prev`` (3x3 conv if widths differ, else None),
        a new branch from the last old one through stride-2 3x3 convs."""
        layers: list[nn.Module | None] = []
        for i, c in enumerate(cur):
            if i < len(prev):
                layers.append(
                    conv_bn(prev[i], c, 3, norm_layer=norm_layer) if prev[i] != c else None
                )
            else:
                n = i + 1 - len(prev)
                steps = [
                    conv_bn(prev[-1], c if k == n - 1 else prev[-1], 3, 2, norm_layer=norm_layer)
                    for k in range(n)
                ]
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    def features(self, x: torch.Tensor, additional: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenated multi-resolution features (B, feat_channels, H/4, W/4).

        ``additional`` (B, stem_width, H/2, W/2) is added after conv1 -> bn1 -> relu (RITM's
        Conv1S early fusion of the click maps).
        """
        x = self.relu(self.bn1(self.conv1(x)))
        if additional is not None:
            x = x + additional
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for s in range(2, self.num_branches + 1):
            transition = getattr(self, f"transition{s - 1}")
            new = []
            for i, t in enumerate(transition):
                src = xs[min(i, len(xs) - 1)]
                new.append(src if t is None else t(src))
            xs = getattr(self, f"stage{s}")(new)
        size = xs[0].shape[-2:]
        ups = [xs[0]] + [_interp(x, size, self.align_corners) for x in xs[1:]]
        return torch.cat(ups, 1)

    def forward(
        self, x: torch.Tensor, additional: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (B, num_classes, H/4, W/4), auxiliary logits or None without OCR)."""
        feats = self.features(x, additional)
        if self.ocr_width > 0:
            aux = self.aux_head(feats)
            feats = self.conv3x3_ocr(feats)
            feats = self.ocr_distri_head(feats, spatial_gather(feats, aux))
            return self.cls_head(feats), aux
        return self.cls_head(feats), None
