"""test_admin_page: the admin page (GET / on --admin, docs/live-view.md) in a real headless
Chromium against linesman with real peers on loopback: no console errors, a hanging connection
shown within 2 s, the funnel of the demo's scenarios against their log files, a connection's
timeline, and strings from the wire (an SNI that is markup, an SNI that is not UTF-8) shown as
text. One browser for the module (conftest.py); screenshots go to build/browser-shots."""
import base64
import collections
import json
import pathlib
import re
import signal
import time
import urllib.request

import pytest

import lsm
from conftest import kShots

kAdminRx = r"linesman: admin on (\S+):(\d+)"
kXss = "<img src=x onerror=this.id=pwned>"


def by():
    from selenium.webdriver.common.by import By
    return By


def start_lm(reg, up_port, *extra):
    lm = lsm.Linesman(reg, ["--upstream", f"127.0.0.1:{up_port}", "--admin", "127.0.0.1:0",
                            *extra])
    m = lm.proc.wait_line(kAdminRx, 10, stream="err")
    lm.admin = f"127.0.0.1:{int(m.group(2))}"
    return lm


def wait(driver, pred, timeout, what):
    """wait: pred(driver) truthy within `timeout` s (polled every 50 ms), else fail naming `what`."""
    from selenium.common.exceptions import StaleElementReferenceException
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = pred(driver)
            if v:
                return v
        except StaleElementReferenceException:
            pass  # the page re-rendered under us: ask again
        if time.monotonic() >= deadline:
            shot(driver, "timeout")
            pytest.fail(f"not within {timeout}s: {what}; status: "
                        f"{driver.find_element(by().ID, 'status').text!r}")
        time.sleep(0.05)


def load(driver, url):
    driver.get(url)
    wait(driver, lambda d: d.find_element(by().ID, "status").text == "live", 5,
         f"the page at {url} showing 'live'")


def shot(driver, name, full=False):
    """shot: a PNG of the viewport, or with `full` of the whole page (Chromium's DevTools)."""
    path = kShots / f"{name}.png"
    if full:
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        png = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                     "scale": 1}})
        path.write_bytes(base64.b64decode(png["data"]))
    else:
        driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def severe_console(driver):
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def sni_cells(driver, table):
    return [td.text for td in driver.find_elements(by().CSS_SELECTOR, f"#{table} tbody td.sni")]


def events(driver):
    """events: the timeline's events as (name, ms) in the order the page lists them."""
    # One script reads them all at once: the page may redraw between two WebDriver calls.
    return [(n, float(m)) for n, m in driver.execute_script(
        "return Array.from(document.querySelectorAll('#events li'))"
        ".map((li) => [li.getAttribute('data-name'), li.getAttribute('data-ms')])")]


def hello_with_sni_bytes(sni: bytes) -> bytes:
    """hello_with_sni_bytes: lsm.client_hello with SNI `sni` taken as raw bytes (not UTF-8)."""
    placeholder = "q" * len(sni)
    return lsm.client_hello(placeholder).replace(placeholder.encode(), sni)


def admin_json(lm, path):
    with urllib.request.urlopen(f"http://{lm.admin}{path}", timeout=5) as r:
        return json.loads(r.read())


def test_page_loads_without_console_errors_and_is_locked_down(reg, page):
    driver = page
    up = lsm.start_peer(reg, "silent")
    lm = start_lm(reg, up.port)
    with urllib.request.urlopen(f"http://{lm.admin}/", timeout=5) as r:
        csp = r.headers["Content-Security-Policy"]
        assert r.headers["Content-Type"].startswith("text/html")
        page = r.read().decode()
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "<script src=\"/app.js\"" in page and "http" not in page.split("<body>")[1]
    load(driver, f"http://{lm.admin}/")
    time.sleep(1.2)  # one more refresh round
    assert driver.find_element(by().ID, "status").text == "live"
    assert severe_console(driver) == []
    shot(driver, "empty")


