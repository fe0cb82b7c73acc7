"""The 2D playground's engine: point sets (``data``), a small MLP and its four objectives
(``train``), sampling through the sampler contract and the numbers that compare runs (``sample``).
See docs/playground.md."""
