//! Encryption at rest on an in-process service: objects on an encrypted packed tier (one
//! store, or `ec:2+1` fragments over three domains) read back byte-identical under each
//! cipher, whole and by ranges; no stored byte of the tier holds the plaintext (a plain
//! packed tier with the same codec, searched the same way, does); a move between encrypted
//! tiers re-seals under the target's key; a wrong key, a missing key and a flipped
//! ciphertext byte are refused naming the tier and the key id, never served; bad key files
//! and variables are refused at start-up naming the tier, the field and the file.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use strata_codec::format::encrypted::KeyId;
use strata_server::{Limits, ServeOptions};

const WAIT: Duration = Duration::from_secs(60);
const MIB: usize = 1 << 20;
/// Found in every stored copy of [`secret_text`] unless it is encrypted (codec `none`
/// stores frames raw).
const MARKER: &[u8] = b"TOP-SECRET-PAYLOAD";

/// Text with the marker on every line, a little over two frames long.
fn secret_text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(format!("line {i:07} TOP-SECRET-PAYLOAD station=42\n").as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn key_file(dir: &Path, name: &str, byte: u8) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, [byte; 32]).unwrap();
    path
}

/// [`TEST_RULES`] with `hot` a plain packed tier (codec none, the control), `warm` (where
/// objects are written) encrypted with `cipher` and `key`, over `warm_stores` when given
/// (`ec:2+1`), and `cold` encrypted with AES-256-GCM under `cold_key`; every object cold
/// at once, so a planning pass demotes.
fn rules(cipher: &str, key: &Path, cold_key: &Path, warm_stores: Option<&[PathBuf]>) -> String {
    let domains = warm_stores.map_or(String::new(), |stores| {
        let list: Vec<String> = stores
            .iter()
            .map(|s| format!("{:?}", s.display().to_string()))
            .collect();
        format!("stores = [{}]\nredundancy = \"ec:2+1\"\n", list.join(", "))
    });
    TEST_RULES
        .replace(
            "name = \"hot\"\n",
            "name = \"hot\"\nlayout = \"packed\"\ncodec = \"none\"\n",
        )
        .replace(
            "name = \"warm\"\n",
            &format!(
                "name = \"warm\"\n{domains}layout = \"packed\"\ncodec = \"none\"\n\
                 encryption = {cipher:?}\nencryption_key_file = {:?}\n",
                key.display().to_string()
            ),
        )
        .replace(
            "name = \"cold\"\n",
            &format!(
                "name = \"cold\"\nlayout = \"packed\"\ncodec = \"none\"\n\
                 encryption = \"aes-256-gcm\"\nencryption_key_file = {:?}\n",
                cold_key.display().to_string()
            ),
        )
        .replace("hot_within = \"1h\"", "hot_within = \"0s\"")
        .replace("warm_within = \"2h\"", "warm_within = \"0s\"")
}

/// Every byte of every file under `dir`, searched for `needle`: the files that hold it.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

