"""Static checks of docker/: the compose file, the three Dockerfiles and their scripts.

No Docker engine runs here, so nothing is built or started; instead every fact the
images rely on is checked against the repository: paths exist, the Python node runs
the same ``python -m bridge serve`` command (and module) as the interop tests, the
Erlang and Elixir scripts call functions that erl/src exports, node names match the
compose hostnames, and every service takes the cookie from the same place.
Each check is also run once against a broken input, to show it can fail.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

from bridge.cli import build_parser  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
SERVICES = ("python-node", "erlang-node", "elixir-node")
ENTRYPOINTS = {
    "python-node": DOCKER / "python-node" / "entrypoint.sh",
    "erlang-node": DOCKER / "erlang-node" / "start.sh",
    "elixir-node": DOCKER / "elixir-node" / "start.sh",
}
COOKIE_SECRET = "erlang_cookie"
INTEROP_ACTORS = REPO / "tests" / "interop" / "fixtures" / "py_actors.py"


# -- helpers ---------------------------------------------------------------------------------


def load_compose(text: str | None = None) -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text() if text is None else text)
    assert isinstance(data, dict), "compose file is not a mapping"
    return data


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ``${VAR}`` / ``${VAR:-default}`` / ``${VAR-default}`` with ``env`` (default: none set)."""
    env = env or {}

    def sub(m: re.Match[str]) -> str:
        name, op, default = m.group(1), m.group(2), m.group(3) or ""
        if name in env and (env[name] or op != ":-"):
            return env[name]
        if op is None:
            raise AssertionError(f"${{{name}}} has no default: {value!r}")
        return default

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}", sub, value)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    if current.strip():
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def copy_pairs(text: str) -> list[tuple[list[str], str]]:
    """``(sources, destination)`` of every COPY/ADD from the build context (not ``--from``)."""
    pairs = []
    for word, rest in dockerfile_instructions(text):
        if word not in ("COPY", "ADD"):
            continue
        if rest.startswith("["):
            parts = json.loads(rest)
        else:
            parts = shlex.split(rest)
        flags = [p for p in parts if p.startswith("--")]
        if any(f.startswith("--from=") for f in flags):
            continue
        args = [p for p in parts if not p.startswith("--")]
        assert len(args) >= 2, f"COPY needs a source and a destination: {rest!r}"
        pairs.append((args[:-1], args[-1]))
    return pairs


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule for one path: the last matching pattern wins; a match on a
    parent folder counts (``*`` excludes ``tests/x.py`` through ``tests``)."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat[1:] if negate else pat
        pat = pat.strip("/")
        matched = any(fnmatch(p, pat) or (pat.startswith("**/") and fnmatch(p.split("/")[-1], pat[3:]))
                      for p in prefixes)
        if negate:
            # a re-include applies to the path itself or to a folder that contains it
            if any(p == pat or fnmatch(p, pat) for p in prefixes):
                result = False
        elif matched:
            result = True
    return result


def ignore_patterns(dockerfile: Path) -> list[str]:
    f = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if not f.exists():
        return []
    return [ln.strip() for ln in f.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]


def build_of(compose: dict[str, Any], service: str) -> tuple[Path, Path]:
    build = compose["services"][service]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    return context, (context / build.get("dockerfile", "Dockerfile")).resolve()


def copy_problems(dockerfile_text: str, context: Path, patterns: list[str]) -> list[str]:
    problems = []
    for sources, _dest in copy_pairs(dockerfile_text):
        for src in sources:
            if not (context / src).exists():
                problems.append(f"{src}: missing in the build context {context}")
            elif ignored(src, patterns):
                problems.append(f"{src}: excluded by the .dockerignore")
    return problems


def shell_defaults(script: str) -> dict[str, str]:
    """``${NAME:-default}`` defaults used in a shell script."""
    return {m.group(1): m.group(2) for m in re.finditer(r"\$\{([A-Z_]+):-([^}]*)\}", script)}


