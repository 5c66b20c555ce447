#!/usr/bin/env python3
"""Real Ollama and OpenAI clients against a running `ch07 serve` (contract: llmfs/chat/server.h).

Prints one line per check, `ok  <name>: <detail>` or `FAIL <name>: <detail>`, writes DIR/clients.json
with the replies, and exits 1 if a check failed.

    python tests/serve/clients_check.py --url http://127.0.0.1:PORT --out DIR
        [--model NAME] [--expect-generate FILE --expect-prompt TEXT --expect-tokens N]

--expect-generate: FILE holds what `ch07 generate --instruction TEXT --max-new-tokens N` printed;
the server's greedy /api/generate (not raw, num_predict N) must answer the same text.
Needs the packages `ollama`, `openai` and `httpx` (the llmfs venv has them).
"""
import argparse
import json
import pathlib
import sys
import traceback

import httpx
import ollama
import openai

GREEDY = {"seed": 123, "temperature": 0}
PROMPT = "Rewrite the sentence using a simile: The car is very fast."
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
MULTI_TURN = [
    {"role": "user", "content": "Name a primary color."},
    {"role": "assistant", "content": "Red is a primary color."},
    {"role": "user", "content": "Name another one."},
]
KOREAN = [{"role": "user", "content": "다음 문장을 영어로 번역하세요: 오늘은 날씨가 좋습니다."}]
KOREAN_RAW = "대한민국의 수도는 서울이다. 서울은"
REPLACEMENT = "\ufffd"


class CheckFailed(Exception):
    pass


def need(condition, message):
    """A failed expectation (unlike assert, not removed by python -O)."""
    if not condition:
        raise CheckFailed(message)


def short(text, limit=60):
    return repr(text if len(text) <= limit else text[:limit] + "...")


class Context:
    def __init__(self, args):
        self.url = args.url.rstrip("/")
        self.ollama = ollama.Client(host=self.url, timeout=300)
        self.openai = openai.OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0,
                                    timeout=300)
        self.model = args.model
        self.args = args
        self.replies = {}


# ---------------------------------------------------------------------------------------- Ollama


def ollama_version(ctx):
    if hasattr(ctx.ollama, "version"):
        version = ctx.ollama.version()
        version = version["version"] if isinstance(version, dict) else version.version
    else:  # ollama-python has no version(): the same request on its own HTTP client
        response = ctx.ollama._client.get("/api/version")
        need(response.status_code == 200, f"status {response.status_code}")
        version = response.json().get("version")
    need(isinstance(version, str) and version, f"version {version!r}")
    return f"version {version}"


def ollama_list(ctx):
    models = ctx.ollama.list().models
    names = [m.model for m in models]
    need(names, "no models listed")
    if ctx.model is None:
        ctx.model = names[0]
    need(ctx.model in names, f"{ctx.model!r} not in {names}")
    model = models[names.index(ctx.model)]
    need(model.details is not None and model.details.family, "no details.family")
    return f"models {names}, {ctx.model}: family {model.details.family}, size {model.size}"


def ollama_show(ctx):
    show = ctx.ollama.show(ctx.model)
    info = show.modelinfo or {}
    context = info.get("gpt2.context_length")
    need(isinstance(context, int) and context > 0, f"model_info gpt2.context_length {context!r}")
    need(show.details is not None, "no details")
    need(show.capabilities and "completion" in show.capabilities,
         f"capabilities {show.capabilities!r}")
    ctx.replies["show"] = {"context_length": context, "details": show.details.model_dump()}
    return f"context {context}, family {show.details.family}, capabilities {show.capabilities}"


def check_counts(final, limit):
    need(final.done is True, f"done {final.done!r}")
    need(final.done_reason in ("stop", "length"), f"done_reason {final.done_reason!r}")
    need(isinstance(final.eval_count, int) and 0 < final.eval_count <= limit,
         f"eval_count {final.eval_count!r} (num_predict {limit})")
    need(isinstance(final.prompt_eval_count, int) and final.prompt_eval_count > 0,
         f"prompt_eval_count {final.prompt_eval_count!r}")
    for field in ("total_duration", "eval_duration", "prompt_eval_duration"):
        need(isinstance(getattr(final, field), int), f"{field} {getattr(final, field)!r}")
    if final.done_reason == "length":
        need(final.eval_count == limit, f"done_reason length after {final.eval_count} of {limit}")


def check_stream(chunks):
    """Every chunk but the last is done:false, the last is done:true."""
    need(chunks, "no chunks")
    need(all(c.done is False for c in chunks[:-1]), "a chunk before the last has done != false")
    need(chunks[-1].done is True, "the last chunk is not done:true")


