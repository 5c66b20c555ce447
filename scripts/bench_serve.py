#!/usr/bin/env python3
"""Python side of the serving benchmark (C++ side: `build/bin/ch07 serve`, scripts/bench_serve.sh):
a random GPT-2 124M folder, a reference server in Python and the load-generating client.

    python scripts/bench_serve.py make-model DIR
    python scripts/bench_serve.py reference-server --model DIR [--port 0] [--threads 2]
                                                   [--impl loop|generate]
    python scripts/bench_serve.py client --url http://127.0.0.1:PORT [--concurrency 1]
                                         [--requests 4] [--tokens 64]

make-model: transformers' GPT2LMHeadModel(GPT2Config(n_positions=1024, n_embd=768, n_layer=12,
n_head=12)) from torch.manual_seed(123), written by save_pretrained (config.json,
model.safetensors, generation_config.json): the Hugging Face folder that `ch07 serve --checkpoint
DIR` loads (llmfs takes the GPT-2 tokenizer from LLMFS_DATA_DIR, gpt2/encoder.json and vocab.bpe;
the reference server reads the same two files through tiktoken, the book's tokenizer).

reference-server: http.server.ThreadingHTTPServer answering POST /api/generate in Ollama's
streaming NDJSON format (notes/serve_spec.md; also GET /api/version). Generations run one at a
time in arrival order (a FIFO ticket lock), as `ch07 serve` queues them. It prints
`Listening on http://127.0.0.1:PORT (model NAME)` as its first stdout line, like ch07 serve.
The prompt is always taken raw (no instruction template); options num_predict, temperature,
top_k and seed are honoured, the rest ignored; generation stops at <|endoftext|> (not emitted,
done_reason "stop") or after num_predict tokens ("length"), capped by the 1024-token context.

  --impl loop (the default): one forward pass of GPT2LMHeadModel per token through its KV cache
      (prefill with logits_to_keep=1, then a 1-token step feeding the cache back), argmax, one
      NDJSON line per token. This is exactly the work a server must do per token with none of
      generate()'s per-step bookkeeping (logits processors, stopping criteria, streamer queue),
      so it is the stricter and simpler reference: ratios >= 1 mean llmfs beats the leanest
      plain-PyTorch server, not transformers' overhead.
  --impl generate: GPT2LMHeadModel.generate(do_sample=False, use_cache=True) on a thread with a
      streamer that hands each new token id to the request thread (transformers' own streaming
      path; the ids are decoded with tiktoken, so no Hugging Face tokenizer files are needed).

Both run under torch.inference_mode with torch.set_num_threads(--threads) on every thread that
computes (a Python thread's OpenMP pool starts from OMP_NUM_THREADS, not from the main thread's
setting). Sockets get TCP_NODELAY so a token line is not held back by Nagle's algorithm.

client: --concurrency threads start together, each sending --requests streaming /api/generate
requests one after another (a new connection each), raw, a fixed ~30-token prompt, options
{"num_predict": N, "temperature": 0, "seed": 123}. Per request it measures the time from sending
to the first NDJSON line with a non-empty "response" (TTFT, which at concurrency > 1 includes the
wait in the server's queue), the tokens (eval_count of the final line, else the count of
non-final lines) and the decode rate after the first token. Prints one JSON object: aggregate
tokens/s = all tokens / wall time from the start to the last response, median TTFT, and more.
"""
import argparse
import collections
import http.client
import json
import os
import pathlib
import queue
import signal
import socket
import statistics
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "reference"))

SEED = 123
EOT = 50256
PROMPT = ("Every effort moves you forward. The quick brown fox jumps over the lazy dog, and a "
          "language model built from scratch answers one token at a time while")


# --- make-model ------------------------------------------------------------------------------

def make_model(args):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    torch.manual_seed(SEED)
    config = GPT2Config(n_positions=1024, n_embd=768, n_layer=12, n_head=12)
    model = GPT2LMHeadModel(config).eval()
    # transformers >= 5 always writes safetensors (save_pretrained has no safe_serialization).
    model.save_pretrained(args.dir)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.dir}: GPT-2 124M shape, random weights (seed {SEED}), {n / 1e6:.1f}M "
          f"parameters", file=sys.stderr)


