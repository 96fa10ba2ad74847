//! The code as Polkadot's host rewrites it before compiling, with the same parser
//! (`parity-wasm` 0.45 through `wasm-instrument` 0.4, no optional features), in the same
//! order:
//!
//! 1. Parse. The parser knows only Wasm 1.0: sign extension, saturating float-to-int, bulk
//!    memory, multi-value and SIMD are refused here, whatever the engine would accept.
//! 2. Inject the deterministic stack limit: every call adds its frame's logical cost (locals
//!    plus the deepest operand stack) to a counter and traps with `unreachable` when the
//!    counter would pass the limit. The native stack depends on the compiler, its version and
//!    its opt level; the counter does not, so a given code and limit stop at the same call
//!    depth on every validator, Polkadot's included.
//! 3. Turn the first memory import, from any module and under any name, into the module's
//!    own memory, exported under the import's name.
//! 4. Drop every memory's declared maximum: only the executor's page bound applies.
//!
//! It also refuses a `br_table` with more targets than the validator of Polkadot's wasmtime
//! (36, wasmparser 0.236) allows, 131,072; ours allows more.

use pvf_common::host_api::ValueType;
use wasm_instrument::parity_wasm;
use wasm_instrument::parity_wasm::elements::{
    self, ExportEntry, External, Instruction, Internal, MemorySection, MemoryType, Module, Section,
    Type,
};

/// The most `br_table` targets Polkadot's wasmtime validates.
pub const MAX_BR_TABLE_TARGETS: usize = 128 * 1024;

/// Why code could not be rewritten. Deterministic: the same code fails the same way.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RewriteError {
    /// The parser refused the module (as Polkadot's, which is the same).
    #[error("cannot parse the module: {0}")]
    Parse(String),
    /// A `br_table` has more targets than Polkadot's validator allows.
    #[error("a br_table has {0} targets, more than {MAX_BR_TABLE_TARGETS}")]
    BrTableTooLarge(usize),
    /// The stack limiter refused the module (e.g. a frame's cost overflows).
    #[error("stack instrumentation failed: {0}")]
    Inject(&'static str),
    /// The memory import could not become the module's own memory (it has one already).
    #[error("cannot turn the memory import into the module's memory: {0}")]
    MemoryImport(String),
    /// The rewritten module could not be written back.
    #[error("cannot serialize the rewritten module: {0}")]
    Serialize(String),
}

/// An import left after rewriting, as linking sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// The module it imports from.
    pub module: String,
    /// Its name.
    pub name: String,
    /// A function's type, or `None` for a memory, table or global.
    pub func: Option<(Vec<ValueType>, Vec<ValueType>)>,
}

/// The rewritten code and what it still imports.
pub struct Rewritten {
    /// The module to compile.
    pub code: Vec<u8>,
    /// Its imports.
    pub imports: Vec<Import>,
}

/// Rewrites `code` as described above, with a logical stack limit of `logical_max` values.
pub fn rewrite(code: &[u8], logical_max: u32) -> Result<Rewritten, RewriteError> {
    let module = parity_wasm::deserialize_buffer::<Module>(code)
        .map_err(|e| RewriteError::Parse(e.to_string()))?;
    check_br_tables(&module)?;
    let mut module =
        wasm_instrument::inject_stack_limiter(module, logical_max).map_err(RewriteError::Inject)?;
    memory_import_into_export(&mut module)?;
    drop_memory_maximum(&mut module);
    let imports = imports(&module);
    let code =
        parity_wasm::serialize(module).map_err(|e| RewriteError::Serialize(e.to_string()))?;
    Ok(Rewritten { code, imports })
}

fn check_br_tables(module: &Module) -> Result<(), RewriteError> {
    let bodies = module.code_section().map_or(&[][..], |c| c.bodies());
    for body in bodies {
        for instruction in body.code().elements() {
            if let Instruction::BrTable(data) = instruction
                && data.table.len() > MAX_BR_TABLE_TARGETS
            {
                return Err(RewriteError::BrTableTooLarge(data.table.len()));
            }
        }
    }
    Ok(())
}

