"""scripts/code_stats.py: the package keeps its readability thresholds, and each rule can fire."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "code_stats.py"
_spec = importlib.util.spec_from_file_location("code_stats", SCRIPT)
code_stats = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(code_stats)


def make_package(tmp_path: Path, modules: dict[str, str]) -> Path:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text('"""A synthetic package."""\n')
    for name, source in modules.items():
        (package / f"{name}.py").write_text(source)
    return package


def rules_broken(package: Path) -> dict[str, list[str]]:
    findings, _ = code_stats.measure(package)
    broken = {}
    for finding in findings:
        broken.setdefault(finding.rule, []).append(finding.where)
    return broken


def long_function(name: str, lines: int) -> str:
    """A function of exactly `lines` lines, each statement different (no duplicate blocks)."""
    body = "".join(f"    x{i} = {i}\n" for i in range(lines - 2))
    return f"def {name}():\n{body}    return x0\n"


def test_bertmini_meets_every_threshold():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(ROOT / "bertmini")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: 0 offenders in bertmini/" in result.stdout


def test_a_clean_package_passes_and_prints_its_table(tmp_path, capsys):
    package = make_package(
        tmp_path,
        {"a": long_function("fits", 60) + "\n\ndef few(a, b, c, d, e, f, g, h):\n    pass\n"},
    )
    assert code_stats.main([str(package)]) == 0
    out = capsys.readouterr().out
    assert "function length (lines)" in out and "ok: 0 offenders in pkg/" in out


def test_a_61_line_function_breaks_the_length_rule(tmp_path, capsys):
    package = make_package(tmp_path, {"a": long_function("too_long", 61)})
    assert rules_broken(package) == {"lines": ["pkg/a.py:1 too_long"]}
    assert code_stats.main([str(package)]) == 1
    assert "FAIL: 1 offenders in pkg/" in capsys.readouterr().out


def test_a_data_table_may_be_long_but_only_a_pure_literal(tmp_path):
    rows = "".join(f'        "word{i}": {i},\n' for i in range(70))
    table = f'def table():\n    """Data."""\n    return {{\n{rows}    }}\n'
    rows = "".join(f'        "word{i}": {-i},\n' for i in range(1, 70))
    computed = f'def computed():\n    return {{\n        "word0": len(""),\n{rows}    }}\n'
    package = make_package(tmp_path, {"a": table, "b": computed})
    assert rules_broken(package) == {"lines": ["pkg/b.py:1 computed"]}


def test_nine_parameters_break_the_parameter_rule_self_not_counted(tmp_path):
    source = (
        "def nine(a, b, c, d, e, f, g, h, i):\n    pass\n\n\n"
        "class K:\n    def eight(self, a, b, c, d, e, f, g, h):\n        pass\n\n"
        "    def star(self, a, b, c, d, e, f, g, *args, **kwargs):\n        pass\n"
    )
    package = make_package(tmp_path, {"a": source})
    assert rules_broken(package) == {"params": ["pkg/a.py:1 nine", "pkg/a.py:9 star"]}


def test_complexity_over_12_breaks_the_c901_rule(tmp_path):
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(13))
    source = f"def branchy(x):\n{branches}    return -1\n"
    package = make_package(tmp_path, {"a": source})
    broken = rules_broken(package)
    assert broken == {"complexity": ["pkg/a.py:1 branchy"]}
    fewer = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(11))
    (package / "a.py").write_text(f"def branchy(x):\n{fewer}    return -1\n")
    assert rules_broken(package) == {}


def test_a_cycle_a_b_a_is_found_even_through_a_local_import(tmp_path):
    package = make_package(
        tmp_path,
        {
            "a": "from . import b\n",
            "b": "def late():\n    from .a import something\n    return something\n",
            "c": "from .a import b\n",  # imports from a cycle, is not part of one
        },
    )
    assert rules_broken(package) == {
        "cycle": ["pkg.a -> pkg.b (line 1); pkg.b -> pkg.a (line 2 (local))"]
    }
    findings, local_imports = code_stats.measure(package)
    assert local_imports == [("pkg.b", 2, "pkg.a")]


def test_two_identical_6_line_blocks_are_a_duplicate_whatever_the_comments(tmp_path):
    block = "".join(f"    total = total + {i}  # step {i}\n" for i in range(6))
    first = f"def first(total):\n{block}    return total\n"
    other_comments = block.replace("  # step", "  # note")
    comment = "    # the same, commented differently\n"
    second = f"def second(total):\n{comment}{other_comments}    return -total\n"
    package = make_package(tmp_path, {"a": first, "b": second})
    assert rules_broken(package) == {"duplicate": ["pkg/a.py:2-7 = pkg/b.py:3-8"]}
    five = "".join(f"    total = total + {i}\n" for i in range(5))
    (package / "a.py").write_text(f"def first(total):\n{five}    return total\n")
    (package / "b.py").write_text(f"def second(total):\n{five}    return -total\n")
    assert rules_broken(package) == {}
    imports = (
        "import os\nimport re\nimport sys\nfrom pathlib import (\n    Path,\n    PurePath,\n)\n"
    )
    (package / "a.py").write_text(imports + "\nA = 1\n")
    (package / "b.py").write_text(imports + "\nB = 2\n")
    assert rules_broken(package) == {}, "the same imports are not duplicated code"
    params = "".join(f"    p{i}: int = {i},\n" for i in range(7))
    (package / "a.py").write_text(f"def first(\n{params}):\n    return p0\n")
    (package / "b.py").write_text(f"def second(\n{params}):\n    return p1\n")
    assert rules_broken(package) == {}, "one API's parameter lists are not duplicated code"
    (package / "b.py").write_text(f"def second(\n{params}):\n{block}    return p1\n")
    (package / "a.py").write_text(f"def first(\n{params}):\n{block}    return p0\n")
    assert set(rules_broken(package)) == {"duplicate"}, "but their bodies still are"


def test_a_missing_package_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        code_stats.main([str(tmp_path / "nowhere")])
    assert "is not a directory" in capsys.readouterr().err
