#!/usr/bin/env python3
"""Bad and heavy traffic against a running `ch07 serve` (contract: llmfs/chat/server.h).

Malformed requests and bad values (400), unknown routes (404), a 10 MB body (413), a prompt longer
than the context (422), huge token limits (200), 50 concurrent streams (complete or 503 with
Retry-After), clients that disconnect mid-stream (counted as cancelled in /llmfs/stats), and the
server's memory before and after. Prints one line per check, `ok  <name>: <detail>` or
`FAIL <name>: <detail>`, writes DIR/traffic.json with the counts, and exits 1 if a check failed.
Standard library only.

    python tests/serve/traffic_check.py --url http://127.0.0.1:PORT --out DIR [--context N]
"""
import argparse
import concurrent.futures
import http.client
import json
import pathlib
import re
import socket
import sys
import threading
import time
import traceback
import urllib.parse

TIMEOUT = 600  # seconds for one request: num_predict 10**9 fills the whole context
MiB = 1 << 20
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


class CheckFailed(Exception):
    pass


def need(condition, message):
    """A failed expectation (unlike assert, not removed by python -O)."""
    if not condition:
        raise CheckFailed(message)


class Server:
    def __init__(self, url, model):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.model = model

    def connect(self, timeout=TIMEOUT):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body bytes); body: bytes as they are, anything else as JSON."""
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
        conn = self.connect()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def json(self, method, path, body=None):
        status, _, data = self.request(method, path, body)
        need(status == 200, f"{method} {path}: status {status}: {data[:200]!r}")
        return json.loads(data)

    def stats(self):
        return self.json("GET", "/llmfs/stats")

    def chat(self, num_predict=8, stream=False, messages=QUESTION):
        return {"model": self.model, "messages": messages, "stream": stream,
                "options": {"temperature": 0, "seed": 123, "num_predict": num_predict}}


def error_message(path, status, headers, data):
    """The error body's message: {"error": str} on Ollama routes, {"error": {"message": ..}} on /v1."""
    kind = headers.get("Content-Type", "")
    need(kind.startswith("application/json"), f"content-type {kind!r}")
    try:
        body = json.loads(data)
    except ValueError:
        raise CheckFailed(f"status {status}, body is not JSON: {data[:200]!r}") from None
    need(isinstance(body, dict) and "error" in body, f"no error field: {data[:200]!r}")
    error = body["error"]
    if path.startswith("/v1/"):
        need(isinstance(error, dict), f"/v1 error is not an object: {error!r}")
        need(error.get("type") in ("invalid_request_error", "server_error"),
             f"error.type {error.get('type')!r}")
        message = error.get("message")
    else:
        message = error
    need(isinstance(message, str) and message, f"error message {message!r}")
    return message


def expect_error(server, path, body, status, method="POST"):
    got, headers, data = server.request(method, path, body)
    need(got == status, f"status {got} (expected {status}): {data[:200]!r}")
    return f"{got} {error_message(path, got, headers, data)!r}"


# ----------------------------------------------------------------------------------- bad requests


def bad_request_checks(server):
    m = server.model
    chat = server.chat()
    broken = b'{"model": "x", "messages": [{"role": "user", "content": "hi"}'
    return [
        ("invalid JSON /api/chat", "/api/chat", broken, 400),
        ("invalid JSON /api/generate", "/api/generate", b'{"model": "x", "prompt": "hi",}', 400),
        ("invalid JSON /v1/chat/completions", "/v1/chat/completions", broken, 400),
        ("invalid JSON /v1/completions", "/v1/completions", b"not json", 400),
        ("missing messages /api/chat", "/api/chat", {"model": m, "stream": False}, 400),
        ("missing messages /v1/chat/completions", "/v1/chat/completions", {"model": m}, 400),
        ("messages a string /api/chat", "/api/chat",
         {**chat, "messages": "What is the capital of France?"}, 400),
        ("messages a string /v1/chat/completions", "/v1/chat/completions",
         {"model": m, "messages": "hi"}, 400),
        ("message without content /api/chat", "/api/chat",
         {**chat, "messages": [{"role": "user"}]}, 400),
        ("message without content /v1/chat/completions", "/v1/chat/completions",
         {"model": m, "messages": [{"role": "user"}]}, 400),
        ("prompt not a string /api/generate", "/api/generate",
         {"model": m, "prompt": 42, "stream": False}, 400),
        ("prompt not a string /v1/completions", "/v1/completions", {"model": m, "prompt": 42}, 400),
        ("temperature a string /api/chat", "/api/chat",
         {**chat, "options": {"temperature": "hot"}}, 400),
        ("temperature a string /v1/chat/completions", "/v1/chat/completions",
         {"model": m, "messages": QUESTION, "temperature": "hot"}, 400),
        ("temperature < 0 /api/generate", "/api/generate",
         {"model": m, "prompt": "hi", "stream": False, "options": {"temperature": -1}}, 400),
        ("num_predict -5 /api/chat", "/api/chat", {**chat, "options": {"num_predict": -5}}, 400),
        ("num_predict -5 /api/generate", "/api/generate",
         {"model": m, "prompt": "hi", "stream": False, "options": {"num_predict": -5}}, 400),
        ("max_tokens -1 /v1/chat/completions", "/v1/chat/completions",
         {"model": m, "messages": QUESTION, "max_tokens": -1}, 400),
        ("max_tokens -1 /v1/completions", "/v1/completions",
         {"model": m, "prompt": "hi", "max_tokens": -1}, 400),
    ]


