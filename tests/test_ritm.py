"""RITM network: official state-dict layout, checkpoint loading, click disks, predictions."""

from __future__ import annotations

import copy
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from iislib.core.clicks import Click
from iislib.models import get_model
from iislib.models.ritm import (
    RITM,
    URL_PATTERN,
    DistMaps,
    RITMNet,
    build_ritm,
    infer_arch,
    load_ritm_net,
    points_tensor,
)

# (state-dict keys, parameters) of the official files, counted from RITM's own modules.
OFFICIAL = {"h18": (1895, 10_032_019), "h18s": (929, 4_220_047), "h32": (1895, 30_951_363)}


def meta_net(variant: str, **kw) -> RITMNet:
    with torch.device("meta"):
        return build_ritm(variant, **kw)


@pytest.mark.parametrize("variant", sorted(OFFICIAL))
def test_official_key_and_parameter_counts(variant: str) -> None:
    net = meta_net(variant)
    sd = net.state_dict()
    keys, params = OFFICIAL[variant]
    assert len(sd) == keys
    assert sum(p.numel() for p in net.parameters()) == params
    names = list(sd)
    # maps_transform comes first, then the backbone; no rgb_conv, no normalisation buffers
    assert names[:5] == [
        "maps_transform.0.weight",
        "maps_transform.0.bias",
        "maps_transform.2.weight",
        "maps_transform.2.bias",
        "maps_transform.3.scale",
    ]
    assert all(n.startswith("feature_extractor.") for n in names[5:])
    assert sum(n.endswith("num_batches_tracked") for n in names) > 0


def test_h18_key_names_and_shapes() -> None:
    sd = meta_net("h18").state_dict()
    fe = "feature_extractor."
    expected = {
        "maps_transform.0.weight": (16, 3, 1, 1),
        "maps_transform.2.weight": (64, 16, 3, 3),
        "maps_transform.3.scale": (1,),
        fe + "conv1.weight": (64, 3, 3, 3),
        fe + "conv2.weight": (64, 64, 3, 3),
        fe + "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        fe + "layer1.3.conv3.weight": (256, 64, 1, 1),
        fe + "transition1.0.0.weight": (18, 256, 3, 3),
        fe + "transition1.1.0.0.weight": (36, 256, 3, 3),
        fe + "transition2.2.0.0.weight": (72, 36, 3, 3),
        fe + "transition3.3.0.0.weight": (144, 72, 3, 3),
        fe + "stage2.0.branches.1.3.conv2.weight": (36, 36, 3, 3),
        fe + "stage3.3.fuse_layers.0.2.0.weight": (18, 72, 1, 1),
        fe + "stage4.2.fuse_layers.3.0.0.0.weight": (18, 18, 3, 3),
        fe + "stage4.2.fuse_layers.3.0.2.0.weight": (144, 18, 3, 3),
        fe + "stage4.2.fuse_layers.3.0.2.1.num_batches_tracked": (),
        fe + "conv3x3_ocr.0.weight": (128, 270, 3, 3),
        fe + "conv3x3_ocr.0.bias": (128,),
        fe + "ocr_distri_head.object_context_block.f_pixel.3.0.running_var": (64,),
        fe + "ocr_distri_head.object_context_block.f_up.0.weight": (128, 64, 1, 1),
        fe + "ocr_distri_head.conv_bn_dropout.0.weight": (128, 256, 1, 1),
        fe + "ocr_distri_head.conv_bn_dropout.1.0.weight": (128,),
        fe + "cls_head.weight": (1, 128, 1, 1),
        fe + "aux_head.0.weight": (270, 270, 1, 1),
        fe + "aux_head.3.weight": (1, 270, 1, 1),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    absent = [fe + "transition2.0.0.weight", fe + "stage4.2.fuse_layers.0.0.0.weight"]
    assert not any(k in sd for k in absent)  # None entries keep their index but hold nothing


def test_h18s_is_small() -> None:
    sd = meta_net("h18s").state_dict()
    fe = "feature_extractor."
    assert fe + "layer1.1.conv1.weight" in sd and fe + "layer1.2.conv1.weight" not in sd
    assert (
        fe + "stage3.2.branches.0.1.conv1.weight" in sd
        and fe + "stage3.3.branches.0.0.conv1.weight" not in sd
    )
    assert (
        fe + "stage4.1.fuse_layers.3.2.0.0.weight" in sd
        and fe + "stage4.2.branches.0.0.conv1.weight" not in sd
    )
    assert tuple(sd[fe + "conv3x3_ocr.0.weight"].shape) == (96, 270, 3, 3)


# -- click disks --------------------------------------------------------------------------------


def disks(points: list[list[tuple[float, float, int]]], h: int, w: int) -> np.ndarray:
    return DistMaps(5, True)(torch.tensor(points, dtype=torch.float32), h, w).numpy()


def test_disk_radius_5_hand_cases() -> None:
    m = disks([[(7, 7, 0), (-1, -1, -1)]], 15, 15)[0]
    pos, neg = m
    assert pos.sum() == 81  # integer offsets with dr^2 + dc^2 <= 25
    assert neg.sum() == 0
    assert pos[7, 12] == 1 and pos[7, 13] == 0  # d^2 = 25 in, 36 out
    assert pos[10, 11] == 1 and pos[11, 11] == 0  # 9 + 16 = 25 in, 16 + 16 out
    assert pos[2, 7] == 1 and pos[3, 3] == 0  # 25 in; 32 out


def test_disk_padding_and_signs() -> None:
    # 2 slots per sign; (-1, -1) is padding, (-1, 5) is a real point just above the image
    m = disks([[(0, 0, 0), (-1, -1, -1), (-1, 5, 1), (-1, -1, -1)]], 9, 12)[0]
    pos, neg = m
    assert pos[0, 0] == 1 and pos[5, 0] == 1 and pos[4, 3] == 1 and pos[4, 4] == 0
    assert pos.sum() == 26  # quarter disk: offsets (r>=0, c>=0) with r^2 + c^2 <= 25
    assert neg[0, 5] == 1 and neg[4, 5] == 1 and neg[5, 5] == 0  # centre row -1: d^2 = 25 at row 4
    pad_only = disks([[(-1, -1, -1), (-1, -1, -1)]], 9, 12)
    assert pad_only.sum() == 0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-8, 30), st.integers(-8, 30), st.booleans()), min_size=0, max_size=6
    )
)
def test_disks_match_brute_force(clicks: list[tuple[int, int, bool]]) -> None:
    h, w = 23, 19
    pts = points_tensor([clicks])
    got = DistMaps(5, True)(pts, h, w)[0].numpy()
    rr, cc = np.mgrid[:h, :w]
    for ch, sign in ((0, True), (1, False)):
        want = np.zeros((h, w), bool)
        for r, c, p in clicks:
            if p == sign and max(r, c) >= 0:
                want |= (rr - r) ** 2 + (cc - c) ** 2 <= 25
        np.testing.assert_array_equal(got[ch], want.astype(np.float32))