def expand(script_line: str, env: dict[str, str]) -> str:
    """Shell ``$NAME`` / ``${NAME}`` / ``${NAME:-default}`` with ``env``; unset without default fails."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        if name in env:
            return env[name]
        if m.group(2) is not None:
            return m.group(2)
        raise AssertionError(f"${name} is unset in {script_line!r}")

    return re.sub(r"\$\{([A-Z_]+)(?::-([^}]*))?\}|\$([A-Z_]+)", sub, script_line)


def serve_command(script: str) -> list[str]:
    """The arguments after ``python -m bridge`` of the script's ``serve`` line."""
    lines = [ln.strip() for ln in script.splitlines()
             if re.match(r"\s*(exec\s+)?python\s+-m\s+bridge\s+(.*\s)?serve\b", ln)]
    assert len(lines) == 1, f"expected one 'python -m bridge serve' line, found {lines}"
    words = shlex.split(lines[0].rstrip("&").strip())
    if words[0] == "exec":
        words = words[1:]
    assert words[:3] == ["python", "-m", "bridge"], words
    return words[3:]


def erl_exports(src: Path) -> set[str]:
    """``mod:fun/arity`` for every function ``-export``ed by the .erl files in ``src``."""
    found = set()
    for f in src.glob("*.erl"):
        text = re.sub(r"%.*", "", f.read_text())
        m = re.search(r"^-module\(\s*'?([^')]+)'?\s*\)\.", text, re.M)
        assert m, f"{f}: no -module"
        mod = m.group(1)
        for block in re.findall(r"^-export\(\s*\[(.*?)\]\s*\)\.", text, re.M | re.S):
            for fa in re.findall(r"([a-z][A-Za-z0-9_]*)\s*/\s*(\d+)", block):
                found.add(f"{mod}:{fa[0]}/{fa[1]}")
    return found


def erl_remote_calls(text: str) -> set[str]:
    """``mod:fun/arity`` of the remote calls ``mod:fun(...)`` in Erlang source (arity by
    counting top-level commas)."""
    text = re.sub(r"%.*", "", text)
    calls = set()
    for m in re.finditer(r"\b([a-z][A-Za-z0-9_]*):([a-z][A-Za-z0-9_]*)\(", text):
        depth, i, args, empty = 1, m.end(), 0, True
        while depth and i < len(text):
            ch = text[i]
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
            elif ch == "," and depth == 1:
                args += 1
            if depth and not ch.isspace():
                empty = False
            i += 1
        calls.add(f"{m.group(1)}:{m.group(2)}/{0 if empty else args + 1}")
    return calls


def node_host(name: str) -> str:
    alive, sep, host = name.partition("@")
    assert sep and alive and host, f"{name!r} is not alive@host"
    return host


# -- the compose file --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_compose_parses_with_the_three_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == set(SERVICES)
    nets = [set(compose["services"][s]["networks"]) for s in SERVICES]
    assert nets[0] == nets[1] == nets[2] and len(nets[0]) == 1, "the three nodes share one network"
    assert set(compose["networks"]) == nets[0]


def test_compose_parse_failure_is_caught() -> None:
    with pytest.raises(yaml.YAMLError):
        load_compose("services:\n  a: [\n")
    with pytest.raises(AssertionError):
        load_compose("- just a list\n")


def test_every_path_named_by_compose_exists(compose: dict[str, Any]) -> None:
    for service in SERVICES:
        context, dockerfile = build_of(compose, service)
        assert context.is_dir(), f"{service}: build context {context} missing"
        assert dockerfile.is_file(), f"{service}: {dockerfile} missing"
    for name, secret in compose["secrets"].items():
        path = COMPOSE.parent / interpolate(secret["file"])
        assert path.is_file(), f"secret {name}: {path} missing"


