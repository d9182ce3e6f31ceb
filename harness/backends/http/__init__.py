"""The http backend: a running service speaking the PaddleX serving OCR protocol, called from this process.

Its client, the backend over it, and the serving config and launcher tests and benchmarks start services with;
`spec` says what the rest of the harness needs to know of it.
"""