def unknown_route_get(server):
    return expect_error(server, "/nope", None, 404, method="GET")


def unknown_route_post(server):
    return expect_error(server, "/api/nope", {"model": server.model}, 404)


def too_long_prompt_checks(server, context):
    words = max(4000, 2 * context)  # GPT-2 BPE: at least one token a word
    text = " ".join(["word"] * words)
    m = server.model
    return [
        (f"prompt of {words} words /api/generate", "/api/generate",
         {"model": m, "prompt": text, "stream": False}, 422),
        (f"prompt of {words} words /api/chat", "/api/chat",
         {**server.chat(), "messages": [{"role": "user", "content": text}]}, 422),
        (f"prompt of {words} words /v1/chat/completions", "/v1/chat/completions",
         {"model": m, "messages": [{"role": "user", "content": text}]}, 422),
    ]


# ------------------------------------------------------------------------------ huge token limits


def huge_num_predict(server):
    body = {"model": server.model, "prompt": "Write a long story about a dragon.",
            "stream": False, "options": {"temperature": 0, "num_predict": 10**9}}
    answer = server.json("POST", "/api/generate", body)
    need(answer.get("done") is True, f"done {answer.get('done')!r}")
    need(answer.get("done_reason") in ("stop", "length"), f"done_reason {answer.get('done_reason')!r}")
    need(isinstance(answer.get("response"), str), "no response text")
    count = answer.get("eval_count")
    need(isinstance(count, int) and count > 0, f"eval_count {count!r}")
    return f"done_reason {answer['done_reason']}, {count} tokens"


