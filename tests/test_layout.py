"""cat_channels: the channel concatenation that keeps inference in channels_last layout."""

import pytest
import torch
from torch import nn

from iislib.models.layout import POINTWISE_MIN_OUT, Conv2d, cat_channels

CL = torch.channels_last


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


def test_cat_channels_keeps_gradients():
    parts = [p.requires_grad_() for p in _parts((CL, CL, torch.contiguous_format))]
    (cat_channels(parts) * torch.arange(8.0).view(1, 8, 1, 1)).sum().backward()
    assert torch.equal(parts[1].grad, torch.full_like(parts[1], 3.0))  # channel 3 of the output


# -- Conv2d: 1x1 inference convolutions on oneDNN -----------------------------------------------


def _spy_onednn(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = torch.mkldnn_convolution

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(torch, "mkldnn_convolution", spy)
    return calls


@pytest.mark.parametrize(("cin", "cout", "bias"), [(5, 8, True), (3, 16, True), (24, 32, False)])
def test_pointwise_conv_uses_onednn_on_nhwc_inference_and_agrees(monkeypatch, cin, cout, bias):
    torch.manual_seed(0)
    conv = Conv2d(cin, cout, 1, bias=bias).requires_grad_(False)
    ref = nn.Conv2d(cin, cout, 1, bias=bias)
    ref.load_state_dict(conv.state_dict())  # same parameters and keys as nn.Conv2d
    x = torch.randn(3, cin, 9, 11)
    calls = _spy_onednn(monkeypatch)
    with torch.no_grad():
        out = conv.to(memory_format=CL)(x.contiguous(memory_format=CL))
        want = ref(x)
    assert calls == [1]
    assert out.is_contiguous(memory_format=CL)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)


def test_other_convolutions_take_the_stock_path(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(2, 6, 8, 8)
    calls = _spy_onednn(monkeypatch)
    few_outputs = Conv2d(6, 1, 1).requires_grad_(False)  # under POINTWISE_MIN_OUT outputs
    strided = Conv2d(6, 8, 1, stride=2).requires_grad_(False)
    with torch.no_grad():
        few_outputs(x.contiguous(memory_format=CL))
        strided(x.contiguous(memory_format=CL))
        Conv2d(6, 8, 1).requires_grad_(False)(x)  # NCHW input
    assert POINTWISE_MIN_OUT > 1
    assert calls == []
    # training: gradients flow through the stock path
    conv = Conv2d(6, 8, 1).to(memory_format=CL)
    conv(x.contiguous(memory_format=CL)).sum().backward()
    assert calls == [] and conv.weight.grad is not None


def test_cat_channels_nhwc_on_request():
    # RITM's first part is a channel slice of its NHWC input, contiguous in neither layout
    x = torch.randn(2, 4, 5, 7).contiguous(memory_format=CL)
    maps = torch.randn(2, 2, 5, 7)
    out = cat_channels([x[:, 3:4], maps], nhwc=True)
    assert torch.equal(out, torch.cat([x[:, 3:4], maps], 1))
    assert out.is_contiguous(memory_format=CL)
    assert cat_channels([x[:, 3:4], maps], nhwc=False).is_contiguous()
