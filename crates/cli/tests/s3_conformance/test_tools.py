"""Real S3 tools through the server: the AWS CLI (cp, ls, head-object, rm) and rclone, which
syncs a tree of real files up and back down byte-identical."""

import filecmp
import json
import os
import subprocess

import pytest


def tool_env():
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=os.environ["S3_ACCESS_KEY"],
        AWS_SECRET_ACCESS_KEY=os.environ["S3_SECRET_KEY"],
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=os.environ["S3_ENDPOINT"],
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_REQUEST_CHECKSUM_CALCULATION="when_required",
        AWS_RESPONSE_CHECKSUM_VALIDATION="when_required",
    )
    return env


def aws(*args):
    cli = os.path.join(os.environ["S3_TOOLS_BIN"], "aws")
    done = subprocess.run([cli, *args], env=tool_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"aws {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def test_aws_cli_copies_lists_heads_and_removes(bucket, prefix, tmp_path):
    source = tmp_path / "upload.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    url = f"s3://{bucket}/{prefix}cli/upload.bin"
    aws("s3", "cp", str(source), url)
    assert "upload.bin" in aws("s3", "ls", f"s3://{bucket}/{prefix}cli/")
    head = json.loads(aws("s3api", "head-object", "--bucket", bucket, "--key", f"{prefix}cli/upload.bin"))
    assert head["ContentLength"] == source.stat().st_size
    back = tmp_path / "download.bin"
    aws("s3", "cp", url, str(back))
    assert back.read_bytes() == source.read_bytes()
    aws("s3", "rm", url)
    # `aws s3 ls` exits 1 when nothing matches; s3api lists the empty prefix as such.
    left = json.loads(aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", f"{prefix}cli/"))
    assert not left.get("Contents"), left


def rclone(*args):
    env = dict(os.environ)
    # rclone refuses a custom CA bundle on its own transport; the server is plain HTTP anyway.
    env.pop("AWS_CA_BUNDLE", None)
    env.update(
        RCLONE_CONFIG_SUT_TYPE="s3",
        RCLONE_CONFIG_SUT_PROVIDER="Other",
        RCLONE_CONFIG_SUT_ACCESS_KEY_ID=os.environ["S3_ACCESS_KEY"],
        RCLONE_CONFIG_SUT_SECRET_ACCESS_KEY=os.environ["S3_SECRET_KEY"],
        RCLONE_CONFIG_SUT_ENDPOINT=os.environ["S3_ENDPOINT"],
        RCLONE_CONFIG_SUT_REGION="us-east-1",
        RCLONE_CONFIG_SUT_FORCE_PATH_STYLE="true",
    )
    done = subprocess.run(
        [os.environ["S3_RCLONE"], "--config", os.devnull, *args],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, f"rclone {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def same_tree(left, right):
    """Every file of both trees present in the other with the same bytes."""
    compared = filecmp.dircmp(left, right)
    assert not compared.left_only and not compared.right_only, (compared.left_only, compared.right_only)
    _, mismatch, errors = filecmp.cmpfiles(left, right, compared.common_files, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)
    for sub in compared.common_dirs:
        same_tree(os.path.join(left, sub), os.path.join(right, sub))


def test_rclone_syncs_a_tree_up_and_back_byte_identical(bucket, prefix, tmp_path):
    tree = os.environ["S3_SYNC_TREE"]
    remote = f"sut:{bucket}/{prefix}tree"
    # A small upload cutoff and chunk size, so the larger files go up as multipart uploads.
    rclone("sync", tree, remote, "--s3-upload-cutoff", "1M", "--s3-chunk-size", "5M")
    rclone("check", tree, remote)
    back = tmp_path / "back"
    rclone("sync", remote, str(back))
    same_tree(tree, str(back))
    # A second sync of an unchanged tree transfers nothing and changes nothing.
    rclone("sync", tree, remote, "--s3-upload-cutoff", "1M", "--s3-chunk-size", "5M")
    rclone("purge", remote)
    assert rclone("lsf", "-R", f"sut:{bucket}/{prefix}") == ""
