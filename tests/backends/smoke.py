"""S3 smoke checks against one backend started by tests/backends/{ceph,moto}.sh.

Usage: python smoke.py NAME ENDPOINT REGION ACCESS_KEY SECRET_KEY [ACCESS_KEY_2 SECRET_KEY_2]

Prints one line per check (`ok`, `FAIL`, or `note` for a known backend quirk, which does not
count), then `N passed, M failed` last. Exits 1 on any failure.
"""
import hashlib
import os
import sys
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

name, endpoint, region, ak, sk = sys.argv[1:6]
ak2, sk2 = (sys.argv[6], sys.argv[7]) if len(sys.argv) > 7 else (None, None)
passed = failed = 0


def client(access, secret):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def check(what, fn):
    global passed, failed
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any failure is reported
        failed += 1
        print(f"FAIL {name}: {what}: {type(e).__name__}: {e}", flush=True)
        return False
    passed += 1
    print(f"ok   {name}: {what}", flush=True)
    return True


def note(msg):
    print(f"note {name}: {msg}", flush=True)


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def error_code(fn):
    try:
        fn()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


s3 = client(ak, sk)
bucket = f"twofold-smoke-{uuid.uuid4().hex[:12]}"
small = os.urandom(1000) + b"twofold"
md5 = hashlib.md5(small).hexdigest()

check("ListBuckets", lambda: s3.list_buckets())
check(f"CreateBucket {bucket}", lambda: s3.create_bucket(Bucket=bucket))


def put_small():
    r = s3.put_object(Bucket=bucket, Key="dir/a.bin", Body=small, Metadata={"twofold": "yes"})
    expect(r["ETag"].strip('"') == md5, f"ETag {r['ETag']} is not the MD5 {md5}")


check("PutObject", put_small)


def get_small():
    body = s3.get_object(Bucket=bucket, Key="dir/a.bin")["Body"].read()
    expect(body == small, "body differs")


check("GetObject", get_small)


def head_small():
    h = s3.head_object(Bucket=bucket, Key="dir/a.bin")
    expect(h["ContentLength"] == len(small), f"ContentLength {h['ContentLength']}")
    expect(h["ETag"].strip('"') == md5, f"ETag {h['ETag']}")
    expect(h.get("Metadata", {}).get("twofold") == "yes", f"Metadata {h.get('Metadata')}")


check("HeadObject", head_small)


def range_get():
    r = s3.get_object(Bucket=bucket, Key="dir/a.bin", Range="bytes=10-19")
    expect(r["Body"].read() == small[10:20], "range body differs")
    expect(r["ResponseMetadata"]["HTTPStatusCode"] == 206, "not 206")


check("GetObject Range", range_get)


def list_v2():
    s3.put_object(Bucket=bucket, Key="dir/sub/b.txt", Body=b"b")
    s3.put_object(Bucket=bucket, Key="top.txt", Body=b"t")
    r = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")
    keys = [o["Key"] for o in r.get("Contents", [])]
    expect(keys == ["dir/a.bin", "dir/sub/b.txt"], f"keys {keys}")
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    keys = [o["Key"] for o in r.get("Contents", [])]
    prefixes = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    expect(keys == ["top.txt"] and prefixes == ["dir/"], f"keys {keys} prefixes {prefixes}")
    r = s3.list_objects_v2(Bucket=bucket, MaxKeys=1)
    expect(r["IsTruncated"] and r.get("NextContinuationToken"), "no continuation")
    r = s3.list_objects_v2(Bucket=bucket, MaxKeys=10, ContinuationToken=r["NextContinuationToken"])
    expect(len(r.get("Contents", [])) == 2, f"second page {r.get('Contents')}")


check("ListObjectsV2 (prefix, delimiter, continuation)", list_v2)