def ollama_generate(ctx):
    options = {**GREEDY, "num_predict": 20}
    whole = ctx.ollama.generate(ctx.model, PROMPT, stream=False, options=options)
    check_counts(whole, 20)
    need(whole.response, "empty response")
    chunks = list(ctx.ollama.generate(ctx.model, PROMPT, stream=True, options=options))
    check_stream(chunks)
    check_counts(chunks[-1], 20)
    streamed = "".join(c.response or "" for c in chunks)
    need(streamed == whole.response, f"streamed {short(streamed)} != {short(whole.response)}")
    need(chunks[-1].eval_count == whole.eval_count,
         f"eval_count streamed {chunks[-1].eval_count} != {whole.eval_count}")
    ctx.replies["ollama_generate"] = whole.response
    return (f"{len(chunks)} chunks, eval_count {whole.eval_count}, "
            f"done_reason {whole.done_reason}: {short(whole.response)}")


def ollama_chat(ctx):
    options = {**GREEDY, "num_predict": 20}
    whole = ctx.ollama.chat(ctx.model, QUESTION, stream=False, options=options)
    check_counts(whole, 20)
    need(whole.message.role == "assistant", f"role {whole.message.role!r}")
    need(whole.message.content, "empty content")
    chunks = list(ctx.ollama.chat(ctx.model, QUESTION, stream=True, options=options))
    check_stream(chunks)
    check_counts(chunks[-1], 20)
    need(all(c.message.role == "assistant" for c in chunks), "a chunk's role is not assistant")
    streamed = "".join(c.message.content or "" for c in chunks)
    need(streamed == whole.message.content,
         f"streamed {short(streamed)} != {short(whole.message.content)}")
    ctx.replies["ollama_chat"] = whole.message.content
    ctx.replies["ollama_chat_prompt_eval_count"] = whole.prompt_eval_count
    return f"{len(chunks)} chunks, done_reason {whole.done_reason}: {short(whole.message.content)}"


def ollama_multi_turn(ctx):
    options = {**GREEDY, "num_predict": 20}
    whole = ctx.ollama.chat(ctx.model, MULTI_TURN, stream=False, options=options)
    check_counts(whole, 20)
    need(whole.message.role == "assistant", f"role {whole.message.role!r}")
    last_only = ctx.ollama.chat(ctx.model, MULTI_TURN[-1:], stream=False, options=options)
    need(whole.prompt_eval_count > last_only.prompt_eval_count,
         f"the history is not in the prompt: {whole.prompt_eval_count} prompt tokens with it, "
         f"{last_only.prompt_eval_count} without")
    ctx.replies["ollama_multi_turn"] = whole.message.content
    return (f"prompt tokens {whole.prompt_eval_count} (last message alone "
            f"{last_only.prompt_eval_count}): {short(whole.message.content)}")


def ollama_expected_generate(ctx):
    args = ctx.args
    expected = pathlib.Path(args.expect_generate).read_text(encoding="utf-8").strip()
    options = {"temperature": 0, "seed": 123, "num_predict": args.expect_tokens}
    got = ctx.ollama.generate(ctx.model, args.expect_prompt, stream=False, options=options)
    text = (got.response or "").strip()
    ctx.replies["expected_generate"] = {"prompt": args.expect_prompt, "expected": expected,
                                        "response": got.response}
    need(text == expected, f"{short(text, 200)} != ch07 generate's {short(expected, 200)}")
    return f"{args.expect_tokens} tokens, equal to ch07 generate: {short(text)}"


def korean_text(text, what):
    need(REPLACEMENT not in text, f"{what} has U+FFFD: {short(text)}")
    text.encode("utf-8")  # raises on lone surrogates


def ollama_korean_chat(ctx):
    options = {**GREEDY, "num_predict": 40}
    whole = ctx.ollama.chat(ctx.model, KOREAN, stream=False, options=options)
    chunks = list(ctx.ollama.chat(ctx.model, KOREAN, stream=True, options=options))
    check_stream(chunks)
    pieces = [c.message.content or "" for c in chunks]
    for piece in pieces:
        korean_text(piece, "a streamed piece")
    streamed = "".join(pieces)
    korean_text(whole.message.content, "the reply")
    need(streamed == whole.message.content,
         f"streamed {short(streamed)} != {short(whole.message.content)}")
    ctx.replies["ollama_korean_chat"] = whole.message.content
    non_ascii = sum(ord(ch) > 127 for ch in streamed)
    return f"{len(chunks)} chunks, {non_ascii} non-ASCII characters: {short(streamed)}"