/// Step 3: removes the first memory import, gives the module that memory, and exports it
/// under the import's name.
fn memory_import_into_export(module: &mut Module) -> Result<(), RewriteError> {
    let Some(imports) = module.import_section_mut() else {
        return Ok(());
    };
    let entries = imports.entries_mut();
    let Some(index) = entries
        .iter()
        .position(|e| matches!(e.external(), External::Memory(_)))
    else {
        return Ok(());
    };
    let entry = entries.remove(index);
    let External::Memory(ty) = *entry.external() else {
        return Ok(());
    };
    module
        .insert_section(Section::Memory(MemorySection::with_entries(vec![ty])))
        .map_err(|e| RewriteError::MemoryImport(e.to_string()))?;
    if module.export_section_mut().is_none() {
        let empty = Section::Export(elements::ExportSection::default());
        module
            .insert_section(empty)
            .map_err(|e| RewriteError::MemoryImport(e.to_string()))?;
    }
    if let Some(exports) = module.export_section_mut() {
        let export = ExportEntry::new(entry.field().to_owned(), Internal::Memory(0));
        exports.entries_mut().push(export);
    }
    Ok(())
}

/// Step 4.
fn drop_memory_maximum(module: &mut Module) {
    if let Some(memories) = module.memory_section_mut() {
        for memory in memories.entries_mut() {
            *memory = MemoryType::new(memory.limits().initial(), None);
        }
    }
}

fn imports(module: &Module) -> Vec<Import> {
    let types = module.type_section().map_or(&[][..], |t| t.types());
    let entries = module.import_section().map_or(&[][..], |i| i.entries());
    entries
        .iter()
        .map(|entry| {
            let func = match entry.external() {
                External::Function(index) => {
                    types.get(*index as usize).map(|Type::Function(ty)| {
                        (value_types(ty.params()), value_types(ty.results()))
                    })
                }
                _ => None,
            };
            Import {
                module: entry.module().to_owned(),
                name: entry.field().to_owned(),
                func,
            }
        })
        .collect()
}

