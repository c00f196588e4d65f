//! The binaries' one filter for every layer: events as `RUST_LOG` says, spans at `info` and above
//! always, so a quieter log keeps traces whole. Not per-layer filters: their per-thread state goes
//! stale when a `log` record is only checked (tokio-rs/tracing#2704), and then the next event on
//! that thread is lost from the log.

use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Subscriber, span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// `RUST_LOG`'s filter, letting every span at `info` or above through.
pub(crate) struct SpansAndFilter(pub(crate) EnvFilter);

fn always(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && *metadata.level() <= Level::INFO
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpansAndFilter {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        let filtered = Layer::<S>::register_callsite(&self.0, metadata);
        if always(metadata) {
            Interest::always()
        } else {
            filtered
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        always(metadata) || Layer::<S>::enabled(&self.0, metadata, ctx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Layer::<S>::max_level_hint(&self.0).map(|hint| hint.max(LevelFilter::INFO))
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        Layer::<S>::on_new_span(&self.0, attrs, id, ctx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        Layer::<S>::on_record(&self.0, id, values, ctx);
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        Layer::<S>::on_enter(&self.0, id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        Layer::<S>::on_exit(&self.0, id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        Layer::<S>::on_close(&self.0, id, ctx);
    }
}