def ollama_korean_raw(ctx):
    """A raw continuation of Korean text: GPT-2 tends to answer with byte tokens that split
    characters, so the server has to hold back incomplete UTF-8 between pieces."""
    options = {**GREEDY, "num_predict": 40}
    whole = ctx.ollama.generate(ctx.model, KOREAN_RAW, raw=True, stream=False, options=options)
    chunks = list(ctx.ollama.generate(ctx.model, KOREAN_RAW, raw=True, stream=True,
                                      options=options))
    check_stream(chunks)
    pieces = [c.response or "" for c in chunks]
    for piece in pieces:
        korean_text(piece, "a streamed piece")
    streamed = "".join(pieces)
    korean_text(whole.response, "the reply")
    need(streamed == whole.response, f"streamed {short(streamed)} != {short(whole.response)}")
    ctx.replies["ollama_korean_raw"] = whole.response
    non_ascii = sum(ord(ch) > 127 for ch in streamed)
    return f"{len(chunks)} chunks, {non_ascii} non-ASCII characters: {short(streamed)}"


# ---------------------------------------------------------------------------------------- OpenAI


def openai_models(ctx):
    ids = [m.id for m in ctx.openai.models.list().data]
    need(ctx.model in ids, f"{ctx.model!r} not in {ids}")
    return f"models {ids}"


def check_usage(usage, limit):
    need(usage is not None, "no usage")
    need(usage.prompt_tokens > 0, f"prompt_tokens {usage.prompt_tokens}")
    need(0 < usage.completion_tokens <= limit, f"completion_tokens {usage.completion_tokens}")
    need(usage.total_tokens == usage.prompt_tokens + usage.completion_tokens,
         f"total {usage.total_tokens} != {usage.prompt_tokens} + {usage.completion_tokens}")


def openai_chat(ctx):
    whole = ctx.openai.chat.completions.create(model=ctx.model, messages=QUESTION, stream=False,
                                               temperature=0, seed=123, max_tokens=20)
    need(whole.object == "chat.completion", f"object {whole.object!r}")
    need(whole.id.startswith("chatcmpl-"), f"id {whole.id!r}")
    need(len(whole.choices) == 1, f"{len(whole.choices)} choices")
    choice = whole.choices[0]
    need(choice.message.role == "assistant", f"role {choice.message.role!r}")
    need(choice.finish_reason in ("stop", "length"), f"finish_reason {choice.finish_reason!r}")
    need(choice.message.content, "empty content")
    ctx.replies["openai_chat"] = choice.message.content  # kept for the stream checks
    ctx.replies["openai_chat_usage"] = whole.usage.model_dump() if whole.usage else None
    check_usage(whole.usage, 20)
    return (f"usage {whole.usage.prompt_tokens}+{whole.usage.completion_tokens}="
            f"{whole.usage.total_tokens}, {choice.finish_reason}: {short(choice.message.content)}")


def openai_chat_stream(ctx):
    stream = ctx.openai.chat.completions.create(model=ctx.model, messages=QUESTION, stream=True,
                                                temperature=0, seed=123, max_tokens=20)
    chunks = list(stream)
    need(chunks, "no chunks")
    need(all(c.object == "chat.completion.chunk" for c in chunks), "a chunk's object is wrong")
    with_choices = [c for c in chunks if c.choices]
    need(with_choices, "no chunk has choices")
    reasons = [c.choices[0].finish_reason for c in with_choices]
    need(reasons[-1] in ("stop", "length"), f"the last finish_reason is {reasons[-1]!r}")
    need(all(r is None for r in reasons[:-1]), f"finish_reason before the last chunk: {reasons}")
    need(with_choices[0].choices[0].delta.role == "assistant", "the first delta has no role")
    need(all(c.usage is None for c in chunks), "usage without stream_options.include_usage")
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    expected = ctx.replies.get("openai_chat")
    need(expected is not None, "no non-streamed reply to compare with (openai chat failed)")
    need(text == expected, f"streamed {short(text)} != {short(expected)}")
    return f"{len(chunks)} chunks, finish_reason {reasons[-1]}: {short(text)}"


def openai_chat_usage_chunk(ctx):
    stream = ctx.openai.chat.completions.create(
        model=ctx.model, messages=QUESTION, stream=True, temperature=0, seed=123, max_tokens=20,
        stream_options={"include_usage": True})
    chunks = list(stream)
    need(chunks and not chunks[-1].choices, "the last chunk has choices")
    usage = chunks[-1].usage
    check_usage(usage, 20)
    need(all(c.usage is None for c in chunks[:-1]), "usage before the last chunk")
    expected = ctx.replies.get("openai_chat_usage")
    need(usage.model_dump() == expected, f"usage {usage.model_dump()} != non-streamed {expected}")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    need(text == ctx.replies.get("openai_chat"), f"streamed {short(text)} differs")
    return f"usage {usage.prompt_tokens}+{usage.completion_tokens}={usage.total_tokens}"