fn value_types(types: &[elements::ValueType]) -> Vec<ValueType> {
    types
        .iter()
        .map(|t| match t {
            elements::ValueType::I32 => ValueType::I32,
            elements::ValueType::I64 => ValueType::I64,
            elements::ValueType::F32 => ValueType::F32,
            elements::ValueType::F64 => ValueType::F64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use wasmparser::{Parser, Payload, TypeRef};
    use wasmtime::{Config, Engine, Instance, OptLevel, Store};

    use super::*;

    /// Counts how deep `$f` recurses before the limit traps.
    const RECURSE: &str = r#"(module
        (global $depth (export "depth") (mut i32) (i32.const 0))
        (func $f (export "f") (param i64) (result i64)
            (local i64 i64 i64)
            (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
            (call $f (i64.add (local.get 0) (i64.const 1)))))"#;

    fn rewritten(wat: &str) -> Rewritten {
        rewrite(&wat::parse_str(wat).unwrap(), 1024).unwrap()
    }

    fn depth_reached(logical_max: u32, opt_level: OptLevel) -> i32 {
        let code = rewrite(&wat::parse_str(RECURSE).unwrap(), logical_max)
            .unwrap()
            .code;
        let mut config = Config::new();
        config.cranelift_opt_level(opt_level);
        let engine = Engine::new(&config).unwrap();
        let module = wasmtime::Module::new(&engine, code).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance
            .get_typed_func::<i64, i64>(&mut store, "f")
            .unwrap();
        let trap = f.call(&mut store, 0).unwrap_err();
        assert_eq!(
            trap.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::UnreachableCodeReached),
            "{trap:?}"
        );
        let depth = instance.get_global(&mut store, "depth").unwrap();
        depth.get(&mut store).unwrap_i32()
    }

    #[test]
    fn recursion_stops_at_a_depth_set_by_the_logical_limit() {
        // A frame costs its declared locals (3; parameters are not counted), its deepest
        // operand stack (2) and a fixed activation cost (2): 7. A call that would take the
        // total past the limit traps before entering, so the depth is limit / 7.
        assert_eq!(depth_reached(1024, OptLevel::SpeedAndSize), 146);
        assert_eq!(depth_reached(65_536, OptLevel::SpeedAndSize), 9362);
    }

    #[test]
    fn the_depth_does_not_depend_on_the_compiler_opt_level() {
        for opt_level in [OptLevel::None, OptLevel::Speed, OptLevel::SpeedAndSize] {
            assert_eq!(depth_reached(65_536, opt_level), 9362, "{opt_level:?}");
        }
    }

    /// Whether the parser accepts a module with `body` as a function's code.
    fn accepts(body: &str) -> bool {
        let wat = format!("(module (memory 1) (func (param i32 f32 i64) {body}))");
        rewrite(&wat::parse_str(wat).unwrap(), 1024).is_ok()
    }

    #[test]
    fn the_parser_accepts_what_polkadots_does() {
        // The parser without optional features, as Polkadot's host builds it: Wasm 1.0 only.
        // Sign extension, bulk memory, saturating float-to-int and multi-value blocks are
        // refused, so code using them fails preparation here as there.
        assert!(accepts("(drop (i32.add (local.get 0) (i32.const 1)))"));
        for refused in [
            "(drop (i32.extend8_s (local.get 0)))",
            "(drop (i32.extend16_s (local.get 0)))",
            "(drop (i64.extend8_s (local.get 2)))",
            "(drop (i64.extend16_s (local.get 2)))",
            "(drop (i64.extend32_s (local.get 2)))",
            "(memory.fill (i32.const 0) (i32.const 0) (i32.const 0))",
            "(drop (i32.trunc_sat_f32_s (local.get 1)))",
            "(block (result i32 i32) (i32.const 1) (i32.const 2)) (drop) (drop)",
        ] {
            assert!(!accepts(refused), "{refused}");
        }
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert!(matches!(
            rewrite(b"\0asm\x01\0\0\0\x01", 1024),
            Err(RewriteError::Parse(_))
        ));
    }

    #[test]
    fn br_tables_are_bounded_as_polkadots_validator_bounds_them() {
        let table = |targets: usize| {
            let labels = "0 ".repeat(targets);
            format!("(module (func (block (br_table {labels} 0 (i32.const 0)))))")
        };
        assert!(rewrite(&wat::parse_str(table(MAX_BR_TABLE_TARGETS)).unwrap(), 1024).is_ok());
        assert_eq!(
            rewrite(
                &wat::parse_str(table(MAX_BR_TABLE_TARGETS + 1)).unwrap(),
                1024
            )
            .err(),
            Some(RewriteError::BrTableTooLarge(MAX_BR_TABLE_TARGETS + 1))
        );
    }

    /// A module's memories: defined (initial, maximum), exported names, imports.
    #[derive(Debug, PartialEq)]
    struct Memories {
        defined: Vec<(u64, Option<u64>)>,
        exported: Vec<String>,
        imported: usize,
    }

    fn memories(code: &[u8]) -> Memories {
        let (mut defined, mut exported, mut imported) = (Vec::new(), Vec::new(), 0);
        for payload in Parser::new(0).parse_all(code) {
            match payload.unwrap() {
                Payload::MemorySection(reader) => {
                    for memory in reader {
                        let memory = memory.unwrap();
                        defined.push((memory.initial, memory.maximum));
                    }
                }
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        if let TypeRef::Memory(_) = import.unwrap().ty {
                            imported += 1;
                        }
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export.unwrap();
                        if export.kind == wasmparser::ExternalKind::Memory {
                            exported.push(export.name.to_owned());
                        }
                    }
                }
                _ => {}
            }
        }
        Memories {
            defined,
            exported,
            imported,
        }
    }

    fn defines(defined: (u64, Option<u64>), exported: &str) -> Memories {
        Memories {
            defined: vec![defined],
            exported: vec![exported.to_owned()],
            imported: 0,
        }
    }

    #[test]
    fn a_memory_import_from_any_module_becomes_the_modules_exported_memory() {
        let out = rewritten(r#"(module (import "anything" "heap" (memory 3 10)))"#);
        assert_eq!(memories(&out.code), defines((3, None), "heap"));
        assert!(out.imports.is_empty());
        // Only the first is turned; a second stays an import (which linking refuses).
        let out = rewritten(
            r#"(module (import "env" "memory" (memory 1)) (import "env" "f" (func (param i64))))"#,
        );
        assert_eq!(memories(&out.code), defines((1, None), "memory"));
        assert_eq!(
            out.imports,
            [Import {
                module: "env".into(),
                name: "f".into(),
                func: Some((vec![ValueType::I64], vec![])),
            }]
        );
    }

    #[test]
    fn re_exporting_the_imported_memory_as_memory_exports_it_twice() {
        // Polkadot's host compiles this to a module with two exports named `memory`, which
        // the compiler refuses: invalid code.
        let out = rewritten(
            r#"(module (import "env" "memory" (memory 1)) (export "memory" (memory 0)))"#,
        );
        assert_eq!(memories(&out.code).exported, ["memory", "memory"]);
        let engine = Engine::default();
        assert!(wasmtime::Module::new(&engine, &out.code).is_err());
    }

    #[test]
    fn a_declared_memory_maximum_is_dropped() {
        let out = rewritten(r#"(module (memory (export "memory") 2 5))"#);
        assert_eq!(memories(&out.code), defines((2, None), "memory"));
    }
}
