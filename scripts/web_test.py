#!/usr/bin/python3
"""Browser tests of the web viewer (docs/VIEWER.md), run by scripts/test-web.sh.

Drives Debian's headless chromium through chromedriver (python3-selenium) against real
`camseal view` processes, with footage recorded by `camseal run --source soft`:

1. recorded footage plays, and the player canvas shows the test pattern (non-uniform, not
   black);
2. live view: the page's own measurement from joining to the first decoded frame is < 2 s;
3. a wrong key (another viewer home) and a tampered segment each show a visible error;
4. every request the page made (performance log: Network.requestWillBeSent and
   Network.webSocketCreated) went to the page's own origin.

Screenshots go to target/web-test/. Usage: web_test.py CAMSEAL_EXE WEB_ROOT OUT_DIR
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

from PIL import Image, ImageStat
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

# Generous: a loaded 2-core CI machine runs this next to other work.
WAIT = 90


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print(f"  ok: {what}", flush=True)


class Env:
    def __init__(self, exe, web_root, out, work):
        self.exe, self.web_root, self.out, self.work = exe, web_root, out, work
        self.procs = []
        self.requests = []  # (page origin, request url) over every page loaded
        self.page = None  # the page loaded now

    def camseal(self, *args):
        r = subprocess.run([self.exe, *args], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise Failure(f"camseal {' '.join(args)} failed: {r.stderr.strip()}")
        return r.stdout

    def viewer(self, name, camera_pub=None):
        home = os.path.join(self.work, name)
        self.camseal("viewer", "init", "--home", home)
        if camera_pub:
            self.camseal("viewer", "cameras", "add", "--home", home, camera_pub)
        return home

    def spawn(self, args, prefix, stream):
        """Starts camseal ARGS; returns (process, text after PREFIX on its first such line)."""
        p = subprocess.Popen(
            [self.exe, *args],
            stdout=subprocess.PIPE if stream == "stdout" else subprocess.DEVNULL,
            stderr=subprocess.PIPE if stream == "stderr" else subprocess.DEVNULL,
            text=True,
        )
        self.procs.append(p)
        pipe = p.stdout if stream == "stdout" else p.stderr
        found = []
        got = threading.Event()

        def read():
            for line in pipe:
                if not found and line.startswith(prefix):
                    found.append(line[len(prefix):].strip())
                    got.set()
            got.set()

        threading.Thread(target=read, daemon=True).start()
        if not got.wait(WAIT) or not found:
            raise Failure(f"camseal {' '.join(args)} never printed {prefix!r}")
        return p, found[0]

    def view(self, home, *extra):
        _, url = self.spawn(
            ["view", "--home", home, "--listen", "127.0.0.1:0", "--web-root", self.web_root, *extra],
            "view: ",
            "stdout",
        )
        return url

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1000,1400",
        "--autoplay-policy=no-user-gesture-required",
    ):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=opts)


def wait_for(driver, js, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = driver.execute_script(js)
        if v:
            return v
        time.sleep(0.2)
    raise Failure(f"timed out waiting for {what}")


def collect_requests(env, driver, url):
    """Every request URL of the page so far, from Chrome's performance log."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Network.requestWillBeSent":
            env.requests.append((origin, params["request"]["url"]))
        elif method == "Network.webSocketCreated":
            env.requests.append((origin, params["url"]))


def navigate(env, driver, url):
    """Loads `url`, first filing the log entries of the page before it under that page's
    origin, so that every request is judged against the page that made it."""
    if env.page:
        collect_requests(env, driver, env.page)
    env.page = url
    driver.get(url)


def shot(driver, element_id, name, out):
    path = os.path.join(out, name)
    driver.save_screenshot(path + "-page.png")
    driver.find_element("id", element_id).screenshot(path + ".png")
    return path + ".png"


def looks_like_video(png):
    """The test pattern: many distinct colours, bright enough, not one flat colour."""
    img = Image.open(png).convert("RGB")
    stat = ImageStat.Stat(img)
    mean = sum(stat.mean) / 3
    spread = sum(stat.stddev) / 3
    colours = len(img.getcolors(maxcolors=1 << 20) or [])
    print(f"  {os.path.basename(png)}: mean {mean:.1f}, stddev {spread:.1f}, {colours} colours")
    return mean > 20 and spread > 10 and colours > 50


