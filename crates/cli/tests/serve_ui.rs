//! The dashboard (`/ui`) in a real browser: headless chromium through chromedriver
//! ([`browser`]) against the real `strata serve`. A spike's move appears on the jobs pane and
//! finishes there without a reload (the page learns it from the event stream only); an
//! object's page shows its explain history, its moves and its access chart; a failed move
//! is retried and a slow one cancelled with the jobs pane's buttons; the plan pane runs the
//! plan and the model pane trains a model; with tokens, the page asks for one, refuses a
//! wrong one with the service's reason, and with the right one shows the data and streams
//! the events, the token never in a URL or the service's log; a read token shows the read
//! panes, says live updates need an admin token and shows the jobs pane's refusal.
//!
//! `STRATA_UI_SCREENSHOTS=docs/ui cargo test -p strata-cli --test serve_ui` also saves a
//! picture of each pane (the README's).

mod browser;
mod common;
mod serve_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use browser::Browser;
use serve_common::*;

const WAIT: Duration = Duration::from_secs(120);
const KEY: &str = "runs/spiky.nc";

/// The jobs pane's rows: id, key, tiers, state and the buttons each offers.
const JOB_ROWS: &str = "return [...document.querySelectorAll('#jobs-table tbody tr')]
    .map(r => ({ id: Number(r.dataset.jobId), state: r.dataset.state,
      key: r.cells[1].textContent, from: r.cells[2].textContent, to: r.cells[3].textContent,
      error: r.cells[6].textContent,
      buttons: [...r.querySelectorAll('button')].map(b => b.className) }))";

/// Three local tiers (warm the default), spikes promote at once, the periodic pass hourly.
fn local_service(dir: &Path, env: &[(&str, &str)]) -> Service {
    service_with(dir, env, |text| text)
}

/// [`local_service`] with its configuration's text changed by `edit`.
fn service_with(dir: &Path, env: &[(&str, &str)], edit: fn(String) -> String) -> Service {
    let (path, data_dir) = write_config(dir, edit);
    Service::start_with_env(&path, &data_dir, &[], env)
}

/// Writes [`local_service`]'s configuration, changed by `edit`; its path and data dir.
fn write_config(dir: &Path, edit: fn(String) -> String) -> (PathBuf, PathBuf) {
    let data_dir = dir.join("data");
    let cold = data_dir.join("cold").display().to_string();
    let path = dir.join("strata.toml");
    std::fs::write(&path, edit(config(&data_dir, &cold, "1h", "2h", "1h"))).unwrap();
    (path, data_dir)
}

