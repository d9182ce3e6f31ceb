"""A PaddleX serving config (`paddlex --serve --pipeline FILE`) that runs a profile's models and settings.

Start from PaddleX's own template (`paddlex --get_pipeline_config OCR --save_path DIR` writes OCR.yaml; its
defaults are newer models and sub-models that would be downloaded), then point det/rec at local model dirs,
turn off the sub-models the pack does not ship, and set the profile's detection limits, thresholds and batch
size. `paddlex_defaults=True` keeps PaddleX's own detection limits (min side 64): what a service started
from the template looks like.
"""

from __future__ import annotations

import copy
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.backends.identity import named
from harness.model.modeldirs import ModelDirs
from harness.model.settings import EngineSettings
from harness.util import atomic
from harness.util.errors import UserError


def pipeline_template() -> dict[str, Any]:
    """PaddleX's OCR pipeline config, as `paddlex --get_pipeline_config OCR` writes it (run in a child: it
    imports paddlex)."""
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.run([sys.executable, "-m", "paddlex", "--get_pipeline_config", "OCR", "--save_path", d],
                              capture_output=True, text=True, timeout=300,
                              env={**__import__("os").environ, "PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK": "True"})
        path = Path(d) / "OCR.yaml"
        if proc.returncode != 0 or not path.is_file():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"paddlex --get_pipeline_config OCR failed: {tail}")
        config: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return config


def serving_config(template: dict[str, Any], settings: EngineSettings, dirs: ModelDirs, *,
                   cpu_threads: int | None = None, paddlex_defaults: bool = False) -> dict[str, Any]:
    settings = named(settings, dirs)
    c = copy.deepcopy(template)
    c["use_doc_preprocessor"] = settings.use_doc_orientation_classify or settings.use_doc_unwarping
    c["use_textline_orientation"] = settings.use_textline_orientation
    if not c["use_doc_preprocessor"]:
        c.pop("SubPipelines", None)
    subs = c["SubModules"]
    if not settings.use_textline_orientation:
        subs.pop("TextLineOrientation", None)
    det, rec = subs["TextDetection"], subs["TextRecognition"]
    det.update(model_name=settings.det_model_name, model_dir=str(dirs.det))
    rec.update(model_name=settings.rec_model_name, model_dir=str(dirs.rec), batch_size=settings.rec_batch_size)
    if not paddlex_defaults:
        det.update(limit_side_len=settings.det_limit_side_len, limit_type=settings.det_limit_type,
                   thresh=settings.det_thresh, box_thresh=settings.det_box_thresh,
                   unclip_ratio=settings.det_unclip_ratio)
        rec.update(score_thresh=settings.rec_score_thresh)
    if cpu_threads is not None:  # PaddleX's default is 10 threads, more than small machines have
        c["engine_config"] = {"paddle_static": {"cpu_threads": cpu_threads}}
    return c


def write_serving_config(path: Path, config: dict[str, Any]) -> Path:
    return atomic.write_text(path, yaml.safe_dump(config, allow_unicode=True, sort_keys=False))


_TEMPLATE: dict[str, Any] = {}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def template() -> dict[str, Any]:
    if not _TEMPLATE:
        _TEMPLATE.update(pipeline_template())
    return _TEMPLATE


@dataclass
class Service:
    url: str  # the OCR endpoint
    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def requests_seen(self) -> int:
        return self.log.read_text(encoding="utf-8", errors="replace").count('"POST /ocr HTTP/1.1"')

    def kill(self) -> None:
        """Stop the whole process group (the server and anything it started)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            except ProcessLookupError:
                pass
        # Anything left in the group (e.g. after the leader exited).
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_service(workdir: Path, dirs: ModelDirs, settings: EngineSettings | None = None, *,
                  paddlex_defaults: bool = False, cpu_threads: int | None = None, timeout_s: float = 300) -> Service:
    workdir.mkdir(parents=True, exist_ok=True)
    config = serving_config(template(), settings or EngineSettings(), dirs, paddlex_defaults=paddlex_defaults,
                            cpu_threads=cpu_threads or os.cpu_count() or 1)
    pipeline = write_serving_config(workdir / "OCR.yaml", config)
    port = free_port()
    log = workdir / "server.log"
    env = {**os.environ, "PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK": "True",
           "PADDLE_PDX_CACHE_HOME": str(workdir / "pdx-cache")}
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "paddlex", "--serve", "--pipeline", str(pipeline),
                                 "--host", "127.0.0.1", "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    service = Service(url=f"{base}/ocr", base=base, proc=proc, log=log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"paddlex --serve exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                if r.status == 200:
                    return service
        except OSError:
            pass
        time.sleep(0.5)
    service.kill()
    raise RuntimeError(f"paddlex --serve did not answer on {base} within {timeout_s:.0f} s")
