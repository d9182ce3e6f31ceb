"""The image corpus: loading and validating any corpus, and generating the synthetic bank-slip one."""

from harness.corpus.loader import Corpus, CorpusItem, TruthLine, load_corpus, read_image, validate_corpus

__all__ = ["Corpus", "CorpusItem", "TruthLine", "load_corpus", "read_image", "validate_corpus"]
