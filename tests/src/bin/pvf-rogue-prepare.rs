//! Test-only prepare worker that answers Ok after planting something other than an honest
//! artifact file under the name the host chose. It is the common worker runner (same command
//! line, connection, sandbox and handshake) with a loop of its own: it compiles the code
//! in-process (no job) into a real artifact for the request, then, by the name it is started
//! under (a link to this binary):
//! - `…-symlink`: writes the artifact outside its dir and links the name to it;
//! - `…-hardlink`: writes the artifact outside its dir and hard-links the name to it;
//! - `…-fifo`: makes the name a FIFO;
//! - `…-oversize`: writes the artifact and extends it past the size cap;
//! - `…-otherid`: writes a good artifact for another code;
//! - `…-setuid`: writes the artifact with the set-uid bit;
//! - any other name: writes the artifact as an honest worker does (the control).
//!
//! Planting outside its dir needs a worker without the sandbox; the tests start it so.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;

use pvf_common::artifact::{self, Header, MAX_ARTIFACT_LEN};
use pvf_common::error::PrepareError;
use pvf_common::message::{PrepareRequest, PrepareResponse, Prepared};
use pvf_common::params::ArtifactId;
use pvf_common::sandbox::WorkerKind;
use pvf_common::worker::Session;

fn main() -> ExitCode {
    let mode = std::env::args().next().unwrap_or_default();
    let mode = mode.rsplit('-').next().unwrap_or("").to_string();
    let mut session = match Session::open(WorkerKind::Prepare) {
        Ok(session) => session,
        Err(code) => return code,
    };
    loop {
        let request = match session.next_request::<PrepareRequest>() {
            Ok(Some(request)) => request,
            Ok(None) => return ExitCode::SUCCESS,
            Err(code) => return code,
        };
        let answer = plant(&session.ctx.dir, &mode, &request.body);
        if session.answer(request.nonce, &answer).is_err() {
            return ExitCode::from(1);
        }
    }
}

fn plant(dir: &Path, mode: &str, request: &PrepareRequest) -> PrepareResponse {
    let failed = |e: &dyn std::fmt::Display| PrepareError::Internal(e.to_string());
    let compiled = pvf_prepare_worker::compile(&request.code, &request.params, request.kind)?;
    let fingerprint = pvf_common::engine::fingerprint().map_err(|e| failed(&e))?;
    let id = match mode {
        "otherid" => ArtifactId {
            code_hash: [0xaa; 32],
            ..request.id
        },
        _ => request.id,
    };
    let header = Header::describe(fingerprint, id, &compiled.payload);
    let name = dir.join(&request.artifact_file);
    let outside = dir
        .parent()
        .ok_or_else(|| failed(&"no parent dir"))?
        .join(format!("outside-{}", request.artifact_file));
    let write = |path: &Path| artifact::write(path, &header, &compiled.payload);
    match mode {
        "symlink" => {
            write(&outside).map_err(|e| failed(&e))?;
            std::os::unix::fs::symlink(&outside, &name).map_err(|e| failed(&e))?;
        }
        "hardlink" => {
            write(&outside).map_err(|e| failed(&e))?;
            std::fs::hard_link(&outside, &name).map_err(|e| failed(&e))?;
        }
        "fifo" => {
            nix::unistd::mkfifo(&name, nix::sys::stat::Mode::S_IRWXU).map_err(|e| failed(&e))?;
        }
        "oversize" => {
            write(&name).map_err(|e| failed(&e))?;
            let file = std::fs::File::options().write(true).open(&name);
            file.and_then(|f| f.set_len(MAX_ARTIFACT_LEN + 1))
                .map_err(|e| failed(&e))?;
        }
        "setuid" => {
            write(&name).map_err(|e| failed(&e))?;
            let mode = std::fs::Permissions::from_mode(0o4400);
            std::fs::set_permissions(&name, mode).map_err(|e| failed(&e))?;
        }
        _ => write(&name).map_err(|e| failed(&e))?,
    }
    Ok(Prepared {
        code_len: compiled.code_len,
        cpu_ms: 0,
        max_rss_kib: 0,
    })
}