def test_hanging_connection_appears_within_2s_then_its_timeline(reg, page):
    driver = page
    up = lsm.start_peer(reg, "silent")
    lm = start_lm(reg, up.port)
    load(driver, f"http://{lm.admin}/")
    sni = "hang.example.test"
    s = lm.connect()
    s.sendall(lsm.client_hello(sni))
    t0 = time.monotonic()
    wait(driver, lambda d: sni in sni_cells(d, "conns"), 2.0,
         "the hanging connection's SNI in the live table")
    took = time.monotonic() - t0
    print(f"hanging connection shown after {took:.2f} s")
    row = driver.find_element(by().CSS_SELECTOR, "#conns tbody tr")
    cells = [td.text for td in row.find_elements(by().TAG_NAME, "td")]
    assert "first_reply" in cells and f"127.0.0.1:{up.port}" in cells
    row.click()
    wait(driver, lambda d: len(events(d)) >= 4, 3, "the open connection's timeline")
    ev = events(driver)
    names = [t for t, _ in ev]
    assert names[0].startswith("accepted") and names[-1].startswith("now (still open, in "
                                                                    "first_reply)"), names
    assert [m for _, m in ev] == sorted(m for _, m in ev), ev
    assert any(n.startswith("upstream connected") for n in names), names
    shot(driver, "hanging-open")
    # It ends (the client resets it): the same panel shows its record, its events in time
    # order, from timing_ms.
    lsm.close_rst(s)
    wait(driver, lambda d: d.find_element(by().ID, "d-state").text.startswith("ended"), 5,
         "the detail panel following the connection to its record")
    [rec] = lm.records(1)
    ev = events(driver)
    assert [m for _, m in ev] == sorted(m for _, m in ev), ev
    want = [0.0] + [v for v in rec["timing_ms"].values() if v is not None] + [rec["duration_ms"]]
    assert sorted(round(m, 3) for _, m in ev) == sorted(round(v, 3) for v in want)
    assert ev[0][0] == "accepted" and ev[-1][0].startswith(
        f"ended ({rec['stop']['phase']} / {rec['stop']['reason']})")
    shown = json.loads(driver.find_element(by().ID, "d-json").text)
    assert shown == rec  # the whole record, the one the log got
    assert severe_console(driver) == []


def test_markup_and_bad_utf8_in_sni_are_shown_as_text(reg, page):
    driver = page
    up = lsm.start_peer(reg, "silent")
    lm = start_lm(reg, up.port)
    load(driver, f"http://{lm.admin}/")
    a = lm.connect()
    a.sendall(lsm.client_hello(kXss))
    b = lm.connect()
    b.sendall(hello_with_sni_bytes(b"\xc3\x28bad.\xffexample"))
    shown_bad = "\\xc3(bad.\\xffexample"  # linesman writes a byte that is not UTF-8 as \xNN
    wait(driver, lambda d: {kXss, shown_bad} <= set(sni_cells(d, "conns")), 3,
         "both SNIs in the live table")
    for row in driver.find_elements(by().CSS_SELECTOR, "#conns tbody tr"):
        if kXss in row.text:
            row.click()
    wait(driver, lambda d: kXss in d.find_element(by().ID, "d-stop").text, 3, "the detail panel")
    lsm.close_rst(a)
    lsm.close_rst(b)
    wait(driver, lambda d: {kXss, shown_bad} <= set(sni_cells(d, "recent")), 5,
         "both SNIs in the recent records")
    wait(driver, lambda d: d.find_element(by().ID, "d-state").text.startswith("ended"), 5,
         "the XSS connection's record in the detail panel")
    assert kXss in driver.find_element(by().ID, "d-json").text
    shot(driver, "xss")
    assert driver.find_elements(by().TAG_NAME, "img") == []
    assert driver.find_elements(by().ID, "pwned") == []
    assert driver.execute_script("return document.querySelectorAll('[onerror]').length") == 0
    assert severe_console(driver) == []


