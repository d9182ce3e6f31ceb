"""The onnxruntime backend: the same PaddleOCR pipeline on ONNX Runtime, with the pinned ONNX pack or the user's ONNX
dirs; `models export` converts a Paddle model dir for it. `spec` says what the rest of the harness needs to know of it.
"""