def test_points_tensor_layout() -> None:
    pts = points_tensor([[(1, 2, True), (3, 4, False), (5, 6, True)], [(7, 8, False)]])
    assert pts.shape == (2, 4, 3)
    np.testing.assert_array_equal(pts[0].numpy(), [[1, 2, 0], [5, 6, 2], [3, 4, 1], [-1, -1, -1]])
    np.testing.assert_array_equal(
        pts[1].numpy(), [[-1, -1, -1], [-1, -1, -1], [7, 8, 0], [-1, -1, -1]]
    )


# -- checkpoints in the official layout -----------------------------------------------------------


def randomised(net: RITMNet, seed: int = 0) -> RITMNet:
    """Non-trivial BatchNorm statistics and a large click-map scale, so every part matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
        net.maps_transform[3].scale.fill_(2.0)
        net.feature_extractor.cls_head.weight.mul_(10)
    return net.eval()


def official_config(width: int, ocr_width: int, small: bool) -> dict:
    """A config as RITM's @serialize writes it: every parameter, with type/value/specified."""

    def b(v, specified=True, kind="builtin"):
        return {"type": kind, "value": v, "specified": specified}

    return {
        "class": "isegm.model.is_hrnet_model.HRNetModel",
        "params": {
            "width": b(width),
            "ocr_width": b(ocr_width),
            "small": b(small),
            "with_aux_output": b(True),
            "use_leaky_relu": b(True),
            "use_rgb_conv": b(False),
            "use_disks": b(True),
            "norm_radius": b(5),
            "with_prev_mask": b(True),
            "backbone_lr_mult": b(0.1, False),
            "norm_layer": b("torch.nn.modules.batchnorm.BatchNorm2d", False, "class"),
            "cpu_dist_maps": b(False, False),
            "clicks_groups": b(None, False),
            "binary_prev_mask": b(False, False),
            "conv_extend": b(False, False),
            "norm_mean_std": b(([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), False),
        },
    }


@pytest.fixture(scope="module")
def h18s_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    torch.manual_seed(0)  # the same weights whatever ran before (the checks below need teeth)
    net = randomised(build_ritm("h18s"))
    sd = net.state_dict()
    path = tmp_path_factory.mktemp("ckpt") / "coco_lvis_h18s_itermask.pth"
    torch.save({"state_dict": sd, "config": official_config(18, 48, True)}, path)
    return path, sd


def reference_prob(
    sd: dict, image: np.ndarray, clicks: list[Click], prev: np.ndarray
) -> np.ndarray:
    """RITM's computation spelt out with the backbone's modules: ImageNet normalisation, hand-made
    disks [prev, pos, neg], Conv1S fusion, bilinear (align_corners) upsampling, sigmoid."""
    net = build_ritm("h18s").eval()
    net.load_state_dict(sd)
    h, w = prev.shape
    # NCHW-contiguous, as torchvision's ToTensor gives it to RITM
    x = torch.from_numpy(image).permute(2, 0, 1).contiguous().float().div(255)[None]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    rr, cc = np.mgrid[:h, :w]
    maps = [prev]
    for sign in (True, False):
        m = np.zeros((h, w), bool)
        for c in clicks:
            if c.positive == sign:
                m |= (rr - c.row) ** 2 + (cc - c.col) ** 2 <= 25
        maps.append(m.astype(np.float32))
    enc = torch.from_numpy(np.stack(maps))[None]
    with torch.no_grad():
        out, _ = net.feature_extractor((x - mean) / std, net.maps_transform(enc))
        up = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=True)
    return torch.sigmoid(up)[0, 0].numpy()


