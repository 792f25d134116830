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

``RITM`` (an ``IISModel``) applies the sigmoid; it predicts through ``iislib.models.fast`` unless
built with ``fast=False``, which runs the network as written. Official weights:
https://github.com/saic-vul/ritm_interactive_segmentation/releases/download/v1.0/<file>, e.g.
``coco_lvis_h18s_itermask.pth``, ``coco_lvis_h18_itermask.pth``, ``sbd_h18_itermask.pth``,
``coco_lvis_h32_itermask.pth``. They cannot be bundled; pass ``checkpoint=PATH``.

Clicks are (row, col); a padding point is any point with max(row, col) < 0, as in RITM.
"""

from __future__ import annotations

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

from iislib import paths
from iislib.core.clicks import Click
from iislib.core.model import IISModel, validate_batch
from iislib.models.base import Family
from iislib.models.checkpoint import state_dict_problems
from iislib.models.fast import accelerate, cat_channels, fold_batchnorm, use_fast_modules
from iislib.models.hrnet import HRNetOCR
from iislib.models.layers import Concat, DistMaps

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
    # parameters (speed: benchmarks/bench_networks.py).
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
            nn.Conv2d(cin, 16, 1),
            nn.LeakyReLU(0.2) if use_leaky_relu else nn.ReLU(inplace=True),
            nn.Conv2d(16, stem, 3, stride=2, padding=1),
            ScaleLayer(0.05),
        )
        self.dist_maps = DistMaps(norm_radius, use_disks)
        self.concat = Concat()
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
            maps = self.concat(prev, maps)
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
    # filled in NumPy: one small tensor per click would cost more than the padding itself
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
        "in the weights folder, $IISLIB_WEIGHTS, default data/weights), or pass pretrained=False for random weights"
    )


def resolve_checkpoint(checkpoint: str | os.PathLike[str]) -> Path:
    """The checkpoint file: the path itself, else a bare name in the weights folder
    (``iislib.paths.weights_dir()``: $IISLIB_WEIGHTS, default data/weights) or
    HOME/weights."""
    path = Path(checkpoint).expanduser()
    if path.is_file():
        return path
    if path.name == str(checkpoint):
        dirs = [paths.weights_dir(), paths.HOME / "weights"]
        for d in dirs:
            if d and (Path(d) / path.name).is_file():
                return Path(d) / path.name
    raise FileNotFoundError(_missing_checkpoint_message(f"RITM checkpoint not found: {path}"))


def config_params(config: Any) -> dict[str, Any]:
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


def _conv_size(state_dict: Mapping[str, torch.Tensor], key: str, axis: int) -> int:
    """Size ``axis`` of the convolution weight ``key``; ValueError unless it is 4-D."""
    t = state_dict[key]
    shape = tuple(getattr(t, "shape", ()))
    if len(shape) != 4:
        raise ValueError(
            f"{key} has shape {shape} in the file: a convolution weight has 4 dimensions "
            "(out, in, kh, kw)"
        )
    return int(shape[axis])


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
    width = _conv_size(state_dict, fe + "transition1.0.0.weight", 0)
    # stage2 .. stageN exist for N parallel branches
    num_branches = 1 + sum(
        1 for s in (2, 3, 4) if any(k.startswith(f"{fe}stage{s}.") for k in keys)
    )
    num_modules = tuple(_count(keys, f"{fe}stage{s}.") for s in range(2, num_branches + 1))
    num_blocks = _count(keys, f"{fe}stage2.0.branches.0.")
    ocr = fe + "conv3x3_ocr.0.weight"
    ocr_width = _conv_size(state_dict, ocr, 0) // 2 if ocr in state_dict else 0
    arch: dict[str, Any] = dict(
        width=width,
        ocr_width=ocr_width,
        num_branches=num_branches,
        num_blocks=num_blocks,
        num_modules=num_modules,
        layer1_blocks=_count(keys, fe + "layer1."),
        stem_width=_conv_size(state_dict, fe + "conv1.weight", 0),
        with_prev_mask=_conv_size(state_dict, "maps_transform.0.weight", 1) == 3,
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
        arch = infer_arch(sd) if config is None else config_params(config)
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


def _example_inputs(net: RITMNet, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed (x, points) pair of valid shape, channels_last: what ``fold_batchnorm`` runs."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 4 if net.with_prev_mask else 3, 64, 64, generator=g)
    points = points_tensor([[(20.0, 30.0, True), (40.0, 10.0, False)]], device)
    return x.to(device).contiguous(memory_format=torch.channels_last), points


class RITM(IISModel):
    """RITM as called directly (no zoom-in, no flip): sigmoid of ``RITMNet`` on [image, prev].

    Args:
        checkpoint: official ``.pth`` (path, or bare file name looked up in $IISLIB_WEIGHTS and
            HOME/weights), or a loaded checkpoint dictionary.
        pretrained: False builds random weights (tests, training) and needs no checkpoint.
        variant: architecture when ``pretrained=False`` (``VARIANTS``; default "h18").
        net: an already built (e.g. trained) ``RITMNet`` to wrap instead; the model takes it
            over (eval mode, frozen, and, with ``fast``, converted in place).
        fast: predict through ``iislib.models.fast`` (channels_last, oneDNN 1x1 convolutions,
            NHWC concatenation, windowed click disks, and a copy of the network with its
            BatchNorms folded into the convolutions, made once here). False runs the plain
            network, as the official code does.
        device: "cpu" (default) or "cuda".
        **arch: architecture overrides when ``pretrained=False``.

    ``net`` holds the weights (its state dict is the official layout); a change to them after
    the model is built does not reach the folded copy: build a new model instead.
    Wrap it in ``iislib.models.predictors.ZoomInFlipPredictor`` for RITM's own evaluation protocol.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        pretrained: bool = True,
        variant: str | None = None,
        net: RITMNet | None = None,
        fast: bool = True,
        device: str | torch.device = "cpu",
        **arch: Any,
    ) -> None:
        self.device = _device(device)
        if net is not None:
            if checkpoint is not None or variant is not None or arch:
                raise ValueError("pass either net= or a checkpoint/architecture, not both")
            self.net = net.to(self.device).eval()
        elif pretrained:
            if checkpoint is None:
                raise ValueError(_missing_checkpoint_message("no RITM checkpoint given"))
            if variant is not None or arch:
                raise ValueError("variant/architecture arguments only apply with pretrained=False")
            self.net = load_ritm_net(checkpoint, self.device)
        else:
            if checkpoint is not None:
                raise ValueError("pass either a checkpoint or pretrained=False, not both")
            self.net = build_ritm(variant or "h18", **arch).to(self.device).eval()
        self.net.requires_grad_(False)
        self.fast = bool(fast)
        self.forward_net: nn.Module = self.net
        """What ``predict`` runs: ``net``, or with ``fast`` its BatchNorm-folded copy."""
        if self.fast:
            # The 224x224x16 click maps enter maps_transform in NHWC: the first part of their
            # concatenation is a channel slice of the NHWC input, laid out as neither.
            accelerate(self.net, nhwc_concat=True)
            self.forward_net = fold_batchnorm(self.net, *_example_inputs(self.net, self.device))

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
        inputs = FAMILY.inputs(self.net, images, clicks_lists, prevs, channels_last=self.fast)
        logits = self.forward_net(*inputs)["instances"][:, 0]
        return logits.float().cpu().numpy()

    def _predict(self, image: np.ndarray, clicks: list[Click], prev: np.ndarray) -> np.ndarray:
        return self.predict_batch([image], [clicks], [prev])[0]

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        clicks: Sequence[Sequence[Click]],
        prevs: Sequence[np.ndarray | None],
        states: Sequence[Any] | None = None,
    ) -> list[np.ndarray]:
        """Probabilities for several trajectories; equal-size inputs share one forward pass.
        RITM keeps no state between calls (``states`` is accepted and unused)."""
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


