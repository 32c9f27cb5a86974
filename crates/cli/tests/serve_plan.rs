//! `strata plan [--run]` through the real `strata serve`: the rules' moves and the cost
//! optimiser's (`cost_optimisation`), each with its expected saving, and the projected
//! monthly cost before and after.

mod serve_common;

use std::path::Path;
use std::time::Duration;

use serve_common::*;

const WAIT: Duration = Duration::from_secs(60);

/// Three local tiers; new objects land on hot; warm objects may stay on hot or warm (so the
/// optimiser has a choice the rules accept); an object is hot for a second after a read and
/// warm for an hour; no periodic pass during the test.
fn service(dir: &Path, warm_tiers: &str) -> Service {
    let data_dir = dir.join("data");
    let cold = data_dir.join("cold").display().to_string();
    let path = dir.join("strata.toml");
    let text = config(&data_dir, &cold, "1s", "1h", "1h")
        .replace("default_tier = \"warm\"", "default_tier = \"hot\"")
        + &format!("\n[classes]\nhot = [\"hot\"]\nwarm = {warm_tiers}\ncold = [\"cold\"]\n");
    std::fs::write(&path, text).unwrap();
    Service::start(&path, &data_dir, &[])
}

fn put(service: &Service, dir: &Path, key: &str, bytes: usize) {
    let file = dir.join("upload.bin");
    std::fs::write(&file, vec![7u8; bytes]).unwrap();
    let out = service.run(&["put", file.to_str().unwrap(), key]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = service.run(&["access", key, "--count", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tier_of(service: &Service, key: &str) -> String {
    service
        .json(&["ls", key])
        .as_array()
        .and_then(|objects| objects.iter().find(|o| o["key"] == key).cloned())
        .and_then(|o| o["tier"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The plan's move of `key`, once the object has cooled to warm (a second after its reads).
fn planned_move(service: &Service, key: &str) -> (serde_json::Value, serde_json::Value) {
    eventually(WAIT, "a planned move", || {
        let result = service.json(&["plan"]);
        let moves = result["plan"]["moves"].as_array()?;
        let index = moves.iter().position(|m| m["key"] == key)?;
        Some((
            moves[index].clone(),
            result["costs"]["moves"][index].clone(),
        ))
    })
}

#[test]
fn plan_proposes_a_cost_optimisation_move_with_its_saving_and_run_executes_it() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path(), r#"["hot", "warm"]"#);
    put(&service, dir.path(), "runs/1/t2m.nc", 4 << 20);

    let (planned, saving) = planned_move(&service, "runs/1/t2m.nc");
    assert_eq!(planned["reason"], "cost_optimisation", "{planned}");
    assert_eq!(
        (planned["from"].as_str(), planned["to"].as_str()),
        (Some("hot"), Some("warm"))
    );
    assert_eq!(saving["key"], "runs/1/t2m.nc");
    let per_month = saving["saving_per_month"].as_f64().unwrap();
    // 4 MiB at 0.20 against 0.05 $/GB-month, local tiers: nothing else costs.
    let expected = (4 << 20) as f64 / 1e9 * (0.20 - 0.05);
    assert!(
        (per_month - expected).abs() < 1e-12,
        "{per_month} vs {expected}"
    );
    let explanation = planned["explanation"].as_str().unwrap();
    assert!(
        explanation.starts_with("saves $0.000629/month: $0.000839 on hot → $0.000210 on warm"),
        "{explanation}"
    );

    let result = service.json(&["plan"]);
    let costs = &result["costs"];
    let (before, after) = (
        costs["monthly_cost_before"].as_f64().unwrap(),
        costs["monthly_cost_after"].as_f64().unwrap(),
    );
    assert!((before - after - expected).abs() < 1e-12, "{costs}");
    assert_eq!(costs["method"], "milp");

    let text = service.run(&["plan"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("1 moves, 0 waits, 0 in place (dry run)"),
        "{text}"
    );
    assert!(
        text.contains("projected cost: $0.000839/month now, $0.000210/month after"),
        "{text}"
    );
    assert!(
        text.contains(
            "move runs/1/t2m.nc hot → warm [cost_optimisation, saves $0.000629/month]: saves"
        ),
        "{text}"
    );
    assert_eq!(
        tier_of(&service, "runs/1/t2m.nc"),
        "hot",
        "a dry run moves nothing"
    );

    let ran = service.json(&["plan", "--run"]);
    assert_eq!(ran["jobs"].as_array().map(Vec::len), Some(1), "{ran}");
    eventually(WAIT, "the object on warm", || {
        (tier_of(&service, "runs/1/t2m.nc") == "warm").then_some(())
    });
    let explain = service.json(&["explain", "runs/1/t2m.nc"]);
    assert!(
        explain.to_string().contains("cost_optimisation"),
        "{explain}"
    );
}

#[test]
fn the_optimiser_never_moves_an_object_to_a_tier_its_class_does_not_accept() {
    let dir = tempfile::tempdir().unwrap();
    // Warm objects belong on warm alone: the rules move the object there themselves.
    let service = service(dir.path(), r#"["warm"]"#);
    put(&service, dir.path(), "runs/1/t2m.nc", 4 << 20);
    let (planned, saving) = planned_move(&service, "runs/1/t2m.nc");
    assert_eq!(planned["reason"], "rule_warm_recent", "{planned}");
    assert!(
        saving["saving_per_month"].as_f64().unwrap() > 0.0,
        "{saving}"
    );
    let result = service.json(&["plan"]);
    assert_eq!(result["costs"]["method"], "none", "nothing left to choose");
}
