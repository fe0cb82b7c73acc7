"""Diffusion Lab engine: pure PyTorch diffusion and flow matching (CS180 Project 5).

Set before torch loads: OpenMP threads that sleep instead of spin. On a 2-core machine shared by
a training run, a server and tests, spinning threads made a small UNet forward 15-45x slower.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
