#!/usr/bin/env python3
"""Headless-Chromium check of the chat page that `ch07 serve` answers at /.

Loads the page (with --api-key: answers its question for the key, a wrong one first), sends a
message and checks that the reply is streamed into the assistant bubble (several intermediate lengths before done), sends a Korean follow-up and checks that
the request carried the whole history, then checks that Stop aborts a long reply.
Writes DIR/chat.png (after the first reply), DIR/chat-ko.png (after the Korean one) and
DIR/browser.log (the browser console). Exit 0 on success, 1 with a one-line reason.

    ~/.cache/llmfs/venv/bin/python tests/serve/browser_check.py --url http://127.0.0.1:PORT --out DIR
"""
import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never download anything

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

REPLY_TIMEOUT_S = 60.0  # the model may run on a 2-core CPU
POLL_S = 0.02
FIRST = "Give me three words that rhyme with cat."
KOREAN = "안녕하세요, 자기소개를 해 주세요."
LONG = "Tell me a long story about a cat."

# Records the JSON body of every POST /api/chat the page sends (window.fetch is looked up at
# call time, so wrapping it after load is enough).
RECORD_REQUESTS = """
window.__chatRequests = [];
const original = window.fetch;
window.fetch = function (url, init) {
  if (String(url).endsWith('/api/chat') && init && init.body) {
    try { window.__chatRequests.push(JSON.parse(init.body)); } catch (e) {}
  }
  return original.apply(this, arguments);
};
"""

# One atomic snapshot of the page state per poll.
SNAPSHOT = """
const bubbles = document.querySelectorAll('#messages .msg.assistant');
const last = bubbles[bubbles.length - 1];
const text = last ? (last.querySelector('.text') || last).textContent : '';
return {state: document.body.dataset.state,
        streaming: !!(last && last.classList.contains('streaming')),
        error: !!(last && last.classList.contains('error')),
        text: text,
        meta: last && last.querySelector('.meta') ? last.querySelector('.meta').textContent : '',
        assistants: bubbles.length,
        users: document.querySelectorAll('#messages .msg.user').length,
        stop_disabled: !!(document.getElementById('stop') || {}).disabled};
"""


class CheckFailed(Exception):
    pass


def step(msg):
    print(msg, flush=True)


def make_driver():
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1000,760", "--lang=en-US"):
        opts.add_argument(arg)
    if os.path.exists("/usr/bin/chromium"):
        opts.binary_location = "/usr/bin/chromium"
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = "/usr/bin/chromedriver"
    service = Service(driver_path) if os.path.exists(driver_path) else Service()
    return webdriver.Chrome(service=service, options=opts)


def snapshot(driver):
    return driver.execute_script(SNAPSHOT)


