#!/usr/bin/env python3
"""How long CompleteMultipartUpload takes through Twofold, which has the backend copy every
multipart object onto itself to add its layout record (docs/gateway.md, *The rewrite at
Complete*), against the same Complete made directly on the backend.

For each size, uploads the object in 8 MiB parts through the gateway and directly to the
backend, and times only the CompleteMultipartUpload call of each. Prints one line per size:

    size_mib parts gateway_complete_s backend_complete_s

Environment: GATEWAY_URL, GATEWAY_KEY, GATEWAY_SECRET, BACKEND_URL, BACKEND_KEY,
BACKEND_SECRET, REGION (default us-east-1), SIZES_MIB (default "64 256 1024").
"""

import os
import time

import boto3
from botocore.config import Config

PART = 8 * 1024 * 1024


def client(url, key, secret):
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=os.environ.get("REGION", "us-east-1"),
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            read_timeout=3600,
        ),
    )


def timed_complete(s3, bucket, key, size, data):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    n = (size + PART - 1) // PART
    for i in range(n):
        body = data[: min(PART, size - i * PART)]
        out = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=i + 1, Body=body)
        parts.append({"PartNumber": i + 1, "ETag": out["ETag"]})
    start = time.monotonic()
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": parts}
    )
    took = time.monotonic() - start
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == size, head
    s3.delete_object(Bucket=bucket, Key=key)
    return n, took


def main():
    env = os.environ
    gw = client(env["GATEWAY_URL"], env["GATEWAY_KEY"], env["GATEWAY_SECRET"])
    be = client(env["BACKEND_URL"], env["BACKEND_KEY"], env["BACKEND_SECRET"])
    bucket = "complete-rewrite-%d" % os.getpid()
    gw.create_bucket(Bucket=bucket)
    data = os.urandom(PART)
    print("size_mib parts gateway_complete_s backend_complete_s", flush=True)
    for mib in [int(s) for s in env.get("SIZES_MIB", "64 256 1024").split()]:
        size = mib * 1024 * 1024
        n, through = timed_complete(gw, bucket, "through-gateway", size, data)
        _, direct = timed_complete(be, bucket, "direct", size, data)
        print(f"{mib} {n} {through:.2f} {direct:.2f}", flush=True)
    gw.delete_bucket(Bucket=bucket)


if __name__ == "__main__":
    main()
