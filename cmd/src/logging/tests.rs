use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

use super::{continue_trace, traceparent};

#[test]
fn a_traceparent_carries_the_trace_to_another_span() {
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::with_default(subscriber, || {
        let client = tracing::info_span!("apply");
        let header = traceparent(&client).expect("an exported span has a trace context");
        let client_context = client.context();
        let client_span = client_context.span();
        let ids = client_span.span_context();
        assert_eq!(
            header,
            format!("00-{}-{}-01", ids.trace_id(), ids.span_id()),
            "W3C: version, trace id, parent span id, sampled"
        );

        let server = tracing::info_span!("api");
        continue_trace(&server, &header);
        assert_eq!(
            server.context().span().span_context().trace_id(),
            ids.trace_id()
        );

        let unrelated = tracing::info_span!("api");
        continue_trace(&unrelated, "not a traceparent");
        assert_ne!(
            unrelated.context().span().span_context().trace_id(),
            ids.trace_id()
        );
    });
}

#[test]
fn without_an_exporter_there_is_no_traceparent() {
    let subscriber = tracing_subscriber::registry();
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(traceparent(&tracing::info_span!("apply")), None);
    });
    assert_eq!(traceparent(&tracing::Span::none()), None);
}
