"""`pip install ./python` makes an importable package with its metadata: built from a copy of
python/ (so no build/ is left in the tree) into a scratch folder, imported from elsewhere."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from helpers import REPO


class InstallTest(unittest.TestCase):
    def test_pip_install_then_import(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "src")
            shutil.copytree(os.path.join(REPO, "python"), src,
                            ignore=shutil.ignore_patterns("tests", "examples", "build", "*.egg-info", "__pycache__"))
            site = os.path.join(d, "site")
            # No build isolation: the venv's setuptools builds it, so no download is needed.
            r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                                "--no-deps", "--no-build-isolation", "--target", site, src],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            probe = ("import importlib.metadata as m, re, pipeline_client as p\n"
                     "print(p.__file__)\n"
                     "print(m.version('pipeline-client'))\n"
                     "print(sorted(re.match('[A-Za-z0-9_.-]+', r).group() for r in m.requires('pipeline-client')))\n"
                     "print(p.parse_address('unix:///tmp/p.sock'))\n")
            r = subprocess.run([sys.executable, "-c", probe], cwd=d, capture_output=True, text=True, timeout=60,
                               env={**os.environ, "PYTHONPATH": site})
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            where, version, requires, address = r.stdout.splitlines()
            self.assertTrue(where.startswith(os.path.join(site, "pipeline_client")), where)
            self.assertEqual(version, "0.1.0")
            self.assertEqual(requires, str(sorted(["numpy", "pyarrow", "torch", "torch", "torchvision"])))
            self.assertEqual(address, "unix:///tmp/p.sock")
            self.assertTrue(os.path.exists(os.path.join(site, "pipeline_client", "py.typed")))


if __name__ == "__main__":
    unittest.main()
