//! A PostgreSQL server of a test's own, to stop and start while the app runs (issue 22's
//! outages): a new cluster made with Debian's `initdb` and run by `pg_ctl`, as the `postgres`
//! user (PostgreSQL refuses to run as root), listening on a Unix socket in a folder of its
//! own and on no TCP port: nothing else can take its address while it is stopped, and it
//! never meets the machine's shared server, which other tests use at the same moment.
//!
//! Without Debian's PostgreSQL binaries or the right to become `postgres`, starting one
//! fails, loudly: the tests that need it do not skip.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// The port in the socket's name (`.s.PGSQL.5432`); no TCP port is opened.
const PORT: u16 = 5432;

/// A running (or stopped) private cluster; stopped and deleted when dropped.
pub struct PgCluster {
    bin: PathBuf,
    /// Holds the data folder, the socket and the server's log; owned by `postgres`.
    dir: tempfile::TempDir,
}

impl PgCluster {
    /// Makes a new cluster (trust authentication, no fsync: a test's data is thrown away)
    /// and starts it.
    pub fn start() -> Self {
        let bin = binaries();
        let dir = tempfile::Builder::new()
            .prefix("loginwith-pg-")
            .tempdir()
            .expect("a folder for the cluster");
        let chown = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .output()
            .expect("run chown");
        assert_ok("chown the cluster's folder to postgres", &chown);
        let data = dir.path().join("data");
        let initdb = as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert_ok("initdb", &initdb);
        let cluster = Self { bin, dir };
        cluster.start_again();
        cluster
    }

    /// `postgres://postgres@localhost:5432/postgres?host=SOCKET_FOLDER`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@localhost:{PORT}/postgres?host={}",
            path(self.dir.path())
        )
    }

    /// Starts the stopped server and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {PORT} -k {} -c listen_addresses='' -c fsync=off -c max_connections=50",
            path(self.dir.path())
        );
        let log = self.dir.path().join("server.log");
        let started = self.pg_ctl(&["start", "-w", "-t", "60", "-o", &options, "-l", path(&log)]);
        if !started.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "pg_ctl start failed: {}\n{log}",
                String::from_utf8_lossy(&started.stderr)
            );
        }
    }

    /// Stops the server the way an operator's restart does (`-m fast`: every connection is
    /// ended at once, nothing waits for clients), and waits until it is down.
    pub fn stop(&self) {
        let stopped = self.pg_ctl(&["stop", "-w", "-t", "60", "-m", "fast"]);
        assert_ok("pg_ctl stop", &stopped);
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let data = self.dir.path().join("data");
        let mut all = vec!["-D", path(&data)];
        all.extend_from_slice(args);
        as_postgres(&self.bin.join("pg_ctl"), &all)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-w", "-m", "immediate"]);
    }
}

/// Debian's PostgreSQL server binaries (`/usr/lib/postgresql/<version>/bin`), the newest.
fn binaries() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (initdb, pg_ctl): \
             install Debian's postgresql package"
        )
    })
}

fn as_postgres(program: &Path, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        // Out of a folder root may keep to itself.
        .current_dir("/")
        .output()
        .unwrap_or_else(|e| panic!("run {} as postgres (runuser): {e}", program.display()))
}

fn assert_ok(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}
