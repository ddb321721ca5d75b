"""How readable the package is, in numbers; exits non-zero when a threshold is broken.

    python scripts/code_stats.py                 # measures bertmini/
    python scripts/code_stats.py path/to/pkg     # any package directory

Five rules, each measured the same way for every module:
- no function longer than 60 lines (from `def` to its last line), except data tables: a
  function whose body, after its docstring, is one `return` of a literal (`ast.literal_eval`);
- no function with more than 8 parameters (`self` and `cls` not counted; `*args`, `**kwargs` are);
- ruff's McCabe complexity (C901) at most 12, as `pyproject.toml` configures it;
- no two identical blocks of 6 or more lines, after dropping blank lines, comments, indentation,
  imports and function signatures (two functions of one API, such as the models' `forward`,
  share parameter lists on purpose: that is consistency, not copied logic);
- no import cycle between the package's modules. Imports inside functions are drawn in the graph
  too (a local import is the usual way a cycle gets hidden); they are also counted and listed.
"""

import argparse
import ast
import io
import json
import shutil
import subprocess
import sys
import tokenize
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

MAX_LINES = 60
MAX_PARAMS = 8
MAX_COMPLEXITY = 12
MIN_DUPLICATE_LINES = 6


@dataclass
class Finding:
    rule: str  # "lines", "params", "complexity", "duplicate", "cycle"
    where: str  # "bertmini/x.py:12 name"
    value: int


def python_files(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path, package: Path) -> str:
    """`pkg/viz/attention.py` -> `pkg.viz.attention`; `pkg/viz/__init__.py` -> `pkg.viz`."""
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def is_data_table(function: ast.FunctionDef) -> bool:
    """A function whose whole body (after the docstring) is `return <literal>`."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return False
    try:
        ast.literal_eval(body[0].value)
    except ValueError:
        return False
    return True


def parameter_count(function: ast.FunctionDef) -> int:
    args = function.args
    named = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    if named and named[0] in ("self", "cls"):
        named = named[1:]
    return len(named) + (args.vararg is not None) + (args.kwarg is not None)


def function_findings(path: Path, tree: ast.AST, shown: str) -> list[Finding]:
    findings = []
    for function in functions(tree):
        where = f"{shown}:{function.lineno} {function.name}"
        length = function.end_lineno - function.lineno + 1
        if length > MAX_LINES and not is_data_table(function):
            findings.append(Finding("lines", where, length))
        if (count := parameter_count(function)) > MAX_PARAMS:
            findings.append(Finding("params", where, count))
    return findings


def complexity_findings(package: Path, root: Path) -> list[Finding]:
    """ruff C901 at MAX_COMPLEXITY, whatever the project's own ruff settings say."""
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        sys.exit("code_stats: ruff is not installed; `pip install -e '.[dev]'` installs it")
    result = subprocess.run(
        [ruff, "check", "--isolated", "--select", "C901", "--output-format", "json",
         "--config", f"lint.mccabe.max-complexity = {MAX_COMPLEXITY}", str(package)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode not in (0, 1):
        sys.exit(f"code_stats: ruff failed: {result.stderr.strip()}")
    findings = []
    for item in json.loads(result.stdout or "[]"):
        # message: "`name` is too complex (13 > 12)"
        name = item["message"].split("`")[1]
        value = int(item["message"].rsplit("(", 1)[1].split()[0])
        shown = _shown(Path(item["filename"]), root)
        findings.append(Finding("complexity", f"{shown}:{item['location']['row']} {name}", value))
    return findings


def code_lines(source: str) -> list[tuple[int, str]]:
    """(line number, text) of each line that holds code: comments, blanks and indentation gone,
    and imports and signatures too (two modules may well need the same five imports)."""
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.start[1]
    tree = ast.parse(source)
    imports = {
        line
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for line in range(node.lineno, node.end_lineno + 1)
    }
    imports |= {  # signatures: from `def` to the line before the body's first statement
        line
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for line in range(node.lineno, node.body[0].lineno)
    }
    lines = []
    for number, text in enumerate(source.splitlines(), start=1):
        if number in imports:
            continue
        if number in comments:
            text = text[: comments[number]]
        if text.strip():
            lines.append((number, text.strip()))
    return lines


def duplicate_findings(files: dict[str, str]) -> list[Finding]:
    """Every window of MIN_DUPLICATE_LINES code lines that occurs twice; overlapping windows of
    the same pair of places are merged into one block."""
    windows = defaultdict(list)  # text of the window -> [(file, index of its first code line)]
    lines_of = {}
    for shown, source in files.items():
        lines_of[shown] = lines = code_lines(source)
        for i in range(len(lines) - MIN_DUPLICATE_LINES + 1):
            text = "\n".join(t for _, t in lines[i : i + MIN_DUPLICATE_LINES])
            windows[text].append((shown, i))
    pairs = defaultdict(set)  # ((file a, file b), offset) -> first indices in a
    for places in windows.values():
        for k, (file_a, i) in enumerate(places):
            for file_b, j in places[k + 1 :]:
                if file_a == file_b and abs(i - j) < MIN_DUPLICATE_LINES:
                    continue  # a run of repeated lines matching itself
                pairs[(file_a, file_b, j - i)].add(i)
    findings = []
    for (file_a, file_b, offset), starts in sorted(pairs.items()):
        for first, last in _runs(sorted(starts)):
            a, b = lines_of[file_a], lines_of[file_b]
            size = last - first + MIN_DUPLICATE_LINES
            where = (
                f"{file_a}:{a[first][0]}-{a[last + MIN_DUPLICATE_LINES - 1][0]} = "
                f"{file_b}:{b[first + offset][0]}-{b[last + offset + MIN_DUPLICATE_LINES - 1][0]}"
            )
            findings.append(Finding("duplicate", where, size))
    return findings


def _runs(indices: list[int]):
    """[1, 2, 3, 7, 8] -> (1, 3), (7, 8)."""
    start = previous = indices[0]
    for i in indices[1:]:
        if i != previous + 1:
            yield start, previous
            start = i
        previous = i
    yield start, previous


def imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]):
    """(imported module, line, local) for every import; `local` when it sits inside a function.
    `from pkg import x` imports the module `pkg.x` when there is one, else `pkg` itself.
    Imports under `if TYPE_CHECKING:` never run, so they are left out."""

    def visit(node, local):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, child.lineno, inner
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(child, module, is_package)
                for alias in child.names:
                    submodule = f"{base}.{alias.name}"
                    yield (submodule if submodule in modules else base), child.lineno, inner
            yield from visit(child, inner)

    yield from visit(tree, False)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module
    parts = module.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join(anchor + ([node.module] if node.module else []))


