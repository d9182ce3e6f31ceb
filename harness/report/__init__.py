"""Reports rendered from a run's report.json dict: JSON, JUnit XML, Markdown summary, HTML, history."""

from harness.report.history import append_history, plot_history, read_history
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.markdown import render_summary, write_step_summary
from harness.report.writer import write_reports

__all__ = ["append_history", "plot_history", "read_history", "render_html", "render_junit", "render_summary",
           "write_reports", "write_step_summary"]
