"""Put MathJax 3 into the site (``docs/_static/mathjax``) so that math renders with no network at all.

Takes the npm package ``mathjax`` (``npm pack``: a registry download, no install) and keeps what the
site uses: ``es5/tex-chtml.js`` (TeX input, HTML output) and its web fonts.  Run by ``docs/conf.py`` when
the folder is missing; ``python docs/fetch_mathjax.py [DEST]`` by hand.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

VERSION = "3.2.2"
KEEP = ("tex-chtml.js", "output/chtml/fonts/woff-v2")


def fetch(dest: str, version: str = VERSION) -> str:
    """Unpack MathJax ``version``'s ``tex-chtml.js`` and fonts into ``dest``; returns ``dest``."""
    if shutil.which("npm") is None:
        raise SystemExit("docs: MathJax is served from the site and comes from the npm package 'mathjax', "
                         "but npm is not installed (apt-get install npm); or copy its es5/ folder to " + dest)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", f"mathjax@{version}", "--silent"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        with tarfile.open(os.path.join(tmp, f"mathjax-{version}.tgz")) as tar:
            tar.extractall(tmp, filter="data")
        es5 = os.path.join(tmp, "package", "es5")
        staging = dest + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        for item in KEEP:
            src, dst = os.path.join(es5, item), os.path.join(staging, item)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, dst)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(staging, dest)
    return dest


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    print(fetch(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "_static", "mathjax")))
