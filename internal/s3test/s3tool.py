"""The S3 tests' independent client: boto3 creates buckets and uploads objects to the server the
Go tests started. Endpoint and credentials come from the AWS environment variables.

    s3tool.py mkbucket BUCKET
    s3tool.py put BUCKET KEY FILE [KEY FILE ...]
"""
import os
import sys

import boto3
from botocore.config import Config


def main(argv):
    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"],
        config=Config(s3={"addressing_style": "path"},
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"),
    )
    cmd, bucket, rest = argv[0], argv[1], argv[2:]
    if cmd == "mkbucket":
        s3.create_bucket(Bucket=bucket)
    elif cmd == "put":
        for key, path in zip(rest[::2], rest[1::2]):
            with open(path, "rb") as f:
                s3.put_object(Bucket=bucket, Key=key, Body=f.read())
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
