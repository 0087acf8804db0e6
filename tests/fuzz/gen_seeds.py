#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target: OUT/<target>/<name>, a few valid inputs each.

Usage: python3 gen_seeds.py OUT

Standard library only. The S3 documentation's aws-chunked bodies and the envelope vectors
are rebuilt from the committed vectors (tests/vectors/sigv4/s3-examples.json and
tests/vectors/format-v2.json and format-v1.json); the small signed aws-chunked bodies are signed here with the
same chain as gateway/src/sigv4/chunk.rs, checked first against the documented signatures.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS = os.path.join(HERE, "..", "vectors")


def load(*path):
    with open(os.path.join(VECTORS, *path), encoding="utf-8") as f:
        return json.load(f)


def write(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- http_request_head ------------------------------------------------------------------

def request_heads(s3):
    heads = {
        "get_range": b"GET /bucket/dir/key.txt HTTP/1.1\r\nHost: localhost:8080\r\n"
        b"Range: bytes=0-9\r\nUser-Agent: seed\r\n\r\n",
        "put_content_length": b"PUT /bucket/key?partNumber=1&uploadId=abc%2Bdef HTTP/1.1\r\n"
        b"Host: localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
        "put_chunked": b"PUT /bucket/k%20ey HTTP/1.1\r\nHost: bucket.localhost\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\n"
        b"x-amz-trailer: x-amz-checksum-crc32\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "list_virtual_host": b"GET /?list-type=2&prefix=a%2Fb&delimiter=/&max-keys=2 HTTP/1.1\r\n"
        b"Host: examplebucket.localhost\r\nRange: bytes=-500\r\nConnection: close\r\n\r\n",
        "options_star": b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "head_http10": b"\r\nHEAD /b-1/k HTTP/1.0\r\nConnection: keep-alive\r\n"
        b"Range: bytes=5-, 7-9\r\n\r\n",
        "delete_uploads": b"DELETE /bucket/key?uploadId=x HTTP/1.1\r\nHost: LOCALHOST\r\n"
        b"Content-Length: 0, 0\r\n\r\n",
    }
    # The S3 API Reference's example requests, as they go on the wire.
    examples = list(s3["header_auth"]) + [s3["chunked"], s3["chunked_trailer"]]
    for i, case in enumerate(examples):
        lines = [f"{case['method']} {case['target']} HTTP/1.1"]
        lines += [f"{n}: {v}" for n, v in case["headers"]]
        heads[f"s3_example_{i}"] = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return heads


# --- http_chunked (first byte: where the input is split) --------------------------------

def http_chunked():
    return {
        "simple": b"\x80" + b"5\r\nhello\r\n0\r\n\r\n",
        "ext_trailer": b"\x10" + b"a;name=value; x=\"q\"\r\n0123456789\r\n3 \r\nabc\r\n"
        b"0\r\nx-trailer: v\r\nother: w\r\n\r\n",
        "empty": b"\x00" + b"000\r\n\r\n",
        "upper_hex_next_message": b"\xff" + b"1A\r\n" + b"z" * 26 + b"\r\n0\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "split_in_size": b"\x02" + b"10\r\n" + bytes(range(16)) + b"\r\n0\r\n\r\n",
    }


# --- aws_chunked (first byte: piece size, 0 for all at once) ----------------------------

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def hmac256(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


class Chain:
    """The chunk signature chain of gateway/src/sigv4/chunk.rs."""

    def __init__(self, s3, seed):
        date = s3["timestamp"][:8]
        k = hmac256(("AWS4" + s3["secret_access_key"]).encode(), date.encode())
        for part in (s3["region"], "s3", "aws4_request"):
            k = hmac256(k, part.encode())
        self.key = k
        self.prefix = f"{s3['timestamp']}\n{date}/{s3['region']}/s3/aws4_request\n"
        self.previous = seed

    def _sign(self, text):
        self.previous = hmac256(self.key, text.encode()).hex()
        return self.previous

    def chunk(self, data):
        return self._sign(
            "AWS4-HMAC-SHA256-PAYLOAD\n" + self.prefix + self.previous + "\n"
            + EMPTY_SHA256 + "\n" + hashlib.sha256(data).hexdigest()
        )

    def trailer(self, canonical):
        return self._sign(
            "AWS4-HMAC-SHA256-TRAILER\n" + self.prefix + self.previous + "\n"
            + hashlib.sha256(canonical).hexdigest()
        )


def signed_body(chain, chunks, trailers=None):
    b = b""
    for c in list(chunks) + [b""]:
        b += f"{len(c):x};chunk-signature={chain.chunk(c)}\r\n".encode()
        if c:
            b += c + b"\r\n"
    if trailers is not None:
        canonical = b"".join(f"{n}:{v}\n".encode() for n, v in sorted(trailers))
        for n, v in trailers:
            b += f"{n}:{v}\r\n".encode()
        b += f"x-amz-trailer-signature:{chain.trailer(canonical)}\r\n".encode()
    return b + b"\r\n"


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def aws_chunked(s3):
    seeds = {}
    # The documentation's bodies, rebuilt from their documented signatures; the chain here
    # must reproduce those signatures, or the small signed seeds below would be worthless.
    for name, trailer_case in (("chunked", False), ("chunked_trailer", True)):
        case = s3[name]
        chain = Chain(s3, case["seed_signature"])
        body = b""
        for c in case["chunks"]:
            data = b"a" * c["size"]
            assert chain.chunk(data) == c["signature"], f"{name}: chain disagrees with the docs"
            body += f"{c['size']:x};chunk-signature={c['signature']}\r\n".encode()
            if data:
                body += data + b"\r\n"
        if trailer_case:
            assert chain.trailer(case["canonical_trailers"].encode()) == case["trailer_signature"]
            for n, v in case["trailers"]:
                body += f"{n}:{v}\r\n".encode()
            body += f"x-amz-trailer-signature:{case['trailer_signature']}\r\n".encode()
        body += b"\r\n"
        if "body_length" in case:
            assert len(body) == case["body_length"]
        seeds[f"s3_doc_{name}"] = b"\x00" + body
        seeds[f"s3_doc_{name}_pieces"] = b"\xfb" + body

    crc = crc32_b64(b"hello world")
    seeds["unsigned_crc32"] = b"\x00" + (
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n" + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    )
    seeds["unsigned_crc32_bytewise"] = b"\x01" + (
        b"b\r\nhello world\r\n0\r\n" + f"x-amz-checksum-crc32:{crc}\r\n".encode()
    )
    seeds["unsigned_no_trailer"] = b"\x00" + b"3\r\nabc\r\n0\r\n\r\n"
    seeds["unsigned_eof_after_last"] = b"\x03" + b"3\r\nabc\r\n0\r\n"
    chain = Chain(s3, s3["chunked"]["seed_signature"])
    seeds["signed_small"] = b"\x00" + signed_body(chain, [b"hello", b"x" * 40])
    chain = Chain(s3, s3["chunked_trailer"]["seed_signature"])
    data = b"trailer data"
    crc32c = "AAAAAA=="  # any base64 value: the decoder does not check the checksum itself
    seeds["signed_trailer_small"] = b"\x00" + signed_body(
        chain, [data], [("x-amz-checksum-crc32c", crc32c)]
    )
    return seeds


# --- envelope_reader ---------------------------------------------------------------------

def envelope(fmt, fmt_v1):
    seeds = {}
    for i, v in enumerate(fmt_v1["vectors"]):
        seeds[f"header_v1_{i}"] = bytes.fromhex(v["header"])
    vectors = fmt["vectors"]
    for i, v in enumerate(vectors):
        header = bytes.fromhex(v["header"])
        seeds[f"header_{i}"] = header
        # The stored bodies that open with the fuzz target's fixed cipher (4 KiB segments,
        # single part; the cipher depends on the keys, segment size and part only).
        if v["segment_size_log2"] == 12 and v["part_number"] == 0 and v["upload_id"] is None:
            seeds[f"stored_{i}_{v['plaintext_len']}"] = bytes.fromhex(v["stored"])
    b64 = base64.urlsafe_b64encode(bytes.fromhex(vectors[0]["header"])).rstrip(b"=")
    seeds["objmeta_value"] = b64
    seeds["objmeta_json"] = b'{"Metadata": {"twofold": "' + b64 + b'"}, "ContentLength": 0}'
    seeds["objmeta_flat_json"] = b'{"x-amz-meta-twofold": "' + b64 + b'"}'
    record = fmt.get("metadata_record")
    if record:
        seeds["meta_record_value"] = record["value"].encode()
        seeds["meta_record_plaintext"] = bytes.fromhex(record["plaintext"])
    return seeds


# --- post_form ------------------------------------------------------------------------

def post_forms():
    """Browser forms with boundary `b` (what the target parses with), and bare policies."""
    def form(fields, filename, data):
        out = b""
        for n, v in fields:
            out += b"--b\r\nContent-Disposition: form-data; name=\"" + n + b"\"\r\n\r\n" + v + b"\r\n"
        out += (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename
                + b"\"\r\nContent-Type: image/png\r\n\r\n" + data + b"\r\n--b--\r\n")
        return out
    policy = json.dumps({"expiration": "2030-01-01T00:00:00Z", "conditions": [
        {"bucket": "b"}, ["starts-with", "$key", "up/"], ["eq", "$acl", "private"],
        ["content-length-range", 1, 10]]}).encode()
    return {
        "form": form([(b"key", b"up/${filename}"), (b"acl", b"private"),
                      (b"policy", base64.b64encode(policy))], b"a.png", b"\x89PNG\r\n--bx"),
        "form_preamble": b"preamble\r\n" + form([(b"Key", b"k")], b"", b""),
        "form_after_file": form([(b"key", b"k")], b"f", b"x")[:-4] + (
            b"\r\nContent-Disposition: form-data; name=\"acl\"\r\n\r\nv\r\n--b--\r\n"),
        "policy": policy,
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    s3 = load("sigv4", "s3-examples.json")
    fmt = load("format-v2.json")
    fmt_v1 = load("format-v1.json")
    groups = {
        "http_request_head": request_heads(s3),
        "http_chunked": http_chunked(),
        "aws_chunked": aws_chunked(s3),
        "envelope_reader": envelope(fmt, fmt_v1),
        "post_form": post_forms(),
    }
    for target, seeds in groups.items():
        for name, data in seeds.items():
            write(out, target, name, data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
