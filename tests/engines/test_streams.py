"""The incremental SSE/NDJSON parsers of KITT's stream wire format (kitt._engines.streams),
fed bytes split every way a network can split them."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from support.scripted_server import DONE, chat_chunk, completion_chunk, ndjson, sse, usage_chunk

from kitt._engines.streams import OllamaParser, OpenAIParser, StreamParser, TgiParser

# A chat stream as vLLM/llama.cpp send it, with every oddity real servers produce.
CHAT_EVENTS = [
    sse(chat_chunk(role="assistant", content="")),       # role-only, empty content
    b": ping\n\n",                                       # keep-alive comment
    sse(chat_chunk(reasoning="Let me think")),          # reasoning counts as generated text
    sse(chat_chunk("Héllo")),                            # multi-byte UTF-8
    b"event: message\nid: 7\n",                          # fields the parser must ignore
    sse(chat_chunk()),                                   # empty delta
    sse(chat_chunk(" wörld ✓ 🚀")),                      # 2-, 3- and 4-byte characters
    sse(chat_chunk(finish="length")),
    sse(usage_chunk(11, 3)),                             # usage-only final chunk
    DONE,
]
CHAT = b"".join(CHAT_EVENTS)


def feed_pieces(parser: StreamParser, data: bytes, cuts: list[int]) -> StreamParser:
    """Feed `data` split at `cuts`; each read's arrival time is its end offset."""
    bounds = [0, *cuts, len(data)]
    for a, b in itertools.pairwise(bounds):
        if b > a:
            parser.feed(data[a:b], b)
    parser.finish()
    return parser


def line_ends(data: bytes, marker: bytes) -> list[int]:
    """Offsets just past the newline ending each line that contains `marker`."""
    ends, pos = [], 0
    for line in data.split(b"\n")[:-1]:
        pos += len(line) + 1
        if marker in line:
            ends.append(pos)
    return ends


def check_chat(parser: StreamParser) -> None:
    assert parser.outcome() == "ok"
    assert "".join(parser.reasoning) == "Let me think"
    assert "".join(parser.text) == "Héllo wörld ✓ 🚀"
    assert len(parser.chunk_ns) == 3
    assert (parser.input_tokens, parser.output_tokens) == (11, 3)
    assert parser.finished
    assert not parser.tokens_exact  # no per-chunk usage: one token per chunk assumed
    assert parser.chunk_tokens == [1, 1, 1]


def test_whole_stream_in_one_read() -> None:
    parser = feed_pieces(OpenAIParser(chat=True), CHAT, [])
    check_chat(parser)
    # Every event of a single read shares that read's arrival time.
    assert parser.chunk_ns == [len(CHAT)] * 3
    assert parser.done_ns == len(CHAT)


def test_byte_by_byte_timestamps_each_event_when_its_line_completes() -> None:
    parser = feed_pieces(OpenAIParser(chat=True), CHAT, list(range(1, len(CHAT))))
    check_chat(parser)
    text_lines = [e for e in line_ends(CHAT, b"data: {") if e not in
                  line_ends(CHAT, b'"role"') + line_ends(CHAT, b'"delta": {}')
                  + line_ends(CHAT, b'"finish_reason": "length"')
                  + line_ends(CHAT, b'"choices": []')]
    assert parser.chunk_ns == text_lines
    assert parser.done_ns == line_ends(CHAT, b"[DONE]")[0]


