"""cat_channels: the channel concatenation that keeps inference in channels_last layout."""

import pytest
import torch

from iislib.models.layout import cat_channels

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
