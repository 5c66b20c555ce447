#!/usr/bin/env python3
"""Raw-HTTP check of the request gate of `ch07 serve` (common/include/llmfs/chat/serve_gate.h).

Without --api-key: a forged Host (DNS rebinding) and a foreign Origin are refused with 403 before
anything runs (the server's stats show no request taken and the refusals counted); a preflight
from a local front-end is answered 204 with the CORS headers, and its streamed answer carries
them; a text/plain body (what a cross-site form sends) is 415; curl's form type from a program
still works. With --api-key KEY: no key or a wrong one is 401, the right one 200, also through
the openai and ollama packages; the chat page itself needs no key.

Prints one line per check, "FAIL: ..." for a failed one; exit 0 when all pass.

    ~/.cache/llmfs/venv/bin/python tests/serve/gate_check.py --url http://127.0.0.1:PORT [--api-key K]
"""
import argparse
import http.client
import json
import sys
import urllib.parse

failures = []


def check(condition, what, detail=""):
    print(("ok: " if condition else "FAIL: ") + what + (f" ({detail})" if detail and not condition else ""),
          flush=True)
    if not condition:
        failures.append(what)


class Raw:
    """One request with exactly the headers given (Host included), the answer read whole."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port

    def request(self, method, path, headers=None, body=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        headers = dict(headers or {})
        headers.setdefault("Host", f"{self.host}:{self.port}")
        data = body.encode() if isinstance(body, str) else body
        if data is not None:
            headers["Content-Length"] = str(len(data))
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(data)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, text


def generate_body(stream=False, n=4):
    return json.dumps({"model": "llmfs", "prompt": "Name a fruit.", "stream": stream,
                       "options": {"temperature": 0, "num_predict": n}})


def stats(raw, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    status, _, text = raw.request("GET", "/llmfs/stats", headers)
    return json.loads(text) if status == 200 else {}


def open_server(raw, url):
    port = raw.port
    json_type = {"Content-Type": "application/json"}
    before = stats(raw)

    # DNS rebinding: the page's own name now points at this machine.
    status, _, text = raw.request("POST", "/api/generate",
                                  {"Host": f"evil.example:{port}", "Origin": "http://evil.example",
                                   **json_type}, generate_body())
    check(status == 403 and "allowed_hosts" in text, "forged Host -> 403", f"{status} {text}")
    status, _, text = raw.request("GET", "/", {"Host": f"evil.example:{port}"})
    check(status == 403, "forged Host on the page -> 403", f"{status}")
    after = stats(raw)
    check(after.get("requests") == before.get("requests") and after.get("active") == 0,
          "no generation started for the refused requests (stats)", f"{before} -> {after}")
    check(after.get("refused", 0) >= before.get("refused", 0) + 2, "the refusals are counted",
          f"{after}")

    # A page on another site calling with the right Host.
    status, headers, text = raw.request("POST", "/api/generate",
                                        {"Origin": "http://evil.example", **json_type},
                                        generate_body())
    check(status == 403 and "allowed_origins" in text, "foreign Origin -> 403", f"{status} {text}")
    check("access-control-allow-origin" not in headers, "no CORS headers for a foreign Origin")

    # A local front-end on another port: the preflight, then the streamed answer.
    local = "http://localhost:5173"
    status, headers, _ = raw.request("OPTIONS", "/api/chat",
                                     {"Origin": local, "Access-Control-Request-Method": "POST",
                                      "Access-Control-Request-Headers": "content-type"})
    check(status == 204, "preflight from a local origin -> 204", f"{status}")
    check(headers.get("access-control-allow-origin") == local, "preflight: Allow-Origin",
          f"{headers}")
    check("POST" in headers.get("access-control-allow-methods", ""), "preflight: Allow-Methods",
          f"{headers}")
    check("content-type" in headers.get("access-control-allow-headers", "").lower(),
          "preflight: Allow-Headers", f"{headers}")
    status, _, _ = raw.request("OPTIONS", "/api/chat", {"Origin": "http://evil.example"})
    check(status == 403, "preflight from a foreign origin -> 403", f"{status}")
    body = json.dumps({"model": "llmfs", "stream": True, "options": {"num_predict": 4},
                       "messages": [{"role": "user", "content": "Hi"}]})
    status, headers, text = raw.request("POST", "/api/chat", {"Origin": local, **json_type}, body)
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    check(status == 200 and lines and lines[-1].get("done") is True,
          "streamed answer to a local origin", f"{status} {text[:200]}")
    check(headers.get("access-control-allow-origin") == local,
          "the streamed answer carries Access-Control-Allow-Origin", f"{headers}")

    # Bodies a cross-site form can send without a preflight.
    form = ("--x\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n"
            + generate_body() + "\r\n--x--\r\n")
    for ctype, body in (("text/plain", generate_body()),
                        ("text/plain;charset=UTF-8", generate_body()),
                        ("multipart/form-data; boundary=x", form)):
        status, _, text = raw.request("POST", "/api/generate", {"Content-Type": ctype}, body)
        check(status == 415 and "application/json" in text, f"Content-Type {ctype} -> 415",
              f"{status} {text}")
    # Ollama's documentation: curl -d (a form type from a program, no Origin).
    status, _, text = raw.request("POST", "/api/generate",
                                  {"Content-Type": "application/x-www-form-urlencoded"},
                                  generate_body())
    check(status == 200 and json.loads(text).get("done") is True,
          "curl -d's form type from a program -> 200", f"{status} {text[:200]}")
    status, _, _ = raw.request("POST", "/api/generate",
                               {"Content-Type": "application/x-www-form-urlencoded",
                                "Sec-Fetch-Site": "cross-site"}, generate_body())
    check(status == 415, "the same from a browser -> 415", f"{status}")
    # The usual names of this machine.
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        status, _, _ = raw.request("POST", "/api/generate", {"Host": host, **json_type},
                                   generate_body())
        check(status == 200, f"Host {host} -> 200", f"{status}")


def keyed_server(raw, url, key):
    json_type = {"Content-Type": "application/json"}
    status, headers, text = raw.request("POST", "/api/generate", json_type, generate_body())
    check(status == 401 and headers.get("www-authenticate") == "Bearer", "no key -> 401",
          f"{status} {headers} {text}")
    status, _, _ = raw.request("POST", "/api/generate",
                               {"Authorization": f"Bearer wrong-{key}", **json_type},
                               generate_body())
    check(status == 401, "a wrong key -> 401", f"{status}")
    status, _, text = raw.request("POST", "/api/generate",
                                  {"Authorization": f"Bearer {key}", **json_type}, generate_body())
    check(status == 200 and json.loads(text).get("done") is True, "the right key -> 200",
          f"{status} {text[:200]}")
    for path in ("/api/tags", "/v1/models", "/llmfs/stats"):
        status, _, _ = raw.request("GET", path)
        check(status == 401, f"GET {path} without the key -> 401", f"{status}")
    status, _, text = raw.request("GET", "/")
    check(status == 200 and "llmfs" in text, "the chat page needs no key", f"{status}")

    import ollama
    import openai

    client = openai.OpenAI(base_url=url.rstrip("/") + "/v1", api_key=key, max_retries=0)
    reply = client.chat.completions.create(model="llmfs", max_tokens=4,
                                           messages=[{"role": "user", "content": "Hi"}])
    check(reply.choices[0].message.content is not None, "openai package with the key")
    try:
        openai.OpenAI(base_url=url.rstrip("/") + "/v1", api_key="wrong", max_retries=0) \
            .chat.completions.create(model="llmfs", max_tokens=4,
                                     messages=[{"role": "user", "content": "Hi"}])
        check(False, "openai package with a wrong key -> AuthenticationError")
    except openai.AuthenticationError:
        check(True, "openai package with a wrong key -> AuthenticationError")

    answer = ollama.Client(host=url, headers={"Authorization": f"Bearer {key}"}).generate(
        model="llmfs", prompt="Name a fruit.", options={"num_predict": 4})
    check(answer.done is True, "ollama package with the key")
    try:
        ollama.Client(host=url).generate(model="llmfs", prompt="Hi", options={"num_predict": 4})
        check(False, "ollama package without the key -> 401")
    except ollama.ResponseError as e:
        check(e.status_code == 401, "ollama package without the key -> 401", f"{e.status_code}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--api-key")
    args = ap.parse_args()
    raw = Raw(args.url)
    if args.api_key:
        keyed_server(raw, args.url, args.api_key)
    else:
        open_server(raw, args.url)
    print(f"gate: {len(failures)} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