def test_official_checkpoint_loads_weights_only_and_predicts(h18s_checkpoint) -> None:
    path, sd = h18s_checkpoint
    raw = torch.load(path, weights_only=True)  # the config holds only plain values
    assert raw["config"]["params"]["small"]["value"] is True
    model = get_model("ritm", checkpoint=str(path))
    assert isinstance(model, RITM) and model.name == "ritm"
    assert not model.net.training and not any(p.requires_grad for p in model.net.parameters())
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    prev = rng.random((37, 53)).astype(np.float32)
    clicks = [Click(10, 12, True), Click(30, 40, False), Click(18, 25, True)]
    prob = model.predict(image, clicks, prev)
    assert prob.shape == (37, 53) and prob.dtype == np.float32
    assert 0 <= prob.min() and prob.max() <= 1
    want = reference_prob(sd, image, clicks, prev)
    # the plain path is the official computation, float operation for float operation
    plain = get_model("ritm", checkpoint=str(path), fast=False)
    np.testing.assert_array_equal(plain.predict(image, clicks, prev), want)
    # the fast path (the default) within docs/decisions.md "Tolerances"
    np.testing.assert_allclose(prob, want, atol=1e-5)
    # the comparisons have teeth: swapping the click signs or dropping prev moves the map far
    # beyond the tolerance
    swapped = [Click(c.row, c.col, not c.positive) for c in clicks]
    assert np.abs(reference_prob(sd, image, swapped, prev) - prob).max() > 1e-3
    assert np.abs(model.predict(image, clicks, None) - prob).max() > 1e-3
    assert np.abs(plain.predict(image, clicks, None) - want).max() > 1e-3


def test_bare_state_dict_infers_the_variant(h18s_checkpoint, tmp_path: Path) -> None:
    path, sd = h18s_checkpoint
    bare = tmp_path / "bare.pth"
    torch.save(sd, bare)
    a = get_model("ritm", checkpoint=path)
    b = get_model("ritm", checkpoint=bare)
    image = np.full((24, 32, 3), 120, np.uint8)
    clicks = [Click(5, 6, True)]
    np.testing.assert_array_equal(a.predict(image, clicks), b.predict(image, clicks))


@pytest.mark.parametrize(
    "variant,kw",
    [
        ("h18", {}),
        ("h32", {}),
        ("compact", {}),
        (None, dict(width=8, ocr_width=0, num_branches=3, num_blocks=1, num_modules=(1, 2))),
        (None, dict(width=8, ocr_width=0, light_head=True, num_branches=2, stem_width=16)),
        (None, dict(width=8, ocr_width=8, with_prev_mask=False, layer1_blocks=1)),
    ],
)
def test_infer_arch_rebuilds_the_same_layout(variant, kw) -> None:
    sd = meta_net(variant, **kw).state_dict()
    again = meta_net(None, **infer_arch(sd)).state_dict()
    assert [(k, tuple(v.shape)) for k, v in again.items()] == [
        (k, tuple(v.shape)) for k, v in sd.items()
    ]


# -- errors -------------------------------------------------------------------------------------