def wait_for(driver, cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        snap = snapshot(driver)
        if cond(snap):
            return snap
        time.sleep(POLL_S)
    raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")


def send(driver, text):
    prompt = driver.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys(text)
    driver.find_element(By.ID, "send").click()


def watch_reply(driver, assistants_before):
    """Polls until the new reply is done; returns (final snapshot, distinct streaming lengths)."""
    wait_for(driver, lambda s: s["assistants"] > assistants_before, 5, "the assistant bubble")
    lengths = []
    deadline = time.time() + REPLY_TIMEOUT_S
    while True:
        snap = snapshot(driver)
        if snap["streaming"]:
            if snap["text"] and len(snap["text"]) not in lengths:
                lengths.append(len(snap["text"]))
        elif snap["state"] == "idle":
            return snap, lengths
        if time.time() > deadline:
            raise CheckFailed(f"no finished reply within {REPLY_TIMEOUT_S:.0f} s")
        time.sleep(POLL_S)


def check_reply(snap, what):
    if snap["error"]:
        raise CheckFailed(f"{what}: the bubble shows an error: {snap['text']!r}")
    if not snap["text"].strip():
        raise CheckFailed(f"{what}: the reply is empty")


def short(text, n=70):
    text = text.replace("\n", "\\n")
    return text if len(text) <= n else text[:n] + "..."


def enter_key(driver, key):
    """A server with serve.api_key: the page asks for the key (a wrong one first), keeps the
    right one in the tab (sessionStorage) and reads the model with it."""
    form = driver.find_element(By.ID, "key-form")
    deadline = time.time() + 5
    while not form.is_displayed() and time.time() < deadline:
        time.sleep(POLL_S)
    label = driver.find_element(By.ID, "model").text
    step(f"key: the page asks for it (form shown: {form.is_displayed()}), model label {label!r}")
    if not form.is_displayed():
        raise CheckFailed("the page did not ask for the API key")
    for attempt in ("wrong-" + key, key):
        field = driver.find_element(By.ID, "api-key")
        field.clear()
        field.send_keys(attempt)
        driver.find_element(By.ID, "use-key").click()
        time.sleep(0.5)  # GET /api/tags with the key
    label = driver.find_element(By.ID, "model").text
    kept = driver.execute_script("return sessionStorage.getItem('llmfs-api-key')")
    step(f"key: model label {label!r} after the right key, form shown: {form.is_displayed()}")
    if form.is_displayed() or "llmfs" not in label:
        raise CheckFailed(f"the right key did not open the page (model label {label!r})")
    if kept != key:
        raise CheckFailed("the key is not kept in the tab's sessionStorage")


def run(driver, url, out, key=None):
    # 1. load the page
    page = url.rstrip("/") + "/"
    driver.get(page)
    if "llmfs" not in driver.title.lower():
        raise CheckFailed(f"unexpected page title {driver.title!r} at {page} (is the server up?)")
    driver.find_element(By.ID, "prompt")
    for element_id in ("send", "stop", "new-chat", "messages"):
        driver.find_element(By.ID, element_id)
    time.sleep(0.5)  # let GET /api/tags answer
    if key:
        enter_key(driver, key)
    elif driver.find_element(By.ID, "key-form").is_displayed():
        raise CheckFailed("the page asks for an API key the server does not need")
    model = driver.find_element(By.ID, "model").text
    state = driver.execute_script("return document.body.dataset.state")
    step(f"load: title {driver.title!r}, #prompt present, model label {model!r}, state {state!r}")
    if state != "idle":
        raise CheckFailed(f"state after load is {state!r}, expected 'idle'")
    driver.execute_script(RECORD_REQUESTS)

    # 2. first message: the reply must be streamed
    send(driver, FIRST)
    snap, lengths = watch_reply(driver, 0)
    check_reply(snap, "first reply")
    final = len(snap["text"])
    intermediate = [n for n in lengths if n < final]
    step(f"first reply: {final} chars {short(snap['text'])!r}; {len(intermediate)} intermediate "
         f"lengths while streaming {intermediate[:12]}{'...' if len(intermediate) > 12 else ''}; "
         f"meta {snap['meta']!r}")
    if len(intermediate) < 2:
        raise CheckFailed(f"reply not streamed: only {len(intermediate)} intermediate lengths seen "
                          f"({lengths}) before done")
    driver.save_screenshot(str(out / "chat.png"))
    step(f"screenshot: {out / 'chat.png'}")
    if key:  # the rest does not depend on the key
        return

    # 3. Korean follow-up: the request carries the history (user, assistant, user)
    send(driver, KOREAN)
    snap, lengths = watch_reply(driver, 1)
    check_reply(snap, "Korean reply")
    requests = driver.execute_script("return window.__chatRequests")
    sent = requests[-1]["messages"] if requests else []
    users = driver.find_elements(By.CSS_SELECTOR, "#messages .msg.user")
    shown = users[-1].text if users else ""
    step(f"Korean reply: {len(snap['text'])} chars {short(snap['text'])!r}; bubbles "
         f"{snap['users']} user + {snap['assistants']} assistant; request had {len(sent)} messages "
         f"{[m.get('role') for m in sent]}; {len(lengths)} streaming lengths")
    if (snap["users"], snap["assistants"]) != (2, 2):
        raise CheckFailed(f"expected 2 user + 2 assistant bubbles, got {snap['users']} + "
                          f"{snap['assistants']}")
    if [m.get("role") for m in sent] != ["user", "assistant", "user"]:
        raise CheckFailed(f"second request's messages were {json.dumps(sent, ensure_ascii=False)}")
    if sent[0]["content"] != FIRST or sent[2]["content"] != KOREAN or not sent[1]["content"]:
        raise CheckFailed("second request's history does not match the conversation")
    if shown != KOREAN:
        raise CheckFailed(f"the Korean user bubble shows {shown!r}")
    driver.save_screenshot(str(out / "chat-ko.png"))

    # 4. Stop: a long reply (num_predict 200), stopped shortly after streaming starts
    if not driver.find_element(By.ID, "num_predict").is_displayed():
        driver.find_element(By.ID, "toggle-settings").click()
    num_predict = driver.find_element(By.ID, "num_predict")
    num_predict.clear()
    num_predict.send_keys("200")
    if not driver.find_element(By.ID, "stop").get_property("disabled"):
        raise CheckFailed("#stop is enabled while idle")
    send(driver, LONG)
    snap = wait_for(driver, lambda s: s["assistants"] == 3 and s["streaming"] and s["text"],
                    REPLY_TIMEOUT_S, "the long reply to start streaming")
    # Read from the same snapshot that saw the reply streaming: a fast model can finish the
    # 200 tokens before a separate look at the button.
    if snap["stop_disabled"]:
        raise CheckFailed("#stop is disabled while generating")
    stop = driver.find_element(By.ID, "stop")
    options = (driver.execute_script("return window.__chatRequests")[-1] or {}).get("options", {})
    time.sleep(0.2)
    started = time.time()
    stop.click()
    snap = wait_for(driver, lambda s: s["state"] == "idle" and not s["streaming"], 5,
                    "state 'idle' after Stop")
    step(f"stop: options {options}, stopped after {len(snap['text'])} chars, idle "
         f"{time.time() - started:.2f} s after the click, meta {snap['meta']!r}")
    if options.get("num_predict") != 200:
        raise CheckFailed(f"the request's options were {options}, expected num_predict 200")
    if snap["error"]:
        raise CheckFailed(f"the stopped bubble shows an error: {snap['text']!r}")
    if not driver.find_element(By.ID, "stop").get_property("disabled"):
        raise CheckFailed("#stop still enabled after stopping")


def write_console_log(driver, out):
    try:
        entries = driver.get_log("browser")
    except Exception as e:  # not every driver offers the log
        (out / "browser.log").write_text(f"(console log unavailable: {e})\n")
        return []
    lines = [f"{e.get('level')} {e.get('source', '')} {e.get('message')}" for e in entries]
    text = "".join(line + "\n" for line in lines) or "(no console entries)\n"
    (out / "browser.log").write_text(text, encoding="utf-8")
    return [e for e in entries if e.get("level") == "SEVERE"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    ap.add_argument("--out", required=True, help="folder for chat.png and browser.log")
    ap.add_argument("--api-key", help="the server's serve.api_key: enter it when asked, then "
                                      "check the first reply only")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        driver = make_driver()
    except Exception as e:
        print(f"FAIL: cannot start headless chromium: {str(e).splitlines()[0]}", flush=True)
        return 1
    try:
        run(driver, args.url, out, args.api_key)
        severe = write_console_log(driver, out)
        step(f"console: {len(severe)} severe entries, log in {out / 'browser.log'}")
    except Exception as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if not isinstance(e, CheckFailed):
            reason = f"{type(e).__name__}: {reason}"
        try:
            driver.save_screenshot(str(out / "failure.png"))
            write_console_log(driver, out)
        except Exception:
            pass
        print(f"FAIL: {reason}", flush=True)
        return 1
    finally:
        driver.quit()
    print("OK: chat page streams, keeps history and stops", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
