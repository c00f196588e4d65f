//! The three worker binaries as child processes: built like the end-to-end tests build them,
//! spawned from this tool's own profile directory, SIGKILLed and restarted on the same port and
//! store, and watched for exits nobody asked for.

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `order-worker`: the HTTP API and the saga's decisions.
    Order,
    /// `payment-worker`: charges and refunds.
    Payment,
    /// `stock-worker`: reservations.
    Stock,
}

impl Role {
    /// All three, in start order.
    pub const ALL: [Role; 3] = [Role::Order, Role::Payment, Role::Stock];

    /// The binary's name.
    #[must_use]
    pub fn binary(self) -> &'static str {
        match self {
            Role::Order => "order-worker",
            Role::Payment => "payment-worker",
            Role::Stock => "stock-worker",
        }
    }

    /// The short name used for stores and fault kinds.
    #[must_use]
    pub fn short(self) -> &'static str {
        match self {
            Role::Order => "order",
            Role::Payment => "payment",
            Role::Stock => "stock",
        }
    }
}

/// `target/<profile>` of this executable (`target/<profile>/examples/soak`).
///
/// # Errors
/// When the executable's path has no such parent.
pub fn profile_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("this executable's path")?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .context("expected to run from target/<profile>/examples")
}

/// Builds the workers and the CLI with the profile this tool was built with (a no-op when up to
/// date).
///
/// # Errors
/// When cargo fails.
pub fn build(workspace: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.args(["build", "-q"]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    for package in ["order-worker", "payment-worker", "stock-worker", "cli"] {
        command.args(["-p", package]);
    }
    let status = command
        .current_dir(workspace)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("building the worker binaries failed");
    }
    Ok(())
}

/// One worker process, restartable with the same environment, port and log.
#[derive(Debug)]
pub struct Worker {
    /// Which worker.
    pub role: Role,
    /// Which replica of its role (0 for the first).
    pub replica: usize,
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    binary: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// Times it exited without being killed by the soak (each one restarted).
    pub unexpected_exits: usize,
}

impl Worker {
    /// Spawns replica `replica` of `role` from `bin_dir` with `env` on a free port, logging to
    /// `dir/<binary>-<replica>.log`.
    ///
    /// # Errors
    /// When no port is free or the binary cannot start.
    pub fn spawn(
        role: Role,
        replica: usize,
        bin_dir: &Path,
        env: Vec<(String, String)>,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        // Below the ephemeral range, so the port stays ours across SIGKILL and restart.
        let addr = SocketAddr::from(([127, 0, 0, 1], testkit::port::unclaimed()?));
        let mut worker = Self {
            role,
            replica,
            addr,
            binary: bin_dir.join(role.binary()),
            env,
            log: dir.join(format!("{}-{replica}.log", role.binary())),
            child: None,
            unexpected_exits: 0,
        };
        worker.start()?;
        Ok(worker)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.binary)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HTTP_ADDR", self.addr.to_string())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// `<binary>-<replica>`, as in its log's name.
    #[must_use]
    pub fn name(&self) -> String {
        format!("{}-{}", self.role.binary(), self.replica)
    }

    /// `http://addr/path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The log file.
    #[must_use]
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// SIGKILL: no shutdown hook runs, nothing is flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same environment, port and store.
    ///
    /// # Errors
    /// When the binary cannot start.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.start()
    }

    /// When the process has exited on its own, counts it and starts it again; returns whether
    /// it had.
    ///
    /// # Errors
    /// When the binary cannot start again.
    pub fn revive_if_exited(&mut self) -> anyhow::Result<bool> {
        let exited = match self.child.as_mut() {
            Some(child) => child.try_wait()?.is_some(),
            None => false,
        };
        if exited {
            self.unexpected_exits += 1;
            self.child = None;
            eprintln!("soak: {} exited on its own; restarting it", self.name());
            self.start()?;
        }
        Ok(exited)
    }

    /// Waits until `/readyz` says ready (broker connected, store reachable).
    ///
    /// # Errors
    /// When it is not ready within `timeout`.
    pub async fn wait_ready(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let url = self.url("/readyz");
        loop {
            if let Ok(response) = http.get(&url).timeout(Duration::from_secs(2)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after {timeout:?}; see {}",
                    self.name(),
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}
