"""The image corpus: loading and validating any corpus, and generating the synthetic bank-slip one (its types:
harness.model.corpus)."""

from harness.corpus.loader import load_corpus, read_image, validate_corpus

__all__ = ["load_corpus", "read_image", "validate_corpus"]
