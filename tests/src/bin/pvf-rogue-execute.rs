//! Test-only execute worker that breaks the protocol on purpose. It is the common worker
//! runner (same command line, connection, sandbox and handshake) with a loop of its own that
//! never runs a job: every answer is a forged `Valid` with head `[42]`.
//!
//! What it does wrong comes from the name it is started under (a link to this binary):
//! - `…-wrong-nonce`: answers with another nonce than the request's;
//! - `…-extra-frame`: answers, and sends a second answer in the same write;
//! - `…-early-frame`: sends an answer right after the handshake, before any request;
//! - any other name: answers every request correctly (the well-behaved control).
//!
//! In the host's start-up self-test (a worker dir named `execute-self-test-*`) it always
//! behaves, so a host in secure mode starts and the misbehaviour reaches its pool workers.

use std::io::Write;
use std::process::ExitCode;

use pvf_common::ipc::frame;
use pvf_common::message::{
    Envelope, ExecuteAnswer, ExecuteRequest, ExecuteResponse, LoadedModules,
};
use pvf_common::sandbox::WorkerKind;
use pvf_common::validation::ValidationResult;
use pvf_common::worker::{Session, WorkerArgs};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Honest,
    WrongNonce,
    ExtraFrame,
    EarlyFrame,
}

fn mode() -> Mode {
    let name = std::env::args().next().unwrap_or_default();
    let in_self_test = WorkerArgs::parse(std::env::args().skip(1)).is_ok_and(|args| {
        args.worker_dir
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("execute-self-test-"))
    });
    if in_self_test {
        Mode::Honest
    } else if name.ends_with("-wrong-nonce") {
        Mode::WrongNonce
    } else if name.ends_with("-extra-frame") {
        Mode::ExtraFrame
    } else if name.ends_with("-early-frame") {
        Mode::EarlyFrame
    } else {
        Mode::Honest
    }
}

fn forged_valid() -> ExecuteAnswer {
    ExecuteAnswer {
        outcome: ExecuteResponse::Ok {
            result: ValidationResult {
                head_data: vec![42],
                ..ValidationResult::default()
            },
            cpu_ms: 0,
        },
        modules: LoadedModules::default(),
    }
}

fn main() -> ExitCode {
    let mode = mode();
    let mut session = match Session::open(WorkerKind::Execute) {
        Ok(session) => session,
        Err(code) => return code,
    };
    if mode == Mode::EarlyFrame && session.answer(0, &forged_valid()).is_err() {
        return ExitCode::from(1);
    }
    loop {
        let nonce = match session.next_request::<ExecuteRequest>() {
            Ok(Some(request)) => request.nonce,
            Ok(None) => return ExitCode::SUCCESS,
            Err(code) => return code,
        };
        let sent = match mode {
            Mode::Honest | Mode::EarlyFrame => session.answer(nonce, &forged_valid()),
            Mode::WrongNonce => session.answer(nonce.wrapping_add(1), &forged_valid()),
            Mode::ExtraFrame => two_answers(&mut session, nonce),
        };
        if sent.is_err() {
            return ExitCode::from(1);
        }
    }
}

/// The answer and a second one in a single write, so both are on the connection when the
/// host reads the first.
fn two_answers(session: &mut Session, nonce: u128) -> Result<(), frame::FrameError> {
    let mut bytes = frame::encode(&Envelope {
        nonce,
        body: forged_valid(),
    })?;
    bytes.extend(frame::encode(&Envelope {
        nonce: nonce.wrapping_add(1),
        body: forged_valid(),
    })?);
    session.stream().write_all(&bytes)?;
    Ok(())
}
