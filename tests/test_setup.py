"""scripts/setup.sh: a clear message when an interpreter is missing, and no reinstall when nothing changed."""
import os
import shutil
import subprocess

from conftest import ROOT


def copy_setup(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(os.path.join(ROOT, "scripts", "setup.sh"), tmp_path / "scripts")
    for name in ("requirements.txt", "requirements.lock", "requirements-legacy.txt", "requirements-legacy.lock"):
        shutil.copy(os.path.join(ROOT, name), tmp_path)
    empty = tmp_path / "home"
    empty.mkdir()
    return {"PATH": "/usr/bin:/bin", "HOME": str(empty), "PYENV_ROOT": str(empty)}


def test_no_python312_names_what_to_install(tmp_path):
    env = copy_setup(tmp_path)
    p = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert p.returncode == 1
    assert "no CPython 3.12 interpreter found for .venv" in p.stderr and "pyenv install 3.12" in p.stderr
    assert "PYTHON312" in p.stderr and not (tmp_path / ".venv").exists()


def test_no_python39_for_the_legacy_environment_names_what_to_install(tmp_path):
    """Both interpreters are looked for before anything is installed: a 3.12 given, no 3.9, nothing made."""
    env = copy_setup(tmp_path)
    python312 = os.path.realpath(os.path.join(ROOT, ".venv", "bin", "python"))  # the base interpreter
    p = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, capture_output=True, text=True,
                       env={**env, "PYTHON312": python312})
    assert p.returncode == 1, p.stderr
    assert "no CPython 3.9 interpreter found for .venv-legacy" in p.stderr and "FastDeploy" in p.stderr
    assert "PYTHON39" in p.stderr and not (tmp_path / ".venv-legacy").exists() and not (tmp_path / ".venv").exists()


def stamp_of(requirements, lock):
    return subprocess.run(f"cat {requirements} {lock} | sha256sum", shell=True, cwd=ROOT, capture_output=True,
                          text=True).stdout.split()[0]


def test_setup_is_idempotent():
    p = subprocess.run(["bash", "scripts/setup.sh"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0 and "installing" not in p.stdout + p.stderr  # stamps match: nothing reinstalled
    for venv, requirements, lock in ((".venv", "requirements.txt", "requirements.lock"),
                                     (".venv-legacy", "requirements-legacy.txt", "requirements-legacy.lock")):
        stamp = open(os.path.join(ROOT, venv, ".requirements.sha256")).read().strip()
        assert stamp == stamp_of(requirements, lock)


def test_setup_puts_the_repository_on_the_venv_path(tmp_path):
    """Entry scripts outside the root (deploy/, benchmarks/, scripts/) import `slu` through the .pth file that
    setup.sh writes, from any working directory."""
    p = subprocess.run(["bash", "scripts/setup.sh"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0
    for venv in (".venv", ".venv-legacy"):
        p = subprocess.run([os.path.join(ROOT, venv, "bin", "python"), "-c", "import slu.data; print(slu.data.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
        assert p.returncode == 0 and p.stdout.strip() == os.path.join(ROOT, "slu", "data.py"), venv
