"""Serving a class: ``scripts/serve_class.sh`` (N Streamlit replicas behind nginx), the nginx
config both ways (loopback and compose), and the container files.

Cheap checks (no browser): the one template ``deploy/nginx.conf.template`` rendered as
serve_class.sh renders it and as compose.yaml's nginx service renders it, each validated by
``nginx -t``; the Dockerfile, compose.yaml and .dockerignore say what docs/serving.md promises.
Docker's engine does not run on the project machines, so the image itself is not built here.

The browser test (``-m browser``): ``serve_class.sh 2`` on loopback ports, 8 Chromium contexts
(8 browsers, 8 Streamlit sessions) through the proxy, each visiting Forward (with an upload) and
Sampling. It fails on an exception box, a broken picture, a session whose requests reached two
replicas (nginx's access log names the replica that answered each request: ``served=r<k>``;
the browser is the id in its ``difflab_route`` cookie; a picture or an upload that reached the
wrong replica would fail there too, since both live in the session's replica), or sessions that
all sit on one replica. Then replica 1 is killed (SIGKILL): its sessions must reconnect through
the proxy to replica 2 (the cookie re-pinned, same browser id), and render the Forward page and
take an upload there. Timings go to ``artifacts/serving.json``; none is asserted.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.support import devserver

ROOT = Path(__file__).resolve().parents[2]
RENDER = ROOT / "deploy" / "render-nginx.sh"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
NO_NGINX = "nginx not installed (scripts/setup.sh --test installs it)"
needs_nginx = pytest.mark.skipif(NGINX is None, reason=NO_NGINX)


def render(listen: str, prefix: Path, logs: str, replicas: list[str], **env) -> str:
    out = subprocess.run(["sh", str(RENDER), listen, str(prefix), logs, *replicas], capture_output=True,
                         text=True, env={**os.environ, **env}, check=True)
    return out.stdout


def nginx_test(conf: str, prefix: Path) -> None:
    path = prefix / "nginx.conf"
    path.write_text(conf)
    got = subprocess.run([NGINX, "-t", "-p", str(prefix), "-c", str(path)], capture_output=True, text=True)
    assert got.returncode == 0, got.stderr


def compose() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


# ----------------------------------------------------------------------------- the config, both ways


@needs_nginx
def test_loopback_config_is_valid_and_sticky(tmp_path):
    conf = render("127.0.0.1:8501", tmp_path, str(tmp_path), ["127.0.0.1:8502", "127.0.0.1:8503"])
    nginx_test(conf, tmp_path)
    for line in ("hash", "ip_hash", "sticky"):  # the route is a cookie nginx mints, not an address
        assert not re.search(rf"^\s*{line}\b", conf, re.M), line
    assert "upstream difflab_r2" in conf and "server 127.0.0.1:8502 backup;" in conf
    assert '"~:8503$" r2;' in conf and "client_max_body_size 10m;" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf and "proxy_read_timeout 24h;" in conf
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("teacher:$apr1$abcdefgh$abcdefghijklmnopqrstuv\n")
    nginx_test(render("127.0.0.1:8501", tmp_path, str(tmp_path), ["127.0.0.1:8502"],
                      DIFFLAB_HTPASSWD=str(htpasswd)), tmp_path)
    with pytest.raises(subprocess.CalledProcessError):  # replicas are told apart by their port
        render("8501", tmp_path, "-", ["a:8502", "b:8502"])


@needs_nginx
def test_compose_renders_the_same_template(tmp_path):
    """compose.yaml's nginx service runs deploy/render-nginx.sh on the same template; rendered with
    its own arguments (service names swapped for localhost, which resolves here), nginx -t
    accepts it, and it differs from the loopback rendering only where the arguments differ."""
    spec = compose()
    services = spec["services"]
    command = " ".join(services["nginx"]["command"])
    m = re.search(r"render-nginx\.sh (\S+) (\S+) (\S+) ((?:\S+:\d+ ?)+)", command)
    assert m, command
    listen, prefix, logs, replicas = m.group(1), m.group(2), m.group(3), m.group(4).split()
    apps = sorted(n for n in services if n.startswith("app"))
    assert len(apps) >= 2 and [r.split(":")[0] for r in replicas] == apps
    assert logs == "-" and re.search(r"exec nginx .*-c /tmp/nginx/nginx\.conf -g 'daemon off;'", command)
    local = [f"localhost:{r.split(':')[1]}" for r in replicas]
    conf = render(listen, tmp_path, logs, local)
    nginx_test(conf, tmp_path)
    loop = render(listen, tmp_path, logs, [f"127.0.0.1:{r.split(':')[1]}" for r in replicas])
    assert conf.replace("localhost:", "127.0.0.1:") == loop
    assert prefix.startswith("/")


def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_container_files():
    steps = dockerfile()
    docker = "\n".join(steps)
    reqs = dict(line.split("#")[0].strip().split("==") for line in (ROOT / "requirements.txt").read_text()
                .splitlines() if "==" in line)
    for pin in (f"torch=={reqs['torch']}", f"torchvision=={reqs['torchvision']}"):
        assert pin in docker, pin  # the pinned pair, from the CPU wheel index
    cpu_index = r"^RUN pip install --index-url https://download\.pytorch\.org/whl/cpu torch"
    assert re.search(cpu_index, docker, re.M)
    assert re.search(r"pip install -r requirements\.txt", docker)
    for path in ("cache/models", "cache/datasets"):
        assert re.search(rf"^COPY {path} {path}$", docker, re.M), path
    users = [s.split()[1] for s in steps if s.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "runs as a non-root user"
    assert steps.index(f"USER {users[-1]}") < next(i for i, s in enumerate(steps) if s.startswith("CMD "))
    assert re.search(r"^HEALTHCHECK .*CMD .*/_stcore/health", docker, re.M)
    cmd = json.loads(next(s for s in steps if s.startswith("CMD "))[4:])
    assert cmd[:3] == ["python", "-m", "dashboard.serve"]  # streamlit run dashboard/app.py, preloaded
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    assert re.search(r"^ENV .*STREAMLIT_SERVER_PORT=8501", docker, re.M)
    probe = re.search(r'^HEALTHCHECK .*CMD python -c "(.*)"$', docker, re.M).group(1)
    compile(probe, "HEALTHCHECK", "exec")
    # every COPY source exists and is not left out of the build context
    ignore = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
              if p.strip() and not p.startswith("#")]
    for step in steps:
        if step.startswith("COPY "):
            for src in step.split()[1:-1]:
                assert (ROOT / src).exists(), src
                assert not any(fnmatch.fnmatch(src, pat) for pat in ignore), (src, "ignored")
    for entry in ("cache/runs", "artifacts", ".git", "cache/models/*/checkpoint.safetensors"):
        assert entry in ignore, entry

    services = compose()["services"]
    apps = {n: s for n, s in services.items() if n.startswith("app")}
    assert len(apps) >= 2
    ports = set()
    for name, app in apps.items():
        env = app.get("environment", {})
        assert env.get("DIFFLAB_RUNS_DIR"), name
        mounts = app.get("volumes", [])
        assert any(str(v).endswith("/app/cache/models:ro") for v in mounts), (name, mounts)
        assert any(env["DIFFLAB_RUNS_DIR"] in str(v) and not str(v).endswith(":ro") for v in mounts), mounts
        ports.add(str(env["STREAMLIT_SERVER_PORT"]))  # the image reads it (CMD and HEALTHCHECK)
    assert len(ports) == len(apps), "each replica needs its own port (nginx tells them apart by it)"
    proxy = services["nginx"]
    assert set(proxy["depends_on"]) == set(apps)
    assert any(str(p).endswith(":8080") for p in proxy["ports"])
    assert any("deploy" in str(v) and str(v).endswith(":ro") for v in proxy["volumes"])


@needs_nginx
def test_upload_cap_at_the_proxy(tmp_path):
    """nginx answers 413 to a body over 10 MB by itself (no replica needs to run)."""
    port, dead = devserver.free_port(), devserver.free_port()
    prefix = Path(tempfile.mkdtemp(prefix="difflab-nginx-"))
    conf = render(f"127.0.0.1:{port}", prefix, str(prefix), [f"127.0.0.1:{dead}"])
    (prefix / "nginx.conf").write_text(conf)
    proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"])
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 10
        while True:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/_stcore/upload_file/s/f", method="PUT",
                                         data=b"\0" * (10 * 2**20 + 4096))
            try:
                opener.open(req, timeout=10)
                status = 200
            except urllib.error.HTTPError as e:
                status = e.code
            except OSError:
                status = None
            if status is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 413
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(prefix, ignore_errors=True)


# ----------------------------------------------------------------------------- 2 replicas, 8 browsers

# record the app's connection and script states from now on (a rerun after the failover shows
# as "running" after a state other than CONNECTED)
WATCH_STATES_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const conn = 'data-test-connection-state', script = 'data-test-script-state';
  window.__states = [];
  new MutationObserver(() => window.__states.push(app.getAttribute(conn) + '/' + app.getAttribute(script)))
    .observe(app, {attributes: true, attributeFilter: [conn, script]});
}"""
XT_SIZE_JS = "() => { const c = document.getElementById('xt'); return [c.width, c.height]; }"
PAGES = {"a1_forward": "Forward process", "a3_sampling": "Sampling and classifier-free guidance"}
SESSIONS = 8
WAIT = 180.0
REPORT: dict = {}


