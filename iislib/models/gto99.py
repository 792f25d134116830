"""gto99: "Getting to 99% accuracy in interactive segmentation" (Forte et al. 2020), from scratch.

The network reproduces ``MattingModuleSingleGpu(ResnetDilated, InteractiveSegNet)`` of
MarcoForte/DeepInteractiveSegmentation so that the official ``InterSegSynthFT.pth`` loads strictly,
and ``GTO99.predict`` reproduces the official demo's ``pred`` (pre- and post-processing included).

Pipeline of one prediction (image (H, W, 3) float in [0, 1], clicks in (row, col), prev (H, W)):

1. click map (H, W, 2): channel 0 = negative clicks, 1 = positive clicks, one pixel per click;
2. prev <- ``remove_non_fg_connected(prev, positive clicks)``;
3. everything is resized up to the next multiple of 32 per side (image and prev: Lanczos-4,
   click map: nearest), unchanged when already a multiple (224x224);
4. six Gaussian click maps exp(-d^2 / (2 sigma^2)), d the exact Euclidean distance to the nearest
   click of a type, sigma = 0.02 L, 0.08 L, 0.16 L with L = 352 fixed, order [neg x3, pos x3]; a
   type without clicks gives zeros;
5. the network (below) -> alpha in [0, 1] at the scaled size;
6. bilinear resize back to (H, W) (the official code asks for Lanczos-4 but passes it in the
   ``dst`` slot of ``cv2.resize``, so OpenCV's default bilinear is what runs);
7. click pixels forced (negative -> 0, then positive -> 1), then ``remove_non_fg_connected``.

Network (``GTO99Net``; key prefixes ``encoder.`` and ``decoder.``):

- encoder: ResNet-50 v1.5, GroupNorm(32) + weight standardisation, output stride 8, ``conv1``
  taking 9 channels (ImageNet-normalised RGB + the 6 Gaussians); see ``resnet_gn``;
- ``decoder.usr_encoder``: six plain 3x3 convs (+ leaky ReLU) on [6 Gaussians, prev], giving
  features at 1/2, 1/4 and 1/8;
- ``decoder.ppm``: pyramid pooling (1, 2, 3, 6) on [layer4, user features];
- ``decoder.conv_up1..4``: upsampling path with skips (layer1 + user 1/4, stem + user 1/2,
  RGB + Gaussians);
- clamp to [0, 1], click pixels forced, guided filter (r = 2, eps = 1e-8) whose guide is a 1x1
  conv net on [RGB, neg sigma1, pos sigma1], clamp.

The constructor arguments of ``build_gto99`` span a family: the official member is the default,
``COMPACT_GTO99`` a ~1 M parameter one for training on a CPU. ``GTO99`` predicts through
``iislib.models.fast`` unless built with ``fast=False``, which runs the network as written.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iislib.core.clicks import Click, click_arrays
from iislib.core.model import IISModel, validate_batch
from iislib.models.base import Family
from iislib.models.checkpoint import state_dict_problems
from iislib.models.fast import accelerate
from iislib.models.layers import Concat
from iislib.models.resnet_gn import ResNetGN, WSConv2d, group_norm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GAUSS_L = 352
"""Reference length of the Gaussian click encoding, fixed whatever the image size."""
GAUSS_SCALES = (0.02, 0.08, 0.16)
"""sigma = scale * GAUSS_L: 7.04, 28.16 and 56.32 pixels (at network resolution)."""
SIZE_MULTIPLE = 32
OFFICIAL_KEYS = 213
OFFICIAL_PARAMETERS = 37_735_778
WEIGHTS_HINT = (
    "gto99 needs the official weights 'InterSegSynthFT.pth' (144 MB, linked from the README of "
    "github.com/MarcoForte/DeepInteractiveSegmentation); pass checkpoint=PATH, or "
    "pretrained=False for a randomly initialised network"
)

COMPACT_GTO99: dict[str, Any] = {
    "layers": (1, 1, 1, 1),
    "width": 12,
    "gn_groups": 4,
    "user_width": 4,
    "decoder_width": 32,
    "guide_width": 8,
}
"""A small member of the family built from the same modules: 571,154 parameters (the official
network: 37.7 M); its speed: ``benchmarks/bench_networks.py``.
Most of its cost sits in the decoder's first convolutions at 1/8 and 1/4 resolution."""


# -- click encodings and post-processing (numpy) ------------------------------------------------


