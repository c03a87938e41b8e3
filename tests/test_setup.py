"""scripts/setup.sh: a clear message when no CPython 3.9 exists, and no reinstall when nothing changed."""
import os
import shutil
import subprocess

from conftest import ROOT


def test_no_python39_names_what_to_install(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(os.path.join(ROOT, "scripts", "setup.sh"), tmp_path / "scripts")
    shutil.copy(os.path.join(ROOT, "requirements.txt"), tmp_path)
    empty = tmp_path / "home"
    empty.mkdir()
    p = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(empty), "PYENV_ROOT": str(empty)})
    assert p.returncode == 1
    assert "no CPython 3.9 interpreter found" in p.stderr and "pyenv install 3.9.18" in p.stderr
    assert "PYTHON39" in p.stderr and not (tmp_path / ".venv").exists()


def test_setup_is_idempotent():
    p = subprocess.run(["bash", "scripts/setup.sh"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0 and "installing" not in p.stdout + p.stderr  # stamp matches: nothing reinstalled
    stamp = open(os.path.join(ROOT, ".venv", ".requirements.sha256")).read().strip()
    want = subprocess.run(["sha256sum", "requirements.txt"], cwd=ROOT, capture_output=True, text=True).stdout.split()[0]
    assert stamp == want


def test_setup_puts_the_repository_on_the_venv_path(tmp_path):
    """Entry scripts outside the root (deploy/, benchmarks/, scripts/) import `slu` through the .pth file that
    setup.sh writes, from any working directory."""
    p = subprocess.run(["bash", "scripts/setup.sh"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0
    p = subprocess.run([os.path.join(ROOT, ".venv", "bin", "python"), "-c", "import slu.data; print(slu.data.__file__)"],
                       cwd=tmp_path, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert p.returncode == 0 and p.stdout.strip() == os.path.join(ROOT, "slu", "data.py")
