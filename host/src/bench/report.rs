//! The bench's results: the table an operator reads and the JSON of DESIGN.md's
//! "Observability" schema, which runs are compared by over time (fields may be added, never
//! renamed).

use std::fmt::Write as _;

use pvf_common::engine::WASMTIME_VERSION;
use pvf_common::sandbox::SandboxMode;
use serde_json::{Value, json};

use super::Options;
use super::guests::Code;
use super::latency::Latency;
use super::prepare::Prepare;
use super::restart::Restart;
use super::session::cores;
use super::stats::ms;
use super::throughput::Throughput;

/// Everything one run measured; a scenario that did not run is `None` or empty.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Where it ran.
    pub machine: Value,
    /// Scenario 1.
    pub tiny_latency: Option<Latency>,
    /// Scenario 2.
    pub runtime_latency: Vec<Latency>,
    /// Scenario 1, requests spaced apart.
    pub tiny_latency_spaced: Option<Latency>,
    /// Scenario 2, requests spaced apart.
    pub runtime_latency_spaced: Vec<Latency>,
    /// Scenario 3.
    pub tiny_throughput: Option<Throughput>,
    /// Scenario 4.
    pub cpu_throughput: Option<Throughput>,
    /// Scenario 5.
    pub prepare: Vec<Prepare>,
    /// Scenario 6.
    pub restart: Option<Restart>,
}

impl Report {
    /// An empty report that records the machine and the run's settings.
    pub fn new(options: &Options, corpus: &[Code]) -> Self {
        let machine = json!({
            "cores": cores(),
            "cpu": cpu_model(),
            "kernel": read_trimmed("/proc/sys/kernel/osrelease"),
            "load_average_at_start": read_trimmed("/proc/loadavg"),
            "sandbox": match options.config.sandbox {
                SandboxMode::Enforce => "enforce",
                SandboxMode::Disabled => "disabled",
            },
            "wasmtime": WASMTIME_VERSION,
            "pvf": env!("CARGO_PKG_VERSION"),
            "quick": options.quick,
            "corpus": corpus.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        });
        Self {
            machine,
            ..Self::default()
        }
    }

    /// Records the machine's load at the end: on a shared machine, the load over the run
    /// says how far its numbers can be trusted.
    pub fn finish(&mut self) {
        self.machine["load_average_at_end"] = json!(read_trimmed("/proc/loadavg"));
    }

    /// The JSON document (DESIGN.md's schema plus extra fields).
    pub fn to_json(&self) -> Value {
        let latency = |l: &Latency| {
            json!({
                "code": l.code,
                "p50_ms": ms(l.p50),
                "p99_ms": ms(l.p99),
                "baseline_p50_ms": ms(l.baseline_p50),
                "baseline_p99_ms": ms(l.baseline_p99),
                "execute_p50_ms": ms(l.execute_p50),
                "artifact_bytes": l.artifact_bytes,
                "samples": l.samples,
                "gap_ms": ms(l.gap),
            })
        };
        let throughput = |t: &Throughput| {
            json!({
                "jobs_per_s": t.jobs_per_s,
                "baseline_jobs_per_s": t.baseline_jobs_per_s,
                "ratio": t.ratio(),
                "workers": t.workers,
                "jobs": t.jobs,
                "rounds": t.rounds,
                "job_ms": t.job_ms,
                "overhead_ms": t.overhead_ms(),
            })
        };
        json!({
            "machine": self.machine,
            "tiny_latency": self.tiny_latency.as_ref().map(latency),
            "tiny_throughput": self.tiny_throughput.as_ref().map(throughput),
            "cpu_throughput": self.cpu_throughput.as_ref().map(throughput),
            "runtime_latency": self.runtime_latency.iter().map(latency).collect::<Vec<_>>(),
            "tiny_latency_spaced": self.tiny_latency_spaced.as_ref().map(latency),
            "runtime_latency_spaced": self
                .runtime_latency_spaced
                .iter()
                .map(latency)
                .collect::<Vec<_>>(),
            "prepare": self.prepare.iter().map(|p| json!({
                "code": p.code,
                "ms": ms(p.host),
                "baseline_ms": ms(p.baseline),
                "ratio": p.ratio(),
                "host_prepare_ms": ms(p.host_prepare),
                "artifact_bytes": p.artifact_bytes,
                "rounds": p.rounds,
            })).collect::<Vec<_>>(),
            "restart": self.restart.as_ref().map(|r| json!({
                "cold_ms": ms(r.cold),
                "warm_ms": ms(r.warm),
                "ratio": r.ratio(),
                "code": r.code,
                "codes": r.codes,
                "rounds": r.rounds,
            })),
        })
    }

    /// The table: one row per measure, pvf through the host against in-process.
    pub fn table(&self) -> String {
        let mut rows: Vec<[String; 4]> = Vec::new();
        let tiny = self.tiny_latency.iter().chain(&self.tiny_latency_spaced);
        let runtimes = self
            .runtime_latency
            .iter()
            .chain(&self.runtime_latency_spaced);
        for (l, what) in tiny
            .map(|l| (l, "tiny latency".to_string()))
            .chain(runtimes.map(|l| (l, format!("{} junk", l.code))))
        {
            let apart = if l.gap.is_zero() {
                String::new()
            } else {
                format!(", {:.0} ms apart", ms(l.gap))
            };
            let name = format!("{what} p50{apart} (ms)");
            rows.push(latency_row(&name, ms(l.p50), ms(l.baseline_p50)));
            let name = format!("{what} p99{apart} (ms)");
            rows.push(latency_row(&name, ms(l.p99), ms(l.baseline_p99)));
        }
        for (name, t) in [
            ("tiny throughput (jobs/s)", &self.tiny_throughput),
            ("cpu throughput (jobs/s)", &self.cpu_throughput),
        ] {
            if let Some(t) = t {
                rows.push([
                    format!("{name}, {} workers", t.workers),
                    format!("{:.0}", t.jobs_per_s),
                    format!("{:.0}", t.baseline_jobs_per_s),
                    format!("{:.2}x", t.ratio()),
                ]);
            }
        }
        for p in &self.prepare {
            rows.push([
                format!("prepare {} (ms)", p.code),
                format!("{:.0}", ms(p.host)),
                format!("{:.0}", ms(p.baseline)),
                format!("{:.2}x", p.ratio()),
            ]);
        }
        if let Some(r) = &self.restart {
            rows.push([
                format!("restart to first verdict, {} codes (ms)", r.codes),
                format!("warm {:.0}", ms(r.warm)),
                format!("cold {:.0}", ms(r.cold)),
                format!("{:.3}x", r.ratio()),
            ]);
        }
        let header = [
            "measure".to_string(),
            "pvf".into(),
            "in-process".into(),
            "ratio".into(),
        ];
        let widths: Vec<usize> = (0..4)
            .map(|i| {
                std::iter::once(&header)
                    .chain(&rows)
                    .map(|r| r[i].len())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&rows) {
            let _ = writeln!(
                out,
                "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            );
        }
        for key in ["load_average_at_start", "load_average_at_end"] {
            if let Some(load) = self.machine[key].as_str() {
                let _ = writeln!(out, "{}: {load}", key.replace('_', " "));
            }
        }
        out
    }
}

fn latency_row(name: &str, host: f64, local: f64) -> [String; 4] {
    [
        name.to_string(),
        format!("{host:.3}"),
        format!("{local:.3}"),
        format!("{:.1}x", host / local.max(f64::MIN_POSITIVE)),
    ]
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}
