//! Worker processes: built once, spawned with their environment, killed with SIGKILL.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;

/// Which binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Order,
    Payment,
    Stock,
}

impl Kind {
    fn binary(self) -> &'static str {
        match self {
            Kind::Order => "order-worker",
            Kind::Payment => "payment-worker",
            Kind::Stock => "stock-worker",
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
            ])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the worker binaries failed");
    });
}

/// A running worker process.
pub struct Worker {
    pub kind: Kind,
    pub index: usize,
    pub addr: SocketAddr,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Worker {
    /// Spawns worker `kind` #`index` on a free port with `env`, logging to `dir`.
    pub fn spawn(kind: Kind, index: usize, env: Vec<(String, String)>, dir: &Path) -> Worker {
        let addr = free_addr();
        let log = dir.join(format!("{}-{index}.log", kind.binary()));
        let mut worker = Worker {
            kind,
            index,
            addr,
            env,
            log,
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
        let child = Command::new(bin_dir().join(self.kind.binary()))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HTTP_ADDR", self.addr.to_string())
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

    /// `http://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL: no shutdown hook runs, nothing is flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same environment and port.
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
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
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

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