def multipart():
    parts_data = [os.urandom(5 * 1024 * 1024), os.urandom(1024 * 1024 + 7)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp.bin")
    uid = up["UploadId"]
    parts = []
    for n, data in enumerate(parts_data, 1):
        r = s3.upload_part(Bucket=bucket, Key="mp.bin", UploadId=uid, PartNumber=n, Body=data)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
        expect(r["ETag"].strip('"') == hashlib.md5(data).hexdigest(), f"part {n} ETag {r['ETag']}")
    lp = s3.list_parts(Bucket=bucket, Key="mp.bin", UploadId=uid)
    expect([p["PartNumber"] for p in lp.get("Parts", [])] == [1, 2], "ListParts")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp.bin", UploadId=uid, MultipartUpload={"Parts": parts}
    )
    whole = b"".join(parts_data)
    body = s3.get_object(Bucket=bucket, Key="mp.bin")["Body"].read()
    expect(body == whole, "multipart body differs")
    h = s3.head_object(Bucket=bucket, Key="mp.bin")
    expect(h["ContentLength"] == len(whole), f"ContentLength {h['ContentLength']}")
    want = hashlib.md5(b"".join(hashlib.md5(d).digest() for d in parts_data)).hexdigest() + "-2"
    expect(h["ETag"].strip('"') == want, f"HEAD ETag {h['ETag']}, expected {want}")
    etag = done.get("ETag", "")
    if etag.strip('"') != want:
        note(f"CompleteMultipartUpload answered ETag {etag!r} (HEAD gives {want!r})")


check("multipart upload (2 parts, ListParts, Complete, GET, HEAD)", multipart)


def copy():
    s3.copy_object(Bucket=bucket, Key="copy.bin", CopySource={"Bucket": bucket, "Key": "dir/a.bin"})
    expect(s3.get_object(Bucket=bucket, Key="copy.bin")["Body"].read() == small, "copy differs")


check("CopyObject", copy)


def versioning():
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    st = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    expect(st == "Enabled", f"status {st}")
    v1 = s3.put_object(Bucket=bucket, Key="v.txt", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="v.txt", Body=b"two")["VersionId"]
    expect(v1 and v2 and v1 != v2, f"version ids {v1} {v2}")
    vs = s3.list_object_versions(Bucket=bucket, Prefix="v.txt").get("Versions", [])
    expect(sorted(v["VersionId"] for v in vs) == sorted([v1, v2]), f"versions {vs}")
    old = s3.get_object(Bucket=bucket, Key="v.txt", VersionId=v1)["Body"].read()
    expect(old == b"one", f"old version body {old!r}")
    expect(s3.get_object(Bucket=bucket, Key="v.txt")["Body"].read() == b"two", "latest body")


check("versioning enable, two versions, GET by VersionId", versioning)


def checksums():
    # Observed, not required: does the backend check and keep x-amz-checksum-* values?
    code, status = error_code(
        lambda: s3.put_object(Bucket=bucket, Key="ck.bin", Body=b"abc", ChecksumCRC32="AAAAAA==")
    )
    if code is None:
        note("a PUT with a wrong x-amz-checksum-crc32 was accepted (checksums not checked)")
    s3.put_object(Bucket=bucket, Key="ck.bin", Body=b"abc", ChecksumAlgorithm="SHA256")
    h = s3.head_object(Bucket=bucket, Key="ck.bin", ChecksumMode="ENABLED")
    if not h.get("ChecksumSHA256"):
        note("x-amz-checksum-sha256 of a PUT is not kept (HEAD with checksum mode shows none)")


check("PutObject with x-amz-checksum-*", checksums)


def bad_secret():
    code, status = error_code(lambda: client(ak, sk + "x").list_objects_v2(Bucket=bucket))
    if code is None:
        note("a request signed with a wrong secret was accepted (signatures are not checked)")
    else:
        expect(status == 403 and code == "SignatureDoesNotMatch", f"{status} {code}")


check("wrong secret key", bad_secret)

if ak2:
    other = client(ak2, sk2)

    def cross_user():
        code, status = error_code(lambda: other.get_object(Bucket=bucket, Key="dir/a.bin"))
        expect(status == 403 and code == "AccessDenied", f"second user read: {status} {code}")
        b2 = bucket + "-2"
        other.create_bucket(Bucket=b2)
        other.put_object(Bucket=b2, Key="k", Body=b"2")
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        expect(b2 not in names, "the main user sees the second user's bucket")
        other.delete_object(Bucket=b2, Key="k")
        other.delete_bucket(Bucket=b2)

    check("second user is kept out of the main user's bucket", cross_user)


def cleanup():
    keys = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []) + page.get("DeleteMarkers", []):
            keys.append({"Key": v["Key"], "VersionId": v["VersionId"]})
    for i in range(0, len(keys), 1000):
        r = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[i : i + 1000]})
        expect(not r.get("Errors"), f"errors {r.get('Errors')}")
    s3.delete_bucket(Bucket=bucket)


check("DeleteObjects (all versions) and DeleteBucket", cleanup)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
