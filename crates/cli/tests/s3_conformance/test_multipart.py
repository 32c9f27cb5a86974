"""Multipart uploads: create, upload parts, list parts, complete (the ETag of the form
"md5-of-part-md5s-N"), abort, and an upload abandoned midway that another client finds in
the listing of uploads and completes."""

import hashlib

import pytest
from botocore.exceptions import ClientError

from test_objects import body, code_of

PART = 5 * 1024 * 1024  # the smallest part S3 accepts before the last


def multipart_etag(parts):
    digest = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    return f'"{digest}-{len(parts)}"'


def upload_parts(s3, bucket, key, upload_id, parts, first_number=1):
    done = []
    for number, data in enumerate(parts, start=first_number):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)["ETag"]
        assert etag == '"' + hashlib.md5(data).hexdigest() + '"'
        done.append({"PartNumber": number, "ETag": etag})
    return done


def test_multipart_upload_lists_parts_and_completes(s3, bucket, prefix):
    key = prefix + "multi.bin"
    parts = [body(PART, 1), body(PART, 2), body(123_457, 3)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    done = upload_parts(s3, bucket, key, upload_id, parts)

    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (d["PartNumber"], d["ETag"], len(data)) for d, data in zip(done, parts)
    ]
    with pytest.raises(ClientError) as unfinished:
        s3.head_object(Bucket=bucket, Key=key)
    assert unfinished.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    completed = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    assert completed["ETag"] == multipart_etag(parts)
    whole = b"".join(parts)
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["ContentLength"] == len(whole)
    assert got["ETag"] == multipart_etag(parts)
    assert hashlib.sha256(got["Body"].read()).digest() == hashlib.sha256(whole).digest()
    middle = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={PART - 10}-{PART + 9}")["Body"].read()
    assert middle == whole[PART - 10 : PART + 10]


def test_abort_discards_the_upload(s3, bucket, prefix):
    key = prefix + "aborted.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    upload_parts(s3, bucket, key, upload_id, [body(PART, 4)])
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    with pytest.raises(ClientError) as gone:
        s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert code_of(gone) == "NoSuchUpload"
    with pytest.raises(ClientError) as no_object:
        s3.head_object(Bucket=bucket, Key=key)
    assert no_object.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_upload_abandoned_midway_is_listed_then_completed(s3, bucket, prefix):
    key = prefix + "resumed.bin"
    parts = [body(PART, 7), body(PART, 8), body(1000, 9)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    upload_parts(s3, bucket, key, upload_id, parts[:1])
    # The first client is gone; a second one finds the upload and what it holds.
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [(key, upload_id)]
    held = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in held] == [(1, PART)]
    done = [{"PartNumber": 1, "ETag": held[0]["ETag"]}]
    done += upload_parts(s3, bucket, key, upload_id, parts[1:], first_number=2)
    completed = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    assert completed["ETag"] == multipart_etag(parts)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(parts)
    assert not s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads")


def test_unknown_upload_id_is_no_such_upload(s3, bucket, prefix):
    with pytest.raises(ClientError) as unknown:
        s3.upload_part(Bucket=bucket, Key=prefix + "x", UploadId="no-such-upload", PartNumber=1, Body=b"x")
    assert code_of(unknown) == "NoSuchUpload"


def test_complete_with_a_wrong_part_etag_is_invalid_part(s3, bucket, prefix):
    key = prefix + "wrong-etag.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    upload_parts(s3, bucket, key, upload_id, [body(1000, 1)])
    with pytest.raises(ClientError) as wrong:
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"'}]},
        )
    assert code_of(wrong) == "InvalidPart"
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
