"""A minimal AWS Signature V4 signer for the requests boto3 will not send as they are: a
date hours off, a body that is not valid XML. Written from the AWS specification so the
cases control every signed byte."""

import datetime
import hashlib
import hmac
import http.client
import os
import urllib.parse


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_request(method, path, query="", body=b"", when=None, access_key=None, secret_key=None):
    """Sends one path-style request signed with SigV4 at time `when` (default now, UTC);
    returns (status, body bytes)."""
    endpoint = urllib.parse.urlparse(os.environ["S3_ENDPOINT"])
    access_key = access_key or os.environ["S3_ACCESS_KEY"]
    secret_key = secret_key or os.environ["S3_SECRET_KEY"]
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    day = when.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(body).hexdigest()
    host = endpoint.netloc
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    )
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed_headers = ";".join(sorted(headers))
    canonical_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers))
    canonical = "\n".join(
        [method, urllib.parse.quote(path, safe="/-_.~"), canonical_query, canonical_headers, signed_headers, payload_hash]
    )
    scope = f"{day}/us-east-1/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret_key).encode(), day)
    for part in ("us-east-1", "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
    headers["content-length"] = str(len(body))
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    try:
        conn.request(method, path + (f"?{query}" if query else ""), body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def presigned_get(path, when=None, expires=300):
    """Sends a GET of `path` as a presigned URL (query-string SigV4) signed at `when` (default
    now, UTC) and valid for `expires` seconds from then; returns (status, body bytes)."""
    endpoint = urllib.parse.urlparse(os.environ["S3_ENDPOINT"])
    access_key = os.environ["S3_ACCESS_KEY"]
    secret_key = os.environ["S3_SECRET_KEY"]
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    day = when.strftime("%Y%m%d")
    scope = f"{day}/us-east-1/s3/aws4_request"
    params = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(params.items())
    )
    canonical = "\n".join(
        ["GET", urllib.parse.quote(path, safe="/-_.~"), canonical_query, f"host:{endpoint.netloc}\n", "host",
         "UNSIGNED-PAYLOAD"]
    )
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret_key).encode(), day)
    for part in ("us-east-1", "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    query = f"{canonical_query}&X-Amz-Signature={signature}"
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=30)
    try:
        conn.request("GET", urllib.parse.quote(path, safe="/-_.~") + "?" + query)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def error_code(body):
    """The <Code> of an S3 XML error body ('' when there is none)."""
    text = body.decode(errors="replace")
    start = text.find("<Code>")
    end = text.find("</Code>")
    return text[start + 6 : end] if start >= 0 and end > start else ""
