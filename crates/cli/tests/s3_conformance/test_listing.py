"""ListObjectsV2: prefix, delimiter (common prefixes), max-keys and continuation tokens."""

KEYS = ["a.txt", "b/1", "b/2", "b/c/3", "d/4", "e.txt", "f/5"]


def put_tree(s3, bucket, prefix):
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=prefix + key, Body=key.encode())


def test_prefix_lists_all_keys_below_it_in_order(s3, bucket, prefix):
    put_tree(s3, bucket, prefix)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    assert [o["Key"] for o in listed["Contents"]] == [prefix + k for k in KEYS]
    assert listed["KeyCount"] == len(KEYS)
    assert listed["IsTruncated"] is False
    assert all(o["Size"] == len(k) for o, k in zip(listed["Contents"], KEYS))
    below = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "b/")
    assert [o["Key"] for o in below["Contents"]] == [prefix + k for k in ("b/1", "b/2", "b/c/3")]
    nothing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "zzz")
    assert nothing["KeyCount"] == 0 and "Contents" not in nothing


def test_delimiter_groups_common_prefixes(s3, bucket, prefix):
    put_tree(s3, bucket, prefix)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
    assert [o["Key"] for o in listed["Contents"]] == [prefix + "a.txt", prefix + "e.txt"]
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == [prefix + p for p in ("b/", "d/", "f/")]
    assert listed["KeyCount"] == 5
    inner = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "b/", Delimiter="/")
    assert [o["Key"] for o in inner["Contents"]] == [prefix + "b/1", prefix + "b/2"]
    assert [p["Prefix"] for p in inner["CommonPrefixes"]] == [prefix + "b/c/"]


def test_max_keys_and_continuation_walk_every_key_once(s3, bucket, prefix):
    put_tree(s3, bucket, prefix)
    seen, token, pages = [], None, 0
    while True:
        args = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 3}
        if token:
            args["ContinuationToken"] = token
        page = s3.list_objects_v2(**args)
        pages += 1
        assert page["MaxKeys"] == 3
        assert page["KeyCount"] <= 3
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
        assert pages < 10, "continuation never ends"
    assert seen == [prefix + k for k in KEYS]
    assert pages == 3


def test_continuation_with_delimiter_counts_prefixes(s3, bucket, prefix):
    put_tree(s3, bucket, prefix)
    first = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/", MaxKeys=2)
    assert first["IsTruncated"] is True
    rest = s3.list_objects_v2(
        Bucket=bucket, Prefix=prefix, Delimiter="/", ContinuationToken=first["NextContinuationToken"]
    )
    entries = []
    for page in (first, rest):
        entries += [o["Key"] for o in page.get("Contents", [])]
        entries += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert sorted(entries) == sorted(prefix + e for e in ("a.txt", "b/", "d/", "e.txt", "f/"))


def test_start_after_skips_earlier_keys(s3, bucket, prefix):
    put_tree(s3, bucket, prefix)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, StartAfter=prefix + "b/2")
    assert [o["Key"] for o in listed["Contents"]] == [prefix + k for k in ("b/c/3", "d/4", "e.txt", "f/5")]
