"""The fast inference layer: each speed-up computes what the plain module computes."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from iislib.models.fast import (
    POINTWISE_MIN_OUT,
    FastConcat,
    FastConv2d,
    FastWSConv2d,
    WindowedDistMaps,
    accelerate,
    cat_channels,
    fold_batchnorm,
    is_fast,
)
from iislib.models.layers import Concat, DistMaps
from iislib.models.resnet_gn import WSConv2d
from iislib.models.ritm import points_tensor

CL = torch.channels_last

# -- NHWC concatenation -------------------------------------------------------------------------


def _parts(formats):
    g = torch.Generator().manual_seed(0)
    parts = [torch.randn(2, c, 5, 7, generator=g) for c in (3, 1, 4)]
    return [p.contiguous(memory_format=f) for p, f in zip(parts, formats, strict=True)]


@pytest.mark.parametrize(
    "formats",
    [
        (CL, CL, CL),
        (CL, torch.contiguous_format, CL),  # e.g. an upsampled 1x1 map, which comes back NCHW
        (torch.contiguous_format,) * 3,
        (torch.contiguous_format, CL, CL),
    ],
)
def test_cat_channels_equals_torch_cat(formats):
    parts = _parts(formats)
    out = cat_channels(parts)
    assert torch.equal(out, torch.cat(parts, 1))
    # channels_last in, channels_last out (whatever the others); NCHW stays NCHW (training)
    first_nhwc = formats[0] is CL
    assert out.is_contiguous(memory_format=CL) if first_nhwc else out.is_contiguous()
    assert torch.equal(FastConcat()(*parts), out)


def test_cat_channels_keeps_gradients():
    parts = [p.requires_grad_() for p in _parts((CL, CL, torch.contiguous_format))]
    (cat_channels(parts) * torch.arange(8.0).view(1, 8, 1, 1)).sum().backward()
    assert torch.equal(parts[1].grad, torch.full_like(parts[1], 3.0))  # channel 3 of the output


def test_cat_channels_nhwc_on_request():
    # RITM's first part is a channel slice of its NHWC input, contiguous in neither layout
    x = torch.randn(2, 4, 5, 7).contiguous(memory_format=CL)
    maps = torch.randn(2, 2, 5, 7)
    out = cat_channels([x[:, 3:4], maps], nhwc=True)
    assert torch.equal(out, torch.cat([x[:, 3:4], maps], 1))
    assert out.is_contiguous(memory_format=CL)
    assert cat_channels([x[:, 3:4], maps], nhwc=False).is_contiguous()
    assert not cat_channels([x[:, 3:4], maps]).is_contiguous(memory_format=CL)  # auto: NCHW


# -- 1x1 convolutions on oneDNN -----------------------------------------------------------------


def _spy_onednn(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = torch.mkldnn_convolution

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(torch, "mkldnn_convolution", spy)
    return calls


def _fast(module: nn.Module) -> nn.Module:
    return accelerate(nn.Sequential(module))[0]


@pytest.mark.parametrize(("cin", "cout", "bias"), [(5, 8, True), (3, 16, True), (24, 32, False)])
def test_pointwise_conv_uses_onednn_on_nhwc_inference_and_agrees(monkeypatch, cin, cout, bias):
    torch.manual_seed(0)
    ref = nn.Conv2d(cin, cout, 1, bias=bias).requires_grad_(False)
    conv = _fast(copy.deepcopy(ref))
    assert type(conv) is FastConv2d and conv.state_dict().keys() == ref.state_dict().keys()
    x = torch.randn(3, cin, 9, 11)
    calls = _spy_onednn(monkeypatch)
    with torch.no_grad():
        out = conv(x.contiguous(memory_format=CL))
        want = ref(x)
    assert calls == [1]
    assert out.is_contiguous(memory_format=CL)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)


def test_other_convolutions_take_the_stock_path(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(2, 6, 8, 8)
    calls = _spy_onednn(monkeypatch)
    few_outputs = _fast(nn.Conv2d(6, 1, 1).requires_grad_(False))  # under POINTWISE_MIN_OUT
    strided = _fast(nn.Conv2d(6, 8, 1, stride=2).requires_grad_(False))
    with torch.no_grad():
        few_outputs(x.contiguous(memory_format=CL))
        strided(x.contiguous(memory_format=CL))
        _fast(nn.Conv2d(6, 8, 1).requires_grad_(False))(x)  # NCHW input
    assert POINTWISE_MIN_OUT > 1
    assert calls == []
    # training: gradients flow through the stock path
    conv = _fast(nn.Conv2d(6, 8, 1))
    conv(x.contiguous(memory_format=CL)).sum().backward()
    assert calls == [] and conv.weight.grad is not None


def test_ws_cache_follows_weight_updates():
    torch.manual_seed(0)
    plain = WSConv2d(2, 3, 3, padding=1)
    conv = _fast(copy.deepcopy(plain))
    assert type(conv) is FastWSConv2d
    x = torch.randn(1, 2, 5, 5)
    with torch.no_grad():
        a = conv(x)
        assert torch.equal(conv(x), a) and conv._ws_cache is not None  # cached
        torch.testing.assert_close(a, plain(x))  # channels_last weights: rounding only
        conv.weight[0, 0, 0, 0] += 1.0  # in-place update (as an optimiser step does)
        b = conv(x)
    assert not torch.equal(a, b)
    assert torch.equal(b, conv(x).detach())  # grad-enabled path recomputes: same values
    conv(x).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


# -- accelerate ---------------------------------------------------------------------------------


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = WSConv2d(8, 8, 1)
        self.cat = Concat()
        self.disks = DistMaps(5, True)
        self.norm = nn.BatchNorm2d(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        return self.norm(self.cat(y, self.b(y)))


def test_accelerate_swaps_classes_keeps_weights_and_is_idempotent():
    torch.manual_seed(0)
    net = _Net().eval()
    plain = copy.deepcopy(net)
    assert not is_fast(plain)
    fast = accelerate(net)
    assert fast is net and is_fast(net)
    assert [type(m) for m in (net.a, net.b, net.cat, net.disks, net.norm)] == [
        FastConv2d, FastWSConv2d, FastConcat, WindowedDistMaps, nn.BatchNorm2d,
    ]  # fmt: skip
    assert net.a.weight.is_contiguous(memory_format=CL)
    sd, want = net.state_dict(), plain.state_dict()
    assert list(sd) == list(want) and all(torch.equal(sd[k], want[k]) for k in sd)
    x = torch.rand(2, 3, 9, 10)
    with torch.no_grad():
        torch.testing.assert_close(net(x.contiguous(memory_format=CL)), plain(x))
    accelerate(net)  # again: nothing changes
    assert type(net.a) is FastConv2d and list(net.state_dict()) == list(want)
    assert accelerate(_Net(), nhwc_concat=True).cat.nhwc is True


# -- windowed click disks -----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.floats(-12, 40, width=32), st.floats(-12, 40, width=32), st.booleans()),
            max_size=7,
        ),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from([5.0, 2.5, 1.0, 7.3]),
)
def test_windowed_disks_equal_the_full_distance_computation(clicks_lists, radius) -> None:
    # the disks are computed in a window around each point; fractional points (zoom-in) and
    # points off the image included, they must equal the plain DistMaps exactly
    h, w = 29, 23
    pts = points_tensor(clicks_lists)
    full = DistMaps(radius, True)(pts, h, w)
    assert torch.equal(full, (DistMaps.nearest_squared_distance(pts, h, w) <= radius**2).float())
    assert torch.equal(WindowedDistMaps(radius, True)(pts, h, w), full)
    # without disks there is no window: the same tanh maps
    assert torch.equal(
        WindowedDistMaps(radius, False)(pts, h, w), DistMaps(radius, False)(pts, h, w)
    )


# -- BatchNorm folding --------------------------------------------------------------------------


def _randomise_batchnorms(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial running statistics and affine parameters, so that folding has work to do."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g))
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.randn(c, generator=g))
                m.bias.copy_(torch.randn(c, generator=g))
    return net.eval()


class _Block(nn.Module):
    def __init__(self, reuse: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.body = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
        self.reuse = reuse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        z = self.body(self.bn1(y))
        return z + y if self.reuse else z  # reuse: conv1's output is used beyond bn1


def test_fold_replaces_batchnorms_and_keeps_outputs() -> None:
    net = _randomise_batchnorms(_Block())
    x = torch.randn(2, 3, 8, 8)
    folded = fold_batchnorm(net, x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert isinstance(folded.bn1, nn.Identity) and isinstance(folded.body[1], nn.Identity)
    assert folded.conv1.bias is not None  # the BatchNorm's shift moved into the bias
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)
        # the pairs depend on the structure, not on the example input
        other = fold_batchnorm(net, torch.zeros(1, 3, 4, 4))
        assert torch.equal(other(x), folded(x))
    # the original is untouched
    assert isinstance(net.bn1, nn.BatchNorm2d) and net.conv1.bias is None


def test_fold_refuses_a_shared_convolution_output_and_training_mode() -> None:
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(RuntimeError, match="used beyond its BatchNorm"):
        fold_batchnorm(_randomise_batchnorms(_Block(reuse=True)), x)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(_Block().train(), x)
