"""ocr-harness: a deployment regression harness for PaddleOCR."""

__version__ = "0.1.0"
