//! A private PostgreSQL server (own data directory and port) for tests that stop or restart the
//! database, so that tests sharing the main server are never affected.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Where Debian's `postgresql-15` package puts `initdb`, `pg_ctl` and `psql`.
const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The OS user that owns the cluster: `initdb` and `postgres` refuse to run as root.
const OS_USER: &str = "postgres";

/// A `postgres` server started by the test on 127.0.0.1 with trust auth; stopped and removed on
/// drop.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// Creates a cluster in a temporary directory, starts it on a free port and waits until it
    /// accepts connections.
    ///
    /// # Errors
    /// When PostgreSQL 15 is not installed, the `postgres` OS user is missing, or the server does
    /// not come up within 60 s.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// Starts a server that also takes TLS (`ssl = on`), its certificate issued by `ca` for
    /// `localhost` and 127.0.0.1; clients choose with `sslmode` (plain connections still work).
    ///
    /// # Errors
    /// As [`start`](Self::start), or when the certificate cannot be issued.
    pub async fn start_tls(ca: &crate::tls::TestCa) -> anyhow::Result<Self> {
        Self::start_with(Some(ca)).await
    }

    async fn start_with(ca: Option<&crate::tls::TestCa>) -> anyhow::Result<Self> {
        crate::init_tracing();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("orderflow-pg-{}", &id[..12]));
        std::fs::create_dir_all(&dir)?;
        let chown = Command::new("chown")
            .arg(format!("{OS_USER}:{OS_USER}"))
            .arg(&dir)
            .status()
            .context("running chown")?;
        if !chown.success() {
            bail!("chown {OS_USER} {} failed", dir.display());
        }
        let port = crate::port::unclaimed()?;
        let server = Self { dir, port };
        let data = server.data_dir();
        let init = as_postgres(
            Path::new(BIN).join("initdb"),
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        )
        .await?;
        if !init.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        }
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             max_connections = 200\n",
            server.dir.display()
        );
        if let Some(ca) = ca {
            let issued = ca.issue_server("postgres")?;
            let (cert, key) = (data.join("server.crt"), data.join("server.key"));
            std::fs::copy(&issued.certificate, &cert)?;
            std::fs::copy(&issued.key, &key)?;
            // The server refuses a key others can read, and runs as the postgres user.
            let owned = Command::new("chown")
                .arg(format!("{OS_USER}:{OS_USER}"))
                .arg(&cert)
                .arg(&key)
                .status()?;
            let private = Command::new("chmod").arg("600").arg(&key).status()?;
            if !owned.success() || !private.success() {
                bail!("cannot hand the certificate to {OS_USER}");
            }
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        append(&data.join("postgresql.conf"), &conf)?;
        server.start_again().await?;
        Ok(server)
    }

    /// URL of `database` on this server.
    #[must_use]
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The TCP port the server listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates an empty database and returns its URL.
    ///
    /// # Errors
    /// When `psql` fails (the server is down, the name is taken).
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        let port = self.port.to_string();
        let out = as_postgres(
            Path::new(BIN).join("psql"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &sql,
            ],
        )
        .await?;
        if !out.status.success() {
            bail!(
                "creating database {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(self.url(name))
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`): an outage, every connection drops.
    ///
    /// # Errors
    /// When `pg_ctl` fails (e.g. the server is already stopped).
    pub fn stop(&self) -> anyhow::Result<()> {
        let out = Command::new("runuser")
            .args(["-u", OS_USER, "--"])
            .arg(Path::new(BIN).join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.data_dir())
            .output()
            .context("running pg_ctl stop")?;
        if !out.status.success() {
            bail!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Starts the server again on the same data directory and port, and waits until it accepts
    /// connections.
    ///
    /// # Errors
    /// When it does not come up within 60 s.
    pub async fn start_again(&self) -> anyhow::Result<()> {
        let data = self.data_dir();
        let log = self.dir.join("server.log");
        let out = as_postgres(
            Path::new(BIN).join("pg_ctl"),
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
            ],
        )
        .await?;
        if !out.status.success() {
            bail!(
                "pg_ctl start failed: {}; see {}",
                String::from_utf8_lossy(&out.stderr),
                log.display()
            );
        }
        self.wait_ready().await
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = self.port.to_string();
        loop {
            let probe = tokio::process::Command::new(Path::new(BIN).join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-t", "2"])
                .output()
                .await
                .context("running pg_isready")?;
            if probe.status.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "private PostgreSQL on port {} did not become ready; see {}",
                    self.port,
                    self.dir.join("server.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `program` as the `postgres` OS user (the cluster's owner).
async fn as_postgres(program: PathBuf, args: &[&str]) -> anyhow::Result<Output> {
    tokio::process::Command::new("runuser")
        .args(["-u", OS_USER, "--"])
        .arg(&program)
        .args(args)
        .output()
        .await
        .with_context(|| format!("running {} as {OS_USER}", program.display()))
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("non-UTF-8 path {}", path.display()))
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn accepts(url: &str) -> bool {
        // Avoids a client crate: pg_isready against the URL's port says whether it accepts.
        let port = url.rsplit(':').next().and_then(|p| p.split('/').next());
        let Some(port) = port else { return false };
        tokio::process::Command::new(Path::new(BIN).join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", port, "-t", "2"])
            .output()
            .await
            .is_ok_and(|out| out.status.success())
    }

    #[tokio::test]
    async fn starts_creates_a_database_stops_and_starts_again() -> anyhow::Result<()> {
        let pg = PrivatePostgres::start().await?;
        let url = pg.create_database("orders_test").await?;
        assert_eq!(
            url,
            format!("postgres://postgres@127.0.0.1:{}/orders_test", pg.port())
        );
        assert!(accepts(&url).await);

        pg.stop()?;
        assert!(!accepts(&url).await, "the server still accepts after stop");

        pg.start_again().await?;
        assert!(accepts(&url).await);
        // The database survived the immediate stop: creating it again is refused.
        assert!(pg.create_database("orders_test").await.is_err());

        let dir = pg.dir.clone();
        drop(pg);
        assert!(!dir.exists(), "drop leaves {}", dir.display());
        Ok(())
    }
}
