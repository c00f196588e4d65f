//! Worker processes: built once, spawned with their environment, killed with SIGKILL.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

/// Which binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Order,
    Payment,
    Stock,
    Gateway,
}

impl Kind {
    /// The binary's name (also the worker's `app_id`).
    pub fn binary(self) -> &'static str {
        match self {
            Kind::Order => "order-worker",
            Kind::Payment => "payment-worker",
            Kind::Stock => "stock-worker",
            Kind::Gateway => "gateway",
        }
    }
}

/// The directory the binaries are built into (next to this test executable's `deps/`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Builds the worker binaries and the CLI once per test process (a no-op when up to date).
pub fn build_binaries() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args([
                "build",
                "-p",
                "order-worker",
                "-p",
                "payment-worker",
                "-p",
                "stock-worker",
                "-p",
                "cli",
                "-p",
                "gateway",
            ])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the worker binaries failed");
    });
}

/// A running worker process.
///
/// Each start listens on port 0 and the address is read from the worker's own
/// `HTTP listening addr=…` log line: a port picked here and handed over would be free for
/// another test's worker to take in between.
pub struct Worker {
    pub kind: Kind,
    pub index: usize,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// Where in the log this start's lines begin.
    log_start: u64,
    addr: OnceLock<SocketAddr>,
    child: Option<Child>,
}

/// How long a started worker may take to bind its HTTP port.
const LISTEN_WITHIN: Duration = Duration::from_secs(60);

impl Worker {
    /// Spawns worker `kind` #`index` on a port of its own with `env`, logging to `dir`.
    pub fn spawn(kind: Kind, index: usize, env: Vec<(String, String)>, dir: &Path) -> Worker {
        let log = dir.join(format!("{}-{index}.log", kind.binary()));
        let mut worker = Worker {
            kind,
            index,
            env,
            log,
            log_start: 0,
            addr: OnceLock::new(),
            child: None,
        };
        worker.start();
        worker
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        self.log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        self.addr = OnceLock::new();
        let child = Command::new(bin_dir().join(self.kind.binary()))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HTTP_ADDR", "127.0.0.1:0")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", self.kind.binary()));
        self.child = Some(child);
    }

    /// `<binary>-<index>`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.kind.binary(), self.index)
    }

    /// The address this start of the worker listens on; waits until it has bound it.
    ///
    /// # Panics
    /// When the worker exits or does not listen within [`LISTEN_WITHIN`].
    pub fn addr(&self) -> SocketAddr {
        *self.addr.get_or_init(|| {
            let deadline = Instant::now() + LISTEN_WITHIN;
            loop {
                if let Some(addr) = self.listening_addr() {
                    return addr;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} did not listen within {LISTEN_WITHIN:?}; log: {}",
                    self.name(),
                    self.log_tail()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    }

    /// The address in this start's `HTTP listening` log line, once it is there.
    fn listening_addr(&self) -> Option<SocketAddr> {
        let text = std::fs::read(&self.log).ok()?;
        let lines = String::from_utf8_lossy(text.get(self.log_start as usize..)?).into_owned();
        let line = strip_escapes(&lines)
            .lines()
            .find(|line| line.contains("HTTP listening"))?
            .to_owned();
        let value = line.split("addr=").nth(1)?;
        value
            .split_whitespace()
            .next()?
            .trim_matches('"')
            .parse()
            .ok()
    }

    /// `http://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// `http://addr` of its gRPC services (order and stock workers: the `GRPC_ADDR` it was
    /// given, kept across restarts).
    ///
    /// # Panics
    /// For a worker started without one.
    pub fn grpc_url(&self) -> String {
        let addr = self
            .env
            .iter()
            .find(|(name, _)| name == "GRPC_ADDR")
            .map(|(_, addr)| addr)
            .unwrap_or_else(|| panic!("{} serves no gRPC", self.name()));
        format!("http://{addr}")
    }

    /// Started and not stopped by the test since (a crash of its own still counts as running).
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL: no shutdown hook runs, nothing is flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same environment (on a new port).
    pub fn restart(&mut self) {
        self.kill();
        self.start();
    }

    /// SIGTERM, then wait for the process to exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// SIGTERM, then wait up to `timeout` for the process to exit; its exit status, or `None`
    /// (and SIGKILL) when it did not exit in time.
    pub fn terminate_within(
        &mut self,
        timeout: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The whole log, escape codes removed.
    pub fn log(&self) -> String {
        strip_escapes(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// `text` without terminal colour codes.
fn strip_escapes(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut in_escape = false;
    for c in text.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, c) => plain.push(c),
        }
    }
    plain
}

/// A worker never outlives its test, even one that fails half-way.
impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}
