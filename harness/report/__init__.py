"""Reports of a run: the renderers (JSON, JUnit XML, Markdown summary, HTML, history) read the typed run
report (harness.model.report); `report merge` combines shard runs."""