def huge_max_tokens(server):
    body = {"model": server.model, "messages": QUESTION, "max_tokens": 10**9, "temperature": 0}
    answer = server.json("POST", "/v1/chat/completions", body)
    choice = answer["choices"][0]
    need(choice.get("finish_reason") in ("stop", "length"),
         f"finish_reason {choice.get('finish_reason')!r}")
    need(isinstance(choice["message"].get("content"), str), "no content")
    usage = answer["usage"]
    need(usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"], f"{usage}")
    return f"finish_reason {choice['finish_reason']}, {usage['completion_tokens']} tokens"


# ---------------------------------------------------------------------------------- a 10 MB body


def huge_body(server, path):
    """Sends 10 MB in pieces; the server may answer 413 and close before reading it all."""
    size = 10 * MiB
    conn = server.connect(timeout=60)
    outcome = None
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        piece = b" " * (256 * 1024)
        for _ in range(size // len(piece)):
            conn.send(piece)
    except OSError as e:  # reset or broken pipe while sending: the response may still be there
        outcome = f"{type(e).__name__} while sending"
    try:
        response = conn.getresponse()
        status, headers, data = response.status, response.headers, response.read()
    except (OSError, http.client.HTTPException) as e:
        status = None
        outcome = (outcome or "") + f", {type(e).__name__} reading the response"
    finally:
        conn.close()
    if status is not None:
        need(status == 413, f"status {status}: {data[:200]!r}")
        outcome = f"413 {error_message(path, status, headers, data)!r}" + (
            f" ({outcome})" if outcome else "")
    status, _, _ = server.request("GET", "/api/version")
    need(status == 200, f"{outcome}; then GET /api/version: {status}")
    return f"{outcome}; the server still answers"


# ------------------------------------------------------------------------------------ concurrency


def one_stream(server, barrier):
    """'complete', 'rejected' (503 with Retry-After) or raises CheckFailed."""
    body = json.dumps(server.chat(num_predict=8, stream=True)).encode()
    conn = server.connect()
    try:
        barrier.wait()
        conn.request("POST", "/api/chat", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        if response.status == 503:
            data = response.read()
            error_message("/api/chat", 503, response.headers, data)
            need(response.headers.get("Retry-After"), "503 without Retry-After")
            return "rejected"
        if response.status != 200:
            raise CheckFailed(f"status {response.status}: {response.read()[:200]!r}")
        kind = response.headers.get("Content-Type", "")
        need(kind.startswith("application/x-ndjson"), f"content-type {kind!r}")
        lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
        need(lines and lines[-1].get("done") is True,
             f"the stream does not end with done:true: {lines[-1:]!r}")
        need(all(line.get("done") is False for line in lines[:-1]), "done:true before the end")
        return "complete"
    finally:
        conn.close()


def concurrent_streams(server, counts, clients=50):
    before = server.stats()
    barrier = threading.Barrier(clients)
    outcomes = {"complete": 0, "rejected": 0, "failed": 0}
    problems = []
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(one_stream, server, barrier) for _ in range(clients)]
        for future in futures:
            try:
                outcomes[future.result()] += 1
            except Exception as e:
                outcomes["failed"] += 1
                problems.append(f"{type(e).__name__}: {e}")
    after = server.stats()
    counts[f"concurrent_{clients}"] = outcomes
    need(not problems, f"{outcomes}; {'; '.join(sorted(set(problems)))}")
    need(outcomes["complete"] >= 1, f"no stream completed: {outcomes}")
    rejected = after["rejected"] - before["rejected"]
    need(rejected == outcomes["rejected"],
         f"stats.rejected grew by {rejected}, {outcomes['rejected']} clients got 503")
    return f"{outcomes['complete']} complete, {outcomes['rejected']} rejected with 503"


def read_first_line_and_close(server, body, attempts=60):
    """A raw HTTP/1.1 streaming request; returns once the first NDJSON line has arrived (after
    a 503, tries again when Retry-After says, as a polite client does)."""
    for _ in range(attempts):
        retry_after = first_line_and_close(server, body)
        if retry_after is None:
            return
        time.sleep(retry_after)
    raise CheckFailed(f"still 503 after {attempts} attempts")


def first_line_and_close(server, body):
    """None once the first line arrived; the seconds to wait after a 503."""
    with socket.create_connection((server.host, server.port), timeout=120) as sock:
        request = (f"POST /api/chat HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        sock.sendall(request.encode() + body)
        received = b""
        while True:
            data = sock.recv(4096)
            need(data, f"closed before the first line: {received[:200]!r}")
            received += data
            head, _, rest = received.partition(b"\r\n\r\n")
            if _ and head.startswith(b"HTTP/1.1 503"):
                match = re.search(rb"(?im)^retry-after:\s*(\d+)", head)
                need(match, f"503 without Retry-After: {head!r}")
                return min(int(match.group(1)), 2)
            if _ and not head.startswith(b"HTTP/1.1 200"):
                raise CheckFailed(f"answer {head.splitlines()[0]!r}")
            if _ and b'"done"' in rest and b"}\n" in rest:  # a whole NDJSON line (maybe chunked)
                return None


def disconnecting_clients(server, counts, clients=10):
    before = server.stats()
    body = json.dumps(server.chat(num_predict=200, stream=True)).encode()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(read_first_line_and_close, server, body)
                       for _ in range(clients)]:
            future.result()
    deadline = time.monotonic() + 10
    while True:
        stats = server.stats()
        cancelled = stats["cancelled"] - before["cancelled"]
        if (cancelled >= 1 and stats["active"] == 0) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    counts["cancelled"] = cancelled
    need(cancelled >= 1, f"stats.cancelled grew by {cancelled} after 10 s")
    need(stats["active"] == 0, f"stats.active is {stats['active']} after 10 s")
    return f"{clients} clients closed after the first line: cancelled +{cancelled}, " \
           f"active {stats['active']}, queued {stats['queued']}"


# ------------------------------------------------------------------------------- health, memory


def warm_up(server, counts):
    for num_predict in (8, 16, 8):
        answer = server.json("POST", "/api/chat", server.chat(num_predict=num_predict))
        need(answer.get("done") is True, f"done {answer.get('done')!r}")
    server.json("POST", "/v1/chat/completions",
                {"model": server.model, "messages": QUESTION, "max_tokens": 8})
    time.sleep(1)
    counts["rss_baseline"] = server.stats()["rss_bytes"]
    return f"4 requests, rss {counts['rss_baseline'] / MiB:.1f} MiB"


def still_answers(server):
    answer = server.json("POST", "/api/chat", server.chat(num_predict=8))
    need(answer.get("done") is True, f"done {answer.get('done')!r}")
    content = answer["message"]["content"]
    need(isinstance(content, str), "no content")
    stats = server.stats()
    need(stats["active"] == 0 and stats["queued"] == 0, f"stats {stats}")
    return f"{content!r}, stats {stats}"


def memory(server, counts):
    need("rss_baseline" in counts, "no baseline (the warm-up failed)")
    time.sleep(2)
    baseline, end = counts["rss_baseline"], server.stats()["rss_bytes"]
    counts["rss_end"] = end
    limit = baseline * 1.25 + 32 * MiB + counts["allocator_slack"]
    detail = f"baseline {baseline / MiB:.1f} MiB, end {end / MiB:.1f} MiB, limit {limit / MiB:.1f} MiB"
    if counts["allocator_slack"]:
        detail += f" (with {counts['allocator_slack'] / MiB:.0f} MiB for the allocator's quarantine)"
    need(end <= limit, detail)
    return detail


# ------------------------------------------------------------------------------------------- main


def model_and_context(server, args):
    model = args.model or server.json("GET", "/api/tags")["models"][0]["name"]
    server.model = model
    if args.context:
        return args.context
    return server.json("POST", "/api/show", {"model": model})["model_info"]["gpt2.context_length"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--out", required=True, help="folder for traffic.json")
    parser.add_argument("--model", help="the model name (default: the first one listed)")
    parser.add_argument("--context", type=int,
                        help="the model's context (default: /api/show model_info gpt2.context_length)")
    parser.add_argument("--allocator-slack-mib", type=int, default=0,
                        help="memory the server's allocator may keep beyond the limit: "
                             "AddressSanitizer holds freed memory in a quarantine (256 MiB)")
    args = parser.parse_args()
    server = Server(args.url, args.model)
    counts = {"failed": 0, "allocator_slack": args.allocator_slack_mib * MiB}

    def run(name, check, *check_args):
        try:
            detail = check(*check_args)
        except CheckFailed as e:
            counts["failed"] += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:  # a crash of the check is a failed check; the rest still run
            counts["failed"] += 1
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(f"FAIL {name}: {type(e).__name__}: {e} (line {where.lineno})", flush=True)
        else:
            print(f"ok  {name}: {detail}", flush=True)

    try:
        context = model_and_context(server, args)
    except Exception as e:
        print(f"FAIL setup: {type(e).__name__}: {e}")
        return 1
    print(f"ok  setup: model {server.model!r}, context {context}", flush=True)
    counts["context"] = context

    run("warm-up", warm_up, server, counts)
    for name, path, body, status in bad_request_checks(server):
        run(name, expect_error, server, path, body, status)
    run("unknown route GET /nope", unknown_route_get, server)
    run("unknown route POST /api/nope", unknown_route_post, server)
    for name, path, body, status in too_long_prompt_checks(server, context):
        run(name, expect_error, server, path, body, status)
    run("num_predict 10**9 /api/generate", huge_num_predict, server)
    run("max_tokens 10**9 /v1/chat/completions", huge_max_tokens, server)
    run("10 MB body /api/chat", huge_body, server, "/api/chat")
    run("10 MB body /v1/chat/completions", huge_body, server, "/v1/chat/completions")
    run("50 concurrent streams", concurrent_streams, server, counts)
    # A burst beyond the listen backlog of cpp-httplib (5): every client is answered, no reset.
    run("a burst of 200 clients", concurrent_streams, server, counts, 200)
    run("still answers after the burst", still_answers, server)
    run("10 clients disconnect mid-stream", disconnecting_clients, server, counts)
    run("still answers", still_answers, server)
    run("memory", memory, server, counts)

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        counts["stats"] = server.stats()
    except Exception as e:
        counts["stats"] = f"{type(e).__name__}: {e}"
    (out / "traffic.json").write_text(json.dumps(counts, indent=2) + "\n")
    print(f"{'FAIL' if counts['failed'] else 'ok'}: {counts['failed']} failed, "
          f"counts in {out / 'traffic.json'}")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
