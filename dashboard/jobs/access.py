"""Who may do what with a training run. Everyone can watch every run; only its owner or a
teacher may cancel, resume or delete it; ``who=None`` is the operator (scripts, tests): no check.

A run records its ``owner``: an opaque id of the browser that started it (``owner_id``, derived
by ``identify`` from what the page knows of the session). A teacher is a session that gave the
teacher password (``password_ok``) or a signed-in address listed in the secrets (``Teachers``:
the ``[training_lab]`` section of ``.streamlit/secrets.toml``). No ``st.*`` calls here: the page
reads the request and the secrets and hands them in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .store import Job, JobForbidden

WRONG_PASSWORD_DELAY_S = 1.0  # slows down guessing


@dataclass(frozen=True)
class Who:
    """The session asking: ``owner`` from ``owner_id``; ``label`` is what others see."""

    owner: str
    teacher: bool = False
    label: str = ""


def owner_id(session_token: str, route_cookie: str | None = None, local: bool = False,
             email: str | None = None) -> tuple[str, str]:
    """(owner id, label) for the browser behind a session, most stable first:

    1. ``email`` of a user signed in with ``st.login``: that person, on any device;
    2. the class proxy's ``difflab_route`` cookie (``r<k>.<hex id>``, minted by nginx once per
       browser, see deploy/nginx.conf.template): that browser, across reloads, tabs and a
       replica failover (the replica part changes, the id does not); only a hash is kept;
    3. ``local``: a browser on this machine talking to Streamlit directly (no proxy): the person
       at this computer, the laptop case, across reloads;
    4. otherwise ``session_token``, a random token the page keeps in its session state: this
       tab's session only (a reload starts a new one; the teacher can still manage the run).
    """
    if email:
        return f"user:{email.strip().lower()}", email.strip()
    m = re.fullmatch(r"r\d+\.([0-9a-f]{16,64})", route_cookie or "")
    if m:
        digest = hashlib.sha256(m.group(1).encode()).hexdigest()[:20]
        return f"browser:{digest}", f"browser {digest[:6]}"
    if local:
        return "local", "this computer"
    return f"session:{session_token}", f"session {session_token[:6]}"


def may_manage(job: Job, who: Who | None) -> bool:
    """Cancel, resume, delete: the operator (``who=None``), a teacher, the owner; a run without
    an owner (made before owners existed, or by a script) belongs to everyone."""
    return who is None or who.teacher or not job.owner or job.owner == who.owner


def check(job: Job, who: Who | None, action: str) -> None:
    """Raise ``JobForbidden`` (saying who may) unless ``who`` may ``action`` ``job``."""
    if not may_manage(job, who):
        by = f" (started by {job.owner_label})" if job.owner_label else ""
        raise JobForbidden(
            f"run {job.run_id!r} belongs to another session{by}: you can watch it, but only the "
            f"session that started it or the teacher can {action} it"
        )


def owns(job: Job, who: Who) -> bool:
    """Did ``who``'s session start ``job`` (a run without an owner is nobody's own)?"""
    return bool(job.owner) and job.owner == who.owner


def owner_text(job: Job, who: Who) -> str:
    """Who started ``job``, as ``who`` reads it: "you", the owner's label, or "anyone"."""
    if owns(job, who):
        return "you"
    return job.owner_label or ("anyone" if not job.owner else "another session")


@dataclass(frozen=True)
class Teachers:
    """Teacher mode's settings: the password (None: no password mode) and the sign-in
    addresses of teachers (lower case)."""

    password: str | None = None
    emails: frozenset[str] = frozenset()

    @classmethod
    def from_secrets(cls, section: Mapping) -> Teachers:
        """From the ``[training_lab]`` section: ``teacher_password`` and ``teachers`` (a list of
        addresses, or one address)."""
        password = section.get("teacher_password")
        listed = section.get("teachers", [])
        listed = [listed] if isinstance(listed, str) else listed
        return cls(str(password) if password else None, frozenset(str(t).strip().lower() for t in listed))

    def listed(self, email: str | None) -> bool:
        return bool(email) and email.lower() in self.emails


def password_ok(given: str, password: str | None, delay_s: float = WRONG_PASSWORD_DELAY_S) -> bool:
    """Is ``given`` the teacher password? Compared in constant time; a wrong one costs
    ``delay_s`` seconds (it slows down guessing). False when there is no password."""
    if password and hmac.compare_digest(str(given).encode(), str(password).encode()):
        return True
    time.sleep(delay_s)
    return False


def identify(session_token: str, *, headers: Mapping | None = None, route_cookie: object = None,
             ip: object = None, email: str | None = None, teachers: Teachers = Teachers(),
             teacher_mode: bool = False) -> Who:
    """This session's identity (``owner_id``) and whether it is a teacher (a listed sign-in, or
    ``teacher_mode``: the password was given in this session). ``headers``, ``route_cookie`` and
    ``ip`` are the browser's WebSocket request (empty, or stand-ins, where there is none, as
    under AppTest): a request with headers, no ``X-Forwarded-For`` and no client address came
    to Streamlit directly from this machine."""
    text = {str(k).lower(): v for k, v in (headers or {}).items() if isinstance(v, str)}
    local = bool(text) and "x-forwarded-for" not in text and ip is None
    route = route_cookie if isinstance(route_cookie, str) else None
    owner, label = owner_id(session_token, route, local, email)
    return Who(owner, teachers.listed(email) or bool(teacher_mode), label)