def test_no_checkpoint_explains_where_weights_are() -> None:
    with pytest.raises(ValueError, match="releases/download/v1.0") as e:
        get_model("ritm")
    assert "pretrained=False" in str(e.value)
    assert URL_PATTERN.format(file="x.pth").endswith("/v1.0/x.pth")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nothere.pth"
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        get_model("ritm", checkpoint=missing)


def test_not_a_checkpoint_and_corrupt(tmp_path: Path, h18s_checkpoint) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights")
    with pytest.raises(ValueError, match="notes.pth"):
        load_ritm_net(text)
    path, _ = h18s_checkpoint
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="cut.pth"):
        load_ritm_net(cut)
    plain = tmp_path / "list.pth"
    torch.save([1, 2, 3], plain)
    with pytest.raises(ValueError, match="not a checkpoint dictionary"):
        load_ritm_net(plain)


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_unsafe_pickle_is_refused_without_running_code(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "evil.pth"
    with bad.open("wb") as f:
        pickle.dump({"state_dict": _Evil()}, f, protocol=2)
    with pytest.raises(ValueError, match="evil.pth"):
        load_ritm_net(bad)
    assert "code ran" not in capsys.readouterr().out


def test_other_architecture_is_refused(tmp_path: Path) -> None:
    # a gto99-like state dict (ResNet encoder + decoder), as a bare dict and in a checkpoint
    gto = {
        "encoder.conv1.weight": torch.zeros(64, 11, 7, 7),
        "encoder.bn1.weight": torch.zeros(64),
        "decoder.conv_up1.0.weight": torch.zeros(256, 2048, 3, 3),
    }
    p = tmp_path / "InterSegSynthFT.pth"
    torch.save(gto, p)
    with pytest.raises(ValueError, match="not a RITM HRNet state dict"):
        load_ritm_net(p)
    cfg = official_config(18, 64, False)
    cfg["class"] = "isegm.model.is_deeplab_model.DeeplabModel"
    with pytest.raises(ValueError, match="DeeplabModel"):
        load_ritm_net({"state_dict": gto, "config": cfg})


def test_missing_extra_and_misshapen_weights(h18s_checkpoint) -> None:
    _, sd = h18s_checkpoint
    cfg = official_config(18, 48, True)
    fewer = {k: v for k, v in sd.items() if "stage4.1." not in k}
    with pytest.raises(ValueError, match=r"missing weights: feature_extractor\.stage4\.1\.") as e:
        load_ritm_net({"state_dict": fewer, "config": cfg})
    n_missing = sum(1 for k in sd if "stage4.1." in k and not k.endswith("num_batches_tracked"))
    assert f"{n_missing} missing weights" in str(e.value)
    extra = dict(sd, **{"rgb_conv.0.weight": torch.zeros(9, 6, 1, 1)})
    with pytest.raises(ValueError, match=r"1 unexpected weights: rgb_conv\.0\.weight"):
        load_ritm_net({"state_dict": extra, "config": cfg})
    with pytest.raises(ValueError, match="wrong shapes"):
        load_ritm_net({"state_dict": sd, "config": official_config(32, 48, True)})
    bad_cfg = official_config(18, 48, True)
    bad_cfg["params"]["use_rgb_conv"]["value"] = True
    with pytest.raises(ValueError, match="use_rgb_conv"):
        load_ritm_net({"state_dict": sd, "config": bad_cfg})


@pytest.mark.parametrize(
    "key",
    [
        "maps_transform.0.weight",
        "feature_extractor.conv1.weight",
        "feature_extractor.transition1.0.0.weight",
        "feature_extractor.conv3x3_ocr.0.weight",
    ],
)
@pytest.mark.parametrize("shape", [(), (16,)])
def test_a_tensor_of_the_wrong_rank_is_named(h18s_checkpoint, tmp_path: Path, key, shape) -> None:
    # A bare state dict: its architecture is read from these tensors' shapes (was IndexError).
    _, sd = h18s_checkpoint
    bad = dict(sd, **{key: torch.zeros(shape)})
    path = tmp_path / "bad_rank.pth"
    torch.save(bad, path)
    rank = re.escape(f"{key} has shape {shape} in the file: a convolution weight has 4 dimensions")
    with pytest.raises(ValueError, match="bad_rank.pth: " + rank):
        load_ritm_net(path)
    # With the official config, the same tensor is listed among the wrong shapes.
    listed = re.escape(f"wrong shapes: {key} {shape} in the file")
    with pytest.raises(ValueError, match=listed):
        load_ritm_net({"state_dict": bad, "config": official_config(18, 48, True)})


def test_state_dict_problems_names_values_that_are_not_tensors() -> None:
    from iislib.models.checkpoint import state_dict_problems

    own = {"a.weight": torch.zeros(2, 3), "a.bias": torch.zeros(2)}
    problems = state_dict_problems(own, {"a.weight": 5, "a.bias": torch.zeros(())})
    assert problems == [
        "1 values that are not tensors: a.weight (int)",
        "1 wrong shapes: a.bias () in the file vs (2,) in the network",
    ]


def test_missing_num_batches_tracked_is_tolerated(h18s_checkpoint) -> None:
    _, sd = h18s_checkpoint
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    net = load_ritm_net({"state_dict": old, "config": official_config(18, 48, True)})
    assert not net.training


# -- the IISModel -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compact() -> RITM:
    torch.manual_seed(0)
    # randomised before the model is built: its folded copy is made from these weights
    return RITM(net=randomised(build_ritm("compact")))


def test_fast_path_folds_a_copy_and_matches_the_plain_path() -> None:
    torch.manual_seed(0)
    net = randomised(build_ritm("compact"))
    plain = RITM(net=copy.deepcopy(net), fast=False)
    fast = RITM(net=net)
    assert (
        plain.forward_net is plain.net
        and not plain.net.feature_extractor.conv1.weight.is_contiguous(
            memory_format=torch.channels_last
        )
    )
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.forward_net.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in fast.net.modules())  # the weights' home
    assert fast.net.state_dict().keys() == plain.net.state_dict().keys()
    rng = np.random.default_rng(0)
    images = [rng.random((64, 48, 3), dtype=np.float32) for _ in range(3)]
    clicks = [[Click(10 + i, 12, True), Click(40, 30 - i, False)] for i in range(3)]
    prevs = [rng.random((64, 48), dtype=np.float32) for _ in range(3)]
    a = np.stack(fast.predict_batch(images, clicks, prevs))
    b = np.stack(plain.predict_batch(images, clicks, prevs))
    np.testing.assert_allclose(a, b, atol=1e-5)  # docs/decisions.md "Tolerances"
    assert np.abs(a - b).max() > 0  # two paths indeed: another summation order somewhere