async fn ranged(server: &TestServer, key: &str, from: usize, to: usize) -> Vec<u8> {
    let response = server
        .client
        .get(server.url(&format!("/v1/objects/{key}")))
        .header("range", format!("bytes={from}-{to}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206, "{key} {from}-{to}");
    response.bytes().await.unwrap().to_vec()
}

async fn assert_unreadable(server: &TestServer, key: &str, expect: &[&str]) {
    let response = server.get(&format!("/v1/objects/{key}")).await;
    assert_eq!(response.status(), 500, "{key} must not be served");
    let error = response.json_value().await;
    assert_eq!(error["error"]["code"], "object_damaged", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains(key), "{message}");
    for part in expect {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
    assert!(!message.contains("TOP-SECRET"), "{message}");
}

async fn round_trip_on(cipher: &str, erasure_coded: bool) {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = key_file(keys.path(), "warm.key", 0x11);
    let cold_key = key_file(keys.path(), "cold.key", 0x22);
    let domains: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("d{i}"))).collect();
    let stores = erasure_coded.then_some(&domains[..]);
    let server = start_in(
        dir,
        &rules(cipher, &key, &cold_key, stores),
        Limits::default(),
    )
    .await;
    let text = secret_text(2 * MIB + 123_457);
    let objects: [(&str, &[u8]); 3] = [
        ("docs/secret.txt", &text),
        ("tiny", b"TOP-SECRET-PAYLOAD, short"),
        ("empty", b""),
    ];
    for (key, data) in objects {
        assert_eq!(server.put(key, data).await.status(), 201, "{key}");
        assert_eq!(server.tier_of(key).await, "warm");
        assert!(server.object(key).await == data, "{key} reads back");
    }
    for (from, to) in [(0, 0), (MIB - 7, MIB + 7), (MIB - 1, 2 * MIB + 5)] {
        assert!(ranged(&server, "docs/secret.txt", from, to).await == text[from..=to]);
    }
    // The control: the same bytes on the plain packed tier are found by the same search.
    assert_eq!(server.put("control", &text).await.status(), 201);
    let warm_roots: Vec<PathBuf> = if erasure_coded {
        domains.clone()
    } else {
        vec![server.tier_dir("warm")]
    };
    let mut stored_files = 0;
    for root in &warm_roots {
        assert_eq!(
            files_holding(root, MARKER),
            Vec::<PathBuf>::new(),
            "{cipher}"
        );
        assert!(files_holding(root, b"station=42").is_empty());
        stored_files += files_under(&root.join(if erasure_coded { "ec" } else { "objects" })).len();
    }
    assert!(stored_files >= 3, "the search saw the stored objects");
    assert!(
        files_holding(server.tier_dir("hot").parent().unwrap(), MARKER).is_empty(),
        "nothing on the other tiers yet"
    );
    let control = plain_copy(&server, "control", &text).await;
    assert!(
        !files_holding(&control, MARKER).is_empty(),
        "the search finds plaintext"
    );
}

/// Moves `key` to the plain packed `hot` tier (a burst of reads promotes) and returns that
/// tier's directory, which then holds its plaintext frames.
async fn plain_copy(server: &TestServer, key: &str, data: &[u8]) -> PathBuf {
    server.reads(key, 50).await;
    eventually(WAIT, "the control object on hot", || async {
        (server.tier_of(key).await == "hot").then_some(())
    })
    .await;
    assert!(server.object(key).await == data);
    server.tier_dir("hot")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xchacha_on_a_packed_tier_round_trips_and_stores_no_plaintext() {
    round_trip_on("xchacha20poly1305", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aes_gcm_on_a_packed_tier_round_trips_and_stores_no_plaintext() {
    round_trip_on("aes-256-gcm", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xchacha_on_an_erasure_coded_tier_round_trips_and_stores_no_plaintext() {
    round_trip_on("xchacha20poly1305", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aes_gcm_on_an_erasure_coded_tier_round_trips_and_stores_no_plaintext() {
    round_trip_on("aes-256-gcm", true).await;
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_between_encrypted_tiers_reseals_under_the_targets_key() {
    let keys = tempfile::tempdir().unwrap();
    let key = key_file(keys.path(), "warm.key", 0x31);
    let cold_key = key_file(keys.path(), "cold.key", 0x32);
    let server = start(&rules("xchacha20poly1305", &key, &cold_key, None)).await;
    let text = secret_text(MIB + 4321);
    assert_eq!(server.put("moved", &text).await.status(), 201);
    let accessed = now_ms();
    while now_ms() <= accessed {
        tokio::task::yield_now().await;
    }
    assert_eq!(server.post("/v1/plan", b"").await.status(), 200);
    eventually(WAIT, "the move to cold", || async {
        (server.tier_of("moved").await == "cold").then_some(())
    })
    .await;
    assert!(server.object("moved").await == text);
    let stored = std::fs::read(server.tier_dir("cold").join("objects/moved")).unwrap();
    assert_eq!(&stored[..4], b"STEF", "the first frame is sealed");
    assert_eq!(stored[5], 2, "under AES-256-GCM, the cold tier's cipher");
    assert_eq!(
        stored[8..16],
        KeyId::of(&[0x32; 32]).0,
        "under the cold tier's key"
    );
    assert!(files_holding(&server.tier_dir("cold"), MARKER).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_a_missing_key_and_a_flipped_byte_are_refused_by_tier_and_key_id() {
    let keys = tempfile::tempdir().unwrap();
    let key = key_file(keys.path(), "warm.key", 0x41);
    let wrong = key_file(keys.path(), "wrong.key", 0x42);
    let cold_key = key_file(keys.path(), "cold.key", 0x43);
    let written_with = KeyId::of(&[0x41; 32]).to_string();
    let text = secret_text(MIB + 999);
    let toml = rules("xchacha20poly1305", &key, &cold_key, None);
    let mut server = start(&toml).await;
    assert_eq!(server.put("k", &text).await.status(), 201);
    let dir = server.stop().await;

    // Another key: the object's key id is not configured.
    let wrong_toml = toml.replace(
        &format!("{:?}", key.display().to_string()),
        &format!("{:?}", wrong.display().to_string()),
    );
    let mut server = start_in(dir, &wrong_toml, Limits::default()).await;
    assert_unreadable(
        &server,
        "k",
        &["tier warm", &written_with, "not configured"],
    )
    .await;
    let dir = server.stop().await;

    // No key at all on the tier: the encrypted object is refused, saying what to set.
    let keyless = toml.replace(
        &format!(
            "encryption = \"xchacha20poly1305\"\nencryption_key_file = {:?}\n",
            key.display().to_string()
        ),
        "",
    );
    assert_ne!(keyless, toml);
    let mut server = start_in(dir, &keyless, Limits::default()).await;
    assert_unreadable(&server, "k", &["tier warm", "no encryption key"]).await;
    let dir = server.stop().await;

    // The right key, one ciphertext byte flipped: the tag fails, nothing is served.
    let object = dir.path().join("tiers/warm/objects/k");
    let mut stored = std::fs::read(&object).unwrap();
    stored[200] ^= 0x01;
    std::fs::write(&object, &stored).unwrap();
    let server = start_in(dir, &toml, Limits::default()).await;
    assert_unreadable(&server, "k", &["tier warm", "frame 0"]).await;
    assert!(ranged(&server, "k", MIB + 1, MIB + 10).await == text[MIB + 1..=MIB + 10]);
}

async fn refusal(toml: &str, dir: &Path) -> String {
    let options = ServeOptions::new(config(dir, toml));
    match strata_server::start(options).await {
        Ok(_) => panic!("the service started"),
        Err(err) => err.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_key_files_and_variables_are_refused_at_start_up() {
    let keys = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cold_key = key_file(keys.path(), "cold.key", 0x51);
    let short = keys.path().join("short.key");
    std::fs::write(&short, [0x5a; 31]).unwrap();
    let text = refusal(&rules("aes-256-gcm", &short, &cold_key, None), dir.path()).await;
    assert!(text.contains("tier[1].encryption_key_file"), "{text}");
    assert!(text.contains("tier \"warm\""), "{text}");
    assert!(text.contains(&short.display().to_string()), "{text}");
    assert!(
        text.contains("31 bytes") && text.contains("exactly 32 raw bytes"),
        "{text}"
    );
    assert!(!text.contains("ZZZZ") && !text.contains("5a5a"), "{text}");

    let missing = keys.path().join("missing.key");
    let text = refusal(&rules("aes-256-gcm", &missing, &cold_key, None), dir.path()).await;
    assert!(text.contains("missing.key cannot be read"), "{text}");

    let by_env = rules("aes-256-gcm", &cold_key, &cold_key, None).replacen(
        &format!("encryption_key_file = {:?}", cold_key.display().to_string()),
        "encryption_key_env = \"STRATA_TEST_WARM_KEY_UNSET_9Q\"",
        1,
    );
    let text = refusal(&by_env, dir.path()).await;
    assert!(text.contains("tier[1].encryption_key_env"), "{text}");
    assert!(
        text.contains("environment variable STRATA_TEST_WARM_KEY_UNSET_9Q is not set"),
        "{text}"
    );

    // A plain-layout tier cannot be encrypted: refused when the file is read.
    let plain = TEST_RULES.replace(
        "name = \"warm\"\n",
        &format!(
            "name = \"warm\"\nencryption = \"xchacha20poly1305\"\nencryption_key_file = {:?}\n",
            cold_key.display().to_string()
        ),
    );
    let err = strata_heat::TieringConfig::parse(&plain)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tier[1].layout"), "{err}");
    assert!(err.contains("packed"), "{err}");
}
