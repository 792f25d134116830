"""RITM (Sofiiuk, Petrov, Konushin, ICIP 2022): HRNet + OCR with Conv1S click fusion, written anew.

The network reproduces ``isegm.model.is_hrnet_model.HRNetModel`` closely enough to load its
official checkpoints key for key and to compute the same logits:

1. the input is (B, 4, H, W): RGB in [0, 1] and the previous probability map;
2. RGB is normalised with ImageNet's mean and std;
3. the clicks become disks of radius 5 (pixels with d^2 <= 25), one channel for the positive
   clicks and one for the negative ones; with the previous map they form [prev, pos, neg];
4. ``maps_transform`` (1x1 conv 3->16, LeakyReLU 0.2, 3x3 stride-2 conv 16->64, x|scale|) turns
   them into 64 channels that are added after the stem's conv1 -> bn1 -> relu;
5. the HRNet + OCR logits (stride 4) are upsampled bilinearly (align_corners=True) to H x W.

``RITM`` (an ``IISModel``) applies the sigmoid. Official weights:
https://github.com/saic-vul/ritm_interactive_segmentation/releases/download/v1.0/<file>, e.g.
``coco_lvis_h18s_itermask.pth``, ``coco_lvis_h18_itermask.pth``, ``sbd_h18_itermask.pth``,
``coco_lvis_h32_itermask.pth``. They cannot be bundled; pass ``checkpoint=PATH``.

Clicks are (row, col); a padding point is any point with max(row, col) < 0, as in RITM.
"""

from __future__ import annotations

import math
import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iislib.clicks import Click
from iislib.models.base import IISModel, validate_batch
from iislib.models.checkpoint import state_dict_problems
from iislib.models.fold import fold_batchnorm
from iislib.models.hrnet import HRNetOCR
from iislib.models.layout import Conv2d, cat_channels