def _png() -> bytes:
    from PIL import Image

    ramps = np.meshgrid(np.linspace(0, 255, 96), np.linspace(255, 0, 80))
    arr = np.stack([*ramps, np.full((80, 96), 60.0)], -1)
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _check(page, where: str) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, f"{where}: {boxes.all_inner_texts()}"
    errors = page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    assert not errors, f"{where}: error boxes {errors}"


def _pictures_ok(page, where: str) -> int:
    """Every st.image picture loaded: /media/... came from the replica that holds the session."""
    imgs = page.locator('[data-testid="stMain"] [data-testid="stImage"] img')
    deadline = time.monotonic() + 30
    while True:
        sizes = imgs.evaluate_all("els => els.map(e => e.complete ? e.naturalWidth : -1)")
        if sizes and all(s > 0 for s in sizes):
            return len(sizes)
        if time.monotonic() > deadline:
            raise AssertionError(f"{where}: pictures not loaded (naturalWidth {sizes})")
        page.wait_for_timeout(200)


def _open(page, base: str, path: str) -> None:
    link = devserver.nav_link(page, path)
    link.first.click()


def _route(context) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "difflab_route")


def _log_by_browser(access_log: Path) -> dict[str, list[tuple[float, str, str]]]:
    """browser id -> [(when the request began, replica that answered, uri)] from nginx's access
    log (a line is written when a request ends; a WebSocket's when it closes)."""
    out: dict[str, list] = {}
    pattern = re.compile(r"t=([\d.]+) rt=([\d.]+) browser=(\S+) pinned=\S* served=(\S*) upstream=\"[^\"]*\" "
                         r"status=\d+ \S+ (\S+)")
    for line in access_log.read_text().splitlines():
        m = pattern.search(line)
        if m and m.group(4):
            began = float(m.group(1)) - float(m.group(2))
            out.setdefault(m.group(3), []).append((began, m.group(4), m.group(5)))
    return out


