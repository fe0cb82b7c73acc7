"""Inside the student's process, before their file runs: limits, a lower privilege, an audit hook.

Order matters (``harden``): the modules the file imports are loaded first (the Python install
may be unreadable once privileges drop); then resource limits (address space on top of what is
mapped now, CPU seconds, file size, no core dumps, and no new processes), the scratch folder as
working directory, the switch to an unprivileged user when running as root (root ignores
RLIMIT_NPROC), ``PR_SET_NO_NEW_PRIVS``, and last a ``sys.addaudithook`` that refuses process
creation, sockets, and writes (or reads) outside the allowed folders. The network namespace
(``unshare -n``) is set up by the parent when it starts this process (``engine.check.sandbox``).

An audit hook is not a security boundary against hostile native code (ctypes is refused, but
a determined attacker with a C extension is out of scope); the process limits and the user
switch are. ``docs/check-your-code.md`` lists what holds where.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import os
import resource
import signal
import sys
from pathlib import Path

NOBODY = 65534
# top-level packages a student's file may import (loaded before the privilege drop)
ALLOWED_IMPORTS = frozenset(
    {
        "torch",
        "torchvision",
        "numpy",
        "math",
        "random",
        "functools",
        "itertools",
        "typing",
        "dataclasses",
        "collections",
        "einops",
        "scipy",
        "safetensors",
        "time",
        "abc",
        "enum",
        "copy",
        "statistics",
        "__future__",
        "warnings",
        "operator",
        "re",
        "string",
        "inspect",
        "types",
        "numbers",
        "contextlib",
    }
)
REFUSED_EVENTS = {
    "os.system": "os.system",
    "os.exec": "starting programs",
    "os.fork": "new processes",
    "os.forkpty": "new processes",
    "os.posix_spawn": "new processes",
    "os.spawn": "new processes",
    "subprocess.Popen": "subprocess",
    "pty.spawn": "new processes",
    "os.kill": "signals to other processes",
    "os.killpg": "signals to other processes",
    "socket.__new__": "sockets (no network)",
    "socket.connect": "sockets (no network)",
    "socket.bind": "sockets (no network)",
    "socket.getaddrinfo": "sockets (no network)",
    "socket.gethostbyname": "sockets (no network)",
    "ctypes.dlopen": "ctypes",
    "ctypes.dlsym": "ctypes",
    "ctypes.cdata": "ctypes",
    "ctypes.call_function": "ctypes",
    "sys.setprofile": "profilers",
    "sys.settrace": "tracers",
    "os.chroot": "chroot",
    "os.setuid": "changing the user",
    "webbrowser.open": "a browser",
}
WRITE_EVENTS = (
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.utime",
    "os.chflags",
    "shutil.rmtree",
    "shutil.move",
    "shutil.copyfile",
    "shutil.copytree",
    "shutil.make_archive",
)
READ_EVENTS = ("os.listdir", "os.scandir", "glob.glob", "os.walk")


class Refused(PermissionError):
    """What the audit hook raises: the message says what the checker does not allow."""


Refused.__module__ = "builtins"  # a student's traceback reads "Refused: ...", not our module path


class CheckTimeout(BaseException):
    """Raised in the student's code when its time is up (BaseException: ``except Exception``
    in their code does not swallow it)."""


def imported_modules(source: str) -> list[str]:
    """The modules a file imports (dotted names), in order, parsed without running it."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def preimport(source: str) -> None:
    """Import what the file will import, where the package is allowed (while files are readable)."""
    for name in imported_modules(source):
        if name.split(".")[0] in ALLOWED_IMPORTS:
            # "from x import function" names no module: the file's own import says what is wrong
            with contextlib.suppress(Exception):
                importlib.import_module(name)


def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def set_limits(memory_mb: int, cpu_s: int, file_mb: int) -> None:
    """Address space (on top of what is mapped now), CPU seconds, file size, no cores, no forks."""
    mem = _vm_bytes() + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb * 2**20, file_mb * 2**20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def drop_privileges() -> bool:
    """Become ``nobody`` when root (root ignores RLIMIT_NPROC); then no new processes at all and
    no new privileges (PR_SET_NO_NEW_PRIVS). True if the user changed."""
    changed = False
    if os.getuid() == 0:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        changed = True
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    except (OSError, AttributeError):
        pass
    return changed


def _inside(path, roots) -> bool:
    try:
        p = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return any(p == r or p.startswith(r + os.sep) for r in roots)


def install_audit_hook(writable: list[str], readable: list[str]) -> None:
    """Refuse process creation, sockets and ctypes; writes outside ``writable``; reads outside
    ``writable`` + ``readable``."""
    writable = [os.path.realpath(p) for p in writable]
    readable = writable + [os.path.realpath(p) for p in readable]

    def hook(event: str, args) -> None:
        if event in REFUSED_EVENTS:
            raise Refused(f"the checker does not allow {REFUSED_EVENTS[event]} ({event})")
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                return
            writing = (mode and any(c in str(mode) for c in "wax+")) or (
                isinstance(flags, int)
                and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
            )
            if writing and not _inside(path, writable):
                raise Refused(
                    f"the checker lets your code write only in its own folder, not {os.fsdecode(path)}"
                )
            if not writing and not _inside(path, readable):
                raise Refused(f"the checker lets your code read only its own folder, not {os.fsdecode(path)}")
        elif event in WRITE_EVENTS:
            paths = [a for a in args if isinstance(a, (str, bytes, os.PathLike))]
            if any(not _inside(p, writable) for p in paths):
                raise Refused(f"the checker lets your code change files only in its own folder ({event})")
        elif event in READ_EVENTS:
            paths = [a for a in args if isinstance(a, (str, bytes, os.PathLike))]
            if any(not _inside(p, readable) for p in paths):
                raise Refused(f"the checker lets your code list only its own folder ({event})")

    sys.addaudithook(hook)


def python_roots() -> list[str]:
    """Where Python and its packages live (readable: imports and tracebacks read them)."""
    import site

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    roots |= {
        str(Path(m.__file__).parent)
        for m in list(sys.modules.values())
        if getattr(m, "__file__", None) and m.__name__.split(".")[0] in ALLOWED_IMPORTS | {"engine"}
    }
    return sorted(r for r in roots if r)


def harden(work: Path, writable: list[str], memory_mb: int, cpu_s: int, file_mb: int) -> list[str]:
    """Everything above, in order; returns notes on what could not be applied."""
    notes = []
    readable = python_roots()
    set_limits(memory_mb, cpu_s, file_mb)
    os.chdir(work)
    if not drop_privileges() and os.getuid() == 0:
        notes.append("still root")
    install_audit_hook(writable, readable)
    return notes


def _on_alarm(signum, frame):
    raise CheckTimeout


def start_timer(seconds: float) -> None:
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def stop_timer() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
