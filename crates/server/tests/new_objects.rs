//! New objects stay where the default tier places them until their reads say otherwise: a
//! PUT is no sign of demand.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(20);

/// The keys and targets of the moves in a pass's answer.
fn moves(pass: &serde_json::Value) -> Vec<(String, String)> {
    pass["plan"]["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["key"].as_str().unwrap().to_string(),
                m["to"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_objects_are_not_promoted_by_their_write() {
    let server = start(TEST_RULES).await;
    let keys: Vec<String> = (0..20).map(|i| format!("new/{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        let response = server.put(key, &bytes(1000, i as u64)).await;
        assert_eq!(response.status(), 201, "PUT {key}");
    }

    let pass = server.post("/v1/plan", b"").await.json_value().await;
    assert_eq!(moves(&pass), [], "a write alone promoted objects");
    for key in &keys {
        assert_eq!(server.tier_of(key).await, "warm", "{key}");
    }
    let explained = server.json(&format!("/v1/explain/{}", keys[0])).await;
    assert_eq!(explained["reason"], "recent_write", "{explained}");
    assert_eq!(explained["outlook"]["action"], "stay", "{explained}");

    // Reads (too few for a spike) still promote, at the next periodic pass.
    for _ in 0..3 {
        assert_eq!(server.object(&keys[7]).await, bytes(1000, 7));
    }
    let pass = server.post("/v1/plan", b"").await.json_value().await;
    assert_eq!(moves(&pass), [(keys[7].clone(), "hot".to_string())]);
    eventually(WAIT, "the read object on hot", || async {
        (server.tier_of(&keys[7]).await == "hot").then_some(())
    })
    .await;
    for key in keys.iter().filter(|key| **key != keys[7]) {
        assert_eq!(server.tier_of(key).await, "warm", "{key}");
    }
}
