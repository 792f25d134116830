"""iislib: how the evaluation of interactive image segmentation depends on the simulated user.

Conventions used everywhere in the package:

- images are ``uint8`` arrays of shape (H, W, 3), RGB;
- masks are ``bool`` arrays of shape (H, W) (``gt``, ``pred``, ``ignore``);
- probability maps are ``float32`` arrays of shape (H, W) with values in [0, 1];
- pixel coordinates are integer (row, col) pairs, row first, origin at the top-left pixel.
"""

from iislib.core.clicks import Click

__all__ = ["Click", "__version__"]
__version__ = "0.2.0"  # part of every cache key: bump when results change