# -- the family adapter (shared by training and prediction) -------------------------------------


def normalized_focal_loss(logits: torch.Tensor, gt: torch.Tensor, gamma: float = 2.0,
                          alpha: float = 0.5, eps: float = 1e-8) -> torch.Tensor:  # fmt: skip
    """RITM's NormalizedFocalLoss (per image, the focal weights normalised to sum to the area)."""
    p = torch.sigmoid(logits)
    pt = torch.where(gt > 0.5, p, 1 - p)
    a = torch.where(gt > 0.5, alpha, 1 - alpha)
    beta = (1 - pt) ** gamma
    norm = beta.sum(dim=(-2, -1), keepdim=True).detach() + eps
    beta = beta * (gt[0, 0].numel() / norm)
    loss = -a * beta * torch.log(pt.clamp(min=eps))
    return loss.mean()


class RITMFamily(Family):
    """The ritm family: ``RITMNet`` on [RGB, prev] and the clicks as points (``points_tensor``).

    Its main output is the logits, its auxiliary output the OCR head's logits.
    """

    name = "ritm"

    def compact_arch(self) -> dict[str, Any]:
        return dict(VARIANTS["compact"])

    def build_net(self, arch: Mapping[str, Any]) -> RITMNet:
        return build_ritm(None, **arch)

    def train_net(self, net: nn.Module) -> nn.Module:
        """The network keeps NCHW (no gain measured for ritm), but its convolutions and click
        disks are the fast ones (``use_fast_modules``): the no-grad passes that place the
        training clicks have always run them, and the weights depend on it in the last bits."""
        return use_fast_modules(net, (nn.Conv2d, DistMaps))

    def inputs(
        self,
        net: nn.Module,
        images: np.ndarray,
        clicks: Sequence[Sequence[tuple[float, float, bool]]],
        prevs: np.ndarray,
        *,
        channels_last: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x (B, 4, H, W): RGB and prev (3 channels without ``with_prev_mask``), points
        (B, 2N, 3)); clicks may hold float coordinates and points off the image."""
        device = next(net.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
        if net.with_prev_mask:
            p = torch.from_numpy(np.ascontiguousarray(prevs, dtype=np.float32))[:, None]
            # channels_last: one copy, already in the layout (torch.cat would return NCHW)
            x = cat_channels([x, p], nhwc=True) if channels_last else torch.cat([x, p], 1)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        return x.to(device).contiguous(memory_format=layout), points_tensor(clicks, device)

    def forward_train(
        self,
        net: nn.Module,
        images: np.ndarray,
        clicks: Sequence[Sequence[Click]],
        prevs: np.ndarray,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(logits (B, 1, H, W), auxiliary logits or None)."""
        out = net(*self.inputs(net, images, clicks, prevs))
        return out["instances"], out.get("instances_aux")

    def probabilities(self, main: torch.Tensor) -> np.ndarray:
        return torch.sigmoid(main)[:, 0].detach().float().cpu().numpy()

    def loss(
        self, main: torch.Tensor, aux: torch.Tensor | None, target: torch.Tensor, recipe: Any
    ) -> torch.Tensor:
        """NFL (``recipe.ritm_loss == "nfl"``, as RITM) or BCE on the logits, + 0.4 BCE(aux)."""
        if recipe.ritm_loss == "nfl":
            loss = normalized_focal_loss(main, target)
        else:
            loss = F.binary_cross_entropy_with_logits(main, target)
        if aux is not None:
            loss = loss + 0.4 * F.binary_cross_entropy_with_logits(aux, target)
        return loss

    def wrap(self, net: nn.Module, *, fast: bool = True, device: str = "cpu") -> RITM:
        return RITM(net=net, fast=fast, device=device)


FAMILY = RITMFamily()


__all__ = [
    "FAMILY",
    "RITM",
    "RITMFamily",
    "RITMNet",
    "DistMaps",
    "VARIANTS",
    "URL_PATTERN",
    "build_ritm",
    "infer_arch",
    "load_ritm_net",
    "points_tensor",
]