def test_interpolation_and_missing_paths_are_caught(compose: dict[str, Any]) -> None:
    assert interpolate("${X:-./a}") == "./a"
    assert interpolate("${X:-./a}", {"X": "/b"}) == "/b"
    with pytest.raises(AssertionError):
        interpolate("${NO_DEFAULT}")
    broken = json.loads(json.dumps(compose))
    broken["services"]["python-node"]["build"]["dockerfile"] = "docker/python-node/Dockerfile.nope"
    assert not build_of(broken, "python-node")[1].is_file()


# -- the Dockerfiles ---------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_every_copy_source_exists_in_the_build_context(compose: dict[str, Any], service: str) -> None:
    context, dockerfile = build_of(compose, service)
    text = dockerfile.read_text()
    assert copy_pairs(text), f"{service}: no COPY found"
    assert copy_problems(text, context, ignore_patterns(dockerfile)) == []


def test_copy_check_catches_missing_and_ignored_sources() -> None:
    text = "FROM x\nCOPY pyproject.toml \\\n  no_such_file.txt ./\nCOPY --from=build /a /b\n"
    assert copy_pairs(text) == [(["pyproject.toml", "no_such_file.txt"], "./")]
    assert copy_problems(text, REPO, []) == [f"no_such_file.txt: missing in the build context {REPO}"]
    assert copy_problems("COPY bridge ./b\n", REPO, ["*", "!dist_proto"]) == ["bridge: excluded by the .dockerignore"]
    assert copy_problems("COPY tests/interop/fixtures/py_actors.py /a\n", REPO,
                         ["*", "!tests/interop/fixtures/py_actors.py"]) == []


def test_images_are_the_agreed_bases(compose: dict[str, Any]) -> None:
    bases = {}
    for service in SERVICES:
        froms = [rest for word, rest in dockerfile_instructions(build_of(compose, service)[1].read_text())
                 if word == "FROM"]
        bases[service] = froms[-1].split()[0]
    assert bases["python-node"] == "python:3.11-slim"
    assert bases["erlang-node"] in ("erlang:25", "erlang:26")
    assert bases["elixir-node"] == "elixir:1.14"


def test_python_image_installs_the_package_it_copies(compose: dict[str, Any]) -> None:
    import tomllib

    text = build_of(compose, "python-node")[1].read_text()
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    copied = {src for sources, _ in copy_pairs(text) for src in sources}
    assert set(packages) <= copied, f"packages not copied: {set(packages) - copied}"
    assert "pyproject.toml" in copied and "README.md" in copied  # readme= in pyproject
    runs = " ".join(rest for word, rest in dockerfile_instructions(text) if word == "RUN")
    assert re.search(r"\bpip install \.(\s|$)", runs)


def test_erlang_image_builds_with_rebar3_from_the_root_config(compose: dict[str, Any]) -> None:
    context, dockerfile = build_of(compose, "erlang-node")
    text = dockerfile.read_text()
    assert context == REPO
    copied = {src for sources, _ in copy_pairs(text) for src in sources}
    assert {"rebar.config", "erl"} <= copied
    assert '"erl"' in (REPO / "rebar.config").read_text()  # project_app_dirs ["erl"]
    assert "rebar3 compile" in text
    script = ENTRYPOINTS["erlang-node"].read_text()
    assert "/opt/beam_bridge/lib/beam_bridge/ebin" in script and "_build/default/lib/beam_bridge" in text


# -- the Python node ---------------------------------------------------------------------------


def python_serve_args(compose: dict[str, Any]) -> list[str]:
    env = {k: str(v) for k, v in compose["services"]["python-node"]["environment"].items()}
    line = " ".join(shlex.quote(w) for w in serve_command(ENTRYPOINTS["python-node"].read_text()))
    return shlex.split(expand(line, env))


