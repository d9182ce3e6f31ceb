"""The bottom layer: helpers that import nothing of the harness (errors, atomic writes, text forms, image ids,
portable paths, service URLs, package versions)."""