def click_map(shape: tuple[int, int], clicks: Sequence[Click]) -> np.ndarray:
    """Binary click map, float64 (H, W, 2): channel 0 negative clicks, channel 1 positive."""
    cmap = np.zeros((*shape, 2), dtype=np.float64)
    pos, neg = click_arrays(clicks)
    cmap[neg[:, 0], neg[:, 1], 0] = 1.0
    cmap[pos[:, 0], pos[:, 1], 1] = 1.0
    return cmap


def gaussian_click_maps(cmap: np.ndarray) -> np.ndarray:
    """The six Gaussian encodings of a click map.

    Args:
        cmap: (H, W, 2) binary map, channel 0 negative, channel 1 positive clicks.

    Returns:
        float32 (H, W, 6): [neg s1, neg s2, neg s3, pos s1, pos s2, pos s3] with
        exp(-d^2 / (2 (s L)^2)), d the exact Euclidean distance (pixels) to the nearest click of
        that type; all zeros for a type without clicks.
    """
    h, w = cmap.shape[:2]
    out = np.zeros((h, w, 6), dtype=np.float32)
    for k in range(2):
        clicked = cmap[:, :, k] == 1
        if not clicked.any():
            continue
        # OpenCV's mask size 0 (DIST_MASK_PRECISE) is the exact Euclidean transform, as upstream.
        d = cv2.distanceTransform(np.where(clicked, 0, 255).astype(np.uint8), cv2.DIST_L2, 0)
        # The squared distances are integers: rounding recovers them exactly, whatever last bit
        # cv2's float32 transform gave this call (it varies with alignment and threads; the
        # guided filter amplifies it to flipped pixels). docs/decisions.md, "Tie rules".
        neg_d2 = -np.rint(d.astype(np.float64) ** 2).astype(np.float32)
        for j, s in enumerate(GAUSS_SCALES):
            out[:, :, 3 * k + j] = np.exp(neg_d2 / (2 * (s * GAUSS_L) ** 2))
    return out