URL_PATTERN = (
    "https://github.com/saic-vul/ritm_interactive_segmentation/releases/download/v1.0/{file}"
)
"""Where the official RITM checkpoints are published (``file`` e.g. coco_lvis_h18s_itermask.pth)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The published IT-M models share everything except width, ocr_width and small.
_COMMON: dict[str, Any] = dict(
    with_aux_output=True, use_leaky_relu=True, norm_radius=5, use_disks=True, with_prev_mask=True
)
VARIANTS: dict[str, dict[str, Any]] = {
    "h18": dict(width=18, ocr_width=64, small=False, **_COMMON),
    "h18s": dict(width=18, ocr_width=48, small=True, **_COMMON),
    "h32": dict(width=32, ocr_width=128, small=False, **_COMMON),
    # A compact member of the family for training on a CPU (not an official model): 674,371
    # parameters, ~30 ms per 224x224 forward on 2 CPU cores.
    "compact": dict(
        width=12,
        ocr_width=16,
        num_blocks=1,
        num_modules=(1, 2, 1),
        stem_width=16,
        **_COMMON,
    ),
}
"""Architecture keyword arguments of ``RITMNet`` by name."""


class DistMaps(nn.Module):
    """Click encoding: (B, 2N, 3) points -> (B, 2, H, W) [positive, negative] maps.

    ``points[b, :N]`` are the positive slots and ``points[b, N:]`` the negative ones, each
    (row, col, index) in pixels (floats allowed); slots with max(row, col) < 0 are padding.
    With ``use_disks`` a channel is 1 where the squared distance to the nearest point of its sign
    is <= ``norm_radius**2``; otherwise it is tanh(2 d / norm_radius) (1 far away).
    """

    def __init__(self, norm_radius: float = 5.0, use_disks: bool = True) -> None:
        super().__init__()
        self.norm_radius = float(norm_radius)
        self.use_disks = use_disks

    def forward(self, points: torch.Tensor, height: int, width: int) -> torch.Tensor:
        if self.use_disks:
            return self._disks(points, height, width)
        d2 = self.nearest_squared_distance(points, height, width, self.norm_radius)
        return torch.tanh(2.0 * torch.sqrt(d2))

    @staticmethod
    def nearest_squared_distance(
        points: torch.Tensor, height: int, width: int, unit: float = 1.0
    ) -> torch.Tensor:
        """(B, 2, H, W) float32 squared distance, in units of ``unit`` pixels, from each pixel
        to the nearest point of each sign; 1e6 for a sign without points."""
        b, n2, _ = points.shape
        n = n2 // 2
        pts = points[..., :2].to(torch.float32)
        invalid = pts.max(dim=2).values < 0  # (B, 2N)
        rows = torch.arange(height, dtype=torch.float32, device=points.device)
        cols = torch.arange(width, dtype=torch.float32, device=points.device)
        dr = rows.view(1, 1, height, 1) - pts[..., 0].view(b, n2, 1, 1)
        dc = cols.view(1, 1, 1, width) - pts[..., 1].view(b, n2, 1, 1)
        if unit != 1.0:  # divided, as RITM does: the same float32 values
            dr = dr / unit
            dc = dc / unit
        d2 = dr * dr + dc * dc  # (B, 2N, H, W)
        d2 = d2.masked_fill(invalid.view(b, n2, 1, 1), 1e6)
        return d2.view(b, 2, n, height, width).amin(dim=2)

    def _disks(self, points: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The disk maps, computed only in a window around each point.

        Distances over the whole image for every point cost ~17 ms per batch of 7 at 224x224
        with 15 clicks; a disk only reaches ``norm_radius`` pixels from its centre. Each pixel
        of a window gets the same float32 squared distance as the full computation (integer
        rows and columns minus the point), so the maps are identical to it.
        """
        b, n2, _ = points.shape
        pts = points[..., :2].to(torch.float32)
        valid = pts.max(dim=2).values >= 0  # (B, 2N)
        k = math.ceil(self.norm_radius) + 1  # window [floor(p) - k, floor(p) + k] covers p +- r
        offsets = torch.arange(-k, k + 1, dtype=torch.float32, device=points.device)
        rows = pts[..., 0:1].floor() + offsets  # (B, 2N, 2k+1)
        cols = pts[..., 1:2].floor() + offsets
        dr = (rows - pts[..., 0:1])[..., :, None]
        dc = (cols - pts[..., 1:2])[..., None, :]
        inside = (dr * dr + dc * dc <= self.norm_radius**2) & valid[..., None, None]
        inside &= ((rows >= 0) & (rows < height))[..., :, None]
        inside &= ((cols >= 0) & (cols < width))[..., None, :]
        # (B, 2N, 2k+1, 2k+1) index grids: item, sign (first N slots positive), row, column
        item = torch.arange(b, device=points.device).view(b, 1, 1, 1)
        sign = (torch.arange(n2, device=points.device) >= n2 // 2).view(1, n2, 1, 1).long()
        r = rows.long()[..., :, None]
        c = cols.long()[..., None, :]
        shape = inside.shape
        out = torch.zeros(b, 2, height, width, dtype=torch.float32, device=points.device)
        index = [t.expand(shape)[inside] for t in (item, sign, r, c)]
        out[tuple(index)] = 1.0
        return out


class ScaleLayer(nn.Module):
    """Multiplies by |scale| (one learnt scalar, initialised to ``init``)."""

    def __init__(self, init: float = 0.05) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.abs(self.scale)


class RITMNet(nn.Module):
    """RITM's ``HRNetModel``: click maps + HRNet/OCR, logits at the input resolution.

    Args:
        width, ocr_width, small: HRNet branch width, OCR width (0: no OCR), RITM's "s" variant.
        with_aux_output: also upsample and return the auxiliary logits (training).
        use_leaky_relu: LeakyReLU(0.2) inside ``maps_transform`` (else ReLU).
        norm_radius, use_disks: click encoding (see ``DistMaps``).
        with_prev_mask: the input has a 4th channel, the previous probability map.
        binary_prev_mask: threshold the previous map at 0.5 first.
        norm_mean_std: RGB normalisation.
        **hrnet_kwargs: ``num_branches``, ``num_blocks``, ``num_modules``, ``layer1_blocks``,
            ``stem_width``, ``light_head``, ``norm_layer`` of ``HRNetOCR``.
    """

    def __init__(
        self,
        width: int = 18,
        ocr_width: int = 64,
        small: bool = False,
        *,
        with_aux_output: bool = True,
        use_leaky_relu: bool = True,
        norm_radius: float = 5,
        use_disks: bool = True,
        with_prev_mask: bool = True,
        binary_prev_mask: bool = False,
        norm_mean_std: tuple[Sequence[float], Sequence[float]] = (IMAGENET_MEAN, IMAGENET_STD),
        **hrnet_kwargs: Any,
    ) -> None:
        super().__init__()
        self.with_aux_output = with_aux_output and ocr_width > 0
        self.with_prev_mask = with_prev_mask
        self.binary_prev_mask = binary_prev_mask
        mean, std = norm_mean_std
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), False
        )
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), False)
        stem = int(hrnet_kwargs.get("stem_width", 64))
        cin = 3 if with_prev_mask else 2
        # Registered before the backbone: the official state dict lists maps_transform first.
        self.maps_transform = nn.Sequential(
            Conv2d(cin, 16, 1),
            nn.LeakyReLU(0.2) if use_leaky_relu else nn.ReLU(inplace=True),
            Conv2d(16, stem, 3, stride=2, padding=1),
            ScaleLayer(0.05),
        )
        self.dist_maps = DistMaps(norm_radius, use_disks)
        self.feature_extractor = HRNetOCR(width, ocr_width, small, **hrnet_kwargs)
        self.arch: dict[str, Any] = dict(
            width=width,
            ocr_width=ocr_width,
            small=small,
            with_aux_output=with_aux_output,
            use_leaky_relu=use_leaky_relu,
            norm_radius=norm_radius,
            use_disks=use_disks,
            with_prev_mask=with_prev_mask,
            binary_prev_mask=binary_prev_mask,
            **{k: v for k, v in hrnet_kwargs.items() if k != "norm_layer"},
        )

    def forward(self, x: torch.Tensor, points: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` (B, 4, H, W) RGB in [0, 1] + previous probabilities (B, 3, H, W without
        ``with_prev_mask``); ``points`` (B, 2N, 3). Returns {"instances": logits (B, 1, H, W)}
        (+ "instances_aux" with ``with_aux_output``)."""
        h, w = x.shape[-2:]
        image = (x[:, :3] - self.mean) / self.std
        maps = self.dist_maps(points, h, w)
        if self.with_prev_mask:
            prev = x[:, 3:4]
            if self.binary_prev_mask:
                prev = (prev > 0.5).to(prev.dtype)
            # NHWC when x is (inference): the 224x224x16 maps_transform then stays NHWC
            maps = cat_channels(
                [prev, maps], nhwc=x.is_contiguous(memory_format=torch.channels_last)
            )
        out, aux = self.feature_extractor(image, self.maps_transform(maps))
        up = dict(size=(h, w), mode="bilinear", align_corners=True)
        result = {"instances": F.interpolate(out, **up)}
        if self.with_aux_output and aux is not None:
            result["instances_aux"] = F.interpolate(aux, **up)
        return result


def build_ritm(variant: str | None = "h18", **kwargs: Any) -> RITMNet:
    """A randomly initialised ``RITMNet``: a named variant (``VARIANTS``), overridden by kwargs.

    ``build_ritm(None, width=..., ...)`` builds from keyword arguments only.
    """
    if variant is None:
        arch: dict[str, Any] = dict(_COMMON)
    else:
        try:
            arch = dict(VARIANTS[variant])
        except KeyError:
            raise ValueError(
                f"unknown RITM variant {variant!r}; known: {', '.join(VARIANTS)}"
            ) from None
    arch.update(kwargs)
    return RITMNet(**arch)


# -- points -------------------------------------------------------------------------------------


def points_tensor(
    clicks_lists: Sequence[Sequence[tuple[float, float, bool]]], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(B, 2N, 3) float32: per batch item N positive then N negative (row, col, index) slots.

    N is the largest count of one sign over the batch (at least 1); missing slots are
    (-1, -1, -1). The index (the click's position in its list) is carried as RITM does but unused.
    """
    n = 1
    for clicks in clicks_lists:
        pos = sum(1 for c in clicks if c[2])
        n = max(n, pos, len(clicks) - pos)
    # filled in NumPy: a tensor per click costs ~1 ms per batch of 7 trajectories
    out = np.full((len(clicks_lists), 2 * n, 3), -1.0, dtype=np.float32)
    for b, clicks in enumerate(clicks_lists):
        ip, ineg = 0, n
        for k, (r, c, positive) in enumerate(clicks):
            slot = ip if positive else ineg
            out[b, slot] = (float(r), float(c), float(k))
            if positive:
                ip += 1
            else:
                ineg += 1
    return torch.from_numpy(out).to(device)


# -- checkpoints --------------------------------------------------------------------------------

# Defaults of RITM's HRNetModel / ISModel, used for parameters a config does not list.
_OFFICIAL_DEFAULTS: dict[str, Any] = dict(
    width=48,
    ocr_width=256,
    small=False,
    use_rgb_conv=True,
    with_aux_output=False,
    norm_radius=260,
    use_disks=False,
    with_prev_mask=False,
    use_leaky_relu=False,
    binary_prev_mask=False,
    conv_extend=False,
    clicks_groups=None,
    norm_layer="torch.nn.modules.batchnorm.BatchNorm2d",
    norm_mean_std=(IMAGENET_MEAN, IMAGENET_STD),
)


def _missing_checkpoint_message(what: str) -> str:
    return (
        f"{what}. RITM needs official weights, which cannot be bundled: download e.g. "
        f"{URL_PATTERN.format(file='coco_lvis_h18s_itermask.pth')} (other files: "
        "coco_lvis_h18_itermask.pth, sbd_h18_itermask.pth, coco_lvis_h32_itermask.pth, "
        "coco_lvis_h18_baseline.pth) and pass checkpoint=PATH (a bare file name is also looked up "
        "in $IISLIB_WEIGHTS and <IISLIB_HOME>/weights), or pass pretrained=False for random weights"
    )


def resolve_checkpoint(checkpoint: str | os.PathLike[str]) -> Path:
    """The checkpoint file: the path itself, else a bare name in $IISLIB_WEIGHTS or HOME/weights."""
    path = Path(checkpoint).expanduser()
    if path.is_file():
        return path
    if path.name == str(checkpoint):
        from iislib import paths

        dirs = [os.environ.get("IISLIB_WEIGHTS"), paths.HOME / "weights"]
        for d in dirs:
            if d and (Path(d) / path.name).is_file():
                return Path(d) / path.name
    raise FileNotFoundError(_missing_checkpoint_message(f"RITM checkpoint not found: {path}"))


def _config_params(config: Any) -> dict[str, Any]:
    """Architecture parameters from an official config ``{'class', 'params': {name: {'value'}}}``."""
    if isinstance(config, list):
        raise ValueError("multi-stage RITM checkpoints (a list of configs) are not supported")
    if not isinstance(config, Mapping) or not isinstance(config.get("params"), Mapping):
        raise ValueError("the checkpoint's 'config' is not RITM's {'class', 'params'} dictionary")
    cls = str(config.get("class", ""))
    if cls and not cls.endswith("HRNetModel"):
        raise ValueError(
            f"the checkpoint is a {cls}, not an HRNetModel; only RITM HRNet is supported"
        )
    params = {}
    for name, entry in config["params"].items():
        params[name] = entry["value"] if isinstance(entry, Mapping) and "value" in entry else entry
    merged = {**_OFFICIAL_DEFAULTS, **params}
    problems = []
    if merged["use_rgb_conv"]:
        problems.append("use_rgb_conv=True")
    if merged["conv_extend"]:
        problems.append("conv_extend=True")
    if merged["clicks_groups"] is not None:
        problems.append(f"clicks_groups={merged['clicks_groups']}")
    if not str(merged["norm_layer"]).endswith("BatchNorm2d"):
        problems.append(f"norm_layer={merged['norm_layer']}")
    if problems:
        raise ValueError(f"unsupported RITM configuration: {', '.join(problems)}")
    mean, std = merged["norm_mean_std"]
    return dict(
        width=int(merged["width"]),
        ocr_width=int(merged["ocr_width"]),
        small=bool(merged["small"]),
        with_aux_output=bool(merged["with_aux_output"]),
        use_leaky_relu=bool(merged["use_leaky_relu"]),
        norm_radius=float(merged["norm_radius"]),
        use_disks=bool(merged["use_disks"]),
        with_prev_mask=bool(merged["with_prev_mask"]),
        binary_prev_mask=bool(merged["binary_prev_mask"]),
        norm_mean_std=(tuple(float(v) for v in mean), tuple(float(v) for v in std)),
    )


def _count(keys: Sequence[str], prefix: str) -> int:
    """Number of distinct integer children ``prefix.<i>.`` among ``keys``."""
    found = {k[len(prefix) :].split(".", 1)[0] for k in keys if k.startswith(prefix)}
    return len({s for s in found if s.isdigit()})


def infer_arch(state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Architecture of a bare RITM HRNet state dict, from its key names and shapes.

    The click encoding cannot be seen in weights: the IT-M defaults (disks of radius 5,
    LeakyReLU, auxiliary output) are assumed.
    """
    keys = list(state_dict)
    fe = "feature_extractor."
    need = [fe + "conv1.weight", fe + "transition1.0.0.weight", "maps_transform.0.weight"]
    absent = [k for k in need if k not in state_dict]
    if absent:
        raise ValueError(
            "not a RITM HRNet state dict: missing "
            + ", ".join(absent)
            + f" ({len(keys)} keys, first: {', '.join(keys[:5])})"
        )
    width = int(state_dict[fe + "transition1.0.0.weight"].shape[0])
    # stage2 .. stageN exist for N parallel branches
    num_branches = 1 + sum(
        1 for s in (2, 3, 4) if any(k.startswith(f"{fe}stage{s}.") for k in keys)
    )
    num_modules = tuple(_count(keys, f"{fe}stage{s}.") for s in range(2, num_branches + 1))
    num_blocks = _count(keys, f"{fe}stage2.0.branches.0.")
    ocr = fe + "conv3x3_ocr.0.weight"
    ocr_width = int(state_dict[ocr].shape[0]) // 2 if ocr in state_dict else 0
    arch: dict[str, Any] = dict(
        width=width,
        ocr_width=ocr_width,
        num_branches=num_branches,
        num_blocks=num_blocks,
        num_modules=num_modules,
        layer1_blocks=_count(keys, fe + "layer1."),
        stem_width=int(state_dict[fe + "conv1.weight"].shape[0]),
        with_prev_mask=int(state_dict["maps_transform.0.weight"].shape[1]) == 3,
    )
    if ocr_width == 0:
        arch["light_head"] = fe + "cls_head.weight" in state_dict
    return {**_COMMON, **arch}


def _check_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> None:
    """Raise ValueError naming missing / unexpected keys and shape mismatches."""
    # num_batches_tracked only matters for training with momentum=None; old files may lack it.
    problems = state_dict_problems(model.state_dict(), sd, ("num_batches_tracked",))
    if problems:
        raise ValueError("the checkpoint does not fit the RITM network: " + "; ".join(problems))


def load_ritm_net(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any], device: str | torch.device = "cpu"
) -> RITMNet:
    """An eval-mode ``RITMNet`` from an official checkpoint (``{'state_dict', 'config'}``), a
    bare state dict, a path to either, or such a dictionary already loaded.

    The file is read with ``torch.load(weights_only=True)`` (no code runs); the architecture
    comes from ``config['params']`` (the class path it names is never imported) or, for a bare
    state dict, from the key names and shapes.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a (readable) checkpoint, another architecture, missing/extra weights or
            wrong shapes (the message lists them).
    """
    where = "the given dictionary"
    if isinstance(checkpoint, Mapping):
        obj: Any = checkpoint
    else:
        path = resolve_checkpoint(checkpoint)
        where = str(path)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
            raise ValueError(f"{path} is not a readable PyTorch checkpoint: {e}") from e
        except Exception as e:  # weights_only rejects unknown globals with various types
            raise ValueError(f"{path} could not be loaded as a checkpoint: {e}") from e
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where} holds a {type(obj).__name__}, not a checkpoint dictionary")
    if "state_dict" in obj:
        sd = obj["state_dict"]
        config = obj.get("config")
    else:
        sd, config = obj, None
    if (
        not isinstance(sd, Mapping)
        or not sd
        or not all(isinstance(v, torch.Tensor) for v in sd.values())
    ):
        raise ValueError(f"{where} holds no state dict of tensors")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    try:
        arch = infer_arch(sd) if config is None else _config_params(config)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from e
    net = RITMNet(**arch)
    try:
        _check_state_dict(net, sd)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from e
    net.load_state_dict(sd, strict=False)
    return net.to(device).eval()


# -- the IISModel -------------------------------------------------------------------------------


def _device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available")
    return dev


class RITM(IISModel):
    """RITM as called directly (no zoom-in, no flip): sigmoid of ``RITMNet`` on [image, prev].

    Args:
        checkpoint: official ``.pth`` (path, or bare file name looked up in $IISLIB_WEIGHTS and
            HOME/weights), or a loaded checkpoint dictionary.
        pretrained: False builds random weights (tests, training) and needs no checkpoint.
        variant: architecture when ``pretrained=False`` (``VARIANTS``; default "h18").
        device: "cpu" (default) or "cuda".
        **arch: architecture overrides when ``pretrained=False``.

    Wrap it in ``iislib.predictors.ZoomInFlipPredictor`` for RITM's own evaluation protocol.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        pretrained: bool = True,
        variant: str | None = None,
        device: str | torch.device = "cpu",
        **arch: Any,
    ) -> None:
        self.device = _device(device)
        if pretrained:
            if checkpoint is None:
                raise ValueError(_missing_checkpoint_message("no RITM checkpoint given"))
            if variant is not None or arch:
                raise ValueError("variant/architecture arguments only apply with pretrained=False")
            self.net = load_ritm_net(checkpoint, self.device)
        else:
            if checkpoint is not None:
                raise ValueError("pass either a checkpoint or pretrained=False, not both")
            self.net = build_ritm(variant or "h18", **arch).to(self.device).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        # NHWC convolutions are 20-30% faster on CPU (oneDNN); outputs agree to ~1e-6.
        self.net.to(memory_format=torch.channels_last)
        # (net, its tensors, their versions, folded copy)
        self._folded: tuple[nn.Module, list, list, nn.Module] | None = None

    def _inference_net(self, x: torch.Tensor, points: torch.Tensor) -> nn.Module:
        """``self.net`` with its BatchNorms folded into the convolutions (``fold_batchnorm``).

        The copy is made on the first call (``x``, ``points`` serve as its example input) and
        again when ``self.net`` is replaced or its weights change in place (optimiser steps,
        ``load_state_dict``); a net in training mode or with trainable weights is used as it is.
        """
        net = self.net
        if net.training:
            return net
        if self._folded is not None:
            folded_from, tensors, versions, folded = self._folded
            # the tensors were listed when folding: walking the modules again costs ~1 ms
            if folded_from is net and [t._version for t in tensors] == versions:
                return folded
        if any(p.requires_grad for p in net.parameters()):
            return net
        tensors = [*net.parameters(), *net.buffers()]
        folded = fold_batchnorm(net, x, points)
        self._folded = (net, tensors, [t._version for t in tensors], folded)
        return folded

    @torch.no_grad()
    def predict_logits(
        self,
        images: np.ndarray,
        clicks_lists: Sequence[Sequence[tuple[float, float, bool]]],
        prevs: np.ndarray,
    ) -> np.ndarray:
        """Logits (B, H, W) float32 of equal-size inputs in one forward pass.

        Args:
            images: float32 (B, H, W, 3) RGB in [0, 1].
            clicks_lists: per item (row, col, positive) in pixels; floats and points outside
                the image are allowed (the zoom-in predictor produces both).
            prevs: float32 (B, H, W) previous probabilities.
        """
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
        if self.net.with_prev_mask:
            p = torch.from_numpy(np.ascontiguousarray(prevs, dtype=np.float32))[:, None]
            x = cat_channels([x, p], nhwc=True)  # one copy, already channels_last
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        points = points_tensor(clicks_lists, self.device)
        logits = self._inference_net(x, points)(x, points)["instances"][:, 0]
        return logits.float().cpu().numpy()

    def _predict(self, image: np.ndarray, clicks: list[Click], prev: np.ndarray) -> np.ndarray:
        return self.predict_batch([image], [clicks], [prev])[0]

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        clicks: Sequence[Sequence[Click]],
        prevs: Sequence[np.ndarray | None],
    ) -> list[np.ndarray]:
        """Probabilities for several trajectories; equal-size inputs share one forward pass."""
        checked = validate_batch(images, clicks, prevs)
        imgs = [img for img, _, _ in checked]
        ps = [prev for _, _, prev in checked]
        out: list[np.ndarray | None] = [None] * len(imgs)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(imgs):
            groups.setdefault(img.shape[:2], []).append(i)
        for idx in groups.values():
            logits = self.predict_logits(
                np.stack([imgs[i] for i in idx]),
                [[(c.row, c.col, c.positive) for c in clicks[i]] for i in idx],
                np.stack([ps[i] for i in idx]),
            )
            probs = torch.sigmoid(torch.from_numpy(logits)).numpy()
            for k, i in enumerate(idx):
                out[i] = probs[k]
        return [np.clip(o, 0.0, 1.0) for o in out]  # type: ignore[arg-type]


__all__ = [
    "RITM",
    "RITMNet",
    "DistMaps",
    "VARIANTS",
    "URL_PATTERN",
    "build_ritm",
    "infer_arch",
    "load_ritm_net",
    "points_tensor",
]