# --- reference-server ------------------------------------------------------------------------

class FifoLock:
    """One holder at a time, granted in arrival order (threading.Lock is not fair)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0

    def __enter__(self):
        with self._cond:
            ticket = self._next
            self._next += 1
            while ticket != self._serving:
                self._cond.wait()

    def __exit__(self, *exc):
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


class Utf8Pieces:
    """Token bytes in, complete UTF-8 text out (a character may span tokens)."""

    def __init__(self, enc):
        self.enc = enc
        self.pending = b""

    def push(self, token_id):
        self.pending += self.enc.decode_single_token_bytes(token_id)
        try:
            text, self.pending = self.pending.decode("utf-8"), b""
            return text
        except UnicodeDecodeError as e:
            if e.reason == "unexpected end of data" and len(self.pending) - e.start < 4:
                text = self.pending[:e.start].decode("utf-8")
                self.pending = self.pending[e.start:]
                return text
            text, self.pending = self.pending.decode("utf-8", errors="replace"), b""
            return text

    def flush(self):
        text, self.pending = self.pending.decode("utf-8", errors="replace"), b""
        return text


class IdStreamer:
    """A generate() streamer that passes each new token id on (the first put is the prompt)."""

    def __init__(self):
        self.queue = queue.Queue()
        self.prompt_seen = False

    def put(self, value):
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for token_id in value.reshape(-1).tolist():
            self.queue.put(int(token_id))

    def end(self):
        self.queue.put(None)


class BadRequest(Exception):
    pass


class Reference:
    def __init__(self, model_dir, threads, impl, name):
        import torch
        from transformers import GPT2LMHeadModel
        from transformers.utils import logging
        from fixtures_data import find_data, gpt2_encoding
        logging.set_verbosity_error()
        logging.disable_progress_bar()
        self.torch = torch
        self.threads = threads
        self.impl = impl
        self.name = name
        torch.set_num_threads(threads)
        self.model = GPT2LMHeadModel.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.context = self.model.config.n_positions
        data_dir = os.environ.get("LLMFS_DATA_DIR")
        find_data(data_dir, "gpt2/encoder.json")  # a clear error when the tokenizer is missing
        self.enc = gpt2_encoding(data_dir)
        self.lock = FifoLock()

    def pick(self, logits, temperature, top_k):
        torch = self.torch
        if temperature == 0:
            return int(torch.argmax(logits, dim=-1))
        logits = logits / temperature
        if top_k:
            kth = torch.topk(logits, top_k).values[..., -1, None]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return int(torch.multinomial(torch.softmax(logits, dim=-1), 1))

    def tokens_loop(self, ids, n, temperature, top_k, timing):
        """Yields token ids: one forward per token through the KV cache."""
        torch = self.torch
        model = self.model
        start = time.perf_counter_ns()
        out = model(input_ids=torch.tensor([ids]), use_cache=True, logits_to_keep=1)
        timing["prompt_eval_ns"] = time.perf_counter_ns() - start
        for i in range(n):
            token = self.pick(out.logits[0, -1], temperature, top_k)
            yield token
            if token == EOT or i + 1 == n:
                return
            out = model(input_ids=torch.tensor([[token]]), cache=out.cache, use_cache=True)

    def tokens_generate(self, ids, n, temperature, top_k, timing):
        """Yields token ids from generate() running on a thread with a streamer."""
        torch = self.torch
        streamer = IdStreamer()
        kwargs = dict(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids),
                      dtype=torch.long), max_new_tokens=n, min_new_tokens=0, use_cache=True,
                      streamer=streamer, eos_token_id=EOT, pad_token_id=EOT)
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_k=top_k or 0, top_p=1.0)
        else:
            kwargs.update(do_sample=False)
        failure = []

        def run():
            torch.set_num_threads(self.threads)
            try:
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as e:  # noqa: BLE001 (re-raised on the request thread)
                failure.append(e)
                streamer.end()

        start = time.perf_counter_ns()
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        first = True
        try:
            while (token := streamer.queue.get()) is not None:
                if first:  # generate() gives no prefill time; the first token's time stands in
                    timing["prompt_eval_ns"] = time.perf_counter_ns() - start
                    first = False
                yield token
                if token == EOT:
                    break
        finally:
            worker.join()  # a disconnected client still waits for its generate() to end
        if failure:
            raise failure[0]

    def generate(self, body, emit):
        """Runs one request; emit(piece) sends a text piece. Returns the final line's fields."""
        torch = self.torch
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise BadRequest("prompt: expected a string")
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise BadRequest("options: expected an object")
        n = int(options.get("num_predict", 128))
        temperature = float(options.get("temperature", 0.0))
        top_k = options.get("top_k")
        seed = int(options.get("seed", SEED))
        if temperature < 0:
            raise BadRequest("temperature must be >= 0")
        ids = self.enc.encode(prompt, allowed_special={"<|endoftext|>"})
        if not ids:
            ids = [EOT]
        if len(ids) >= self.context:
            raise BadRequest(f"prompt of {len(ids)} tokens does not fit the context")
        room = self.context - len(ids)
        n = room if n < 0 or n > room else n
        tokens = self.tokens_generate if self.impl == "generate" else self.tokens_loop
        timing = {"prompt_eval_ns": 0}
        count, reason = 0, "length"
        with self.lock:
            torch.set_num_threads(self.threads)
            torch.manual_seed(seed)
            start = time.perf_counter_ns()
            pieces = Utf8Pieces(self.enc)
            with torch.inference_mode():
                for token in tokens(ids, n, temperature, top_k, timing):
                    if token == EOT:
                        reason = "stop"
                        break
                    count += 1
                    piece = pieces.push(token)
                    if piece:
                        emit(piece)
                rest = pieces.flush()
                if rest:
                    emit(rest)
            total = time.perf_counter_ns() - start
        return {"done_reason": reason, "total_duration": total, "load_duration": 0,
                "prompt_eval_count": len(ids), "prompt_eval_duration": timing["prompt_eval_ns"],
                "eval_count": count, "eval_duration": total - timing["prompt_eval_ns"]}


