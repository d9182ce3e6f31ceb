"""`ocr-harness init [DIR]`: a working starting point for a harness in any repository; never overwrites.

Writes (from the package's templates, so a wheel carries them): harness.toml with default/release/nightly/bench
profiles, datasets/ (README, an empty manifest), golden/, tox.ini, requirements-ocr.txt (the one pin of the
stack), a pytest golden test and CI definitions for the engines `--ci` names (default github): GitHub Actions
workflows (release gate on pull requests, sharded nightly with a merge job, manual golden refresh that opens a
pull request), a GitLab CI file (release gate, nightly as `parallel` shards and a merge job), a Kubernetes
Indexed Job for the nightly shards plus the merge Job, and SLURM batch scripts (a job array of shards and a merge
job queued behind it). Every sharded nightly runs `--shard auto`.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from harness import __version__
from harness.util import atomic
from harness.util.errors import EXIT_OK, UserError

CI_PYTHON = "3.12"
# `--python` lands in YAML (`python-version: "…"`, `image: python:…`) and comments: only a version, so no value
# can close a quote, start a line or add a step (a newline in it used to add a `run:` step to the workflow).
_PYTHON_VERSION = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?([a-z]+[0-9]*)?")
# The files each `--ci` engine brings (paths under the templates); every other template is always written.
CI_FILES: dict[str, tuple[str, ...]] = {"github": (".github/",), "gitlab": (".gitlab-ci.yml",), "k8s": ("k8s/",),
                                   "slurm": ("slurm/",)}
DEFAULT_CI = ("github",)


@dataclass(frozen=True)
class TemplateFile:
    rel: PurePosixPath
    text: str


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("init", help="write a starting harness (config, corpus folder, goldens, tox, CI) into DIR",
                       description="Writes harness.toml, datasets/, golden/, tox.ini, requirements-ocr.txt, "
                                   "tests/test_ocr_golden.py and the CI definitions --ci names (default: "
                                   ".github/workflows/ocr-*.yml). Refuses to overwrite: if any of them exists, "
                                   "nothing is written.")
    p.add_argument("dir", nargs="?", type=Path, default=Path("."), help="target directory (default: .)")
    p.add_argument("--skip-existing", action="store_true", help="write only the files that do not exist yet")
    p.add_argument("--python", default=CI_PYTHON, help=f"Python version the workflows use (default: {CI_PYTHON})")
    p.add_argument("--ci", default=",".join(DEFAULT_CI),
                   help="comma-separated CI engines to write definitions for: github (.github/workflows), gitlab "
                        "(.gitlab-ci.yml), k8s (k8s/: an Indexed Job for the nightly shards and the merge Job), "
                        "slurm (slurm/: an sbatch job array for the shards and the merge job), or none (default: "
                        "github)")
    p.set_defaults(func=run_init)


def _walk(node: Traversable, rel: PurePosixPath) -> list[TemplateFile]:
    out = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__":
            continue
        if child.is_dir():
            out += _walk(child, rel / child.name)
        else:
            # '.tmpl': a template that is Python source would otherwise be left out of the wheel.
            out.append(TemplateFile(rel / child.name.removesuffix(".tmpl"), child.read_text(encoding="utf-8")))
    return out


def parse_ci(text: str) -> tuple[str, ...]:
    """`--ci github,gitlab,k8s` (or `none`) -> the engines, in the order given."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if names == ("none",):
        return ()
    unknown = [n for n in names if n not in CI_FILES]
    if unknown or not names:
        raise UserError(f"--ci {text!r}: expected a comma-separated list of {', '.join(CI_FILES)}, or none")
    return names


def _engine_of(rel: PurePosixPath) -> str | None:
    path = rel.as_posix()
    return next((name for name, prefixes in CI_FILES.items() if path.startswith(prefixes)), None)


def template_files(python: str = CI_PYTHON, ci: tuple[str, ...] = DEFAULT_CI) -> list[TemplateFile]:
    """The files init writes, rendered (the harness version pinned, the workflows' Python), with the CI
    definitions of the engines in `ci` only."""
    root = resources.files("harness").joinpath("templates", "init")
    return [TemplateFile(f.rel, f.text.replace("@version@", __version__).replace("@python@", python))
            for f in _walk(root, PurePosixPath()) if _engine_of(f.rel) in (None, *ci)]


def _blocked(target: Path, rel: PurePosixPath) -> str | None:
    """Why `rel` cannot be written under `target` without replacing or writing through something, or None."""
    path = target
    for part in rel.parts[:-1]:
        path = path / part
        if path.is_symlink():
            return f"{path}: is a symlink; init never writes through one"
        if os.path.lexists(path) and not path.is_dir():
            return f"{path}: exists and is not a directory (init would write {rel.as_posix()} inside it)"
    path = target / rel
    if path.is_symlink():
        return f"{path}: is a symlink; init never replaces one"
    if path.exists() and not path.is_file():
        return f"{path}: exists and is not a file"
    return None


def init(target: Path, *, skip_existing: bool = False, python: str = CI_PYTHON,
         ci: tuple[str, ...] = DEFAULT_CI) -> list[Path]:
    """Writes the starting point; UserError naming every file that exists unless `skip_existing`. Everything is
    checked before the first file is written: a run that refuses writes nothing."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UserError(f"{target}: exists and is not a directory")
    if not _PYTHON_VERSION.fullmatch(python):
        raise UserError(f"--python {python!r}: not a Python version (e.g. 3.12, 3.12.4 or 3.14.0rc1); nothing written")
    files = template_files(python, ci)
    blocked = [why for f in files if (why := _blocked(target, f.rel)) is not None]
    if blocked:
        more = f" (and {len(blocked) - 1} more)" if len(blocked) > 1 else ""
        raise UserError(f"{blocked[0]}{more}; nothing written")
    existing = [f.rel.as_posix() for f in files if (target / f.rel).is_file()]
    if existing and not skip_existing:
        shown = ", ".join(existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
        raise UserError(f"{target}: would overwrite {shown}; nothing written (--skip-existing writes the rest)")
    written = []
    for f in files:
        if f.rel.as_posix() in existing:
            continue
        written.append(atomic.write_text(target / f.rel, f.text))
    return written


def run_init(args: argparse.Namespace) -> int:
    written = init(args.dir, skip_existing=args.skip_existing, python=args.python, ci=parse_ci(args.ci))
    for path in written:
        print(f"  wrote {path.relative_to(args.dir).as_posix()}")
    print(f"initialised an ocr-harness starting point in {args.dir} ({len(written)} files). Next:\n"
          "  ocr-harness corpus import --from ppocrlabel path/to/Label.txt --out datasets/slips\n"
          "  ocr-harness golden refresh --all --yes        # goldens and the approval record (profile default)\n"
          "  ocr-harness speed baseline --profile release  # the gate's speed baseline: once per CI runner type\n"
          "  ocr-harness run --profile release")
    return EXIT_OK