@pytest.fixture
def class_server(page_models, tmp_path):
    """``scripts/serve_class.sh 2 PORT`` with free loopback ports; stopped (SIGTERM) afterwards."""
    if NGINX is None:
        pytest.skip(NO_NGINX)
    state = Path(tempfile.mkdtemp(prefix="difflab-serve-"))  # 0755: nginx's workers may read it
    state.chmod(0o755)
    port, p1, p2 = devserver.free_port(), devserver.free_port(), devserver.free_port()
    env = dict(os.environ, DIFFLAB_SKIP_SETUP="1", DIFFLAB_SERVE_DIR=str(state),
               DIFFLAB_REPLICA_PORTS=f"{p1} {p2}", DIFFLAB_MODELS_DIR=str(page_models),
               DIFFLAB_RUNS_DIR=str(tmp_path / "runs"))
    env.pop("DIFFLAB_LISTEN", None)
    t0 = time.monotonic()
    with open(tmp_path / "serve_class.out", "w") as out:
        proc = subprocess.Popen(["bash", "scripts/serve_class.sh", "2", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while not devserver.healthy(base):
            if proc.poll() is not None or time.monotonic() - t0 > WAIT:
                pytest.fail(f"serve_class.sh did not come up:\n{(tmp_path / 'serve_class.out').read_text()}")
            time.sleep(0.2)
        REPORT["up_s"] = round(time.monotonic() - t0, 1)
        yield {"base": base, "state": state, "proc": proc, "out": tmp_path / "serve_class.out"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        artifacts = ROOT / "artifacts" / "serving"
        artifacts.mkdir(parents=True, exist_ok=True)
        for f in ("access.log", "error.log", "replica-1.log", "replica-2.log"):
            if (state / f).exists():
                shutil.copy(state / f, artifacts / f)
        shutil.rmtree(state, ignore_errors=True)


@pytest.mark.browser
def test_two_replicas_behind_nginx_eight_sessions_and_a_failover(class_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs python playwright")
    if devserver.chromium_path() is None:
        pytest.skip("chromium not found")
    base, state = class_server["base"], class_server["state"]
    png = _png()
    t_all = time.monotonic()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=devserver.chromium_path(), args=devserver.CHROMIUM_ARGS)
        try:
            pages = []
            t0 = time.monotonic()
            for _ in range(SESSIONS):  # one after the other: each browser's first request mints its cookie
                ctx = browser.new_context(viewport=devserver.VIEWPORT)
                page = ctx.new_page()
                page.set_default_timeout(int(WAIT * 1000))
                page.goto(base + "/")
                pages.append(page)
            for i, page in enumerate(pages):
                devserver.wait_idle(page, WAIT, 1.0)
                _check(page, f"session {i} home")
            REPORT["home_8_sessions_s"] = round(time.monotonic() - t0, 1)

            t0 = time.monotonic()
            for page in pages:
                _open(page, base, "a1_forward")
            for i, page in enumerate(pages):
                devserver.wait_idle(page, WAIT, 1.0, PAGES["a1_forward"])
                _check(page, f"session {i} forward")
                page.locator('[data-testid="stButtonGroup"] button').filter(has_text="Upload").click()
            for page in pages:
                page.locator('[data-testid="stFileUploader"]').wait_for()
                devserver.wait_idle(page, WAIT, 0.5)
            REPORT["forward_8_sessions_s"] = round(time.monotonic() - t0, 1)

            t0 = time.monotonic()  # through the proxy: XSRF cookie + header, the session's replica
            for i, page in enumerate(pages):
                page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
                    files=[{"name": f"class-{i}.png", "mimeType": "image/png", "buffer": png}])
            for i, page in enumerate(pages):
                page.locator('[data-testid="stFileUploader"]').get_by_text(f"class-{i}.png").first.wait_for()
                page.wait_for_timeout(300)
                devserver.wait_idle(page, WAIT, 1.0)
                _check(page, f"session {i} upload")
                _, frame = devserver.scrubber_frame(page)
                size = frame.evaluate(XT_SIZE_JS)
                assert size == [64, 64], f"session {i}: the upload should be shown at 64x64, got {size}"
                _pictures_ok(page, f"session {i} upload")
            REPORT["upload_8_sessions_s"] = round(time.monotonic() - t0, 1)

            t0 = time.monotonic()
            for page in pages:
                _open(page, base, "a3_sampling")
            for i, page in enumerate(pages):
                devserver.wait_idle(page, WAIT, 1.0, PAGES["a3_sampling"])
                _check(page, f"session {i} sampling")
                _pictures_ok(page, f"session {i} sampling")
            REPORT["sampling_8_sessions_s"] = round(time.monotonic() - t0, 1)

            routes = [_route(p.context) for p in pages]
            print(f"\n[serving] replicas by session: {[r.split('.')[0] for r in routes]}")
            assert {r.split(".")[0] for r in routes} == {"r1", "r2"}, f"all sessions on one replica: {routes}"

            # ---- kill replica 1: its sessions reconnect through nginx to replica 2 and render again
            victim = int((state / "replica-1.pid").read_text())
            moved = [i for i, r in enumerate(routes) if r.startswith("r1.")]
            for i in moved:
                pages[i].evaluate(WATCH_STATES_JS)
            t0, killed_at = time.monotonic(), time.time()
            os.kill(victim, signal.SIGKILL)
            for i in moved:
                page = pages[i]
                deadline = time.monotonic() + WAIT
                while not _route(page.context).startswith("r2."):
                    assert time.monotonic() < deadline, f"session {i} never reached replica 2"
                    page.wait_for_timeout(200)
                devserver.wait_idle(page, WAIT, 1.5, PAGES["a3_sampling"])
                _check(page, f"session {i} after the failover")
                _pictures_ok(page, f"session {i} after the failover")
                assert _route(page.context).split(".")[1] == routes[i].split(".")[1]  # same browser id
                states = page.evaluate("() => window.__states")
                lost = next((k for k, st in enumerate(states) if not st.startswith("CONNECTED/")), None)
                assert lost is not None and "CONNECTED/notRunning" in states[lost:], (
                    f"session {i}: no disconnect and reconnect: {states}")
            REPORT["reconnected_s"] = round(time.monotonic() - t0, 1)
            # Streamlit's frontend keeps showing the page after a reconnect; the next click runs it
            # in the new session on replica 2, which renders and takes uploads: it is really there
            t0 = time.monotonic()
            for i in moved:
                _open(pages[i], base, "a1_forward")
            for i in moved:
                page = pages[i]
                devserver.wait_idle(page, WAIT, 1.0, PAGES["a1_forward"])
                _check(page, f"session {i} Forward on replica 2")
                _pictures_ok(page, f"session {i} Forward on replica 2")
                page.locator('[data-testid="stButtonGroup"] button').filter(has_text="Upload").click()
                page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
                    files=[{"name": f"again-{i}.png", "mimeType": "image/png", "buffer": png}])
                page.locator('[data-testid="stFileUploader"]').get_by_text(f"again-{i}.png").first.wait_for()
                page.wait_for_timeout(300)
                devserver.wait_idle(page, WAIT, 1.0)
                _check(page, f"session {i} upload on replica 2")
                assert devserver.scrubber_frame(page)[1].evaluate(XT_SIZE_JS) == [64, 64]
            REPORT["forward_and_upload_on_replica_2_s"] = round(time.monotonic() - t0, 1)
            for i in set(range(SESSIONS)) - set(moved):  # replica 2's own sessions never noticed
                _check(pages[i], f"session {i} (replica 2) after the kill")
        finally:
            browser.close()  # closes every WebSocket: nginx logs them now

    # ---- stickiness, from nginx's record of which replica answered each request of each browser
    time.sleep(1.0)
    log = _log_by_browser(state / "access.log")
    REPORT["sessions"] = {}
    for i, route in enumerate(routes):
        pinned, browser_id = route.split(".")
        seen = log.get(browser_id, [])
        before = [(s, u) for t, s, u in seen if t < killed_at]
        after = {s for t, s, _ in seen if t >= killed_at}
        assert {s for s, _ in before} == {pinned}, f"session {i} (cookie {route}): answered by {before}"
        for must in ("/_stcore/stream", "/_stcore/upload_file/", "/media/"):
            assert any(u.startswith(must) for _, u in before), f"session {i}: no {must} request"
        assert after <= {"r2"}, f"session {i} after the kill: answered by {after}"
        if i in moved:
            assert any(u.startswith("/_stcore/upload_file/") for t, _, u in seen if t >= killed_at)
            reconnects = [u for t, _, u in seen if t >= killed_at and u == "/_stcore/stream"]
            assert reconnects, f"session {i}: no WebSocket to replica 2 after the kill"
        REPORT["sessions"][f"session {i}"] = {"replica": pinned, "requests before the kill": len(before),
                                              "after": len(seen) - len(before)}
    REPORT["moved_sessions"] = moved
    REPORT["total_s"] = round(time.monotonic() - t_all + REPORT.get("up_s", 0), 1)
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "serving.json").write_text(json.dumps(REPORT, indent=2) + "\n")
    print("[serving] " + json.dumps(REPORT))
    assert "replica 1 (port" in class_server["out"].read_text()  # serve_class.sh noticed and went on
    assert class_server["proc"].poll() is None