def now_iso():
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class Handler(BaseHTTPRequestHandler):
    server_version = "bench-serve-reference/1"
    ref: Reference = None  # set by reference_server

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # no access log; reference_server logs one line a request
        pass

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/version":
            self.send_json(200, {"version": "bench-serve-reference"})
        else:
            self.send_json(404, {"error": f"no route GET {self.path}"})

    def do_POST(self):
        if self.path != "/api/generate":
            self.send_json(404, {"error": f"no route POST {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"null")
            if not isinstance(body, dict):
                raise BadRequest("expected a JSON object")
        except (ValueError, BadRequest) as e:
            self.send_json(400, {"error": f"invalid request: {e}"})
            return
        ref = self.ref
        model = body.get("model") or ref.name
        stream = body.get("stream", True)
        started = time.perf_counter()
        if stream:
            # HTTP/1.0 style: no length, the connection closes at the end of the stream.
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Connection", "close")
            self.end_headers()

            def emit(piece):
                line = {"model": model, "created_at": now_iso(), "response": piece, "done": False}
                self.wfile.write(json.dumps(line).encode() + b"\n")
        else:
            texts = []
            emit = texts.append
        try:
            final = ref.generate(body, emit)
        except BadRequest as e:
            if stream:
                self.wfile.write(json.dumps({"error": str(e)}).encode() + b"\n")
            else:
                self.send_json(400, {"error": str(e)})
            return
        except (BrokenPipeError, ConnectionResetError):
            print(f"POST /api/generate: client went away after {time.perf_counter() - started:.2f}"
                  " s", file=sys.stderr, flush=True)
            return
        last = {"model": model, "created_at": now_iso(), "response": "", "done": True, **final}
        if stream:
            try:
                self.wfile.write(json.dumps(last).encode() + b"\n")
            except (BrokenPipeError, ConnectionResetError):
                return
        else:
            last["response"] = "".join(texts)
            self.send_json(200, last)
        print(f"POST /api/generate 200 {final['eval_count']} tokens in "
              f"{time.perf_counter() - started:.2f} s", file=sys.stderr, flush=True)


def reference_server(args):
    Handler.ref = Reference(args.model, args.threads, args.impl, args.name)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"Listening on http://{host}:{port} (model {args.name})", flush=True)
    print(f"reference server: impl {args.impl}, {Handler.ref.torch.get_num_threads()} threads",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# --- client ----------------------------------------------------------------------------------

def one_request(url, tokens, seed, prompt):
    """Returns {ttft_s, total_s, tokens, text, done_reason} or {error}."""
    parts = urllib.parse.urlsplit(url)
    body = json.dumps({"model": "bench", "prompt": prompt, "raw": True, "stream": True,
                       "options": {"num_predict": tokens, "temperature": 0, "seed": seed}})
    start = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    try:
        conn.request("POST", "/api/generate", body=body,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            return {"error": f"HTTP {resp.status}: {resp.read()[:200].decode(errors='replace')}"}
        ttft, first_at, lines, texts, final = None, None, 0, [], None
        while line := resp.readline():
            if not line.strip():
                continue
            obj = json.loads(line)
            if "error" in obj:
                return {"error": obj["error"]}
            if obj.get("done"):
                final = obj
                break
            lines += 1
            if obj.get("response"):
                texts.append(obj["response"])
                if ttft is None:
                    first_at = time.perf_counter()
                    ttft = first_at - start
        end = time.perf_counter()
        if final is None:
            return {"error": "the stream ended without a done line"}
        count = final.get("eval_count", lines)
        return {"ttft_s": ttft, "total_s": end - start, "tokens": count, "lines": lines,
                "decode_s": end - first_at if first_at else None, "text": "".join(texts),
                "done_reason": final.get("done_reason")}
    except (OSError, http.client.HTTPException, ValueError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        conn.close()


def client(args):
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(args.concurrency + 1)

    def worker(k):
        barrier.wait()
        for _ in range(args.requests):
            r = one_request(args.url, args.tokens, args.seed, args.prompt)
            r["client"] = k
            with lock:
                results.append(r)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.concurrency)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ok = [r for r in results if "error" not in r]
    errors = collections.Counter(r["error"] for r in results if "error" in r)
    tokens = sum(r["tokens"] for r in ok)
    ttfts = [r["ttft_s"] for r in ok if r["ttft_s"] is not None]
    decode = [(r["tokens"] - 1) / r["decode_s"] for r in ok if r["decode_s"] and r["tokens"] > 1]
    texts = collections.Counter(r["text"] for r in ok)
    summary = {
        "url": args.url, "concurrency": args.concurrency, "requests": len(results),
        "ok": len(ok), "errors": dict(errors), "num_predict": args.tokens,
        "tokens": tokens, "wall_s": wall, "tokens_per_s": tokens / wall if wall > 0 else 0.0,
        "ttft_ms_median": 1e3 * statistics.median(ttfts) if ttfts else None,
        "ttft_ms_min": 1e3 * min(ttfts) if ttfts else None,
        "ttft_ms_max": 1e3 * max(ttfts) if ttfts else None,
        "decode_tokens_per_s_median": statistics.median(decode) if decode else None,
        "done_reasons": dict(collections.Counter(r["done_reason"] for r in ok)),
        "distinct_texts": len(texts),
        "text": texts.most_common(1)[0][0] if texts else None,
    }
    print(json.dumps(summary))
    return 0 if ok and not errors else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("make-model", help="write the random GPT-2 124M Hugging Face folder")
    m.add_argument("dir")
    s = sub.add_parser("reference-server", help="the Python reference server")
    s.add_argument("--model", required=True, help="a Hugging Face GPT-2 folder (make-model)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--impl", choices=["loop", "generate"], default="loop")
    s.add_argument("--name", default="python")
    c = sub.add_parser("client", help="send streaming /api/generate requests, print a summary")
    c.add_argument("--url", required=True)
    c.add_argument("--concurrency", type=int, default=1)
    c.add_argument("--requests", type=int, default=4, help="per client thread")
    c.add_argument("--tokens", type=int, default=64, help="options.num_predict")
    c.add_argument("--seed", type=int, default=SEED)
    c.add_argument("--prompt", default=PROMPT)
    args = ap.parse_args()
    if args.mode == "make-model":
        return make_model(args) or 0
    if args.mode == "reference-server":
        return reference_server(args) or 0
    return client(args)


if __name__ == "__main__":
    sys.exit(main())
