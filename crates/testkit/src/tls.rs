//! A certificate authority made for one test (`openssl` on the PATH): its CA certificate, and
//! server certificates for `localhost` and 127.0.0.1 that it signed, so that TLS tests verify
//! the server against a CA no machine trusts by default.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA in its own temporary directory, removed on drop.
#[derive(Debug)]
pub struct TestCa {
    dir: PathBuf,
}

/// A certificate and its private key, PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// Creates the CA (EC P-256, valid for a day).
    ///
    /// # Errors
    /// When `openssl` is missing or fails.
    pub fn new() -> anyhow::Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("orderflow-ca-{}", &id[..12]));
        std::fs::create_dir_all(&dir)?;
        let ca = Self { dir };
        ca.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=orderflow test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ])?;
        Ok(ca)
    }

    /// The CA certificate (what clients are told to trust).
    #[must_use]
    pub fn certificate(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server certificate for `localhost` and 127.0.0.1, signed by this CA, as `name.pem` and
    /// `name.key`.
    ///
    /// # Errors
    /// When `openssl` fails.
    pub fn issue_server(&self, name: &str) -> anyhow::Result<Issued> {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &key,
            "-out",
            &csr,
        ])?;
        let extensions = self.dir.join(format!("{name}.ext"));
        std::fs::write(
            &extensions,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n\
             basicConstraints=CA:FALSE\n",
        )?;
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            path_str(&extensions)?,
            "-out",
            &pem,
        ])?;
        Ok(Issued {
            certificate: self.dir.join(pem),
            key: self.dir.join(key),
        })
    }

    fn openssl(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .context("openssl is not installed: `apt-get install openssl`")?;
        if !out.status.success() {
            bail!(
                "openssl {} failed: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("a temporary path that is not UTF-8")
}
