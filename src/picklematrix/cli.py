"""The one command line: every ``picklematrix COMMAND ARGS`` and every ``./nox -s SESSION -- ARGS``.

Each option is declared once, in :data:`OPTIONS`, with its help, its default and the commands it applies to (as
nox's ``_options.py`` and asv's ``common_args.py`` do); each command is a subparser built from them. ``./nox -s
SESSION -- ARGS`` parses ARGS with the subparser of the same name (:func:`parse`): a typo is argparse's error,
exit 2 naming the closest option, before anything is built, and ``-- --help`` prints the session's help.

Environment variables are fallbacks, never a second spelling: ``PICKLEMATRIX_ONLY`` (comma-separated globs) and
``PICKLEMATRIX_CASES`` (folders, os.pathsep-separated) stand for ``--only``/``--cases`` when none is given,
``PICKLEMATRIX_PROFILE`` for ``--profile``, ``PICKLEMATRIX_RESULTS`` for ``--results``.

Standard library and ``packaging`` only (nox's interpreter, the tools venv and every env load it); each
command's work is a function of the module that owns it, imported when the command runs.
Exit status everywhere: 0 all as expected, 1 surprises or changes, 2 bad input, 3 stopped (``run``).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from dataclasses import dataclass, field

from picklematrix import __version__
from picklematrix.run.corpus import CONTEXTS
from picklematrix.run.methods import METHODS
from picklematrix.run.selection import MIN_SAMPLES, SAMPLE_TIME

EXIT_BAD_INPUT = 2


@dataclass(frozen=True)
class Option:
    """One option: its flags, the commands that take it, and argparse's keywords (help, default, ...)."""

    flags: tuple
    commands: tuple
    kwargs: dict = field(default_factory=dict)
    # an environment variable standing for the option when it is not given, and how its value splits
    fallback: tuple | None = None


@dataclass(frozen=True)
class Command:
    """A command and the nox session of the same name: what it does, and the function that does it."""

    name: str
    help: str
    run: str | None  # "module:function" taking the parsed arguments, returning an exit status
    extra: str | None = None  # the optional extra it needs (picklematrix.requirements_check)
    nox_only: bool = False  # a nox session with no picklematrix command (tests, lint)
    epilog: str = ""


COMMANDS = {c.name: c for c in [
    Command("cases", "list the corpus; --check validates it", "picklematrix.run.command:cases"),
    Command("run", "run the corpus in this environment, on a cluster", "picklematrix.run.command:run",
            epilog="exit status: 0 as expected, 1 surprises, 2 bad input, 3 stopped before its last cell"),
    Command("cluster", "run a LocalCluster (127.0.0.1, no dashboard) until terminated",
            "picklematrix.cluster.served:command"),
    Command("versions", "this env's versions, or a cluster's as distributed's version check reports them (JSON)",
            "picklematrix.run.command:versions"),
    Command("matrix", "build, run and record the envs these arguments select (default: the profile's)",
            "picklematrix.record.sessions:matrix_command",
            epilog="exit status: 0 all recorded, 1 an env failed, 2 bad input (nothing built)"),
    Command("report", "build the asv site, the matrix page and table.md/table.json", "picklematrix.report.build:run",
            extra="report", epilog="exit status: 0 built, 1 built in part, 2 bad input"),
    Command("review", "review an upgrade: what changes from env A to env B", "picklematrix.report.reviewing:run",
            extra="report", epilog="exit status: 0 nothing broke or got slower, every cell compared; 1 something "
                                   "did, or some cell could not be compared; 2 bad input"),
    Command("bisect", "the first release between two whose outcomes differ", "picklematrix.record.bisect:command",
            epilog="exit status: 0 an answer, 2 bad input"),
    Command("plan", "the profile's envs as a CI job matrix (JSON on stdout)", "picklematrix.record.shards:plan_command"),
    Command("merge", "merge shards' results directories into --results", "picklematrix.record.shards:merge_command"),
    Command("preview", "serve the report's site on 127.0.0.1 until Ctrl-C and print the matrix page's URL",
            "picklematrix.report.preview:run",
            epilog="exit status: 0 stopped (Ctrl-C), 2 bad input (no report there, the port is taken)"),
    Command("comment", "a pull request's review as one comment, posted or updated",
            "picklematrix.report.comment:run", epilog="exit status: 0 posted, 1 no review to post, 2 refused"),
    Command("alert", "the daily run's one issue: opened or updated while the newest releases flip cells, closed "
            "when all is clean", "picklematrix.report.alert:run",
            epilog="exit status: 0 done (opened, updated, closed or nothing to do), 2 bad input or refused"),
    Command("tests", "the test suite (./nox -s tests -- PYTEST ARGS)", None, nox_only=True),
    Command("lint", "ruff, actionlint and zizmor (./nox -s lint)", None, nox_only=True),
]}


