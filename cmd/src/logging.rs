//! One log and trace setup for every binary of this crate: tracing to stderr, filtered by
//! `MYELIN_LOG`, else `RUST_LOG`, else the binary's default level; and, when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, spans exported over
//! OTLP/gRPC, configured by the other standard `OTEL_*` variables (`OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_TIMEOUT`, ...).

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::IsTerminal as _;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Spans exported at this level and above unless `MYELIN_OTEL_LOG` says otherwise; the
/// `reconcile`, `derive` and `api` spans are info.
const DEFAULT_EXPORT_FILTER: &str = "info";

/// Keeps the exporter running; dropping it flushes the spans not sent yet.
#[must_use = "dropping it stops the span export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// The exporter's gRPC channel runs here, apart from the binary's own runtime (if any),
    /// so a single-threaded or blocked caller never stalls the export.
    _runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "flushing spans failed");
        }
    }
}

/// `default_level`: `info` for daemons (the agent, `myelin serve`, whose `serving` line tells
/// its starter it is ready), `warn` for CLI commands. `service`: `service.name` unless
/// `OTEL_SERVICE_NAME` names it.
pub fn install(default_level: &str, service: &'static str) -> Telemetry {
    let directives = std::env::var("MYELIN_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default_level.to_owned());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(EnvFilter::new(directives));
    let (provider, runtime, problem) = match exporter(service) {
        Ok(Some((provider, runtime))) => (Some(provider), Some(runtime), None),
        Ok(None) => (None, None, None),
        Err(problem) => (None, None, Some(problem)),
    };
    let otel = provider.as_ref().map(|provider| {
        let export_filter =
            std::env::var("MYELIN_OTEL_LOG").unwrap_or_else(|_| DEFAULT_EXPORT_FILTER.to_owned());
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            .with_filter(EnvFilter::new(export_filter))
    });
    tracing_subscriber::registry().with(fmt).with(otel).init();
    if let Some(problem) = problem {
        tracing::warn!(error = %problem, "spans are not exported");
    }
    Telemetry {
        provider,
        _runtime: runtime,
    }
}

/// The OTLP pipeline, if the environment asks for one.
fn exporter(
    service: &'static str,
) -> Result<Option<(SdkTracerProvider, tokio::runtime::Runtime)>, String> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let wanted = set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if !wanted || disabled {
        return Ok(None);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp")
        .enable_all()
        .build()
        .map_err(|err| format!("start the exporter's runtime: {err}"))?;
    let exporter = {
        // tonic spawns its channel's worker on the runtime it is built in.
        let _runtime = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|err| format!("build the OTLP exporter: {err}"))?
    };
    let mut resource = Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name(service);
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    Ok(Some((provider, runtime)))
}

/// The W3C `traceparent` of `span`, to continue its trace in another process; `None` when
/// spans are not exported.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the remote span `traceparent` names (ignored when malformed or
/// when spans are not exported).
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        // Err: the span is disabled or already started; it then stays where it is.
        let _ = span.set_parent(context);
    }
}
