"""The Docker image holds every file its entry points import, and its user can write its folders.

There is no Docker engine here, so the image's files are computed the way ``docker build`` does:
the build context (this checkout) less what ``.dockerignore`` excludes, placed by the
Dockerfile's ``COPY`` instructions. Those files are copied to a temporary folder, and a fresh
interpreter with only that folder on its path (as the image's ``PYTHONPATH`` says) imports every
module, runs every console script and every ``python -m`` package with ``--help``. A module left
out of the image, or importing something that is, fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest

from config.settings import PROJECT_ROOT

FIRST_PARTY = ("cli", "config", "streams", "agents", "api", "schemas", "features")


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def _pattern(text: str) -> re.Pattern[str]:
    """A ``.dockerignore`` pattern as a regex over context-relative POSIX paths."""
    out = ""
    i = 0
    while i < len(text):
        if text.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif text.startswith("**", i):
            out += ".*"
            i += 2
        elif text[i] == "*":
            out += "[^/]*"
            i += 1
        elif text[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(text[i])
            i += 1
    return re.compile(out)


def _ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        cleaned = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        rules.append((negated, _pattern(cleaned)))
    return rules


def _excluded(path: PurePosixPath, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    verdict = False
    for negated, pattern in rules:
        prefixes = [PurePosixPath(*path.parts[: n + 1]).as_posix() for n in range(len(path.parts))]
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            verdict = not negated
    return verdict


def _context_files(root: Path, rules: list[tuple[bool, re.Pattern[str]]]) -> list[PurePosixPath]:
    files = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        here = PurePosixPath(Path(folder).relative_to(root).as_posix())
        dirs[:] = [d for d in dirs if not _excluded(here / d, rules)]
        files += [here / n for n in names if not _excluded(here / n, rules)]
    return files


def _image_tree(target: Path) -> dict[str, str]:
    """Copy the image's files under ``target`` (as its ``/``).

    Returns:
        The image's ENV, with its last ``WORKDIR`` under that name.
    """
    rules = _ignore_rules((PROJECT_ROOT / ".dockerignore").read_text())
    context = _context_files(PROJECT_ROOT, rules)
    env: dict[str, str] = {}
    workdir = PurePosixPath("/")
    for word, args in _instructions((PROJECT_ROOT / "Dockerfile").read_text()):
        if word == "WORKDIR":
            workdir = workdir / args
        elif word == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                env[name] = value
        elif word in ("COPY", "ADD"):
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            assert not any(p.startswith("--from") for p in shlex.split(args)), args
            *sources, dest = parts
            destination = workdir / dest
            for source in sources:
                src = PurePosixPath(os.path.normpath(source))
                for file in context:
                    if src.as_posix() == ".":
                        rel = file
                    elif file == src:
                        rel = PurePosixPath(file.name) if dest.endswith("/") else PurePosixPath()
                    elif src in file.parents:
                        rel = file.relative_to(src)
                    else:
                        continue
                    out = target / (destination / rel).relative_to("/")
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(PROJECT_ROOT / file, out)
    env.setdefault("WORKDIR", workdir.as_posix())
    return env


#: Run first in the image's tree: only the image's folder may provide first-party modules (the
#: development checkout is on this interpreter's path too), checked once the work is done.
_PRELUDE = """
import atexit, importlib, pathlib, runpy, sys
root = pathlib.Path(sys.argv.pop(1)).resolve()
sys.path[:] = [p for p in sys.path
               if not (pathlib.Path(p or '.').resolve() / 'cli' / '__init__.py').exists()
               or pathlib.Path(p).resolve() == root]
ours = {p.name for p in root.iterdir()}

def check():
    outside = sorted(
        n for n, m in list(sys.modules.items())
        if n.split('.')[0] in ours and getattr(m, '__file__', None)
        and not pathlib.Path(m.__file__).resolve().is_relative_to(root)
    )
    if outside:
        print(f'imported from outside the image: {outside}')
        sys.stdout.flush()
        import os; os._exit(3)

atexit.register(check)
"""


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """The image's root folder, its application folder, and the environment to run in it."""
    root = tmp_path_factory.mktemp("image")
    image_env = _image_tree(root)
    # The application folder: on the path, or where ``pip install .`` was run from.
    app = root / image_env.get("PYTHONPATH", image_env["WORKDIR"]).lstrip("/")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(app),
        "PYTHONDONTWRITEBYTECODE": "1",
        # Settings read from the environment only, with the image's values.
        "SPOTREC_ENV_FILE": str(root / "no.env"),
    }
    (root / "no.env").write_text("")
    return root, app, env


def _python(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_image_holds_every_module_its_entry_points_need(
    image: tuple[Path, Path, dict[str, str]],
) -> None:
    root, app, env = image
    packages = sorted(p.parent.name for p in app.glob("*/__init__.py"))
    assert set(FIRST_PARTY) <= set(packages), packages
    # Every module of every package, so an import inside a function is covered too.
    modules = sorted(
        ".".join(p.relative_to(app).with_suffix("").parts).removesuffix(".__init__")
        for package in packages
        for p in (app / package).rglob("*.py")
        if p.name != "__main__.py"
    )
    scripts = tomllib.loads((app / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts, "the image's pyproject declares no console script"
    mains = sorted(p.parent.name for p in app.glob("*/__main__.py"))
    assert "cli" in mains
    # One interpreter for everything (each start imports the heavy libraries again): every
    # module, then every console script and every ``python -m`` package with --help, which
    # must exit 0 after building its parsers.
    calls = [f"importlib.import_module({m!r})" for m in modules]
    for target in scripts.values():
        module, _, attr = target.partition(":")
        calls.append(f"importlib.import_module({module!r}).{attr}")
    calls += [f"lambda: runpy.run_module({p!r}, run_name='__main__')" for p in mains]
    body = "\n".join(
        [
            "def entry_points():",
            *(f"    yield {call!r}, {call}" for call in calls[len(modules) :]),
            *(f"{call}" for call in calls[: len(modules)]),
            "for name, run in entry_points():",
            "    sys.argv = [name, '--help']",
            "    try:",
            "        run()",
            "    except SystemExit as exc:",
            "        assert exc.code in (0, None), f'{name} --help exited {exc.code}'",
            "    print('ok', name)",
        ]
    )
    out = _python(["-c", _PRELUDE + body, str(app)], root, env)
    assert out.count("\nok ") + out.startswith("ok ") >= len(scripts) + len(mains), out


def test_the_image_user_owns_the_folders_the_service_writes(
    image: tuple[Path, Path, dict[str, str]],
) -> None:
    instructions = _instructions((PROJECT_ROOT / "Dockerfile").read_text())
    env: dict[str, str] = {}
    for word, args in instructions:
        if word == "ENV":
            env.update(pair.partition("=")[::2] for pair in shlex.split(args))
    users = [args for word, args in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    owned = " ".join(args for word, args in instructions if word == "RUN" and "chown" in args)
    for variable in ("SPOTREC_RUN_DIR", "SPOTREC_WORKER_DATA_DIR"):
        folder = env.get(variable, "")
        assert folder.startswith("/"), f"{variable} must be an absolute folder of the image"
        assert re.search(rf"chown\s+(-R\s+)?{users[-1]}\S*\s+[^&]*{re.escape(folder)}", owned), (
            f"{folder} ({variable}) is not given to the user {users[-1]}"
        )
