"""Packaging hook; the metadata is in pyproject.toml.

A wheel carries the HLS sources (hls/include, src, csim, tb) and the fetched ap_types headers as
package data under ``e2train/hls``, so that the csim backend builds its library outside a checkout
(``e2train.fabric.csim_build.hls_dir``). An editable install needs no copy: it finds hls/ beside host/.
"""

import importlib.util
import shutil
import warnings
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
HLS = ROOT / "hls"
HLS_PARTS = ("include", "src", "csim", "tb", "vendor/ap_types")


def _fetch_ap_types(dest: Path) -> None:
    """The pinned, sha256-checked headers (tools/fetch_ap_types.py), when the checkout has none yet."""
    spec = importlib.util.spec_from_file_location("fetch_ap_types", ROOT / "tools" / "fetch_ap_types.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.fetch(dest)


class BuildPyWithHls(build_py):
    def run(self):
        super().run()
        if not getattr(self, "editable_mode", False):
            self._copy_hls(Path(self.build_lib) / "e2train" / "hls")

    def _copy_hls(self, dest: Path) -> None:
        vendor = HLS / "vendor" / "ap_types"
        if not (vendor / "ap_int.h").is_file():
            try:
                _fetch_ap_types(vendor)
            except Exception as exc:  # the package still works; only csim needs them (it says how to fetch)
                warnings.warn(f"e2train: ap_types headers not packaged ({exc}); the csim backend will not build")
        for part in HLS_PARTS:
            if (HLS / part).is_dir():
                shutil.copytree(HLS / part, dest / part, dirs_exist_ok=True, ignore=shutil.ignore_patterns("build"))


setup(cmdclass={"build_py": BuildPyWithHls})
