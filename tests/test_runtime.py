"""Process settings of the sweep workers."""

import subprocess
import sys

import pytest

# Minor page faults per forward pass of a compact gto99 network (random weights) on a batch of
# 7 at 224x224, as the sweep runs it: one torch thread, channels_last, no autograd.
_PROBE = """
import resource, sys
import torch
from iislib.models.gto99 import COMPACT_GTO99, build_gto99
from iislib.runtime import keep_freed_memory
if sys.argv[1] == "tuned":
    assert keep_freed_memory() and keep_freed_memory()
torch.set_num_threads(1)
torch.manual_seed(0)
net = build_gto99(**COMPACT_GTO99).eval().to(memory_format=torch.channels_last)
x = [torch.rand(7, c, 224, 224).contiguous(memory_format=torch.channels_last) for c in (3, 6, 1, 2)]
with torch.no_grad():
    for i in range(6):
        if i == 3:
            start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        net(*x)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) // 3)
"""


def _faults_per_forward(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return int(run.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator only")
def test_keep_freed_memory_stops_refaulting_activations():
    # Stock glibc hands freed activations back to the OS, so each pass faults ~50 MB in again
    # (~13,400 pages here); tuned, ~570.
    tuned, default = _faults_per_forward("tuned"), _faults_per_forward("default")
    assert tuned < 1500  # under 6 MB of the ~50 MB
    assert default > 4 * tuned