def test_every_two_way_and_three_way_split() -> None:
    # Covers splits mid-line, mid-"data:" prefix, mid-UTF-8 character and mid-"\n\n".
    for cut in range(1, len(CHAT)):
        check_chat(feed_pieces(OpenAIParser(chat=True), CHAT, [cut]))
        check_chat(feed_pieces(OpenAIParser(chat=True), CHAT, [cut // 2, cut]))


def test_one_read_per_event_and_several_events_per_read() -> None:
    cuts = []
    pos = 0
    for event in CHAT_EVENTS:
        pos += len(event)
        cuts.append(pos)
    check_chat(feed_pieces(OpenAIParser(chat=True), CHAT, cuts[:-1]))
    # Three events per read.
    check_chat(feed_pieces(OpenAIParser(chat=True), CHAT, cuts[2:-1:3]))


def test_crlf_line_endings() -> None:
    parser = feed_pieces(OpenAIParser(chat=True), CHAT.replace(b"\n", b"\r\n"), [17, 300])
    check_chat(parser)


def test_data_without_space_and_last_line_without_newline() -> None:
    data = b'data:{"choices":[{"delta":{"content":"a"}}]}\n\ndata: [DONE]'
    parser = feed_pieces(OpenAIParser(chat=True), data, [20])
    assert parser.outcome() == "ok"
    assert parser.text == ["a"]
    assert parser.done_ns == len(data)


def test_completions_stream() -> None:
    data = (sse(completion_chunk("One")) + sse(completion_chunk("")) + sse(completion_chunk(" two"))
            + sse(completion_chunk("", finish="length", usage={"prompt_tokens": 4,
                                                               "completion_tokens": 2}))
            + DONE)
    parser = feed_pieces(OpenAIParser(chat=False), data, [5, 50, 51])
    assert parser.outcome() == "ok"
    assert "".join(parser.text) == "One two"
    assert len(parser.chunk_ns) == 2
    assert (parser.input_tokens, parser.output_tokens) == (4, 2)


def test_continuous_usage_gives_exact_tokens_per_chunk() -> None:
    def cum(n: int) -> dict[str, int]:
        return {"prompt_tokens": 3, "completion_tokens": n, "total_tokens": 3 + n}

    data = b"".join([
        sse(chat_chunk(role="assistant", content="", usage=cum(0))),
        sse(chat_chunk("a", usage=cum(1))),
        sse(chat_chunk("bcd", usage=cum(4))),     # speculative decoding: 3 tokens at once
        sse(chat_chunk("", usage=cum(5))),        # a held-back partial character...
        sse(chat_chunk("é", usage=cum(6))),       # ...surfaces with the next text: 2 tokens
        sse(chat_chunk(finish="length", usage=cum(6))),
        sse(usage_chunk(3, 6)),
        DONE,
    ])
    parser = feed_pieces(OpenAIParser(chat=True), data, [])
    assert parser.tokens_exact
    assert parser.chunk_tokens == [1, 3, 2]
    assert parser.output_tokens == 6


def test_keepalive_only_stream_is_incomplete() -> None:
    parser = feed_pieces(OpenAIParser(chat=True), b": ping\n\n: ping\n\n", [])
    assert parser.outcome() == "incomplete"
    assert "without [DONE]" in parser.missing_end_reason()


def test_stream_cut_before_done_is_incomplete() -> None:
    data = CHAT[: CHAT.index(b"data: [DONE]")]
    parser = feed_pieces(OpenAIParser(chat=True), data, [])
    assert parser.outcome() == "incomplete"
    assert "after a finish_reason" in parser.missing_end_reason()


@pytest.mark.parametrize("event", [
    {"error": {"message": "out of KV cache", "type": "InternalServerError", "code": 500}},
    {"object": "error", "message": "out of KV cache", "type": "BadRequestError", "code": 400},
])
def test_error_event_inside_stream(event: dict) -> None:
    data = sse(chat_chunk("a")) + sse(event) + DONE
    parser = feed_pieces(OpenAIParser(chat=True), data, [])
    assert parser.outcome() == "error"
    assert parser.error == "error event: out of KV cache"


def test_malformed_json_is_an_error() -> None:
    parser = feed_pieces(OpenAIParser(chat=True), b'data: {"choices": [\n\n' + DONE, [])
    assert parser.outcome() == "error"
    assert parser.error.startswith("malformed event")


def test_very_long_line_split_in_small_reads_parses_in_linear_time() -> None:
    text = "x" * 2_000_000
    data = sse(chat_chunk(text)) + DONE
    parser = OpenAIParser(chat=True)
    started = time.perf_counter()
    for i in range(0, len(data), 1000):  # 2,000 reads of one 2 MB line
        parser.feed(data[i:i + 1000], i)
    parser.finish()
    elapsed = time.perf_counter() - started
    assert parser.text == [text]
    assert parser.outcome() == "ok"
    # Quadratic re-joining would copy ~2 GB here; linear handling takes milliseconds.
    assert elapsed < 1.0


def test_text_capture_can_be_disabled() -> None:
    parser = feed_pieces(OpenAIParser(chat=True, capture_text=False), CHAT, [])
    assert parser.text == [] and parser.reasoning == []
    assert len(parser.chunk_ns) == 3


OLLAMA_GENERATE = b"".join([
    ndjson({"model": "m", "response": "", "thinking": "hmm", "done": False}),
    ndjson({"model": "m", "response": "Hé", "done": False}),
    ndjson({"model": "m", "response": "", "done": False}),
    ndjson({"model": "m", "response": "llo 🚀", "done": False}),
    ndjson({"model": "m", "response": "", "done": True, "done_reason": "length",
            "prompt_eval_count": 9, "eval_count": 4}),
])


def test_ollama_generate_any_split() -> None:
    for cut in range(1, len(OLLAMA_GENERATE)):
        parser = feed_pieces(OllamaParser(chat=False), OLLAMA_GENERATE, [cut])
        assert parser.outcome() == "ok"
        assert "".join(parser.text) == "Héllo 🚀"
        assert parser.reasoning == ["hmm"]
        assert len(parser.chunk_ns) == 3
        assert (parser.input_tokens, parser.output_tokens) == (9, 4)


def test_ollama_chat_and_missing_done() -> None:
    lines = [ndjson({"message": {"role": "assistant", "content": c}, "done": False})
             for c in ("a", "b")]
    parser = feed_pieces(OllamaParser(chat=True), b"".join(lines), [3])
    assert parser.outcome() == "incomplete"
    assert parser.text == ["a", "b"]
    done = ndjson({"message": {"role": "assistant", "content": ""}, "done": True,
                   "eval_count": 2, "prompt_eval_count": 1})
    parser = feed_pieces(OllamaParser(chat=True), b"".join(lines) + done, [])
    assert parser.outcome() == "ok"
    assert parser.output_tokens == 2


def test_ollama_error_line() -> None:
    data = ndjson({"error": "model 'x' not found"})
    parser = feed_pieces(OllamaParser(chat=False), data, [])
    assert parser.outcome() == "error"
    assert "model 'x' not found" in parser.error


def test_data_that_is_not_an_event_object_is_an_error() -> None:
    data = sse({"choices": None}) + b"data: 42\n\n" + DONE
    parser = feed_pieces(OpenAIParser(chat=True), data, [])
    assert parser.outcome() == "error"
    assert parser.error == "unexpected event: 42"


@pytest.mark.parametrize("event", [
    {"choices": [None]},
    {"choices": "abc"},
    {"choices": [{"delta": "abc"}]},
    {"choices": [{"delta": {"content": "a"}}], "usage": {"completion_tokens": "3"}},
    {"choices": [], "usage": ["x"]},
])
def test_events_of_unexpected_shape_are_errors_not_exceptions(event: dict) -> None:
    parser = feed_pieces(OpenAIParser(chat=True), sse(event) + DONE, [])
    assert parser.outcome() == "error"
    assert parser.error.startswith("unexpected event: {")


@pytest.mark.parametrize("line", [b"[1, 2]\n", b'{"message": "x", "done": false}\n', b"7\n"])
def test_ollama_lines_of_unexpected_shape_are_errors(line: bytes) -> None:
    parser = feed_pieces(OllamaParser(chat=True), line, [])
    assert parser.outcome() == "error"
    assert parser.error.startswith("unexpected event")


# -- Ollama's own timings ---------------------------------------------------------------------

OLLAMA_FINAL = {"model": "m", "response": "", "done": True, "done_reason": "length",
                "total_duration": 12_000_000, "load_duration": 2_000_000,
                "prompt_eval_count": 7, "prompt_eval_duration": 1_400_000,
                "eval_count": 10, "eval_duration": 5_000_000, "context": [1, 2]}


def test_ollama_final_object_timings_are_kept_whatever_the_split() -> None:
    data = ndjson({"model": "m", "response": "a", "done": False}) + ndjson(OLLAMA_FINAL)
    for cut in range(1, len(data)):
        parser = feed_pieces(OllamaParser(chat=False), data, [cut])
        assert parser.outcome() == "ok"
        assert parser.server_timings == {
            "total_duration": 12_000_000, "load_duration": 2_000_000,
            "prompt_eval_count": 7, "prompt_eval_duration": 1_400_000,
            "eval_count": 10, "eval_duration": 5_000_000}


def test_ollama_timings_the_server_left_out_are_skipped() -> None:
    # A cached prompt: Ollama omits prompt_eval_count (and here its duration); a null or
    # non-integer value is not a timing either.
    final = {"response": "", "done": True, "total_duration": 9, "load_duration": None,
             "eval_count": 3, "eval_duration": 6.5}
    parser = feed_pieces(OllamaParser(chat=False), ndjson(final), [])
    assert parser.outcome() == "ok"
    assert parser.server_timings == {"total_duration": 9, "eval_count": 3}
    bare = feed_pieces(OllamaParser(chat=True), ndjson({"done": True}), [])
    assert bare.outcome() == "ok" and bare.server_timings is None


def test_only_the_final_ollama_object_gives_timings() -> None:
    data = ndjson({"response": "a", "done": False, "eval_count": 1, "eval_duration": 5})
    parser = feed_pieces(OllamaParser(chat=False), data, [])
    assert parser.outcome() == "incomplete" and parser.server_timings is None
    assert feed_pieces(OpenAIParser(chat=True), CHAT, []).server_timings is None


# -- TGI /generate_stream -------------------------------------------------------------------

def tgi_event(i: int, text: str, *, special: bool = False, final: str | None = None,
              details: dict | None = None) -> bytes:
    """One event as TGI writes it (`data:` without a space)."""
    event = {"index": i + 1,
             "token": {"id": 100 + i, "text": text, "logprob": -0.5, "special": special},
             "top_tokens": None, "generated_text": final, "details": details}
    return f"data:{json.dumps(event, ensure_ascii=False)}\n\n".encode()


TGI_STREAM = b"".join([
    b": keep-alive\n\n",
    tgi_event(0, " Hé"),
    tgi_event(1, ""),                       # a token with no text yet (partial character)
    tgi_event(2, "llo 🚀"),
    tgi_event(3, "</s>", special=True, final=" Héllo 🚀",
              details={"finish_reason": "eos_token", "generated_tokens": 4, "seed": None,
                       "input_length": 6}),
])


def test_tgi_stream_any_split() -> None:
    for cut in range(1, len(TGI_STREAM)):
        parser = feed_pieces(TgiParser(), TGI_STREAM, [cut])
        assert parser.outcome() == "ok"
        assert "".join(parser.text) == " Héllo 🚀"
        # One token per event; the text-less token is carried to the next text chunk and
        # the special (EOS) token is no text chunk.
        assert len(parser.chunk_ns) == 2 and parser.tokens_exact
        assert parser.chunk_tokens == [1, 2]
        assert (parser.input_tokens, parser.output_tokens) == (6, 4)
        assert parser.server_timings is None


def test_tgi_stream_timestamps_each_token_event() -> None:
    ends = line_ends(TGI_STREAM, b"data:")
    parser = feed_pieces(TgiParser(), TGI_STREAM, ends)
    assert parser.chunk_ns == [ends[0], ends[2]]
    assert parser.done_ns == ends[3]


def test_tgi_stream_without_final_event_is_incomplete() -> None:
    data = tgi_event(0, " a") + tgi_event(1, " b")
    parser = feed_pieces(TgiParser(), data, [])
    assert parser.outcome() == "incomplete"
    assert parser.output_tokens is None and parser.chunk_tokens == [1, 1]
    assert "generated_text" in parser.missing_end_reason()


@pytest.mark.parametrize("data, words", [
    (b'data:{"error":"Request failed during generation","error_type":"generation"}\n\n',
     "error event: Request failed during generation"),
    (b"data:{not json\n\n", "malformed event"),
    (b"data: 42\n\n", "unexpected event: 42"),
    (b'data:{"token":"abc"}\n\n', "unexpected event"),
])
def test_tgi_errors(data: bytes, words: str) -> None:
    parser = feed_pieces(TgiParser(), tgi_event(0, " a") + data, [])
    assert parser.outcome() == "error"
    assert parser.error.startswith(words)
