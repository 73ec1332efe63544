//! Figures over rounds, and the benchmark's few command-line options.

#[expect(
    clippy::disallowed_types,
    reason = "a wall-clock benchmark outside any runtime"
)]
pub(crate) type Clock = std::time::Instant;

/// The `p` quantile (0..=1) of `values`, nearest rank; `values` must not be empty.
pub(crate) fn quantile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short list"
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

pub(crate) fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// `--NAME VALUE` from the command line (cargo bench adds `--bench`, which is ignored).
pub(crate) fn option<T: std::str::FromStr>(name: &str, default: T) -> T {
    let flag = format!("--{name}");
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .find(|pair| pair[0] == flag)
        .map_or(default, |pair| {
            pair[1]
                .parse()
                .unwrap_or_else(|_| panic!("{flag} {}: not a valid value", pair[1]))
        })
}

/// Kernel, CPUs and load, printed with the figures: they mean little without them.
pub(crate) fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease");
    let load = read("/proc/loadavg");
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "linux {}, {cpus} CPUs, load average {}",
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}
