"""The tests' own S3 client (boto3, beside moto in .ci/deps's virtualenv), to
set up and inspect buckets independently of cargo-seed's client.

    s3tool.py ENDPOINT mb BUCKET
    s3tool.py ENDPOINT put BUCKET KEY           (body on stdin)
    s3tool.py ENDPOINT get BUCKET KEY           (body on stdout; exit 3 if absent)
    s3tool.py ENDPOINT list BUCKET PREFIX       (JSON: key -> LastModified)
    s3tool.py ENDPOINT etags BUCKET PREFIX      (JSON: key -> ETag, unquoted)
    s3tool.py ENDPOINT upload BUCKET PREFIX DIR (every file under DIR but tmp/)
"""
import json
import os
import sys

import boto3
import botocore.exceptions

endpoint, command, bucket, *args = sys.argv[1:]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id="testing",
    aws_secret_access_key="testing",
    region_name="us-east-1",
)
if command == "mb":
    s3.create_bucket(Bucket=bucket)
elif command == "put":
    s3.put_object(Bucket=bucket, Key=args[0], Body=sys.stdin.buffer.read())
elif command == "get":
    try:
        body = s3.get_object(Bucket=bucket, Key=args[0])["Body"].read()
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
            sys.exit(3)
        raise
    sys.stdout.buffer.write(body)
elif command == "list":
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=args[0]):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = obj["LastModified"].isoformat()
    json.dump(found, sys.stdout)
elif command == "etags":
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=args[0]):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = obj["ETag"].strip('"')
    json.dump(found, sys.stdout)
elif command == "upload":
    prefix, root = args
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            key = os.path.relpath(path, root)
            if not key.startswith("tmp/"):
                s3.upload_file(path, bucket, f"{prefix}/{key}")
else:
    sys.exit(f"unknown command {command}")
