//! Flow pipeline throughput on one core: ring buffer bytes decoded, enriched from a table
//! snapshot, matched against a `--from-label`/`--verdict` filter and pushed into the ring.
//! The goal is at least 1M events/s per core; criterion's `thrpt` line is events/s.
//! `agent-ingest` is what the agent does per event: the record parsed and stored in the ring,
//! the flow built only when a reader asks for it.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use observe::enrich::enrich;
use observe::ring::Ring;
use observe::{FlowFilters, fixtures};
use schema::flow::{FlowFilter, Verdict};

fn pipeline(c: &mut Criterion) {
    let events = [
        fixtures::starwars_drop(),
        fixtures::starwars_verdict(),
        fixtures::sleep_httpbin_trace(),
        fixtures::sleep_httpbin_reply(),
        fixtures::dns_drop(),
        fixtures::icmp_verdict(),
    ];
    let records: Vec<Vec<u8>> = events.iter().map(fixtures::encode).collect();
    let decoder = fixtures::decoder();
    let lookup = fixtures::lookup();
    let filters = FlowFilters::new(
        &[FlowFilter {
            source_pod: vec!["default/".to_owned()],
            verdict: vec![Verdict::Dropped.into(), Verdict::Forwarded.into()],
            ..FlowFilter::default()
        }],
        &[FlowFilter {
            destination_label: vec!["reserved:world".to_owned()],
            ..FlowFilter::default()
        }],
    )
    .expect("valid filters");
    let (mut writer, _ring) = Ring::new(4095);

    let mut group = c.benchmark_group("flows");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("decode+enrich+filter+ring", |b| {
        b.iter(|| {
            for (record, event) in records.iter().zip(&events) {
                let mut flow = decoder.decode(record).expect("decodes");
                enrich(&mut flow, event, &lookup);
                if filters.matches(&flow) {
                    writer.push(flow);
                }
            }
        });
    });
    group.bench_function("decode+enrich+filter", |b| {
        b.iter(|| {
            for (record, event) in records.iter().zip(&events) {
                let mut flow = decoder.decode(record).expect("decodes");
                enrich(&mut flow, event, &lookup);
                std::hint::black_box(filters.matches(&flow));
                std::hint::black_box(flow);
            }
        });
    });
    group.bench_function("decode+enrich", |b| {
        b.iter(|| {
            for (record, event) in records.iter().zip(&events) {
                let mut flow = decoder.decode(record).expect("decodes");
                enrich(&mut flow, event, &lookup);
                std::hint::black_box(flow);
            }
        });
    });
    let decoder_arc = std::sync::Arc::new(fixtures::decoder());
    let lookup_arc = std::sync::Arc::new(fixtures::lookup());
    group.bench_function("agent-ingest", |b| {
        b.iter(|| {
            for record in &records {
                let event = bpf::Event::decode(record).expect("decodes");
                writer.push_event(event, &decoder_arc, &lookup_arc);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
