#!/usr/bin/env python3
"""Offline test of scripts/download_gpt2.sh against a fake Hugging Face Hub on 127.0.0.1.

The fake hub answers like the real one: config.json with its git blob SHA-1 as ETag, and
model.safetensors (an LFS file) with a redirect whose X-Linked-Etag is the file's SHA-256.
Checks argument handling, a fresh download, reuse of the verified cache without requests,
a corrupt download, and a corrupted cache file.

    python tests/scripts/test_download_gpt2.py <repo root>
"""
import hashlib
import http.server
import os
import pathlib
import subprocess
import sys
import tempfile
import threading

CONFIG = b'{"model_type": "gpt2", "n_embd": 8}\n'
WEIGHTS = b"fake safetensors bytes" * 100


class Hub(http.server.BaseHTTPRequestHandler):
    requests = []
    corrupt = False

    def log_message(self, *args):
        pass

    def _answer(self, body_wanted):
        Hub.requests.append((self.command, self.path))
        if self.path == "/openai-community/gpt2/resolve/main/config.json":
            oid = hashlib.sha1(b"blob %d\0" % len(CONFIG) + CONFIG).hexdigest()
            self._send(200, CONFIG, {"ETag": f'"{oid}"'}, body_wanted)
        elif self.path == "/openai-community/gpt2/resolve/main/model.safetensors":
            self._send(302, b"", {"Location": "/cdn/model.safetensors",
                                  "X-Linked-Etag": f'"{hashlib.sha256(WEIGHTS).hexdigest()}"',
                                  "X-Linked-Size": str(len(WEIGHTS))}, body_wanted)
        elif self.path == "/cdn/model.safetensors":
            body = WEIGHTS[:-1] + b"!" if Hub.corrupt else WEIGHTS
            self._send(200, body, {}, body_wanted)
        else:
            self._send(404, b"not found", {}, body_wanted)

    def _send(self, code, body, headers, body_wanted):
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body_wanted:
            self.wfile.write(body)

    def do_HEAD(self):
        self._answer(False)

    def do_GET(self):
        self._answer(True)


def main():
    root = pathlib.Path(sys.argv[1])
    script = root / "scripts" / "download_gpt2.sh"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, XDG_CACHE_HOME=cache,
                   LLMFS_HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}")
        env.pop("LLMFS_CACHE_DIR", None)  # XDG_CACHE_HOME decides (LLMFS_CACHE_DIR would win)
        run = lambda *args: subprocess.run(["bash", str(script), *args], env=env,
                                           capture_output=True, text=True)
        dest = pathlib.Path(cache) / "llmfs" / "gpt2" / "124M"

        r = run()
        check(r.returncode == 2 and "usage:" in r.stderr, "no argument: usage, exit 2")
        r = run("125M")
        check(r.returncode == 2 and "unknown GPT-2 size '125M'" in r.stderr, "unknown size: exit 2")
        r = run("124M", "extra")
        check(r.returncode == 2, "two arguments: exit 2")

        r = run("124M")
        check(r.returncode == 0, f"fresh download exits 0 ({r.stderr.strip()})")
        check(r.stdout == f"{dest}\n", "prints the cache folder")
        check((dest / "model.safetensors").read_bytes() == WEIGHTS, "weights in place")
        check((dest / "config.json").read_bytes() == CONFIG, "config in place")
        check(not list(dest.glob("*.tmp.*")), "no temporary files left")

        Hub.requests.clear()
        r = run("124M")
        check(r.returncode == 0 and r.stdout == f"{dest}\n", "second run exits 0")
        check(Hub.requests == [], f"second run makes no requests ({Hub.requests})")
        check(r.stderr.count("cached and verified") == 2, "second run reports both files cached")

        # LLMFS_CACHE_DIR moves the whole cache, as in the C++ loader (llmfs::gpt2_weights_dir).
        moved = pathlib.Path(cache) / "moved"
        env["LLMFS_CACHE_DIR"] = str(moved)
        r = run("124M")
        check(r.returncode == 0 and r.stdout == f"{moved / 'gpt2' / '124M'}\n",
              "LLMFS_CACHE_DIR: downloads into <LLMFS_CACHE_DIR>/gpt2/124M")
        check((moved / "gpt2" / "124M" / "model.safetensors").read_bytes() == WEIGHTS,
              "LLMFS_CACHE_DIR: weights in place")
        env.pop("LLMFS_CACHE_DIR")

        (dest / "model.safetensors").write_bytes(b"tampered")
        Hub.corrupt = True
        r = run("124M")
        check(r.returncode == 1 and "model.safetensors: sha256" in r.stderr
              and "does not match the expected" in r.stderr, "corrupt download: exit 1, says so")
        check(not list(dest.glob("*.tmp.*")), "corrupt download leaves no temporary file")

        Hub.corrupt = False
        r = run("124M")
        check(r.returncode == 0 and (dest / "model.safetensors").read_bytes() == WEIGHTS,
              "a tampered cache file is downloaded again")

        env["LLMFS_HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there
        (dest / "config.json").unlink()
        r = run("124M")
        check(r.returncode == 1 and "config.json: cannot reach" in r.stderr, "no network: exit 1")

    server.shutdown()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