@settings(max_examples=10, deadline=None)
@given(st.integers(9, 70), st.integers(9, 70), st.integers(0, 3))
def test_output_shape_and_range(compact: RITM, h: int, w: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    clicks = [Click(int(rng.integers(h)), int(rng.integers(w)), bool(b)) for b in (1, 0, 1)]
    prob = compact.predict(image, clicks, rng.random((h, w)).astype(np.float32))
    assert prob.shape == (h, w) and prob.dtype == np.float32
    assert np.all((prob >= 0) & (prob <= 1))


def test_predict_batch_matches_predict(compact: RITM) -> None:
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, 256, s + (3,), dtype=np.uint8) for s in [(40, 30), (40, 30), (25, 33)]]
    clicks = [
        [Click(3, 4, True)],
        [Click(10, 20, True), Click(30, 5, False), Click(2, 2, False)],
        [Click(0, 0, False)],
    ]
    prevs = [None, rng.random((40, 30)).astype(np.float32), None]
    batch = compact.predict_batch(imgs, clicks, prevs)
    for b, i, c, p in zip(batch, imgs, clicks, prevs, strict=True):
        np.testing.assert_allclose(b, compact.predict(i, c, p), atol=1e-5)


def test_compact_family_members() -> None:
    net = build_ritm("compact")
    n = sum(p.numel() for p in net.parameters())
    assert 500_000 <= n <= 3_000_000  # issue 4: at most about 3 M
    x = torch.rand(2, 4, 33, 47)
    pts = points_tensor([[(3, 4, True)], [(10, 10, False)]])
    for kw in [
        dict(num_branches=2),
        dict(num_branches=3, ocr_width=0),
        dict(ocr_width=0, light_head=True),
    ]:
        out = build_ritm("compact", **kw).eval()(x, pts)
        assert out["instances"].shape == (2, 1, 33, 47)
    with pytest.raises(ValueError, match="num_branches"):
        build_ritm("compact", num_branches=5)
    with pytest.raises(ValueError, match="unknown RITM variant"):
        build_ritm("h64")


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="either a checkpoint or pretrained=False"):
        RITM("x.pth", pretrained=False)
    with pytest.raises(ValueError, match="either net= or a checkpoint"):
        RITM("x.pth", net=build_ritm("compact"))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            RITM(pretrained=False, variant="compact", device="cuda")