def _only_words(text: str) -> list[str]:
    return [g for g in text.split(",") if g]


def _dirs(text: str) -> list[str]:
    return [d for d in text.split(os.pathsep) if d]


def _samples(text: str):
    """``N`` or ``CONTEXT=N``, as (context or None, N)."""
    context, _, number = text.rpartition("=")
    if context and context not in CONTEXTS:
        raise argparse.ArgumentTypeError(f"unknown context {context!r} in {text!r} (contexts: {', '.join(CONTEXTS)})")
    try:
        n = int(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or CONTEXT=N with N a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1 sample")
    return context or None, n


def _shard(text: str) -> tuple:
    from picklematrix.record.shards import ShardError, parse_shard

    try:
        return parse_shard(text)
    except ShardError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _factor(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 1.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: must be a number > 1 (1.1 = 10% slower)")
    return value


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number >= 1")
    return int(text)


CORPUS = ("cases", "run", "matrix", "bisect")
CHOOSING = ("matrix", "review", "bisect")  # commands that name envs by a change to a base env
CLUSTER = ("run", "versions", "matrix", "review")
OPTIONS = [
    # the corpus
    Option(("--only",), CORPUS, dict(action="append", metavar="GLOB",
           help="run the cases whose id or family/id matches GLOB; repeatable (default: $PICKLEMATRIX_ONLY, "
                "comma-separated, else every case)"), fallback=("PICKLEMATRIX_ONLY", _only_words)),
    Option(("--cases",), (*CORPUS, "review"), dict(action="append", metavar="DIR",
           help="a case folder (<DIR>/<family>/<case_id>.py) that REPLACES the built-in corpus; repeatable, name "
                "the built-in cases/ too to run both (default: $PICKLEMATRIX_CASES, os.pathsep-separated). review: "
                "the corpus whose records it compares (and records, for envs on demand)"),
           fallback=("PICKLEMATRIX_CASES", _dirs)),
    Option(("--check",), ("cases",), dict(action="store_true", help="list every problem and exit 2 if there is any")),
    # running the corpus in this env
    Option(("--method",), ("run",), dict(action="append", choices=list(METHODS), metavar="NAME",
           help=f"compute method; repeatable; default all ({', '.join(METHODS)})")),
    Option(("--context",), ("run",), dict(default="script", choices=[*CONTEXTS, "all"],
           help="where cells run (default: script)")),
    Option(("--samples",), ("run",), dict(action="append", type=_samples, metavar="N|CONTEXT=N",
           help=f"timing samples per passing cell (default 1; no more than {MIN_SAMPLES} once {SAMPLE_TIME:g} s "
                "have passed since the first began, asv's rule); CONTEXT=N sets one context's "
                "(e.g. --samples 3 --samples script=1); repeatable")),
    Option(("--no-progress",), ("run",), dict(action="store_true", help="no progress output")),
    Option(("--serial",), ("run",), dict(action="store_true",
           help="with --context all, run the kernel cells after the script cells on one cluster (default: side by "
                "side, the kernel cells in a second process with a cluster of its own; one cluster with "
                "--scheduler)")),
    Option(("--lane",), ("run",), dict(type=int, metavar="FD", help=argparse.SUPPRESS)),
    Option(("--env-id",), ("run",), dict(help="matrix environment id, recorded in the JSON (set by nox -s matrix)")),
    Option(("--machine",), ("run",), dict(help="machine name, recorded in the JSON (set by nox -s matrix)")),
    Option(("--commit",), ("run", "report", "review"), dict(metavar="REV",
           help="the harness commit: recorded in the JSON (run, set by nox -s matrix); the one whose results "
                "to show (report, review; default: the checked-out one if it has results, else the one with the "
                "most envs)")),
    Option(("--json",), ("run", "review", "plan"), dict(metavar="PATH",
           help="also write JSON to PATH: the run's results (the outcome sidecar, docs/results.md), the plan, or "
                "a pull request's review (review --base-rev; default <results>/reviews/<base8>..<head8>.review.json)")),
    # clusters
    Option(("--workers",), ("run", "cluster"), dict(type=_positive, default=2,
           help="worker processes of a cluster started here (default 2)")),
    Option(("--scheduler",), CLUSTER, dict(metavar="ADDRESS",
           help="compute on the existing cluster at ADDRESS (never restarted); matrix and review record each "
                "env as a client of it")),
    Option(("--scheduler-security",), CLUSTER, dict(metavar="FILE",
           help="TLS for a tls:// --scheduler: a TOML file of ca_file, cert, key (paths, relative to the file); "
                "its contents never reach results or logs")),
    Option(("--restartable",), ("run",), dict(action="store_true",
           help="the --scheduler cluster was started by `picklematrix cluster`: its workers may be restarted")),
    Option(("--cluster-python",), ("run", "versions", "cluster"), dict(metavar="PATH",
           help="start the cluster from this interpreter (another env's: a client/cluster skew pair) with "
                "`dask scheduler` and `dask worker`; owned by the run like a LocalCluster")),
    Option(("--state-file",), ("cluster",), dict(required=True, metavar="PATH",
           help="where to write {address, pid} once it is up")),
    # which envs
    Option(("--profile",), ("matrix", "review", "bisect", "plan"), dict(metavar="NAME",
           help="the matrix.toml profile: its envs, skew pairs and baseline (default: $PICKLEMATRIX_PROFILE, else "
                "default)"), fallback=("PICKLEMATRIX_PROFILE", str)),
    Option(("--env",), ("matrix", "report"), dict(action="append", metavar="SPEC",
           help="an env: an env id, a spec of versions ('python=3.11 dask=2024.6.2 pydantic=~=2.10', "
                "'pydantic=latest'), a requirements file, or <client>~<cluster> (a skew pair); repeatable. "
                "matrix records these instead of the profile's; report shows only the recorded envs they match")),
    Option(("--change",), CHOOSING, dict(metavar="NAME=[A..]B",
           help="the base env with NAME at version B; with A.., the change from NAME at A to NAME at B. matrix "
                "records the env(s), review compares them (from --from, else the base, when A is not given), "
                "bisect searches the releases between A and B")),
    Option(("--base",), CHOOSING, dict(metavar="ENV",
           help="the env a --change starts from (default: the profile's baseline)")),
    Option(("--as-of",), CHOOSING, dict(metavar="DATE",
           help="resolve specs as the package index stood on DATE (YYYY-MM-DD), every dependency included")),
    Option(("--python",), CHOOSING, dict(metavar="X.Y",
           help="the Python of the envs named by a requirements file or a spec that names none (a pip freeze does "
                "not say which Python it came from; 'FILE python=X.Y' beside one file is the same; default 3.11)")),
    Option(("--pins",), CHOOSING, dict(choices=["all", "needed"], default="all",
           help="which pins of a requirements file an env installs: all (default: faithful to the file) or needed: "
                "only the dependency closure of the tracked packages, the harness and the packages the chosen "
                "cases import (docs/matrix-toml.md)")),
    Option(("--from",), ("review",), dict(dest="from_env", metavar="ENV",
           help="the env before: an env id, <machine>/<env>, a spec or a requirements file")),
    Option(("--to",), ("review",), dict(dest="to_env", metavar="ENV", help="the env after (as --from)")),
    Option(("--pre",), ("bisect",), dict(action="store_true", help="count pre-releases among the releases")),
    Option(("--force",), ("matrix",), dict(action="store_true",
           help="record again envs already recorded at this fingerprint")),
    Option(("--shard",), ("matrix",), dict(type=_shard, metavar="K/N",
           help="this runner's share of the profile: every N-th env from the K-th")),
    Option(("--dry-run",), ("matrix", "comment", "alert"), dict(action="store_true",
           help="say what would be done and do nothing: the envs matrix would record (resolved), the comment "
                "or the issue that would be posted")),
    # results and the report
    Option(("--results",), ("matrix", "report", "review", "bisect", "merge", "preview"), dict(metavar="DIR",
           help="the results directory (default: $PICKLEMATRIX_RESULTS, else <checkout>/results)"),
           fallback=("PICKLEMATRIX_RESULTS", str)),
    Option(("--checkout",), ("report", "review", "preview"), dict(metavar="DIR",
           help="the picklematrix checkout whose asv.conf.json and matrix.toml to use (default: the current "
                "directory)")),
    Option(("--html",), ("report", "preview"), dict(metavar="DIR",
           help="where the site goes, or is (default: the checkout's html/ for its own results, else "
                "<results>/../html)")),
    Option(("--port",), ("preview",), dict(type=int, default=0, metavar="N",
           help="the port on 127.0.0.1 to serve the site on (default 0: a free one)")),
    Option(("--browser",), ("preview",), dict(action="store_true",
           help="also open the matrix page in the default browser")),
    Option(("--asset-cache",), ("report",), dict(metavar="DIR",
           help="npm tarball cache (default: $PICKLEMATRIX_ASSET_CACHE or ~/.cache/picklematrix/npm)")),
    Option(("--strict",), ("report",), dict(action="store_true", help="exit 1 when any result file had a problem")),
    Option(("--factor",), ("review",), dict(type=_factor, default=1.1, metavar="FACTOR",
           help="timing threshold, as in asv compare (default 1.1)")),
    Option(("--aa",), ("review",), dict(metavar="MACHINE",
           help="the machine holding the A/A copy of the from-env (default: <machine>-rep<i>)")),
    Option(("--out",), ("review", "comment"), dict(metavar="PATH",
           help="where the output goes: the review's .md/.html (a directory; default <results>/reviews), or the "
                "comment's markdown (a file)")),
    Option(("--quiet",), ("review",), dict(action="store_true", help="no markdown on stdout")),
    Option(("--base-rev",), ("review",), dict(metavar="REV",
           help="review every env of the profile at REV's code against the same env at --head-rev's")),
    Option(("--head-rev",), ("review",), dict(metavar="REV", help="with --base-rev: the head (default HEAD)")),
    Option(("--newest",), ("review",), dict(action="store_true",
           help="review the record before the newest against the newest (a scheduled run against `latest`)")),
    Option(("--step-summary",), ("review", "comment"), dict(action="store_true",
           help="also append the output to $GITHUB_STEP_SUMMARY")),
    # the pull request's comment
    Option(("--review",), ("comment",), dict(required=True, metavar="PATH",
           help="the review's JSON (review --base-rev ... --json PATH)")),
    Option(("--repo",), ("comment", "alert"), dict(metavar="OWNER/NAME",
           help="the repository (default: $GITHUB_REPOSITORY)")),
    Option(("--pr",), ("comment",), dict(type=_positive, metavar="N", help="the pull request's number")),
    Option(("--details-url",), ("comment", "alert"), dict(metavar="URL",
           help="where the whole review is (the run's page)")),
    # the daily run's issue
    Option(("--expect",), ("alert",), dict(type=_positive, metavar="N",
           help="how many reviews the run makes (one per job): fewer means a job failed before its review, "
                "which keeps the issue open")),
    # positional arguments
    Option(("dirs",), ("merge",), dict(nargs="+", metavar="DIR", help="the shards' results directories")),
    Option(("reviews",), ("alert",), dict(metavar="DIR",
           help="where the jobs' `review --newest --json` files are (searched below it)")),
]


class Parser(argparse.ArgumentParser):
    """argparse, with an unknown option answered by the closest one the command takes."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # --en is not --env: a typo is an error, not a guess
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(namespace, "command", None)
            target = getattr(self, "commands", {}).get(command, self)
            target.error(unrecognized(extras, target))
        return namespace


def unrecognized(extras: list[str], parser: argparse.ArgumentParser) -> str:
    """argparse's message for arguments ``parser`` does not take, with the closest option it does take."""
    known = [s for action in parser._actions for s in action.option_strings]
    for word in extras:
        if word.startswith("-"):
            close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1, cutoff=0.6)
            if close:
                return f"unrecognized argument {word}: did you mean {close[0]}?"
    return f"unrecognized arguments: {' '.join(extras)}"


def add_command(sub, command: Command, prog: str | None = None) -> argparse.ArgumentParser:
    p = sub.add_parser(command.name, help=command.help, description=command.help, epilog=command.epilog or None,
                       **({"prog": prog} if prog else {}))
    for option in OPTIONS:
        if command.name in option.commands:
            p.add_argument(*option.flags, **option.kwargs)
    return p


def build_parser(prog: str = "picklematrix", *, nox: bool = False) -> Parser:
    """The whole grammar: ``picklematrix``'s commands (and, with ``nox``, the nox-only sessions)."""
    parser = Parser(prog=prog, description="Which objects survive which Dask compute path, measured: run the "
                                           "corpus, record it across envs, then report and review the results.")
    parser.add_argument("--version", action="version", version=f"picklematrix {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    parser.commands = {c.name: add_command(sub, c) for c in COMMANDS.values() if nox or not c.nox_only}
    return parser


def apply_fallbacks(args: argparse.Namespace, command: str) -> argparse.Namespace:
    """Options not given take their environment variable's value (:attr:`Option.fallback`)."""
    for option in OPTIONS:
        if option.fallback and command in option.commands:
            dest = option.kwargs.get("dest") or option.flags[0].lstrip("-").replace("-", "_")
            var, split = option.fallback
            if getattr(args, dest, None) is None and os.environ.get(var):
                setattr(args, dest, split(os.environ[var]))
    return args


def parse(command: str, argv: list[str], prog: str | None = None) -> argparse.Namespace:
    """``argv`` parsed as ``command``'s arguments (a nox session's posargs): exits 2 on bad input, 0 after --help."""
    if command not in COMMANDS:
        raise KeyError(command)
    if command == "tests":  # pytest's own arguments: pytest parses them
        return argparse.Namespace(command=command, pytest_args=list(argv))
    parser = Parser(prog=prog or f"picklematrix {command}")
    sub = parser.add_subparsers(dest="command", parser_class=Parser)
    parser.commands = {command: add_command(sub, COMMANDS[command], prog=prog or f"picklematrix {command}")}
    return apply_fallbacks(parser.parse_args([command, *argv]), command)


def nox_prog(session: str) -> str:
    return f"./nox -s {session} --"


def nox_selected(argv: list[str]) -> list[str]:
    """The sessions nox's command line names (``-s``/``--session``/``-e``, base names without their parameters),
    or ``["matrix"]``, the default session, when it names none."""
    argv = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    named, taking = [], False
    for a in argv:
        if a in ("-s", "--session", "--sessions", "-e"):
            taking = True  # nox takes every word after it that is no option
        elif a.startswith("-"):
            taking = False
            if a.startswith(("--session=", "--sessions=")):
                named.append(a.split("=", 1)[1])
        elif taking:
            named.append(a)
    names = [n.split("(", 1)[0].strip() for n in named]
    return list(dict.fromkeys(names)) or ["matrix"]


def nox_args(argv: list[str]) -> dict[str, argparse.Namespace]:
    """{session: its parsed posargs} for the sessions of this nox command line that the grammar knows, checked
    when nox loads the noxfile: a bad argument stops nox (exit 2) before any session starts, ``--help`` prints
    the session's help (exit 0). ``matrix`` is always there: its arguments choose the sessions nox lists."""
    out = {}
    if "--" in argv:  # (without, a session that needs arguments says so when it runs: nox --list needs none)
        posargs = argv[argv.index("--") + 1:]
        for name in nox_selected(argv):
            if name in COMMANDS:
                out[name] = parse(name, posargs, prog=nox_prog(name))
    if "matrix" not in out:
        out["matrix"] = parse("matrix", [], prog=nox_prog("matrix"))
    return out


def to_argv(command: str, args: argparse.Namespace) -> list[str]:
    """The arguments that parse back to ``args`` (those set), for handing a parsed command to another process."""
    out, positional = [], []
    for option in OPTIONS:
        if command not in option.commands:
            continue
        if not option.flags[0].startswith("-"):
            value = getattr(args, option.flags[0], None)
            positional += [value] if isinstance(value, str) else list(value or [])
            continue
        dest = option.kwargs.get("dest") or option.flags[0].lstrip("-").replace("-", "_")
        value = getattr(args, dest, None)
        if value is None or value is False or value == option.kwargs.get("default"):
            continue
        if value is True:
            out.append(option.flags[0])
        elif isinstance(value, list):
            out += [a for v in value for a in (option.flags[0], _text(v))]
        else:
            out += [option.flags[0], _text(value)]
    return out + positional


def _text(value) -> str:
    """An option's parsed value as it is written: a shard (K, N) as K/N, a sample (context, N) as CONTEXT=N."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
        first, n = value
        return f"{first}/{n}" if isinstance(first, int) else (f"{first}={n}" if first else str(n))
    return str(value)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command: check its extra, import its owner, call it."""
    command = COMMANDS[args.command]
    if command.extra:
        from picklematrix.requirements_check import MissingExtra, require

        try:
            require(command.extra, f"picklematrix {command.name}")
        except MissingExtra as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
    module, _, function = command.run.partition(":")
    return getattr(importlib.import_module(module), function)(args)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # as given: a run hands it on to its kernel lane (picklematrix.run.lanes)
    args.entry = main  # what runs it: a run's lane forked from it calls this with its own command line
    return run_command(apply_fallbacks(args, args.command))