def remove_non_fg_connected(alpha: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Keep only the foreground connected to a positive click (gto99's post-processing).

    The map is binarised at alpha > 0.5 and split into 8-connected components; every pixel
    outside the components that contain a positive-click pixel is set to 0 (this includes all
    pixels with alpha <= 0.5). Soft values inside the kept components are unchanged. Without any
    positive click the map is returned unchanged.

    Args:
        alpha: float (H, W) soft mask.
        positive: (H, W) map, 1 at positive-click pixels.

    Returns:
        A new float32 (H, W) array.
    """
    alpha = np.asarray(alpha, dtype=np.float32)
    seeds = np.asarray(positive) == 1
    if not seeds.any():
        return alpha.copy()
    _, labels = cv2.connectedComponents((alpha > 0.5).astype(np.uint8), connectivity=8)
    kept = np.unique(labels[seeds])
    kept = kept[kept != 0]
    return np.where(np.isin(labels, kept), alpha, np.float32(0)).astype(np.float32)


def scaled_size(h: int, w: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """(H1, W1): each side rounded up to a multiple of ``multiple``."""
    return math.ceil(h / multiple) * multiple, math.ceil(w / multiple) * multiple


# -- guided filter (torch) -----------------------------------------------------------------------


def _box_sum(x: torch.Tensor, r: int, dim: int) -> torch.Tensor:
    """Sum over the window [i - r, i + r] clipped to the tensor, along ``dim``, via a cumsum.

    The clipped window sum is C[min(i + r, n - 1)] - C[i - r - 1] with C the inclusive cumsum and
    C[-1] = 0. Subtracting the prepended zero is exact, so this performs the same float
    operations as the reference implementation and matches it bit for bit.
    """
    n = x.shape[dim]
    c = x.cumsum(dim)
    if n > 2 * r + 1:  # the usual case, with slices: head (lo = -1), middle, tail (hi = n - 1)
        head = c.narrow(dim, r, r + 1)
        middle = c.narrow(dim, 2 * r + 1, n - 2 * r - 1) - c.narrow(dim, 0, n - 2 * r - 1)
        tail = c.narrow(dim, n - 1, 1) - c.narrow(dim, n - 2 * r - 1, r)
        return torch.cat([head, middle, tail], dim)
    c = torch.cat([torch.zeros_like(x.narrow(dim, 0, 1)), c], dim)
    idx = torch.arange(n, device=x.device)
    hi = torch.clamp(idx + r, max=n - 1) + 1
    lo = torch.clamp(idx - r, min=0)
    return c.index_select(dim, hi) - c.index_select(dim, lo)


def box_filter(x: torch.Tensor, r: int) -> torch.Tensor:
    """Clipped (2r+1)x(2r+1) window sums of x (B, C, H, W): rows first, then columns."""
    return _box_sum(_box_sum(x, r, 2), r, 3)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """Guided filter (He et al.) with mean filters over clipped (2r+1)^2 windows.

    Args:
        guide: (B, 1, H, W) guidance image I.
        src: (B, C, H, W) image p to filter.
        r: window radius.
        eps: regulariser of the local linear model.

    Returns:
        (B, C, H, W): mean(a) * I + mean(b), a = cov(I, p) / (var(I) + eps), b = mean(p) - a mean(I).
    """
    h, w = guide.shape[-2:]
    n = box_filter(guide.new_ones((1, 1, h, w)), r)
    mean_i = box_filter(guide, r) / n
    mean_p = box_filter(src, r) / n
    cov_ip = box_filter(guide * src, r) / n - mean_i * mean_p
    var_i = box_filter(guide * guide, r) / n - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_filter(a, r) / n * guide + box_filter(b, r) / n


# -- network -------------------------------------------------------------------------------------


class UserEncoder(nn.Module):
    """Plain conv encoder of the user inputs (click Gaussians + previous mask).

    Channels u, 2u, 4u, 8u, 8u, 8u (u = 32 in the checkpoint); strides 1, 2, 1, 2, 2, 1.
    Returns [x at 1/8 (8u), x4 at 1/4 (8u), x2 at 1/2 (2u)].
    """

    def __init__(self, in_channels: int = 7, width: int = 32) -> None:
        super().__init__()
        u = width
        self.conv1 = nn.Conv2d(in_channels, u, 3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(u, 2 * u, 3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(2 * u, 4 * u, 3, stride=1, padding=1)
        self.conv4 = nn.Conv2d(4 * u, 8 * u, 3, stride=2, padding=1)
        self.conv5 = nn.Conv2d(8 * u, 8 * u, 3, stride=2, padding=1)
        self.conv6 = nn.Conv2d(8 * u, 8 * u, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.leaky_relu(self.conv1(x))
        x2 = F.leaky_relu(self.conv2(x))
        x = F.leaky_relu(self.conv3(x2))
        x4 = F.leaky_relu(self.conv4(x))
        x = F.leaky_relu(self.conv5(x4))
        x = F.leaky_relu(self.conv6(x))
        return [x, x4, x2]


def _ws_gn_block(cin: int, cout: int, kernel: int, groups: int) -> list[nn.Module]:
    return [
        WSConv2d(cin, cout, kernel, padding=kernel // 2, bias=True),
        group_norm(cout, groups),
        nn.LeakyReLU(),
    ]


class GTO99Decoder(nn.Module):
    """gto99's decoder ("InteractiveSegNet"): user encoder, PPM, conv_up1..4, guided filter.

    Args:
        encoder_channels: [stem, layer1, layer2, layer3, layer4] channels of the encoder.
        user_width: u of ``UserEncoder``.
        decoder_width: d; PPM branches and conv_up1/2 have d channels, conv_up3 d/4,
            conv_up4 d/8 then d/16 (256 -> 64, 32, 16 in the checkpoint).
        gn_groups: groups of every GroupNorm.
        pool_scales: PPM output sizes.
        guide_width: hidden channels of the guided-filter guide network.
        gf_radius, gf_eps: guided filter parameters.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int] = (64, 256, 512, 1024, 2048),
        user_width: int = 32,
        decoder_width: int = 256,
        gn_groups: int = 32,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        guide_width: int = 64,
        gf_radius: int = 2,
        gf_eps: float = 1e-8,
    ) -> None:
        super().__init__()
        c_stem, c_l1, _, _, c_l4 = encoder_channels
        u, d = user_width, decoder_width
        if d % 16:
            raise ValueError(f"decoder_width must be a multiple of 16, got {d}")
        self.gf_radius, self.gf_eps = gf_radius, gf_eps
        self.usr_encoder = UserEncoder(6 + 1, u)
        c5 = c_l4 + 8 * u
        self.ppm = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), *_ws_gn_block(c5, d, 1, gn_groups))
            for s in pool_scales
        )
        self.conv_up1 = nn.Sequential(
            *_ws_gn_block(c5 + len(pool_scales) * d, d, 3, gn_groups),
            *_ws_gn_block(d, d, 3, gn_groups),
        )
        self.conv_up2 = nn.Sequential(*_ws_gn_block(d + c_l1 + 8 * u, d, 3, gn_groups))
        self.conv_up3 = nn.Sequential(*_ws_gn_block(d + c_stem + 2 * u, d // 4, 3, gn_groups))
        self.conv_up4 = nn.Sequential(
            nn.Conv2d(d // 4 + 3 + 6, d // 8, 3, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(d // 8, d // 16, 3, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(d // 16, 1, 1),
        )
        self.guided_map_conv1 = nn.Conv2d(3 + 2, guide_width, 1)
        self.guided_map_conv2 = nn.Conv2d(guide_width, 1, 1)
        self.concat = Concat()

    def forward(
        self,
        feats: Sequence[torch.Tensor],
        image: torch.Tensor,
        gauss: torch.Tensor,
        prev: torch.Tensor,
        cmap: torch.Tensor,
        clamp: bool = True,
        image_gauss: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Alpha (B, 1, H, W) in [0, 1] from encoder features and the network inputs.

        ``clamp=False`` skips both clamps to [0, 1] (training: a wrong pixel beyond the range
        still gets a gradient); the official network always clamps. ``image_gauss``: the
        encoder's input, ``image`` and ``gauss`` concatenated, when the caller has it (saves
        building it again).
        """
        stem, layer1, layer4 = feats[0], feats[1], feats[-1]
        cat = self.concat
        up = {"mode": "bilinear", "align_corners": False}
        # The guide sees RGB and the sharpest Gaussian of each type (channels 0 and 3).
        guide = self.guided_map_conv2(F.relu(self.guided_map_conv1(cat(image, gauss[:, ::3]))))
        usr, usr4, usr2 = self.usr_encoder(cat(gauss, prev))
        c5 = cat(layer4, usr)
        size = c5.shape[-2:]
        x = cat(c5, *[F.interpolate(p(c5), size, **up) for p in self.ppm])
        x = F.interpolate(self.conv_up1(x), scale_factor=2, **up)
        x = F.interpolate(self.conv_up2(cat(x, layer1, usr4)), scale_factor=2, **up)
        x = F.interpolate(self.conv_up3(cat(x, stem, usr2)), scale_factor=2, **up)
        if image_gauss is None:
            image_gauss = cat(image, gauss)
        alpha = self.conv_up4(cat(x, image_gauss))
        if clamp:
            alpha = alpha.clamp(0, 1)
        alpha = torch.where(cmap[:, :1] == 1, torch.zeros_like(alpha), alpha)
        alpha = torch.where(cmap[:, 1:2] == 1, torch.ones_like(alpha), alpha)
        alpha = guided_filter(guide, alpha, self.gf_radius, self.gf_eps)
        return alpha.clamp(0, 1) if clamp else alpha


class GTO99Net(nn.Module):
    """gto99 network: ``encoder`` (ResNetGN) + ``decoder`` (GTO99Decoder).

    Input sides must be multiples of 32 (``GTO99`` resizes for you).
    """

    def __init__(
        self,
        layers: Sequence[int] = (3, 4, 6, 3),
        width: int = 64,
        gn_groups: int = 32,
        user_width: int = 32,
        decoder_width: int = 256,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        guide_width: int = 64,
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "layers": tuple(int(n) for n in layers),
            "width": width,
            "gn_groups": gn_groups,
            "user_width": user_width,
            "decoder_width": decoder_width,
            "pool_scales": tuple(int(s) for s in pool_scales),
            "guide_width": guide_width,
        }
        self.concat = Concat()
        self.encoder = ResNetGN(layers, 3 + 6, width, gn_groups, output_stride=8)
        self.decoder = GTO99Decoder(
            self.encoder.out_channels,
            user_width,
            decoder_width,
            gn_groups,
            pool_scales,
            guide_width,
        )

    def forward(
        self,
        image: torch.Tensor,
        gauss: torch.Tensor,
        prev: torch.Tensor,
        cmap: torch.Tensor,
        clamp: bool = True,
    ) -> torch.Tensor:
        """Alpha from the prepared inputs (``clamp=False``: unclamped, for training).

        Args:
            image: (B, 3, H, W) ImageNet-normalised RGB.
            gauss: (B, 6, H, W) Gaussian click maps (``gaussian_click_maps``).
            prev: (B, 1, H, W) previous alpha in [0, 1].
            cmap: (B, 2, H, W) binary click map (negative, positive).

        Returns:
            (B, 1, H, W) alpha in [0, 1].
        """
        if image.shape[-2] % SIZE_MULTIPLE or image.shape[-1] % SIZE_MULTIPLE:
            raise ValueError(f"input sides must be multiples of 32, got {tuple(image.shape[-2:])}")
        image_gauss = self.concat(image, gauss)
        feats = self.encoder(image_gauss)
        return self.decoder(feats, image, gauss, prev, cmap, clamp=clamp, image_gauss=image_gauss)


def build_gto99(**kwargs: Any) -> GTO99Net:
    """A gto99 network (random weights); kwargs as ``GTO99Net`` (defaults: the official one)."""
    return GTO99Net(**kwargs)


# -- checkpoints ---------------------------------------------------------------------------------


def _listing(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def load_gto99_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a gto99 checkpoint (a plain state dict) safely (``weights_only=True``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a PyTorch file, corrupt, or not a plain state dict (e.g. a RITM
            ``{'state_dict', 'config'}`` checkpoint).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gto99 checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        raise ValueError(
            f"{path} is not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if isinstance(obj, Mapping) and "state_dict" in obj:
        what = "a RITM checkpoint" if "config" in obj else "a training checkpoint"
        raise ValueError(
            f"{path} looks like {what} (top-level keys {sorted(map(str, obj))}), not gto99's "
            "plain state dict; " + WEIGHTS_HINT
        )
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict")
    bad = [str(k) for k, v in obj.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if bad:
        raise ValueError(f"{path} is not a state dict: non-tensor entries {_listing(bad)}")
    sd = dict(obj)
    # Weights saved from nn.DataParallel carry a 'module.' prefix; drop it.
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def check_state_dict(net: nn.Module, sd: Mapping[str, torch.Tensor], source: str = "") -> None:
    """Raise ValueError listing missing, unexpected and wrongly shaped weights."""
    own = net.state_dict()
    problems = state_dict_problems(own, sd)
    if problems:
        where = f"{source}: " if source else ""
        raise ValueError(
            f"{where}checkpoint does not match this gto99 architecture "
            f"({len(sd)} keys, expected {len(own)}); " + "; ".join(problems)
        )


# -- the IISModel --------------------------------------------------------------------------------


def _as_float64(image: np.ndarray) -> np.ndarray:
    """float64 copy of a float32 image in [0, 1]; exactly k / 255 when it came from uint8.

    Upstream reads images as float64 ``uint8 / 255`` and Lanczos-resizes them in float64; the
    float32 image ``predict`` receives is that value rounded, so recover it when possible (the
    guided filter with eps = 1e-8 amplifies last-bit differences in flat regions).
    """
    k = np.round(image.astype(np.float64) * 255.0)
    if np.array_equal((k / 255.0).astype(np.float32), image):
        return k / 255.0
    return image.astype(np.float64)


def normalised_image(image: np.ndarray) -> np.ndarray:
    """float32 (H1, W1, 3) network input: Lanczos-resized to ``scaled_size``, ImageNet-normalised."""
    h, w = image.shape[:2]
    h1, w1 = scaled_size(h, w)
    img = _as_float64(image)
    if (h1, w1) != (h, w):  # a same-size Lanczos resize is the identity: skip its cost
        img = cv2.resize(img, (w1, h1), interpolation=cv2.INTER_LANCZOS4)
    mean = np.array(IMAGENET_MEAN, dtype=np.float32)
    std = np.array(IMAGENET_STD, dtype=np.float32)
    return (img.astype(np.float32) - mean) / std


class _Prepared:
    """One sample's network inputs at the scaled size plus what post-processing needs.

    ``normalised``: ``normalised_image(image)`` when the caller already has it (one image shared
    by several trajectories).
    """

    def __init__(
        self,
        image: np.ndarray,
        clicks: list[Click],
        prev: np.ndarray,
        normalised: np.ndarray | None = None,
    ) -> None:
        h, w = image.shape[:2]
        self.shape = (h, w)
        self.cmap = click_map((h, w), clicks)
        prev = remove_non_fg_connected(prev, self.cmap[:, :, 1])
        h1, w1 = scaled_size(h, w)
        self.scaled = (h1, w1)
        self.image = normalised if normalised is not None else normalised_image(image)
        cmap = self.cmap
        if (h1, w1) != (h, w):
            cmap = cv2.resize(self.cmap, (w1, h1), interpolation=cv2.INTER_NEAREST)
            prev = cv2.resize(prev, (w1, h1), interpolation=cv2.INTER_LANCZOS4)
        self.gauss = gaussian_click_maps(cmap)
        self.prev = prev.astype(np.float32)
        self.cmap_scaled = cmap.astype(np.float32)

    def finish(self, alpha_scaled: np.ndarray) -> np.ndarray:
        """Network alpha (H1, W1) -> final alpha (H, W) float32."""
        h, w = self.shape
        alpha = alpha_scaled
        if (h, w) != self.scaled:
            alpha = cv2.resize(alpha_scaled, (w, h), interpolation=cv2.INTER_LINEAR)
        alpha = alpha.astype(np.float32, copy=True)
        alpha[self.cmap[:, :, 0] == 1] = 0
        alpha[self.cmap[:, :, 1] == 1] = 1
        return remove_non_fg_connected(alpha, self.cmap[:, :, 1])


def _to_tensor(
    arrays: Sequence[np.ndarray], device: torch.device, channels_last: bool
) -> torch.Tensor:
    """Stack (H, W, C) or (H, W) arrays into a (B, C, H, W) float32 tensor; NCHW-contiguous,
    or channels_last."""
    x = np.stack([a if a.ndim == 3 else a[:, :, None] for a in arrays]).astype(np.float32)
    # The NHWC stack viewed as NCHW is already in channels_last layout: no copy.
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    return (t if channels_last else t.contiguous()).to(device)


class GTO99(IISModel):
    """gto99 as an ``IISModel``: ``predict`` equals the official demo's ``pred``.

    Args:
        checkpoint: path of ``InterSegSynthFT.pth`` (or of a state dict of the same layout for
            the architecture chosen by ``arch``).
        pretrained: with no checkpoint, False builds a randomly initialised network (tests,
            training); True raises a ValueError explaining where the official weights are.
        device: "cpu" (default) or "cuda".
        net: an already built (e.g. trained) ``GTO99Net`` to wrap instead of building one; the
            model takes it over (with ``fast``, converted in place) and keeps its mode and
            ``requires_grad`` flags.
        batch_size: most samples per forward pass in ``predict_batch``.
        fast: predict through ``iislib.models.fast`` (channels_last, oneDNN 1x1 convolutions,
            NHWC concatenations, standardised weights cached); False runs the plain network,
            as the official code does.
        **arch: architecture arguments of ``build_gto99`` (e.g. ``**COMPACT_GTO99``).
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        pretrained: bool = True,
        device: str | torch.device = "cpu",
        net: GTO99Net | None = None,
        batch_size: int = 8,
        fast: bool = True,
        **arch: Any,
    ) -> None:
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but CUDA is not available")
        if net is not None and arch:
            raise ValueError(f"pass either net= or architecture arguments, not both: {arch}")
        self.net = net if net is not None else build_gto99(**arch)
        if checkpoint is not None:
            sd = load_gto99_state_dict(checkpoint)
            check_state_dict(self.net, sd, str(checkpoint))
            self.net.load_state_dict(sd, strict=True)
        elif net is None and pretrained:
            raise ValueError(WEIGHTS_HINT)
        self.device = device
        self.batch_size = max(1, int(batch_size))
        # Inference runs under no_grad; a wrapped net (e.g. one being trained) keeps its mode
        # and requires_grad flags (GroupNorm behaves the same in train and eval mode).
        self.net.to(device)
        if net is None:
            self.net.eval().requires_grad_(False)
        self.fast = bool(fast)
        if self.fast:
            accelerate(self.net)

    @torch.no_grad()
    def _forward(self, items: Sequence[_Prepared]) -> list[np.ndarray]:
        """One forward pass on equal-size prepared samples -> network alphas (H1, W1)."""
        out = self.net(*FAMILY.tensors(items, self.device, channels_last=self.fast))
        return list(out[:, 0].float().cpu().numpy())

    def _predict(self, image: np.ndarray, clicks: list[Click], prev: np.ndarray) -> np.ndarray:
        item = _Prepared(image, clicks, prev)
        return item.finish(self._forward([item])[0])

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        clicks: Sequence[Sequence[Click]],
        prevs: Sequence[np.ndarray | None],
        states: Sequence[Any] | None = None,
    ) -> list[np.ndarray]:
        """``predict`` for several trajectories; equal scaled sizes share forward passes.
        gto99 keeps no state between calls (``states`` is accepted and unused)."""
        checked = validate_batch(images, clicks, prevs)
        # The loop passes one image object for all the robots of a step: normalise it once.
        normalised: dict[int, np.ndarray] = {}
        items = []
        for (img, cl, prev), orig in zip(checked, images, strict=True):
            if id(orig) not in normalised:
                normalised[id(orig)] = normalised_image(img)
            items.append(_Prepared(img, cl, prev, normalised[id(orig)]))
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, item in enumerate(items):
            groups[item.scaled].append(i)
        results: list[np.ndarray | None] = [None] * len(items)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                alphas = self._forward([items[i] for i in chunk])
                for i, a in zip(chunk, alphas, strict=True):
                    results[i] = np.clip(items[i].finish(a), 0.0, 1.0)
        return [r for r in results if r is not None]


def gto99(**kwargs: Any) -> GTO99:
    """Registry factory: ``get_model("gto99", checkpoint=PATH)``; kwargs as ``GTO99``."""
    return GTO99(**kwargs)


# -- the family adapter (shared by training and prediction) -------------------------------------


class GTO99Family(Family):
    """The gto99 family: ``GTO99Net`` on the prepared inputs of ``_Prepared`` (the official
    demo's pre-processing: normalised image, Gaussian click maps, cleaned previous alpha).

    Training runs the network with ``accelerate`` applied (channels_last makes a training step
    ~15% faster on the CPU; the speed-ups step aside when gradients are needed) and without its
    two clamps (``clamp=False``), so that wrong pixels beyond [0, 1] still get a gradient;
    gto99's training code is unreleased.
    """

    name = "gto99"

    def compact_arch(self) -> dict[str, Any]:
        return dict(COMPACT_GTO99)

    def build_net(self, arch: Mapping[str, Any]) -> GTO99Net:
        return build_gto99(**arch)

    def train_net(self, net: nn.Module) -> nn.Module:
        return accelerate(net)

    def tensors(
        self, items: Sequence[_Prepared], device: torch.device, *, channels_last: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image (B, 3), gauss (B, 6), prev (B, 1), cmap (B, 2)) at the scaled size."""
        return (
            _to_tensor([p.image for p in items], device, channels_last),
            _to_tensor([p.gauss for p in items], device, channels_last),
            _to_tensor([p.prev for p in items], device, channels_last),
            _to_tensor([p.cmap_scaled for p in items], device, channels_last),
        )

    def inputs(
        self,
        net: nn.Module,
        images: np.ndarray,
        clicks: Sequence[Sequence[Click]],
        prevs: np.ndarray,
        *,
        channels_last: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``tensors`` of the prepared samples (``_Prepared``), on ``net``'s device."""
        items = [_Prepared(i, list(c), p) for i, c, p in zip(images, clicks, prevs, strict=True)]
        device = next(net.parameters()).device
        return self.tensors(items, device, channels_last=channels_last)

    def forward_train(
        self,
        net: nn.Module,
        images: np.ndarray,
        clicks: Sequence[Sequence[Click]],
        prevs: np.ndarray,
    ) -> tuple[torch.Tensor, None]:
        """(alpha (B, 1, H, W) before its clamps, None). Sides must be multiples of 32."""
        h, w = images.shape[1:3]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"gto99 trains on sides that are multiples of 32, got {h}x{w}")
        return net(*self.inputs(net, images, clicks, prevs), clamp=False), None

    def probabilities(self, main: torch.Tensor) -> np.ndarray:
        return main.clamp(0, 1)[:, 0].detach().float().cpu().numpy()

    def loss(
        self, main: torch.Tensor, aux: torch.Tensor | None, target: torch.Tensor, recipe: Any
    ) -> torch.Tensor:
        """L1 + MSE on the unclamped alpha (the recipe's loss choice is RITM's alone)."""
        return F.l1_loss(main, target) + F.mse_loss(main, target)

    def wrap(self, net: nn.Module, *, fast: bool = True, device: str = "cpu") -> GTO99:
        net.eval().requires_grad_(False)
        return GTO99(net=net, fast=fast, device=device)


FAMILY = GTO99Family()
