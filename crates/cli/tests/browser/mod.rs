//! A real browser for the dashboard's tests: Debian's `chromium`, driven through its
//! `chromedriver` (both installed by `scripts/install-test-deps.sh`) with fantoccini.
//! One chromedriver per test binary ([`driver`]), on a free loopback port, started from the
//! launcher thread of [`crate::common::children`] so it dies with the binary; each test
//! opens its own headless browser session ([`Browser::open`]) with a fresh profile
//! directory and the flags that keep chromium off the network (no sync, no component
//! updates, no QUIC, no first-run page).
//!
//! `STRATA_UI_SCREENSHOTS=DIR` makes [`Browser::screenshot`] save PNGs into DIR (the
//! README's pictures: `docs/ui/`); without it, no file is written.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use strata_store::testing::free_port;

use crate::common::{children, installed};

/// How long a test waits for the page to show something before it fails (a bound for a
/// failing test, never a measured time).
pub const PAGE_WAIT: Duration = Duration::from_secs(120);

/// The environment variable naming the directory screenshots go to.
pub const SCREENSHOTS_ENV: &str = "STRATA_UI_SCREENSHOTS";

/// The chromedriver of this test binary.
pub struct Driver {
    /// Its WebDriver URL (`http://127.0.0.1:PORT`).
    pub url: String,
}

/// Starts chromedriver on a free loopback port once per test binary; returns once it
/// listens.
pub fn driver() -> &'static Driver {
    static DRIVER: OnceLock<Driver> = OnceLock::new();
    DRIVER.get_or_init(|| {
        let port = free_port();
        let mut command = Command::new(installed("chromedriver", "chromium-driver"));
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        children::spawn(command);
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // It listens once it is ready for sessions.
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Driver { url };
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on {url}: is it installed \
                 (scripts/install-test-deps.sh, package chromium-driver)?"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// A headless chromium session.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    /// The session's own profile, deleted when the browser is dropped.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A new headless chromium with a fresh profile, 1280×900.
    pub async fn open() -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let chromium = installed("chromium", "chromium");
        let args = [
            "--headless".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-quic".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--window-size=1280,900".to_string(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver().url)
            .await
            .expect("a chromium session through chromedriver");
        Browser {
            client,
            _profile: profile,
        }
    }

    /// Opens `url` (returns once the page has loaded).
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Runs `script` (a function body: `return ...`) in the page.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// Evaluates `script` every 100 ms until `check` accepts its value; panics after
    /// [`PAGE_WAIT`], naming `what` and the last value seen.
    pub async fn until<T>(
        &self,
        what: &str,
        script: &str,
        mut check: impl FnMut(&serde_json::Value) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            let value = self.eval(script).await;
            if let Some(found) = check(&value) {
                return found;
            }
            if Instant::now() > deadline {
                let message = self.eval("return document.getElementById('message').textContent");
                panic!(
                    "the page never showed {what}; last seen: {value}; its message: {}",
                    message.await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element `css` matches (found again if the page replaced it meanwhile).
    pub async fn click(&self, css: &str) {
        let mut attempts = 0;
        loop {
            let found = self.client.find(Locator::Css(css)).await;
            let element = found.unwrap_or_else(|err| panic!("no element {css}: {err}"));
            match element.click().await {
                Ok(()) => return,
                Err(err) if err.is_stale_element_reference() && attempts < 5 => attempts += 1,
                Err(err) => panic!("cannot click {css}: {err}"),
            }
        }
    }

    /// Types `text` into the input `css` matches.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|err| panic!("no element {css}: {err}"))
            .send_keys(text)
            .await
            .unwrap_or_else(|err| panic!("cannot type into {css}: {err}"));
    }

    /// Saves a PNG of the page as `NAME.png` into `$STRATA_UI_SCREENSHOTS`, when set.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os(SCREENSHOTS_ENV).map(PathBuf::from) else {
            return;
        };
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Ends the session (and its chromium).
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