def test_demo_funnel_matches_its_log_files_and_lists_each_bar(reg, page):
    driver = page
    demo = reg.add(lsm.Proc("demo", [lsm.linesman_bin(), "demo", "--admin", "127.0.0.1:0",
                                     "--hold", "120"], reg.tmp, stdout_pipe=True))
    m = demo.wait_line(r"admin page is on http://(\S+)/ ; access logs in (\S+);", 40)
    url, logs = f"http://{m.group(1)}/", pathlib.Path(m.group(2))
    recs = []
    for f in sorted(logs.glob("*.jsonl")):
        recs += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    recs = [r for r in recs if "state" not in r]  # final records only
    want = collections.Counter((r["stop"]["phase"], r["stop"]["reason"]) for r in recs)
    assert len(want) >= 3, want  # the demo ends its scenarios in several ways
    load(driver, url)

    def bars(d):
        return {(s.get_attribute("data-phase"), s.get_attribute("data-reason")):
                int(s.get_attribute("data-count"))
                for s in d.find_elements(by().CSS_SELECTOR, "#funnel .seg[data-reason]")}
    wait(driver, lambda d: sum(bars(d).values()) >= len(recs), 5, "every record in the funnel")
    assert bars(driver) == dict(want)
    # Each step's 'reached' figure is what was left after the steps before it.
    reached = [int(e.text) for e in driver.find_elements(by().CSS_SELECTOR, "#funnel .reached")]
    order = ["inspect", "route", "connect", "first_reply", "stream"]
    left = len(recs)
    for phase, n in zip(order, reached):
        assert n == left, (phase, reached)
        left -= sum(c for (p, _), c in want.items() if p == phase)
    assert driver.find_element(by().ID, "funnel-note").text == ""  # the ring holds it all
    shot(driver, "demo-funnel")

    # Clicking the most common stop lists exactly those connections; one opens its timeline.
    (phase, reason), count = want.most_common(1)[0]
    driver.find_element(by().CSS_SELECTOR,
                        f'#funnel .seg[data-phase="{phase}"][data-reason="{reason}"]').click()
    wait(driver, lambda d: len(d.find_elements(by().CSS_SELECTOR, "#list tbody tr")) == count,
         3, f"{count} rows for {phase}/{reason}")
    ids = {tr.get_attribute("data-id")
           for tr in driver.find_elements(by().CSS_SELECTOR, "#list tbody tr")}
    assert ids == {r["id"] for r in recs if (r["stop"]["phase"], r["stop"]["reason"]) ==
                   (phase, reason)}
    pick = max((r for r in recs if r["id"] in ids),
               key=lambda r: sum(v is not None for v in r["timing_ms"].values()))
    driver.find_element(by().CSS_SELECTOR, f'#list tbody tr[data-id="{pick["id"]}"]').click()
    wait(driver, lambda d: d.find_element(by().ID, "d-id").text == pick["id"], 3,
         "the picked connection's detail")
    ev = events(driver)
    names = [t for t, _ in ev]
    expect = ["accepted"] + [n for n, k in (("client first byte", "client_first_byte"),
                                            ("hello complete", "hello_complete"),
                                            ("upstream connected", "upstream_connected"),
                                            ("upstream first byte", "upstream_first_byte"))
                             if pick["timing_ms"][k] is not None]
    assert [n for n in names if not n.startswith("ended")] == expect, names
    assert [m for _, m in ev] == sorted(m for _, m in ev), ev
    spans = driver.execute_script("return Array.from(document.querySelectorAll("
                                  "'#timeline .span')).map((e) => e.getAttribute('data-phase'))")
    assert spans == [p for p in ["inspect", "connect", "first_reply", "stream"]
                     if order.index(p) <= order.index(pick["stop"]["phase"])], spans
    assert driver.find_element(by().ID, "d-hint").text == pick["hint"]
    assert json.loads(driver.find_element(by().ID, "d-json").text) == pick
    shot(driver, "demo-timeline", full=True)  # docs/live-view-page.png is one of these
    assert severe_console(driver) == []
    demo.signal(signal.SIGTERM)
    assert demo.wait(15) == 0, demo.output()
    assert not logs.exists()  # the demo cleaned up after its hold


def test_the_page_says_when_the_window_is_longer_than_the_ring(reg, page):
    driver = page
    up = lsm.start_peer(reg, "close")
    lm = start_lm(reg, up.port, "--admin-records", "3")
    lsm.hellos_through(lm, 5)
    load(driver, f"http://{lm.admin}/")
    note = wait(driver, lambda d: d.find_element(by().ID, "funnel-note").text, 3,
                "the note on the funnel")
    assert "longer than what the ring still holds" in note and "keeps the last 3 records" in note
    assert "2 older records were evicted" in note
    assert "Since start (metrics): 5 connections ended" in driver.find_element(
        by().ID, "funnel-since").text
    assert severe_console(driver) == []


def test_token_from_the_url_fragment_is_sent_as_a_header(reg, page):
    driver = page
    up = lsm.start_peer(reg, "silent")
    lm = start_lm(reg, up.port, "--admin-token", "s3cret-token")
    driver.get(f"http://{lm.admin}/")
    wait(driver, lambda d: d.find_element(by().ID, "auth").is_displayed(), 5,
         "the token form when no token was given")
    driver.execute_script("sessionStorage.clear()")
    driver.get("about:blank")
    driver.get(f"http://{lm.admin}/#token=s3cret-token")
    wait(driver, lambda d: d.find_element(by().ID, "status").text == "live", 5,
         "the page live with the token")
    assert "token" not in driver.current_url  # taken off the address bar
    assert not driver.find_element(by().ID, "auth").is_displayed()
    driver.execute_script("sessionStorage.clear()")
    # Only the 401s of the first load (before the token) may be in the console.
    assert all("401" in e["message"] for e in severe_console(driver))
