"""The oldest-versions leg (`make test-oldest`) installs exactly pyproject.toml's lower bounds."""

import re
from pathlib import Path

import tomllib  # Python 3.11+, as the tests run
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_oldest_leg_pins_every_lower_bound_of_the_dependencies():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lower = {_name(d): Version(re.search(r">=([\w.]+)", d).group(1)) for d in dependencies}
    pins = {}
    for line in (ROOT / ".ci" / "oldest.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[_name(name)] = Version(version)
    assert {name: pins.get(name) for name in lower} == lower