def import_graph(trees: dict[str, tuple[ast.AST, bool]]):
    """Edges between the package's own modules, and every function-local import."""
    edges = defaultdict(dict)  # module -> {imported module: "line" or "line (local)"}
    local_imports = []
    for module, (tree, is_package) in trees.items():
        seen_lines = set()
        for target, line, local in imports(tree, module, is_package, set(trees)):
            if local and line not in seen_lines:
                seen_lines.add(line)
                local_imports.append((module, line, target))
            if target in trees and target != module:
                edges[module].setdefault(target, f"{line}{' (local)' if local else ''}")
    return edges, local_imports


def cycles(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def cycle_findings(edges, components) -> list[Finding]:
    findings = []
    for component in components:
        links = [
            f"{a} -> {b} (line {line})"
            for a in component
            for b, line in sorted(edges[a].items())
            if b in component
        ]
        findings.append(Finding("cycle", "; ".join(links), len(component)))
    return findings


def _shown(path: Path, root: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def measure(package: Path) -> tuple[list[Finding], list[tuple[str, int, str]]]:
    package = package.resolve()
    root = package.parent
    files, trees, findings = {}, {}, []
    for path in python_files(package):
        shown = _shown(path, root)
        files[shown] = source = path.read_text()
        tree = ast.parse(source, filename=str(path))
        trees[module_name(path, package)] = (tree, path.name == "__init__.py")
        findings += function_findings(path, tree, shown)
    findings += complexity_findings(package, root)
    findings += duplicate_findings(files)
    edges, local_imports = import_graph(trees)
    findings += cycle_findings(edges, cycles(edges))
    return findings, local_imports


RULES = {  # rule -> (what it measures, threshold)
    "lines": ("function length (lines)", MAX_LINES),
    "params": ("parameters per function", MAX_PARAMS),
    "complexity": ("McCabe complexity (ruff C901)", MAX_COMPLEXITY),
    "duplicate": ("identical blocks (code lines)", MIN_DUPLICATE_LINES - 1),
    "cycle": ("import cycles (modules)", 1),
}


def report(findings: list[Finding], local_imports, package: Path) -> str:
    rows = [f"{'rule':<32} {'limit':>5} {'worst':>5} {'offenders':>9}"]
    for rule, (label, limit) in RULES.items():
        mine = [f for f in findings if f.rule == rule]
        worst = max((f.value for f in mine), default=0)
        rows.append(f"{label:<32} {limit:>5} {worst:>5} {len(mine):>9}")
    rows.append(
        f"{'function-local imports (listed)':<32} {'-':>5} {'-':>5} {len(local_imports):>9}"
    )
    if findings:
        rows.append("\noffenders:")
        for f in sorted(findings, key=lambda f: (f.rule, f.where)):
            rows.append(f"  {f.rule:<10} {f.value:>4}  {f.where}")
    if local_imports:
        rows.append("\nfunction-local imports:")
        for module, line, target in sorted(local_imports):
            rows.append(f"  {module}:{line} imports {target}")
    verdict = "FAIL" if findings else "ok"
    rows.append(f"\n{verdict}: {len(findings)} offenders in {package.name}/")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "bertmini"
    parser.add_argument("package", nargs="?", type=Path, default=default)
    args = parser.parse_args(argv)
    if not args.package.is_dir():
        parser.error(f"{args.package} is not a directory; give the package folder, e.g. bertmini")
    findings, local_imports = measure(args.package)
    print(report(findings, local_imports, args.package))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
