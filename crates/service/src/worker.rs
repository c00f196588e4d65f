//! Running a worker: the broker runtime, the HTTP server (API + ops), its gRPC services if any,
//! and background tasks (the order relay, retention), all stopped together on shutdown — or
//! when the runtime fails for good.

use crate::db::Db;
use crate::http::{Listen, serve};
use crate::retention::Prunable;
use axum::Router;
use broker::Runtime;
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Runs `main` (a worker's `run`) to completion on a runtime of `threads` worker threads.
///
/// # Panics
/// When the runtime cannot be built (the OS refuses threads).
pub fn block_on<T>(threads: usize, main: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("building the Tokio runtime")
        .block_on(main)
}

/// A worker's parts that run side by side.
#[derive(Debug, Default)]
pub struct Worker {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    grpc: Option<Grpc>,
}

/// The gRPC services a worker serves beside its HTTP API.
#[derive(Debug)]
struct Grpc {
    routes: tonic::service::Routes,
    /// Full names (`api.OrderService`) for the health service.
    services: &'static [&'static str],
    listen: Listen,
}

impl Worker {
    /// A worker with nothing running yet, and the metrics recorder installed: what its tasks
    /// record from their first step on is exported (a gauge set before the recorder is lost).
    #[must_use]
    pub fn new() -> Self {
        crate::ops::metrics();
        Self::default()
    }

    /// The token background tasks watch to stop.
    #[must_use]
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs `task` in the background; it must finish once the stop token is cancelled.
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(task));
    }

    /// Prunes `tables` of `db` in the background, keeping rows younger than `window` (none when
    /// it is `None`), until the worker stops; see [`crate::retention`].
    pub fn prune(&mut self, db: &Db, tables: &'static [Prunable], window: Option<Duration>) {
        self.spawn(crate::retention::run(
            db.clone(),
            tables,
            window,
            self.stop_token(),
        ));
    }

    /// Serves `routes` (the services named in `services`) over gRPC on `listen` too, with
    /// health and reflection ([`crate::grpc::serve`]), once the worker runs.
    pub fn serve_grpc(
        &mut self,
        routes: tonic::service::Routes,
        services: &'static [&'static str],
        listen: impl Into<Listen>,
    ) {
        self.grpc = Some(Grpc {
            routes,
            services,
            listen: listen.into(),
        });
    }

    /// Serves `api` plus the ops routes (which check `db`) on `listen` and runs `runtime` until
    /// `shutdown`; closes `db` last.
    ///
    /// # Errors
    /// When the address cannot be bound or the runtime fails for good (e.g. a topology conflict).
    pub async fn run(
        self,
        runtime: Runtime,
        api: Router,
        db: Db,
        listen: impl Into<Listen>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let pool = db.pool().clone();
        drop(db);
        let app = api.merge(crate::ops::routes(runtime.readiness(), pool.clone()));
        let http = serve(listen, app, self.stop.clone()).await?;
        let grpc = match self.grpc {
            Some(Grpc {
                routes,
                services,
                listen,
            }) => Some(
                crate::grpc::serve(listen, routes, services, pool.clone(), self.stop.clone())
                    .await?,
            ),
            None => None,
        };
        let mut broker = tokio::spawn(runtime.run(self.stop.clone().cancelled_owned()));
        let result = tokio::select! {
            () = shutdown => {
                self.stop.cancel();
                (&mut broker).await
            }
            finished = &mut broker => finished,
        };
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        let _ = http.await;
        if let Some(grpc) = grpc {
            let _ = grpc.await;
        }
        pool.close().await;
        result?.map_err(anyhow::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::Worker;

    /// The relay's lease gauge was set this way and lost until the worker's first HTTP request
    /// installed the recorder (CI run 28).
    #[tokio::test]
    async fn what_a_task_records_before_the_worker_runs_is_exported() {
        let mut worker = Worker::new();
        let (recorded, done) = tokio::sync::oneshot::channel();
        worker.spawn(async move {
            metrics::gauge!("orderflow_test_recorded_early").set(7.0);
            let _ = recorded.send(());
        });
        done.await.unwrap();
        let text = crate::ops::metrics().render();
        assert!(text.contains("orderflow_test_recorded_early 7"), "{text}");
    }
}