def page_errors(driver):
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_recorded(env, driver, viewer, segments):
    print("test: recorded footage plays and shows the test pattern", flush=True)
    url = env.view(viewer, "--segments", segments)
    navigate(env, driver, url)
    n = wait_for(driver, "return document.querySelectorAll('#timeline li').length", "the timeline")
    # Wait until a good part of the footage has been decoded and drawn.
    wait_for(
        driver,
        "const s = window.camsealView && window.camsealView.recorded; return s && s.decoded >= 20;",
        "20 decoded frames",
    )
    png = shot(driver, "player", "recorded", env.out)
    statuses = driver.execute_script(
        "return [...document.querySelectorAll('#timeline li')].map(li => li.dataset.status)"
    )
    check(n >= 1 and all(s == "ok" for s in statuses), f"every segment verified in the page: {statuses}")
    check(looks_like_video(png), "the player shows the test pattern (non-uniform, not black)")
    wait_for(driver, "return window.camsealView.recorded.done", "the end of playback")
    state = driver.execute_script("return document.getElementById('player-state').dataset.state")
    check(state == "ok", f"the player ends in its ok state (is {state})")


def test_tampered(env, driver, viewer, segments):
    print("test: a tampered segment is shown as refused, never played", flush=True)
    tampered = os.path.join(env.work, "tampered")
    os.makedirs(tampered)
    names = sorted(n for n in os.listdir(segments) if n.endswith(".cseg"))
    good, victim = names[0], names[-1]
    shutil.copy(os.path.join(segments, good), tampered)
    data = bytearray(open(os.path.join(segments, victim), "rb").read())
    data[len(data) // 2] ^= 0x01  # inside a record: its AEAD tag or the chain must fail
    # A distinct name that sorts last, so the good segment plays first.
    bad_name = "zz-tampered-" + victim
    open(os.path.join(tampered, bad_name), "wb").write(data)
    url = env.view(viewer, "--segments", tampered)
    navigate(env, driver, url)
    wait_for(
        driver,
        "return document.querySelector(`#timeline li[data-status='error']`)",
        "the tampered segment's error",
    )
    wait_for(driver, "return window.camsealView.recorded.done", "the end of playback")
    bad = driver.execute_script(
        "const li = document.querySelector(`#timeline li[data-name='%s']`); return [li.dataset.status, li.textContent, getComputedStyle(li).display];"
        % bad_name
    )
    ok = driver.execute_script(
        "return document.querySelector(`#timeline li[data-name='%s']`).dataset.status" % good
    )
    player = driver.execute_script(
        "const p = document.getElementById('player-state'); return [p.dataset.state, p.textContent];"
    )
    shot(driver, "recorded-view", "tampered", env.out)
    check(bad[0] == "error" and "REFUSED" in bad[1] and bad[2] != "none", f"the tampered segment is marked refused: {bad[1]!r}")
    check(ok == "ok", "the untouched segment beside it still verifies")
    check(player[0] == "error" and "refused" in player[1], f"the player says it refused to play it: {player[1]!r}")


def test_wrong_key(env, driver, other_viewer, segments):
    print("test: a viewer without the key sees an error on every segment", flush=True)
    url = env.view(other_viewer, "--segments", segments)
    navigate(env, driver, url)
    wait_for(driver, "return window.camsealView && window.camsealView.recorded.done", "the timeline to settle")
    items = driver.execute_script(
        "return [...document.querySelectorAll('#timeline li')].map(li => [li.dataset.status, li.textContent])"
    )
    decoded = driver.execute_script("return window.camsealView.recorded.decoded")
    shot(driver, "recorded-view", "wrong-key", env.out)
    check(items and all(s == "error" and "REFUSED" in t for s, t in items), f"every segment refused: {items[:1]}")
    check(decoded == 0, "nothing was decoded")


def test_live(env, driver, viewer, camera):
    print("test: live view shows frames within 2 s of joining", flush=True)
    rec = os.path.join(env.work, "live-rec")
    # Checkpoints every 250 ms: a live viewer sees a frame once a signature covers it, so
    # the first frame comes at the next keyframe (1 s apart for the soft source) plus at
    # most one checkpoint interval (docs/VIEWER.md).
    _, addr = env.spawn(
        ["run", "--home", camera, "--source", "soft:320x240@15", "--out", rec, "--duration", "60",
         "--realtime", "--segment-seconds", "5", "--checkpoint-ms", "250", "--live", "127.0.0.1:0"],
        "live view: ",
        "stderr",
    )
    url = env.view(viewer, "--live", addr if addr.startswith("ws://") else f"ws://{addr}")
    # Let the camera run a moment, so the page joins mid-segment like a real viewer.
    time.sleep(2)
    navigate(env, driver, url)
    ms = wait_for(
        driver,
        "const s = window.camsealView && window.camsealView.live; return s && s.firstFrameMs;",
        "the first live frame",
    )
    wait_for(driver, "return window.camsealView.live.decoded >= 10", "10 live frames")
    png = shot(driver, "live", "live", env.out)
    err = driver.execute_script("return window.camsealView.live.error")
    check(err is None, f"no live error ({err})")
    check(ms < 2000, f"first live frame {ms:.0f} ms after joining (page's measurement) < 2000 ms")
    check(looks_like_video(png), "the live canvas shows the test pattern")


def test_origins(env, driver):
    print("test: the page made no request except to its own origin", flush=True)
    if env.page:
        collect_requests(env, driver, env.page)
    check(len(env.requests) > 0, f"{len(env.requests)} requests seen in the performance logs")
    foreign = [
        u for origin, u in env.requests
        if "{0.scheme}://{0.netloc}".format(urlsplit(u)).replace("ws://", "http://") != origin
    ]
    check(not foreign, f"every request went to the page's origin (foreign: {foreign[:5]})")
    kinds = {urlsplit(u).path.split("/")[1] if u.count("/") > 2 else "" for _, u in env.requests}
    check("api" in kinds, "the key, segment and live requests are among them")


def main():
    exe, web_root, out = (os.path.abspath(a) for a in sys.argv[1:4])
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="camseal-web-")
    env = Env(exe, web_root, out, work)
    driver = None
    passed = failed = 0
    try:
        camera = os.path.join(work, "camera")
        lst = os.path.join(work, "recipients.list")
        viewer = env.viewer("viewer")
        env.camseal("viewer", "recipients", "--home", viewer, "--out", lst)
        env.camseal("camera", "init", "--home", camera)
        env.camseal("camera", "trust", "--home", camera, lst)
        camera_pub = os.path.join(camera, "camera.pub")
        env.camseal("viewer", "cameras", "add", "--home", viewer, camera_pub)
        # Another account that pins the same camera but is no recipient: the wrong key.
        other = env.viewer("other-viewer", camera_pub)
        segments = os.path.join(work, "rec")
        env.camseal("run", "--home", camera, "--source", "soft:320x240@15", "--out", segments,
                    "--duration", "4", "--segment-seconds", "2")
        driver = browser()
        driver.set_script_timeout(WAIT)
        tests = [
            lambda: test_recorded(env, driver, viewer, segments),
            lambda: test_tampered(env, driver, viewer, segments),
            lambda: test_wrong_key(env, driver, other, segments),
            lambda: test_live(env, driver, viewer, camera),
            lambda: test_origins(env, driver),
        ]
        for t in tests:
            try:
                t()
                passed += 1
            except Failure as e:
                failed += 1
                print(f"  FAILED: {e}", flush=True)
                try:
                    driver.save_screenshot(os.path.join(out, f"failure-{failed}.png"))
                    for line in page_errors(driver):
                        print(f"  page: {line}")
                except Exception:  # noqa: BLE001 - best effort after a failure
                    pass
    finally:
        if driver:
            driver.quit()
        env.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"web: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
