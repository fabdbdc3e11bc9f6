//! Outages survived (issue 22), on the real router with a real fault: SQLite's file system
//! full, then freed. The database lives on a small tmpfs this test mounts (it runs as root,
//! as `.ci/run` does on these machines; without the right to mount it fails, loudly).

use loginwith_testkit as common;

use std::{path::Path, process::Command, time::Duration};

use common::{ADA, Capture, TestEnv, eventually};
use loginwith::config::Environment;
use reqwest::{StatusCode, header};

/// A tmpfs of `size` mounted at `dir` for the test's life.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed ({status}): this test needs root, as .ci/run has",
            dir.display()
        );
        Self(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `filler` until the file system refuses another byte.
fn fill(filler: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(filler).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if file
            .write_all(&chunk)
            .and_then(|()| file.sync_all())
            .is_err()
        {
            break;
        }
    }
    // Whatever is left below a whole chunk, too.
    while file
        .write_all(&[0u8; 512])
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
}

#[tokio::test]
async fn a_full_disk_is_a_503_that_says_try_again_and_sign_ins_come_back_once_it_has_room() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mount = dir.path().join("small");
    let tmpfs = Tmpfs::mount(&mount, "8m");
    let database_url = format!("sqlite://{}", mount.join("loginwith.db").display());
    let env = TestEnv::start_on(
        dir,
        database_url,
        Environment::Development,
        Vec::new(),
        // Many sign-ins from one address.
        |f| {
            f.merge(("limits.auth_per_minute", 10_000))
                .merge(("limits.auth_burst", 10_000))
        },
    )
    .await;
    let log = Capture::install_trace();
    // Signed in before the outage.
    let before = env.browser();
    before.login(ADA).await;

    // A sign-in whose exchange is still at the provider when the disk fills: its final
    // transaction fails with SQLITE_FULL (which used to leave its connection in the pool
    // counted as inside a transaction, failing every later BEGIN on it), and is tried again
    // until the disk has room, within the exchange's deadline.
    env.set_latency(Duration::from_millis(400));
    let caught = env.browser();
    caught.login_until_preloader(ADA).await;
    let filler = tmpfs.0.join("filler");
    fill(&filler);
    eventually(
        "the exchange caught by the full disk to wait for room",
        || async {
            log.text()
                .contains("the database is unavailable; trying again until the exchange's deadline")
        },
    )
    .await;
    env.set_latency(Duration::ZERO);

    // A sign-in started now cannot be written: the 503 page with a hint when to try again,
    // no error reference, never a 500.
    let during = env.browser();
    let response = during.get("/authorize/facebook").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    let page = response.text().await.expect("page");
    assert!(page.contains("Try again in a moment"), "{page}");
    assert!(!page.contains("reference"), "{page}");
    // Counted.
    let metrics_url = env.metrics_url.as_ref().expect("metrics are on");
    let metrics = reqwest::get(format!("{metrics_url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("loginwith_store_unavailable_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(count >= 1.0, "{metrics}");
    // One WARN for the outage, whatever the number of requests it refused.
    let again = env.browser();
    assert_eq!(
        again.get("/authorize/facebook").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let warned = log
        .text()
        .matches("the database is unavailable: answering 503")
        .count();
    assert_eq!(warned, 1, "{}", log.text());

    // Room again: the sign-in the person approved during the outage is not lost; sign-ins
    // work, without a restart, on every connection of the pool.
    std::fs::remove_file(&filler).expect("free the space");
    assert_eq!(caught.wait_status().await, "ok");
    assert_eq!(caught.get("/success").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(caught.get("/auth/check").await.status(), StatusCode::OK);
    let after = env.browser();
    eventually("a sign-in works again once the disk has room", || async {
        after.get("/authorize/facebook").await.status() == StatusCode::SEE_OTHER
    })
    .await;
    // More sign-ins than the pool has connections (8): each connection serves some.
    for _ in 0..12 {
        let browser = env.browser();
        browser.login(ADA).await;
        assert_eq!(browser.get("/auth/check").await.status(), StatusCode::OK);
    }
    assert_eq!(before.get("/auth/check").await.status(), StatusCode::OK);
    drop(env);
    drop(tmpfs);
}