fn put(service: &Service, dir: &Path, key: &str, data: &[u8]) {
    let file = dir.join("upload.bin");
    std::fs::write(&file, data).unwrap();
    let out = service.run(&["put", file.to_str().unwrap(), key]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 40 reads of `key` as access events: a spike, so the reactive pass promotes it.
fn spike(service: &Service, key: &str) {
    let out = service.run(&["access", key, "--count", "40"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The service's job of `key` once it has ended.
fn ended_job(service: &Service, key: &str) -> serde_json::Value {
    eventually(WAIT, "the move job to end", || {
        let jobs = get_json(&service.url, &format!("/v1/jobs?key={key}"));
        let job = jobs["jobs"].as_array()?.first()?.clone();
        ["done", "failed", "cancelled", "skipped"]
            .contains(&job["state"].as_str()?)
            .then_some(job)
    })
}

/// The jobs pane's row of `key` once `check` accepts it.
async fn job_row(
    browser: &Browser,
    what: &str,
    key: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    browser
        .until(what, JOB_ROWS, |rows| {
            rows.as_array()?
                .iter()
                .find(|row| row["key"] == key && check(row))
                .cloned()
        })
        .await
}

async fn wait_live(browser: &Browser) {
    browser
        .until(
            "the event stream live",
            "return document.getElementById('live').textContent",
            |text| (text == "live").then_some(()),
        )
        .await;
}

/// Shows `pane` through its navigation link and waits for `ready` (a script) to be true.
async fn open_pane(browser: &Browser, pane: &str, ready: &str) {
    browser.click(&format!("#nav a[data-pane='{pane}']")).await;
    browser
        .until(&format!("the {pane} pane"), ready, |value| {
            (value == true).then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spike_shows_its_move_on_the_jobs_pane_live_without_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let service = local_service(dir.path(), &[]);
    put(&service, dir.path(), KEY, b"hot data");
    let browser = Browser::open().await;
    browser.goto(&format!("{}/ui#jobs", service.url)).await;
    wait_live(&browser).await;
    assert_eq!(browser.eval(JOB_ROWS).await, serde_json::json!([]));
    // A reload would lose this mark.
    browser.eval("window.strataMark = 1; return null").await;

    spike(&service, KEY);
    // The jobs pane loads the job list only when its stream (re)connects: a row can only
    // appear and change through the stream's events.
    let done = job_row(&browser, "the promotion done", KEY, |row| {
        row["state"] == "done"
    })
    .await;
    assert_eq!(
        (done["from"].as_str(), done["to"].as_str()),
        (Some("warm"), Some("hot")),
        "{done}"
    );
    assert_eq!(
        done["buttons"],
        serde_json::json!([]),
        "a done job has no action"
    );
    assert_eq!(
        browser.eval("return window.strataMark === 1").await,
        true,
        "the page was reloaded"
    );
    let job = ended_job(&service, KEY);
    assert_eq!(job["id"], done["id"], "{job}");
    assert_eq!(job["state"], "done", "{job}");
    browser.screenshot("jobs").await;

    // The other panes show the object on its new tier.
    open_pane(
        &browser,
        "tiers",
        "const row = document.querySelector('#tiers-table tr[data-tier=hot]'); \
         return !!row && row.cells[3].textContent === '1'",
    )
    .await;
    let chart = browser
        .eval(
            "return [...document.querySelectorAll('#class-chart rect')].map(r => r.dataset.label)",
        )
        .await;
    assert_eq!(chart, serde_json::json!(["hot", "warm", "cold"]), "{chart}");
    browser.screenshot("tiers").await;
    open_pane(
        &browser,
        "objects",
        &format!(
            "const row = document.querySelector('#objects-table tr[data-key=\"{KEY}\"]'); \
             return !!row && row.cells[2].textContent === 'hot' \
               && parseInt(row.cells[5].textContent, 10) >= 40"
        ),
    )
    .await;
    browser.screenshot("objects").await;
    open_pane(
        &browser,
        "charts",
        "return [...document.querySelectorAll('#moved-chart path')].length === 1 \
           && document.querySelectorAll('#heat-chart rect').length > 0",
    )
    .await;
    browser.screenshot("charts").await;
    browser.close().await;
}

/// The warm tier's "Faults injected" cell on the tiers pane.
const WARM_FAULTS: &str = "const row = document.querySelector('#tiers-table tr[data-tier=warm]'); \
     return row ? row.cells[6].textContent : ''";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tiers_pane_shows_the_faults_chaos_injects_until_they_are_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let service = local_service(dir.path(), &[]);
    let browser = Browser::open().await;
    browser.goto(&format!("{}/ui#tiers", service.url)).await;
    browser
        .until("no faults on warm", WARM_FAULTS, |text| {
            (text == "none").then_some(())
        })
        .await;

    let out = service.run(&[
        "chaos", "inject", "warm", "503", "--op", "read", "--count", "5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The pane refreshes on its own: no reload, no click.
    let shown = browser
        .until("the 503 rule on warm", WARM_FAULTS, |text| {
            let text = text.as_str()?.to_string();
            text.starts_with("503").then_some(text)
        })
        .await;
    assert_eq!(shown, "503 on read (5 calls left, 0 injected)");
    browser.screenshot("chaos").await;

    let out = service.run(&["chaos", "clear"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    browser
        .until("the rule gone from warm", WARM_FAULTS, |text| {
            (text == "none").then_some(())
        })
        .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_objects_page_shows_its_explain_history_moves_and_access_chart() {
    let dir = tempfile::tempdir().unwrap();
    let service = local_service(dir.path(), &[]);
    put(&service, dir.path(), KEY, b"hot data");
    spike(&service, KEY);
    let job = ended_job(&service, KEY);
    assert_eq!(job["state"], "done", "{job}");
    let job_id = job["id"].as_i64().unwrap().to_string();

    let browser = Browser::open().await;
    // The key's "/" travels encoded in the fragment, as the objects pane links it.
    browser
        .goto(&format!("{}/ui#object/runs%2Fspiky.nc", service.url))
        .await;
    let page = browser
        .until(
            "the object's decisions and moves",
            "const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)]
               .map(r => [...r.cells].map(c => c.textContent));
             return { key: document.getElementById('object-key').textContent,
               lines: [...document.querySelectorAll('#object-lines li')].map(l => l.textContent),
               decisions: rows('object-decisions'), jobs: rows('object-jobs'),
               accesses: [...document.querySelectorAll('#object-access-chart rect')]
                 .map(r => Number(r.dataset.value)) }",
            |page| {
                let ready = page["decisions"].as_array().is_some_and(|d| !d.is_empty())
                    && page["jobs"].as_array().is_some_and(|j| !j.is_empty());
                ready.then(|| page.clone())
            },
        )
        .await;
    assert_eq!(page["key"], KEY);
    let decision = page["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row[5] == job_id.as_str())
        .unwrap_or_else(|| panic!("no decision names job {job_id}: {page}"));
    assert_eq!(decision[2], "move:warm->hot", "{page}");
    assert_eq!(page["jobs"][0][0], job_id.as_str(), "{page}");
    assert_eq!(page["jobs"][0][3], "done", "{page}");
    let lines = page["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|line| line.as_str().unwrap().contains("hot")),
        "{page}"
    );
    // The 40 reads and the write, in this hour's bar.
    let accesses: u64 = page["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(accesses >= 40, "{page}");
    browser.screenshot("object").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_pane_retries_a_failed_move_and_cancels_a_slow_one() {
    let dir = tempfile::tempdir().unwrap();
    // The first move's first source read fails for good; every move's source reads are
    // slow, so the second is still copying when Cancel is clicked (a move checks for a
    // cancel as each span is read).
    let faults = [(
        "STRATA_FAULTS",
        "src:read:error=permanent:first=1;src:read:latency=3s",
    )];
    let service = local_service(dir.path(), &faults);
    let browser = Browser::open().await;
    browser.goto(&format!("{}/ui#jobs", service.url)).await;
    wait_live(&browser).await;

    put(&service, dir.path(), "a/failing.bin", b"first");
    spike(&service, "a/failing.bin");
    let failed = job_row(&browser, "the failed move", "a/failing.bin", |row| {
        row["state"] == "failed"
    })
    .await;
    assert_eq!(failed["buttons"], serde_json::json!(["retry"]), "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("injected"),
        "{failed}"
    );

    put(&service, dir.path(), "b/slow.bin", &bytes(4 << 20, 7));
    spike(&service, "b/slow.bin");
    let running = job_row(&browser, "the slow move copying", "b/slow.bin", |row| {
        row["buttons"] == serde_json::json!(["cancel"])
    })
    .await;
    browser
        .click(&format!(
            "tr[data-job-id='{}'] button.cancel",
            running["id"]
        ))
        .await;
    job_row(&browser, "the slow move cancelled", "b/slow.bin", |row| {
        row["state"] == "cancelled"
    })
    .await;
    assert_eq!(ended_job(&service, "b/slow.bin")["state"], "cancelled");

    browser
        .click(&format!("tr[data-job-id='{}'] button.retry", failed["id"]))
        .await;
    let retried = job_row(&browser, "the retried move done", "a/failing.bin", |row| {
        row["state"] == "done"
    })
    .await;
    assert_eq!(retried["id"], failed["id"], "{retried}");
    let job = get_json(&service.url, &format!("/v1/jobs/{}", failed["id"]));
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");

    // A refusal is shown, not swallowed: the done job cannot be retried.
    browser
        .eval(&format!(
            "jobAction({}, 'retry'); return null",
            failed["id"]
        ))
        .await;
    let message = browser
        .until(
            "the refusal of a second retry",
            "return document.getElementById('message').textContent",
            |text| {
                let text = text.as_str()?;
                text.contains("not_retryable")
                    .then(|| text.to_string())
                    .or_else(|| {
                        text.contains("only failed, cancelled or skipped")
                            .then(|| text.to_string())
                    })
            },
        )
        .await;
    assert!(
        message.contains(&format!("job {}", failed["id"])),
        "{message}"
    );
    browser.close().await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Two weeks of reads: `daily` 30 times in one hour of every day, `old` ten days ago only.
fn history() -> String {
    const HOUR: i64 = 3_600_000;
    let now = now_ms();
    let hour = now / HOUR * HOUR - 3 * HOUR;
    let line = |key: &str, ts: i64| {
        format!("{{\"key\":{key:?},\"op\":\"read\",\"ts\":{ts},\"bytes\":1048576}}\n")
    };
    let mut body = String::new();
    for day in 1..=14 {
        for i in 0..30 {
            body += &line("daily", hour - day * 24 * HOUR + i * 90_000);
        }
    }
    for i in 0..10 {
        body += &line("old", now - 10 * 24 * HOUR + i * 1000);
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_pane_runs_the_plan_and_the_model_pane_trains_a_model() {
    let dir = tempfile::tempdir().unwrap();
    // No spikes: the history's reads must not promote anything before the plan runs; an
    // object unread for a second is cold, so the plan demotes both.
    let service = service_with(dir.path(), &[], |text| {
        text.replace("spike_min_events = 20", "spike_min_events = 1000000000")
            .replace("hot_within = \"1h\"", "hot_within = \"1s\"")
            .replace("warm_within = \"2h\"", "warm_within = \"1s\"")
    });
    for key in ["daily", "old"] {
        put(&service, dir.path(), key, &bytes(1 << 20, 3));
    }
    let (status, _, body) = http(
        &service.url,
        "POST",
        "/v1/access-events",
        history().as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    let browser = Browser::open().await;
    browser.goto(&format!("{}/ui#model", service.url)).await;
    browser
        .until(
            "no model yet",
            "return document.getElementById('model-version')?.textContent",
            |text| (text == "none").then_some(()),
        )
        .await;
    browser.click("#model-train").await;
    let result = browser
        .until(
            "the training's answer",
            "return document.getElementById('model-result').textContent",
            |text| {
                let text = text.as_str()?;
                (text.starts_with("Trained") || text.starts_with("Training failed"))
                    .then(|| text.to_string())
            },
        )
        .await;
    assert_eq!(result, "Trained version 1.");
    let metrics = browser
        .until(
            "the model's metrics",
            "return { version: document.getElementById('model-version').textContent,
               rows: [...document.querySelectorAll('#model-metrics tr')]
                 .map(r => [r.cells[0].textContent, r.cells[1].textContent]) }",
            |page| (page["version"] == "1").then(|| page.clone()),
        )
        .await;
    let rows = metrics["rows"].as_array().unwrap();
    assert!(
        rows.iter().any(|row| row[0] == "Rows" && row[1] != "0"),
        "{metrics}"
    );
    let model = get_json(&service.url, "/v1/model");
    assert_eq!(model["model"]["version"], 1, "{model}");
    browser.screenshot("model").await;

    // The plan: what the periodic pass would move, with the saving; run from the page.
    open_pane(
        &browser,
        "plan",
        "return document.querySelectorAll('#plan-table tbody tr').length > 0",
    )
    .await;
    let proposed = get_json(&service.url, "/v1/plan");
    let moves = proposed["plan"]["moves"].as_array().unwrap().len();
    let shown = browser
        .eval("return document.querySelectorAll('#plan-table tbody tr').length")
        .await;
    assert_eq!(shown, moves, "{proposed}");
    let summary = browser
        .eval("return document.getElementById('plan-summary').textContent")
        .await;
    assert!(
        summary
            .as_str()
            .unwrap()
            .starts_with(&format!("{moves} moves proposed")),
        "{summary}"
    );
    browser.screenshot("plan").await;
    browser.click("#plan-run").await;
    let ran = browser
        .until(
            "the plan's run",
            "return document.getElementById('plan-result').textContent",
            |text| {
                let text = text.as_str()?;
                text.starts_with("Ran:").then(|| text.to_string())
            },
        )
        .await;
    assert!(
        ran.starts_with(&format!("Ran: {moves} jobs queued")),
        "{ran}"
    );
    let jobs = get_json(&service.url, "/v1/jobs");
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), moves, "{jobs}");
    browser.close().await;
}

/// `strata token create --scope admin` on the catalog of the service configured by
/// `config`; the token's text.
fn admin_token(config: &Path) -> String {
    token_of_scope(config, "admin")
}

/// `strata token create --scope SCOPE` on that catalog; the token's text.
fn token_of_scope(config: &Path, scope: &str) -> String {
    let out = strata()
        .args(["--json", "token", "create", "--scope", scope, "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    made["token"].as_str().unwrap().to_string()
}

/// The token prompt, the tiers shown and the live badge.
const DIALOG: &str = "return { shown: !document.getElementById('token-dialog').hidden,
    error: document.getElementById('token-error').textContent,
    tiers: document.querySelectorAll('#tiers-table tbody tr').length,
    live: document.getElementById('live').textContent }";

/// `strata ARGS --server URL` with `STRATA_TOKEN=token`; it must succeed.
fn run_as(service: &Service, token: &str, args: &[&str]) {
    let out = strata()
        .env("STRATA_TOKEN", token)
        .args(args)
        .args(["--server", &service.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_the_page_asks_for_one_and_refuses_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    // The token exists before the service starts, so it is required from the first request.
    let (config, data_dir) = write_config(dir.path(), |text| text);
    let token = admin_token(&config);
    let service = Service::start(&config, &data_dir, &[]);
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, b"hot data").unwrap();
    run_as(&service, &token, &["put", file.to_str().unwrap(), KEY]);
    // The same id with another secret: a token of the right shape the service never issued.
    let last = if token.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &token[..token.len() - 1]);

    let browser = Browser::open().await;
    browser.goto(&format!("{}/ui", service.url)).await;
    let dialog = DIALOG;
    browser
        .until("the token prompt", dialog, |page| {
            (page["shown"] == true).then_some(())
        })
        .await;
    assert_eq!(browser.eval(dialog).await["tiers"], 0);
    browser.screenshot("token").await;

    browser.type_into("#token-input", &forged).await;
    browser.click("#token-submit").await;
    let refused = browser
        .until("the wrong token refused", dialog, |page| {
            let error = page["error"].as_str()?;
            (!error.is_empty()).then(|| page.clone())
        })
        .await;
    assert_eq!(refused["shown"], true, "{refused}");
    assert_eq!(refused["tiers"], 0, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("not one this service issued"),
        "{refused}"
    );
    let stored = browser
        .eval("return sessionStorage.getItem('strata.token')")
        .await;
    assert_eq!(
        stored,
        serde_json::Value::Null,
        "a refused token is not kept"
    );

    browser.type_into("#token-input", &token).await;
    browser.click("#token-submit").await;
    let accepted = browser
        .until("the data and the live stream", dialog, |page| {
            let ready = page["shown"] == false && page["tiers"] == 3 && page["live"] == "live";
            ready.then(|| page.clone())
        })
        .await;
    assert_eq!(accepted["error"], "", "{accepted}");
    let stored = browser
        .eval("return sessionStorage.getItem('strata.token')")
        .await;
    assert_eq!(stored, token.as_str());
    let url = browser.client.current_url().await.unwrap();
    assert!(!url.as_str().contains(&token), "{url}");

    // The stream carries the token in its header: a spike's move shows live.
    browser.click("#nav a[data-pane='jobs']").await;
    run_as(&service, &token, &["access", KEY, "--count", "40"]);
    job_row(&browser, "the promotion done", KEY, |row| {
        row["state"] == "done"
    })
    .await;
    browser.close().await;

    let log = service.kill_and_stderr();
    assert!(!log.contains(&token), "the token is in the service's log");
    assert!(
        !log.contains(&forged),
        "the wrong token is in the service's log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_shows_the_read_panes_and_says_live_updates_need_an_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let (config, data_dir) = write_config(dir.path(), |text| text);
    let token = token_of_scope(&config, "read");
    let service = Service::start(&config, &data_dir, &[]);
    let browser = Browser::open().await;
    browser.goto(&format!("{}/ui", service.url)).await;
    browser
        .until("the token prompt", DIALOG, |page| {
            (page["shown"] == true).then_some(())
        })
        .await;
    browser.type_into("#token-input", &token).await;
    browser.click("#token-submit").await;
    browser
        .until("the tiers without live updates", DIALOG, |page| {
            let ready = page["shown"] == false
                && page["tiers"] == 3
                && page["live"] == "no live updates (needs an admin token)";
            ready.then_some(())
        })
        .await;
    // The jobs pane says why it is empty, with the service's reason.
    browser.click("#nav a[data-pane='jobs']").await;
    let message = browser
        .until(
            "the jobs pane's refusal",
            "return document.getElementById('message').textContent",
            |text| {
                let text = text.as_str()?;
                text.contains("needs admin").then(|| text.to_string())
            },
        )
        .await;
    assert!(message.starts_with("jobs: token "), "{message}");
    assert!(!message.contains(&token), "{message}");
    browser.close().await;
}
