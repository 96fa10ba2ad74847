//! Every worker is forked from one thread that lives as long as the process.
//!
//! A worker asks the kernel to kill it when its parent dies (`PR_SET_PDEATHSIG`), and for
//! the kernel the parent is the *thread* that forked it, not the host process. Forking on
//! whichever thread polls the spawn would tie the worker to that thread: a blocking-pool
//! thread that retires after idling, or a `block_in_place` thread of the node, would take
//! healthy workers (and their jobs' verdicts) with it.

use std::sync::OnceLock;
use std::sync::mpsc;

use tokio::process::{Child, Command};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A command to spawn, the runtime its child belongs to, and where the child goes.
type Request = (Command, Handle, oneshot::Sender<std::io::Result<Child>>);

/// Spawns `command` on the spawning thread, in the caller's runtime.
pub async fn spawn(command: Command) -> std::io::Result<Child> {
    static THREAD: OnceLock<Option<mpsc::Sender<Request>>> = OnceLock::new();
    let sender = THREAD.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<Request>();
        let started = std::thread::Builder::new()
            .name("pvf-spawn".into())
            .spawn(move || {
                for (mut command, runtime, reply) in requests {
                    // tokio registers the child with the runtime's process driver.
                    let _entered = runtime.enter();
                    let _ = reply.send(command.spawn());
                }
            });
        started.ok().map(|_| sender)
    });
    let unavailable = || std::io::Error::other("the worker-spawning thread is not running");
    let sender = sender.as_ref().ok_or_else(unavailable)?;
    let (reply, child) = oneshot::channel();
    sender
        .send((command, Handle::current(), reply))
        .map_err(|_| unavailable())?;
    child.await.map_err(|_| unavailable())?
}