def openai_chat_sse_framing(ctx):
    """The wire format the clients forgive: text/event-stream, `data: ` lines, data: [DONE] last."""
    body = {"model": ctx.model, "messages": QUESTION, "stream": True, "max_tokens": 5,
            "temperature": 0}
    with httpx.stream("POST", ctx.url + "/v1/chat/completions", json=body, timeout=300) as r:
        need(r.status_code == 200, f"status {r.status_code}")
        kind = r.headers.get("content-type", "")
        need(kind.startswith("text/event-stream"), f"content-type {kind!r}")
        raw = r.read().decode("utf-8")
    events = [e for e in raw.split("\n\n") if e.strip()]
    need(events and all(e.startswith("data: ") for e in events), f"not SSE: {short(raw)}")
    need(events[-1] == "data: [DONE]", f"last event {short(events[-1])}")
    need(raw.endswith("\n\n"), "the stream does not end with a blank line")
    for event in events[:-1]:
        json.loads(event[len("data: "):])
    return f"{len(events)} events, content-type {kind}"


def openai_chat_equals_ollama(ctx):
    """Both APIs format a chat the same way: greedy answers with the same limit are equal."""
    ollama_text, openai_text = ctx.replies.get("ollama_chat"), ctx.replies.get("openai_chat")
    need(ollama_text is not None and openai_text is not None, "an earlier chat check failed")
    need(ollama_text == openai_text, f"ollama {short(ollama_text)} != openai {short(openai_text)}")
    return "same text"


def openai_completions(ctx):
    whole = ctx.openai.completions.create(model=ctx.model, prompt=PROMPT, max_tokens=10,
                                          temperature=0, seed=123)
    need(whole.object == "text_completion", f"object {whole.object!r}")
    need(whole.id.startswith("cmpl-"), f"id {whole.id!r}")
    choice = whole.choices[0]
    need(choice.finish_reason in ("stop", "length"), f"finish_reason {choice.finish_reason!r}")
    check_usage(whole.usage, 10)
    stream = ctx.openai.completions.create(model=ctx.model, prompt=PROMPT, max_tokens=10,
                                           temperature=0, seed=123, stream=True)
    chunks = [c for c in stream if c.choices]
    need(chunks, "no streamed chunks")
    need(chunks[-1].choices[0].finish_reason in ("stop", "length"), "no final finish_reason")
    streamed = "".join(c.choices[0].text or "" for c in chunks)
    need(streamed == choice.text, f"streamed {short(streamed)} != {short(choice.text)}")
    raw = ctx.ollama.generate(ctx.model, PROMPT, raw=True, stream=False,
                              options={**GREEDY, "num_predict": 10})
    need(raw.response == choice.text,
         f"ollama raw generate {short(raw.response)} != {short(choice.text)}")
    ctx.replies["openai_completion"] = choice.text
    return f"{len(chunks)} chunks, equal to ollama raw: {short(choice.text)}"


# ------------------------------------------------------------------------------------------- main


def run_checks(ctx):
    checks = [
        ("ollama version", ollama_version),
        ("ollama list", ollama_list),
        ("ollama show", ollama_show),
        ("ollama generate", ollama_generate),
        ("ollama chat", ollama_chat),
        ("ollama multi-turn chat", ollama_multi_turn),
        ("openai models", openai_models),
        ("openai chat", openai_chat),
        ("openai chat stream", openai_chat_stream),
        ("openai chat include_usage", openai_chat_usage_chunk),
        ("openai chat SSE framing", openai_chat_sse_framing),
        ("openai chat = ollama chat", openai_chat_equals_ollama),
        ("openai completions", openai_completions),
        ("korean chat", ollama_korean_chat),
        ("korean raw generate", ollama_korean_raw),
    ]
    if ctx.args.expect_generate:
        checks.append(("greedy = ch07 generate", ollama_expected_generate))
    failed = 0
    for name, check in checks:
        try:
            detail = check(ctx)
        except CheckFailed as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:  # a client error is a failed check too; the rest still run
            failed += 1
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(f"FAIL {name}: {type(e).__name__}: {e} (line {where.lineno})", flush=True)
        else:
            print(f"ok  {name}: {detail}", flush=True)
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--out", required=True, help="folder for clients.json")
    parser.add_argument("--model", help="the model name (default: the first one listed)")
    parser.add_argument("--expect-generate", help="what ch07 generate printed for --expect-prompt")
    parser.add_argument("--expect-prompt", help="the instruction given to ch07 generate")
    parser.add_argument("--expect-tokens", type=int, help="its --max-new-tokens")
    args = parser.parse_args()
    if args.expect_generate and (args.expect_prompt is None or args.expect_tokens is None):
        parser.error("--expect-generate needs --expect-prompt and --expect-tokens")

    ctx = Context(args)
    failed = run_checks(ctx)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "clients.json").write_text(
        json.dumps({"model": ctx.model, "failed": failed, "replies": ctx.replies},
                   ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"{'FAIL' if failed else 'ok'}: {failed} failed, replies in {out / 'clients.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
