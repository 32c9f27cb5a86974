"""Authentication and malformed requests: a wrong secret (SignatureDoesNotMatch), an unknown
key (InvalidAccessKeyId), a date 20 minutes off (RequestTimeTooSkewed, S3 allows 15), a
presigned URL past its expiry (AccessDenied, "Request has expired"), and a
CompleteMultipartUpload body that is not XML (MalformedXML)."""

import datetime
import os

import pytest
from botocore.exceptions import ClientError

from conftest import make_client
from sigv4 import error_code, presigned_get, signed_request
from test_objects import code_of, status_of


def test_wrong_secret_is_signature_does_not_match(bucket, prefix):
    client = make_client(secret_key="not-the-secret-" + os.environ["S3_SECRET_KEY"])
    with pytest.raises(ClientError) as denied:
        client.put_object(Bucket=bucket, Key=prefix + "x", Body=b"x")
    assert status_of(denied) == 403
    assert code_of(denied) == "SignatureDoesNotMatch"


def test_unknown_access_key_is_invalid_access_key_id(bucket, prefix):
    client = make_client(access_key="AKIANOSUCHKEY0000000")
    with pytest.raises(ClientError) as denied:
        client.get_object(Bucket=bucket, Key=prefix + "x")
    assert status_of(denied) == 403
    assert code_of(denied) == "InvalidAccessKeyId"


def test_the_hand_signer_is_accepted(bucket, prefix):
    # The cases below rely on sigv4.py; this one shows its signature is right when the date is.
    status, body = signed_request("GET", f"/{bucket}", query=f"list-type=2&prefix={prefix}")
    assert status == 200, body


@pytest.mark.parametrize("offset_minutes", [-20, 20])
def test_skewed_date_is_request_time_too_skewed(bucket, offset_minutes):
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=offset_minutes)
    status, body = signed_request("GET", f"/{bucket}", query="list-type=2", when=when)
    assert status == 403, body
    assert error_code(body) == "RequestTimeTooSkewed", body


def test_malformed_complete_xml_is_malformed_xml(s3, bucket, prefix):
    key = prefix + "malformed.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"part")
    try:
        status, body = signed_request(
            "POST", f"/{bucket}/{key}", query=f"uploadId={upload_id}",
            body=b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
        )
        assert status == 400, body
        assert error_code(body) == "MalformedXML", body
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def test_presigned_url_past_its_expiry_is_access_denied(s3, bucket, prefix):
    key = prefix + "presigned.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"shared")
    # The same signer, in date: the URL works (so the refusal below is the expiry's).
    status, body = presigned_get(f"/{bucket}/{key}")
    assert (status, body) == (200, b"shared")
    # Signed two hours ago, valid for a minute.
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
    status, body = presigned_get(f"/{bucket}/{key}", when=when, expires=60)
    assert status == 403, body
    assert error_code(body) == "AccessDenied", body
    assert b"expired" in body, body
