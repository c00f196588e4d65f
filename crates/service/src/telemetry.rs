//! Logging and tracing for the binaries: `RUST_LOG` filter (default `info`), text or JSON lines,
//! colour only on a terminal; spans with OpenTelemetry contexts, exported over OTLP when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; and a fatal error logged like every other line.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::OnceLock;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Flushed by [`exit`]: spans still batched when the process stops are sent then.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber for the binary `service` (its default `service.name`); `json`
/// selects one JSON object per line. Spans get trace contexts whether or not they are exported,
/// so the W3C context always travels on.
///
/// # Errors
/// When `filter` is not a valid `RUST_LOG` directive list (a typo must not silently log at
/// `info`), or the OTLP settings cannot be used.
pub fn init(service: &str, filter: &str, json: bool) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(filter)
        .map_err(|err| format!("invalid log filter (RUST_LOG / --log) {filter:?}: {err}"))?;
    let provider = tracer_provider(service)?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let _ = subscriber(filter, json, &provider, std::io::stdout).try_init();
    let _ = PROVIDER.set(provider);
    Ok(())
}

/// Lines (text or JSON) to `writer`, filtered by `filter` but for spans, which all reach the
/// tracer of `provider`.
fn subscriber<W>(
    filter: tracing_subscriber::EnvFilter,
    json: bool,
    provider: &SdkTracerProvider,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let spans = tracing_opentelemetry::layer().with_tracer(provider.tracer("orderflow"));
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(writer);
    let lines = if json {
        lines.json().boxed()
    } else {
        lines.boxed()
    };
    tracing_subscriber::registry()
        .with(crate::span_filter::SpansAndFilter(filter))
        .with(lines)
        .with(spans)
}

/// A subscriber that gives spans their trace contexts (W3C propagation included) and logs
/// nothing: for tests of what is propagated.
#[must_use]
pub fn spans_only() -> impl tracing::Subscriber + Send + Sync {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = SdkTracerProvider::builder().build();
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
}

/// The tracer provider: exporting over OTLP/HTTP (protobuf) when the standard variables ask for
/// it, else only giving spans their ids.
fn tracer_provider(service: &str) -> Result<SdkTracerProvider, String> {
    let name = env("OTEL_SERVICE_NAME").unwrap_or_else(|| service.to_owned());
    let builder = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(name).build());
    if !export_wanted(env)? {
        return Ok(builder.build());
    }
    // An `https://` collector needs the process's TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|err| format!("OTLP span exporter: {err}"))?;
    Ok(builder.with_batch_exporter(exporter).build())
}

/// Whether the standard variables (read through `env`) ask for spans to be exported: a collector
/// is named, and neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` says otherwise.
///
/// # Errors
/// When they ask for a protocol this build cannot export.
fn export_wanted(env: impl Fn(&str) -> Option<String>) -> Result<bool, String> {
    let endpoint =
        env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let wanted = endpoint.is_some()
        && env("OTEL_SDK_DISABLED").is_none_or(|v| !v.eq_ignore_ascii_case("true"))
        && env("OTEL_TRACES_EXPORTER").is_none_or(|v| v != "none");
    let protocol =
        env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match protocol {
        Some(protocol) if wanted && protocol != "http/protobuf" => Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: this build exports http/protobuf only \
             (a collector's port 4318)"
        )),
        _ => Ok(wanted),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// The exit of a binary whose `run` returned `result`: a fatal error is logged through the
/// subscriber (JSON when logs are), the spans not yet exported are flushed, then the process
/// ends.
#[must_use]
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "stopped by a fatal error");
            ExitCode::FAILURE
        }
    };
    if let Some(provider) = PROVIDER.get()
        && let Err(err) = provider.shutdown()
    {
        tracing::warn!(error = %err, "could not flush the last spans");
    }
    code
}

#[cfg(test)]
mod tests {
    use super::{SdkTracerProvider, export_wanted, subscriber};
    use std::sync::{Arc, Mutex};

    /// What the subscriber wrote.
    #[derive(Clone, Default)]
    struct Written(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Written {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A log filter quieter than `info` keeps the spans (and so the trace context) but not the
    /// lines it filters out.
    #[test]
    fn a_quiet_log_keeps_the_spans_and_drops_the_lines() {
        let written = Written::default();
        let sink = written.clone();
        let filter = tracing_subscriber::EnvFilter::new("warn");
        let provider = SdkTracerProvider::builder().build();
        let subscriber = subscriber(filter, false, &provider, move || sink.clone());
        let traced = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("delivery", queue = "q");
            let _entered = span.enter();
            tracing::info!("filtered out");
            tracing::warn!("kept");
            broker::trace::trace_id(&span)
        });
        assert!(traced.is_some(), "the info span has a trace context");
        let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("filtered out"), "{text}");
        assert!(
            text.contains("delivery{queue=\"q\"}: "),
            "in its span: {text}"
        );
        assert!(text.contains("kept"), "{text}");
    }

    fn with(pairs: &[(&str, &str)]) -> Result<bool, String> {
        export_wanted(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn spans_are_exported_only_when_a_collector_is_named_and_nothing_says_otherwise() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert_eq!(with(&[]), Ok(false));
        assert_eq!(with(&[endpoint]), Ok(true));
        assert_eq!(
            with(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://c:4318/v1/traces"
            )]),
            Ok(true)
        );
        assert_eq!(with(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")]), Ok(false));
        assert_eq!(
            with(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]),
            Ok(false)
        );
        assert_eq!(
            with(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]),
            Ok(true)
        );
    }

    #[test]
    fn a_protocol_this_build_has_no_exporter_for_is_refused() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
        for protocol in ["grpc", "http/json"] {
            let refused = with(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)]);
            assert!(
                refused.unwrap_err().contains("http/protobuf only"),
                "{protocol}"
            );
        }
        // Nothing to export: the protocol does not matter.
        assert_eq!(with(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]), Ok(false));
    }
}