def test_python_entrypoint_is_the_serve_command_of_the_interop_tests(compose: dict[str, Any]) -> None:
    args = build_parser().parse_args(python_serve_args(compose))
    assert args.command == "serve"
    assert not args.stdin_watch, "--stdin-watch would stop at once: a container's stdin is /dev/null"
    assert args.cookie is None, "the cookie must not be on the command line"
    # The served module is the interop tests' actors module, copied to the path serve is given.
    text = build_of(compose, "python-node")[1].read_text()
    sources = [sources for sources, dest in copy_pairs(text) if dest == args.module]
    assert sources == [[str(INTEROP_ACTORS.relative_to(REPO))]], f"{args.module} is not copied from {INTEROP_ACTORS}"
    assert "py_actors" in (REPO / "tests" / "interop" / "test_erl_app.py").read_text()


def test_serve_command_check_can_fail() -> None:
    with pytest.raises(AssertionError):
        serve_command("python -m bridge ping x@y\n")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "m.py", "--no-such-option"])


def test_served_module_imports_and_offers_the_actor_the_beam_nodes_start() -> None:
    code = (
        "import json, sys\n"
        "from bridge.cli import load_module, _tables\n"
        "from python_actors import GenServer\n"
        "m = load_module(sys.argv[1])\n"
        "print(json.dumps([[k, mod, fun, isinstance(fn, type) and issubclass(fn, GenServer)]\n"
        "                  for k, mod, fun, fn in _tables(m)] + [[callable(getattr(m, 'main', None))]]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(INTEROP_ACTORS)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    *tables, _main = json.loads(done.stdout)
    assert ["ALLOW_SPAWN", "counter", "start_link", True] in tables
    # The actor name the Erlang and Elixir nodes ask for is that one.
    assert "actor => counter" in (DOCKER / "erlang-node" / "demo_node.erl").read_text()
    assert "actor: :counter" in (DOCKER / "elixir-node" / "demo.exs").read_text()


def test_served_module_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad_actors.py"
    bad.write_text("ALLOW_SPAWN = {'counter': 1}\n")
    code = "import sys\nfrom bridge.cli import load_module, _tables\n_tables(load_module(sys.argv[1]))\n"
    done = subprocess.run([sys.executable, "-c", code, str(bad)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0


# -- the Erlang and Elixir nodes ---------------------------------------------------------------


def test_erlang_script_calls_only_exported_beam_bridge_functions() -> None:
    exports = erl_exports(REPO / "erl" / "src")
    ours = {e.split(":")[0] for e in exports}
    calls = erl_remote_calls((DOCKER / "erlang-node" / "demo_node.erl").read_text())
    used = {c for c in calls if c.split(":")[0] in ours}
    assert {"beam_bridge:child_spec/1", "beam_bridge_sup:start_link/3"} <= used
    assert used <= exports, f"not exported by erl/src: {used - exports}"
    # The entry and health functions the start script and the healthcheck call exist.
    demo_exports = erl_exports(DOCKER / "erlang-node")
    assert {"demo_node:start/0", "demo_node:health/0"} <= demo_exports
    assert "demo_node:start()" in ENTRYPOINTS["erlang-node"].read_text()


def test_elixir_script_uses_pychild_as_erl_src_defines_it() -> None:
    exports = erl_exports(REPO / "erl" / "src")
    text = (DOCKER / "elixir-node" / "demo.exs").read_text()
    # {PyChild, opts} in a child list means PyChild.child_spec(opts), then its start.
    assert re.search(r"\{PyChild,\s*[^}]*node:\s*Demo\.python_node\(\)[^}]*actor:\s*:counter", text)
    assert {"Elixir.PyChild:child_spec/1", "Elixir.PyChild:start_link/1"} <= exports
    for fun, args in re.findall(r"\bPyChild\.([a-z_]+)\(([^)]*)\)", text):
        assert f"Elixir.PyChild:{fun}/{len(args.split(',')) if args.strip() else 0}" in exports
    assert re.search(r"^\s*def health\b", text, re.M), "Demo.health/0 (the healthcheck) is missing"
    assert "defmodule Demo do" in text and "/opt/demo/demo.exs" in ENTRYPOINTS["elixir-node"].read_text()


def test_export_and_call_parsers_can_fail() -> None:
    calls = erl_remote_calls("f() -> beam_bridge:child_spec(#{a => 1, b => [x, y]}), beam_bridge:nope(), m:g(a, {b, c}).")
    assert calls == {"beam_bridge:child_spec/1", "beam_bridge:nope/0", "m:g/2"}
    assert "beam_bridge:nope/0" not in erl_exports(REPO / "erl" / "src")
    assert "beam_bridge:start_link/3" in erl_exports(REPO / "erl" / "src")


# -- node names and hostnames ------------------------------------------------------------------


def node_names(compose: dict[str, Any]) -> dict[str, list[str]]:
    """Every node name each service mentions: compose env/healthcheck, script defaults, image ENV."""
    names: dict[str, list[str]] = {}
    for service in SERVICES:
        svc = compose["services"][service]
        found = [str(svc["environment"]["NODE_NAME"])]
        found.append(shell_defaults(ENTRYPOINTS[service].read_text())["NODE_NAME"])
        env_lines = " ".join(rest for word, rest in dockerfile_instructions(build_of(compose, service)[1].read_text())
                             if word == "ENV")
        found += re.findall(r"\bNODE_NAME=(\S+)", env_lines)
        found += [w for w in " ".join(map(str, svc["healthcheck"]["test"])).split() if "@" in w]
        names[service] = found
    return names


def hostname_problems(compose: dict[str, Any]) -> list[str]:
    problems = []
    names = node_names(compose)
    for service in SERVICES:
        svc = compose["services"][service]
        host = svc["hostname"]
        if "." not in host:
            problems.append(f"{service}: {host!r} has no dot (BEAM long names need one)")
        aliases = [a for net in svc["networks"].values() for a in (net or {}).get("aliases", [])]
        if host not in aliases:
            problems.append(f"{service}: hostname {host!r} is not a network alias (other nodes cannot resolve it)")
        if not service == host.split(".")[0]:
            problems.append(f"{service}: hostname {host!r} does not start with the service name")
        for name in names[service]:
            if node_host(name) != host:
                problems.append(f"{service}: node name {name} is not on {host}")
        if len(names[service]) < 4:
            problems.append(f"{service}: node name not found everywhere: {names[service]}")
    py = compose["services"]["python-node"]["environment"]["NODE_NAME"]
    for service in ("erlang-node", "elixir-node"):
        env = compose["services"][service]["environment"]
        if env["PY_NODE"] != py:
            problems.append(f"{service}: PY_NODE {env['PY_NODE']} is not {py}")
    for f in (DOCKER / "erlang-node" / "demo_node.erl", DOCKER / "elixir-node" / "demo.exs"):
        for default in re.findall(r'"PY_NODE",\s*"([^"]+)"', f.read_text()):
            if default != py:
                problems.append(f"{f.name}: default Python node {default} is not {py}")
    return problems


def test_node_names_match_compose_hostnames(compose: dict[str, Any]) -> None:
    assert hostname_problems(compose) == []


def test_hostname_check_can_fail(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["erlang-node"]["hostname"] = "erlang-node"
    broken["services"]["elixir-node"]["environment"]["PY_NODE"] = "py@elsewhere.beam.internal"
    problems = hostname_problems(broken)
    assert any("has no dot" in p for p in problems)
    assert any("PY_NODE" in p for p in problems)
    assert any("app@erlang-node.beam.internal is not on erlang-node" in p for p in problems)


# -- the cookie --------------------------------------------------------------------------------


def cookie_problems(compose: dict[str, Any], scripts: dict[str, str]) -> list[str]:
    problems = []
    if set(compose.get("secrets", {})) != {COOKIE_SECRET}:
        problems.append(f"top-level secrets must be exactly {COOKIE_SECRET}")
    for service in SERVICES:
        svc = compose["services"][service]
        secrets = [s if isinstance(s, str) else s.get("source") for s in svc.get("secrets", [])]
        if secrets != [COOKIE_SECRET]:
            problems.append(f"{service}: secrets {secrets} != [{COOKIE_SECRET}]")
        env = svc.get("environment") or {}
        if "BEAM_BRIDGE_COOKIE" in env or "RELEASE_COOKIE" in env:
            problems.append(f"{service}: a cookie in the environment bypasses the secret")
        if svc.get("env_file"):
            problems.append(f"{service}: env_file is not the cookie mechanism here")
        script = scripts[service]
        if not re.search(r"^\s*install-cookie\s*$", script, re.M):
            problems.append(f"{service}: entrypoint does not run install-cookie")
        code = "\n".join(ln for ln in script.splitlines() if not ln.lstrip().startswith("#"))
        commands = code + " " + " ".join(map(str, svc["healthcheck"]["test"]))
        if re.search(r"(-setcookie|--cookie|\s-c\s)", commands):
            problems.append(f"{service}: a cookie on a command line")
        text = build_of(compose, service)[1].read_text()
        if ("docker/install-cookie.sh", "/usr/local/bin/install-cookie") not in [
                (s[0], d) for s, d in copy_pairs(text) if len(s) == 1]:
            problems.append(f"{service}: image does not install docker/install-cookie.sh")
    installer = (DOCKER / "install-cookie.sh").read_text()
    if "/run/secrets/erlang_cookie" not in installer or ".erlang.cookie" not in installer or "0400" not in installer:
        problems.append("install-cookie.sh must copy /run/secrets/erlang_cookie to ~/.erlang.cookie, mode 0400")
    return problems


def test_every_service_takes_the_cookie_from_the_same_secret(compose: dict[str, Any]) -> None:
    scripts = {s: p.read_text() for s, p in ENTRYPOINTS.items()}
    assert cookie_problems(compose, scripts) == []
    # what bridge reads after --cookie and $BEAM_BRIDGE_COOKIE is the file install-cookie writes
    from bridge import cookie

    assert cookie.COOKIE_ENV == "BEAM_BRIDGE_COOKIE"
    assert ".erlang.cookie" in Path(cookie.__file__).read_text()


def test_cookie_check_can_fail(compose: dict[str, Any]) -> None:
    scripts = {s: p.read_text() for s, p in ENTRYPOINTS.items()}
    broken = json.loads(json.dumps(compose))
    broken["services"]["elixir-node"]["secrets"] = []
    broken["services"]["python-node"]["environment"]["BEAM_BRIDGE_COOKIE"] = "x"
    scripts["erlang-node"] = scripts["erlang-node"].replace("install-cookie\n", "") + " -setcookie x"
    problems = cookie_problems(broken, scripts)
    assert any(p.startswith("elixir-node: secrets") for p in problems)
    assert any(p.startswith("python-node: a cookie in the environment") for p in problems)
    assert any(p == "erlang-node: entrypoint does not run install-cookie" for p in problems)
    assert any(p == "erlang-node: a cookie on a command line" for p in problems)


def test_healthchecks_use_the_cli_ping_and_erl_call(compose: dict[str, Any]) -> None:
    py = compose["services"]["python-node"]["healthcheck"]["test"]
    assert py[:5] == ["CMD", "python", "-m", "bridge", "--timeout"] and py[-2:] == [
        "ping", compose["services"]["python-node"]["environment"]["NODE_NAME"]]
    build_parser().parse_args(py[4:])
    for service, fun in (("erlang-node", "demo_node health []"), ("elixir-node", "Elixir.Demo health []")):
        test = compose["services"][service]["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL" and "erl_call -name" in test[1] and f"-a '{fun}'" in test[1]
        assert compose["services"][service]["depends_on"]["python-node"]["condition"] == "service_healthy"
