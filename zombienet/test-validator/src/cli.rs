//! The command line: the flags this node reads, and the Substrate node flags zombienet passes
//! to every node, which it accepts and ignores.

use std::path::PathBuf;

use clap::{Arg, ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};

/// Substrate flags that take a value. Zombienet's native provider passes these (and a network
/// config may add more); none of them means anything to a node without a chain.
const IGNORED_WITH_VALUE: &[&str] = &[
    "chain",
    "name",
    "node-key",
    "rpc-port",
    "port",
    "listen-addr",
    "rpc-cors",
    "rpc-methods",
    "telemetry-url",
    "jaeger-agent",
    "log",
];

/// Substrate switches, ignored for the same reason.
const IGNORED_SWITCHES: &[&str] = &[
    "validator",
    "alice",
    "bob",
    "charlie",
    "dave",
    "eve",
    "ferdie",
    "one",
    "two",
    "unsafe-rpc-external",
    "prometheus-external",
    "no-mdns",
    "no-telemetry",
    "no-hardware-benchmarks",
    "discover-local",
];

/// A stand-in validator node for zombienet networks. It validates a stream of candidates
/// (the bundled test guests, plus real runtimes from `--corpus`) through the pvf host, logs
/// one line per verdict with a digest of the result, and serves Prometheus metrics.
#[derive(Parser, Debug)]
#[command(name = "pvf-test-validator", version)]
pub struct Cli {
    /// Where the node keeps its data; the pvf artifact cache is `<DIR>/pvf-artifacts`
    /// [default: the pvf cache dir, ~/.cache/pvf].
    #[arg(long, value_name = "DIR")]
    pub base_path: Option<PathBuf>,
    /// Serve metrics on 127.0.0.1 at this port.
    #[arg(long, value_name = "PORT", default_value_t = 9615)]
    pub prometheus_port: u16,
    /// Also prepare the `*.code` runtimes in this directory at start-up and validate
    /// candidates for them. On a small machine give it to one node only.
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Pause between two rounds of candidates, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub round_interval_ms: u64,
    /// Stop after this many rounds [default: run until killed].
    #[arg(long, value_name = "N")]
    pub rounds: Option<u32>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print a minimal raw chain spec (JSON) on stdout, for zombienet.
    BuildSpec {
        /// Ignored: there is one chain.
        #[arg(long, value_name = "CHAIN")]
        chain: Option<String>,
        /// Ignored: the spec is always raw.
        #[arg(long)]
        raw: bool,
        /// Ignored: the spec has no boot nodes.
        #[arg(long)]
        disable_default_bootnode: bool,
    },
}

impl Cli {
    /// Parses `args` (including the program name). `--help` and `--version` come back as
    /// errors whose `exit_code()` is 0.
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = with_ignored_flags(Self::command()).try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }
}

/// Adds the ignored Substrate flags. They are shown in `--help` under their own heading;
/// zombienet reads the help to pick a flag dialect, and it finds `--rpc-port` (not
/// `--ws-port`), so it passes the current dialect.
fn with_ignored_flags(command: clap::Command) -> clap::Command {
    const HEADING: &str = "Substrate flags (accepted and ignored)";
    let with_value = IGNORED_WITH_VALUE.iter().map(|name| {
        Arg::new(*name)
            .long(*name)
            .value_name("VALUE")
            .action(ArgAction::Append)
            .help_heading(HEADING)
    });
    let switches = IGNORED_SWITCHES.iter().map(|name| {
        Arg::new(*name)
            .long(*name)
            .action(ArgAction::Count)
            .help_heading(HEADING)
    });
    let bootnodes = Arg::new("bootnodes")
        .long("bootnodes")
        .value_name("ADDR")
        .num_args(1..)
        .action(ArgAction::Append)
        .help_heading(HEADING);
    command
        .args(with_value)
        .args(switches)
        .arg(bootnodes)
        .mut_arg("log", |arg| arg.short('l'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command line zombienet's native provider generates for a validator (v1 dialect),
    /// with the extra args a network config gives.
    #[test]
    fn accepts_the_zombienet_native_command_line() {
        let line = "pvf-test-validator --chain /tmp/z/alice/cfg/pvf-test.json --name alice \
            --rpc-cors all --rpc-methods unsafe --corpus /c --alice -lpvf=debug --no-mdns \
            --node-key 2bd8 --no-telemetry --prometheus-external --validator \
            --bootnodes /ip4/127.0.0.1/tcp/1/ws/p2p/12D3 /ip4/127.0.0.1/tcp/2/ws/p2p/12D3 \
            --prometheus-port 41000 --rpc-port 41001 --listen-addr /ip4/127.0.0.1/tcp/41002/ws \
            --base-path /tmp/z/alice/data";
        let cli = Cli::try_parse_args(line.split_whitespace()).expect("parses");
        assert_eq!(cli.prometheus_port, 41000);
        assert_eq!(cli.base_path, Some(PathBuf::from("/tmp/z/alice/data")));
        assert_eq!(cli.corpus, Some(PathBuf::from("/c")));
        assert!(cli.command.is_none());
    }

    #[test]
    fn build_spec_takes_chain_and_raw() {
        let line =
            "pvf-test-validator build-spec --chain /tmp/spec.json --disable-default-bootnode --raw";
        let cli = Cli::try_parse_args(line.split_whitespace()).expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::BuildSpec { raw: true, .. })
        ));
    }

    #[test]
    fn help_exits_zero_and_offers_the_current_dialect() {
        let e = Cli::try_parse_args(["pvf-test-validator", "--help"]).expect_err("help");
        assert_eq!(e.exit_code(), 0);
        let help = e.to_string();
        assert!(help.contains("--rpc-port"), "{help}");
        assert!(!help.contains("--ws-port"), "{help}");
    }

    #[test]
    fn unknown_flags_are_usage_errors() {
        let e = Cli::try_parse_args(["pvf-test-validator", "--no-such-flag"]).expect_err("bad");
        assert_eq!(e.exit_code(), 2);
    }
}
