//! `pvf inspect CODE`: what a code blob is, without preparing or running it.
//!
//! Reports whether the blob is compressed and its sizes, its exports, its function imports
//! split into the host functions we implement and the ones that would be stubs, and its
//! memory limits beside the executor's bound. Decompression is bounded by the code-bomb
//! limit, and the Wasm is only parsed (never compiled), so inspecting untrusted code here is
//! as safe as reading it.

use std::io::Write;
use std::path::PathBuf;

use pvf_common::compress::{is_compressed, maybe_decompress};
use pvf_common::host_api;
use pvf_common::params::ExecutorParams;
use pvf_host::ExitCode;
use wasmparser::{ExternalKind, Parser, Payload, TypeRef};

/// Describe validation code: compression, sizes, exports, imports, memory.
#[derive(clap::Args)]
pub struct Args {
    /// The code: .wasm, .wat, or a compressed blob.
    code: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// A memory's page limits.
#[derive(Debug)]
struct MemoryLimits {
    imported: bool,
    initial_pages: u64,
    maximum_pages: Option<u64>,
}

/// Everything the report says.
#[derive(Debug, Default)]
struct Report {
    compressed: bool,
    blob_bytes: usize,
    code_bytes: usize,
    exports: Vec<(String, &'static str)>,
    supported: Vec<String>,
    stubbed: Vec<String>,
    memory: Option<MemoryLimits>,
    custom_sections: Vec<String>,
}

pub fn run(args: Args) -> ExitCode {
    let report = super::input::read_code(&args.code).and_then(|blob| describe(&blob));
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::Usage;
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = if args.json {
        writeln!(out, "{}", to_json(&report))
    } else {
        print_text(&mut out, &report)
    };
    ExitCode::Ok
}

/// Decompresses (bounded) and parses `blob`.
fn describe(blob: &[u8]) -> Result<Report, String> {
    let limit = usize::try_from(ExecutorParams::default().code_bomb_limit).unwrap_or(usize::MAX);
    let code = maybe_decompress(blob, limit).map_err(|e| e.to_string())?;
    let mut report = Report {
        compressed: is_compressed(blob),
        blob_bytes: blob.len(),
        code_bytes: code.len(),
        ..Report::default()
    };
    for payload in Parser::new(0).parse_all(&code) {
        let invalid = |e: wasmparser::BinaryReaderError| format!("not valid Wasm: {e}");
        match payload.map_err(invalid)? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    add_import(&mut report, import.map_err(invalid)?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    report
                        .exports
                        .push((export.name.to_string(), kind_name(export.kind)));
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(invalid)?;
                    report.memory.get_or_insert(MemoryLimits {
                        imported: false,
                        initial_pages: memory.initial,
                        maximum_pages: memory.maximum,
                    });
                }
            }
            Payload::CustomSection(section) => {
                report.custom_sections.push(section.name().to_string());
            }
            _ => {}
        }
    }
    Ok(report)
}

fn add_import(report: &mut Report, import: wasmparser::Import<'_>) {
    let name = format!("{}.{}", import.module, import.name);
    match import.ty {
        TypeRef::Func(_) if host_api::lookup(import.module, import.name).is_some() => {
            report.supported.push(name);
        }
        TypeRef::Func(_) if import.module == "env" => report.stubbed.push(name),
        TypeRef::Memory(memory) => {
            report.memory = Some(MemoryLimits {
                imported: true,
                initial_pages: memory.initial,
                maximum_pages: memory.maximum,
            });
        }
        // The runtime cannot be constructed with any other import; list it with the stubs
        // so it is seen.
        _ => report.stubbed.push(format!(
            "{name} (not provided: the runtime cannot be constructed)"
        )),
    }
}

fn kind_name(kind: ExternalKind) -> &'static str {
    match kind {
        ExternalKind::Func | ExternalKind::FuncExact => "function",
        ExternalKind::Table => "table",
        ExternalKind::Memory => "memory",
        ExternalKind::Global => "global",
        ExternalKind::Tag => "tag",
    }
}

/// Writes the human-readable report. Write errors (e.g. a closed pipe) end it quietly.
fn print_text(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    let bound = ExecutorParams::default().max_memory_pages;
    if report.compressed {
        writeln!(
            out,
            "compressed: yes ({} bytes, {} bytes decompressed)",
            report.blob_bytes, report.code_bytes
        )?;
    } else {
        writeln!(out, "compressed: no ({} bytes)", report.code_bytes)?;
    }
    match &report.memory {
        Some(m) => writeln!(
            out,
            "memory: {} pages initial, maximum {}, {}; executor bound {bound} pages",
            m.initial_pages,
            m.maximum_pages
                .map_or("none declared".to_string(), |p| format!("{p} pages")),
            if m.imported { "imported" } else { "defined" },
        )?,
        None => writeln!(out, "memory: none")?,
    }
    writeln!(out, "exports ({}):", report.exports.len())?;
    for (name, kind) in &report.exports {
        writeln!(out, "  {name} ({kind})")?;
    }
    writeln!(out, "imports supported ({}):", report.supported.len())?;
    for name in &report.supported {
        writeln!(out, "  {name}")?;
    }
    writeln!(
        out,
        "imports stubbed ({}): calling one gives Internal",
        report.stubbed.len()
    )?;
    for name in &report.stubbed {
        writeln!(out, "  {name}")?;
    }
    writeln!(
        out,
        "custom sections: {}",
        report.custom_sections.join(", ")
    )
}

fn to_json(report: &Report) -> serde_json::Value {
    serde_json::json!({
        "compressed": report.compressed,
        "blob_bytes": report.blob_bytes,
        "code_bytes": report.code_bytes,
        "exports": report.exports.iter()
            .map(|(name, kind)| serde_json::json!({"name": name, "kind": kind}))
            .collect::<Vec<_>>(),
        "imports": {"supported": report.supported, "stubbed": report.stubbed},
        "memory": report.memory.as_ref().map(|m| serde_json::json!({
            "imported": m.imported,
            "initial_pages": m.initial_pages,
            "maximum_pages": m.maximum_pages,
        })),
        "executor_max_memory_pages": ExecutorParams::default().max_memory_pages,
        "custom_sections": report.custom_sections,
    })
}
