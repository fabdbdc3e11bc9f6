//! The real binary as a child process: started in a folder of its own, its standard error
//! collected, stopped when dropped.

use std::{
    io::Read,
    net::TcpListener as StdListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::PATIENCE;

/// A running binary, killed when dropped.
pub struct Running {
    child: Child,
    pub url: String,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `loginwith` binary cargo builds for the integration tests (`env!("CARGO_BIN_EXE_…")`
/// exists only in a test binary itself): they run from `target/<profile>/deps/`, the binary
/// is in `target/<profile>/`.
pub fn loginwith_binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    let binary = test
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .join(format!("loginwith{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.is_file(), "no binary at {}", binary.display());
    binary
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary with its development defaults (the built-in provider, `data/` for the
/// database) on a free loopback port, run from `dir`, and the URL it will answer on. Only
/// what the test sets: no inherited configuration, `RUST_LOG` or `NO_COLOR`.
pub fn development(dir: &Path) -> (Command, String) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(loginwith_binary());
    command
        .current_dir(dir)
        .env_remove("LOGINWITH_ENV")
        .env_remove("LOGINWITH_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("LOGINWITH_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("LOGINWITH_SERVER__PUBLIC_URL", &url)
        // Never the fixed default port: binaries run side by side.
        .env("LOGINWITH_METRICS__BIND", "127.0.0.1:0");
    (command, url)
}

/// Points the binary's Facebook provider at a stand-in served at `stand_in` (its dialog, token
/// endpoint and Graph API), registered there as `client_id` with `client_secret`.
pub fn with_facebook_at<'a>(
    command: &'a mut Command,
    stand_in: &str,
    client_id: &str,
    client_secret: &str,
) -> &'a mut Command {
    command
        .env("LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_ID", client_id)
        .env(
            "LOGINWITH_PROVIDERS__FACEBOOK__CLIENT_SECRET",
            client_secret,
        )
        .env(
            "LOGINWITH_PROVIDERS__FACEBOOK__AUTHORIZE_URL",
            format!("{stand_in}/dialog/oauth"),
        )
        .env(
            "LOGINWITH_PROVIDERS__FACEBOOK__TOKEN_URL",
            format!("{stand_in}/oauth/access_token"),
        )
        .env("LOGINWITH_PROVIDERS__FACEBOOK__API_URL", stand_in)
}

impl Running {
    /// The binary in a new, empty folder with [`development`] settings, `tweak`ed.
    pub async fn development(tweak: impl FnOnce(&mut Command)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (mut command, url) = development(dir.path());
        tweak(&mut command);
        Self::start(command, dir, url).await
    }

    /// Spawns `command` with its standard error piped and collected, and waits until `url`
    /// answers with a success. `dir` (its working folder, usually) lives as long as it runs.
    pub async fn start(mut command: Command, dir: tempfile::TempDir, url: String) -> Self {
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        let mut pipe = child.stderr.take().expect("piped standard error");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(read @ 1..) = pipe.read(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..read]);
                sink.lock().unwrap().push_str(&text);
            }
        });
        let mut running = Self {
            child,
            url,
            stderr,
            reader: Some(reader),
            dir,
        };
        running.wait_until_it_answers().await;
        running
    }

    async fn wait_until_it_answers(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Everything it wrote, once the pipe is closed.
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
                panic!("the binary stopped ({status}): {}", self.stderr());
            }
            if let Ok(response) = client.get(&self.url).send().await {
                assert!(response.status().is_success(), "{}", response.status());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the binary never answered: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`: no shutdown, no last writes, as a crash or an OOM kill ends it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// The folder it runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops it as systemd would (SIGTERM), waits for it to exit and for its last words.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        let status = self.child.wait().expect("it exits");
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        status
    }

    /// Everything written to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until standard error holds a line for which `check` holds, and returns it.
    pub async fn wait_for_line(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.stderr().lines().find(|line| check(line)) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no {what} in the log: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
