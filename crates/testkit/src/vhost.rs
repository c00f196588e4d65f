//! An isolated virtual host per test, with helpers to disturb only its own connections.

use crate::endpoint::{Endpoint, Management};
use rabbitmq_http_client::requests::{Permissions, UserParams, VirtualHostParams};

/// A fresh vhost on the shared broker; deleted (with everything in it) on drop.
#[derive(Debug)]
pub struct TestVhost {
    /// The vhost's name.
    pub name: String,
    /// AMQP URL of the vhost.
    pub url: String,
    endpoint: Endpoint,
    /// Users made for this vhost, deleted with it.
    users: std::sync::Mutex<Vec<String>>,
}

/// What a user may do in the vhost: RabbitMQ's configure, write and read patterns.
#[derive(Debug, Clone, Copy)]
pub struct Grants<'a> {
    pub configure: &'a str,
    pub write: &'a str,
    pub read: &'a str,
}

impl TestVhost {
    /// Creates `orderflow-test-<uuid>` and grants the broker user full rights on it.
    ///
    /// # Panics
    /// When there is no broker (see [`Endpoint::shared`]) or the management API refuses.
    pub async fn new() -> Self {
        crate::init_tracing();
        let endpoint = Endpoint::shared().await.clone();
        let name = format!("orderflow-test-{}", uuid::Uuid::new_v4().simple());
        let api = endpoint.management();
        api.create_vhost(&VirtualHostParams::named(&name))
            .await
            .unwrap_or_else(|err| panic!("creating vhost {name}: {err}"));
        api.grant_permissions(&Permissions {
            user: &endpoint.username,
            vhost: &name,
            configure: ".*",
            read: ".*",
            write: ".*",
        })
        .await
        .unwrap_or_else(|err| panic!("granting permissions on {name}: {err}"));
        let url = endpoint.url_for(&name);
        Self {
            name,
            url,
            endpoint,
            users: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Creates user `<vhost>-<role>` with `grants` on this vhost only; returns its AMQP URL of
    /// the vhost and its name. Deleted with the vhost.
    ///
    /// # Panics
    /// When the management API refuses.
    pub async fn user(&self, role: &str, grants: Grants<'_>) -> (String, String) {
        let name = format!("{}-{role}", self.name);
        let password = uuid::Uuid::new_v4().simple().to_string();
        let salt = rabbitmq_http_client::password_hashing::salt();
        let hash =
            rabbitmq_http_client::password_hashing::base64_encoded_salted_password_hash_sha256(
                &salt, &password,
            );
        let api = self.management();
        api.create_user(&UserParams {
            name: &name,
            password_hash: &hash,
            tags: "",
        })
        .await
        .unwrap_or_else(|err| panic!("creating user {name}: {err}"));
        self.users.lock().expect("users").push(name.clone());
        api.grant_permissions(&Permissions {
            user: &name,
            vhost: &self.name,
            configure: grants.configure,
            read: grants.read,
            write: grants.write,
        })
        .await
        .unwrap_or_else(|err| panic!("granting permissions to {name}: {err}"));
        let host = self
            .endpoint
            .amqp_base
            .rsplit_once('@')
            .map_or(self.endpoint.amqp_base.as_str(), |(_, host)| host);
        let scheme = self
            .endpoint
            .amqp_base
            .split("://")
            .next()
            .unwrap_or("amqp");
        let url = format!(
            "{scheme}://{name}:{password}@{host}/{}",
            self.name.replace('/', "%2f")
        );
        (url, name)
    }

    /// The management API client.
    #[must_use]
    pub fn management(&self) -> Management {
        self.endpoint.management()
    }

    /// Force-closes the client connections in this vhost whose name contains `name_part`
    /// (as an operator would in the UI), once at least `at_least` of them are listed (the
    /// management API lists a new connection only after its next statistics tick, up to 5 s).
    /// Returns how many were closed.
    ///
    /// # Errors
    /// When the management API fails or fewer than `at_least` connections show up within 20 s.
    pub async fn close_connections(
        &self,
        name_part: &str,
        at_least: usize,
        reason: &str,
    ) -> anyhow::Result<usize> {
        let api = self.management();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let connections = loop {
            // The management API can answer 500 while a listed connection's process is exiting
            // (CI run 41: a test tore its own connections down just before): ask again.
            let listed: Vec<_> = match api.list_connections_in(&self.name).await {
                Ok(listed) => listed,
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
                Err(err) => return Err(err.into()),
            }
            .into_iter()
            .filter(|c| c.client_properties.connection_name.contains(name_part))
            .collect();
            if listed.len() >= at_least {
                break listed;
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!(
                    "only {} connections named *{name_part}* listed",
                    listed.len()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        for connection in &connections {
            if let Err(err) = api
                .close_connection(&connection.name, Some(reason), true)
                .await
            {
                // A connection that went away by itself meanwhile is closed all the same.
                let still_open = api
                    .list_connections_in(&self.name)
                    .await?
                    .iter()
                    .any(|c| c.name == connection.name);
                if still_open {
                    return Err(err.into());
                }
            }
        }
        Ok(connections.len())
    }
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        let api = self.endpoint.management();
        let name = self.name.clone();
        let users = std::mem::take(&mut *self.users.lock().expect("users"));
        // Drop cannot await; delete on a helper thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Err(err) = api.delete_vhost(&name, true).await {
                    eprintln!("could not delete test vhost {name}: {err}");
                }
                for user in users {
                    let _ = api.delete_user(&user, true).await;
                }
            });
        })
        .join();
    }
}
