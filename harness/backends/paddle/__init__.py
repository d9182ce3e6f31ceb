"""The paddle backend: PaddleOCR on Paddle Inference (the default; the goldens in golden/default were made with it).

Its engine, offline model pack, BN-fusion pass tools and batch capture; `spec` says what the rest of the harness
needs to know of it (settings, stack facts, the checks it cannot run).
"""
