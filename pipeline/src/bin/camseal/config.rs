//! `camseal run --config FILE`: the file's settings become `run` flags (docs/CONFIG.md).
//!
//! Each key is a `run` flag's name without its dashes and with `_` for `-`
//! (`segment_seconds` is `--segment-seconds`), so every flag can be set in the file and a
//! flag added later needs nothing here. A value goes through the flag's own parser, so the
//! file accepts exactly what the command line accepts, and a refusal names the file, the
//! line and the key. Flags on the command line win over the file.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use camseal::config::{Setting, SettingValue};
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory};

use crate::cli::Cli;
use crate::error::Usage;

/// The command line with `run --config FILE`'s settings added as flags; any other command
/// line unchanged.
///
/// A command line clap refuses is passed through untouched, for clap to report.
pub fn with_run_config(argv: Vec<OsString>) -> Result<Vec<OsString>> {
    if argv.get(1).map(OsString::as_os_str) != Some(OsStr::new("run")) {
        return Ok(argv);
    }
    // The file may hold the required flags (`home`): the command line alone need not.
    let cmd = Cli::command().mut_subcommand("run", optional_flags);
    let Ok(matches) = cmd.try_get_matches_from(&argv) else {
        return Ok(argv);
    };
    let Some(run) = matches.subcommand_matches("run") else {
        return Ok(argv);
    };
    let Some(file) = run.get_one::<PathBuf>("config") else {
        return Ok(argv);
    };
    let text = std::fs::read_to_string(file).map_err(|e| {
        Usage(format!(
            "cannot read the settings file {}: {e}",
            file.display()
        ))
    })?;
    let on_command_line = |key: &str| run.value_source(key) == Some(ValueSource::CommandLine);
    let mut merged = argv.clone();
    merged.extend(flags(file, &text, &on_command_line)?);
    Ok(merged)
}

/// The flags a settings file stands for, leaving out the ones `given` says the command line
/// already has.
pub fn flags(file: &Path, text: &str, given: &dyn Fn(&str) -> bool) -> Result<Vec<OsString>> {
    let settings =
        camseal::config::parse(text).map_err(|e| Usage(format!("{}:{e}", file.display())))?;
    // The CLI defines `run` (see cli.rs); a failure here is a broken build, not input.
    let mut run = optional_flags(
        Cli::command()
            .find_subcommand("run")
            .cloned()
            .expect("the CLI has a run command"),
    );
    run.build();
    let mut out = Vec::new();
    for setting in &settings {
        let Setting { key, value, at } = setting;
        let here = format!("{}:{}: `{key}`", file.display(), at);
        let Some(arg) = run
            .get_arguments()
            .find(|a| a.get_id() == key.as_str() && a.get_long().is_some())
            .filter(|_| settable(key))
        else {
            bail!(Usage(format!(
                "{here}: unknown key (the keys are the `camseal run` flags with `_` for `-`, see docs/CONFIG.md)"
            )));
        };
        let long = arg.get_long().unwrap_or(key);
        let texts: Vec<&str> = match (arg.get_action(), value) {
            (ArgAction::SetTrue, SettingValue::Bool(true)) => {
                if !given(key) {
                    out.push(OsString::from(format!("--{long}")));
                }
                continue;
            }
            (ArgAction::SetTrue, SettingValue::Bool(false)) => continue,
            (ArgAction::SetTrue, _) => bail!(Usage(format!("{here}: takes true or false"))),
            (ArgAction::Append, SettingValue::List(items)) => {
                items.iter().map(String::as_str).collect()
            }
            (ArgAction::Append | ArgAction::Set, SettingValue::Text(t)) => vec![t.as_str()],
            (ArgAction::Set, SettingValue::List(_)) => {
                bail!(Usage(format!("{here}: takes one value, not an array")))
            }
            (_, SettingValue::Bool(_)) => bail!(Usage(format!(
                "{here}: takes a value (a string or a number), not true or false"
            ))),
            _ => bail!(Usage(format!("{here}: cannot be set in a settings file"))),
        };
        for value in &texts {
            // The flag's own parser, on a command line that holds this flag alone. Whether
            // it goes with the other flags (`requires`, `conflicts_with`) is for the whole
            // command line to say, after the merge.
            if let Err(e) = run
                .clone()
                .try_get_matches_from(["run".to_owned(), format!("--{long}={value}")])
                && !matches!(
                    e.kind(),
                    ErrorKind::MissingRequiredArgument | ErrorKind::ArgumentConflict
                )
            {
                bail!(Usage(format!("{here}: {}", clap_words(&e))));
            }
        }
        if given(key) {
            continue;
        }
        for value in texts {
            // `--flag=VALUE`: a value that starts with `-` stays a value.
            out.push(OsString::from(format!("--{long}={value}")));
        }
    }
    Ok(out)
}

/// `run` with no flag required: a settings file may hold them.
fn optional_flags(mut run: clap::Command) -> clap::Command {
    let required: Vec<_> = run
        .get_arguments()
        .filter(|a| a.is_required_set())
        .map(|a| a.get_id().clone())
        .collect();
    for id in required {
        run = run.mut_arg(id, |a| a.required(false));
    }
    run
}

/// Every `run` flag the settings file can set: all but `--config` itself and `--help`.
pub fn settable(id: &str) -> bool {
    !matches!(id, "config" | "help" | "version")
}

/// clap's message without its `error: ` and usage lines.
fn clap_words(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_command() -> clap::Command {
        let mut run = Cli::command().find_subcommand("run").cloned().expect("run");
        run.build();
        run
    }

    /// Keys written as `` `key` `` at the start of a table row of docs/CONFIG.md.
    fn documented_keys() -> Vec<String> {
        let doc = include_str!("../../../../docs/CONFIG.md");
        doc.lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .map(str::to_owned)
            .collect()
    }

    /// Keys the shipped default file names (set, or commented out as `# key = ...`).
    fn default_file_keys() -> Vec<String> {
        let text = include_str!("../../../../board/rk3588/camseal.toml");
        text.lines()
            .map(|l| l.trim_start_matches('#').trim_start())
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
            .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .map(str::to_owned)
            .collect()
    }

    /// A flag added to `run` must be settable from the file, documented in docs/CONFIG.md
    /// and named in the default file; and nothing documented may be a flag that is gone.
    #[test]
    fn every_run_flag_is_a_documented_setting() {
        let run = run_command();
        let documented = documented_keys();
        let in_default = default_file_keys();
        let mut flags = Vec::new();
        for arg in run.get_arguments() {
            let id = arg.get_id().as_str();
            if !settable(id) {
                continue;
            }
            assert!(
                arg.get_long().is_some(),
                "`{id}`: a run argument without a --flag"
            );
            assert!(
                matches!(
                    arg.get_action(),
                    ArgAction::Set | ArgAction::Append | ArgAction::SetTrue
                ),
                "--{}: its action {:?} has no settings-file form in config.rs",
                arg.get_long().unwrap_or_default(),
                arg.get_action()
            );
            assert_eq!(
                arg.get_long().map(|l| l.replace('-', "_")).as_deref(),
                Some(id),
                "`{id}`: the key must be the flag with `_` for `-`"
            );
            assert!(
                documented.iter().any(|k| k == id),
                "--{}: not in docs/CONFIG.md",
                arg.get_long().unwrap_or(id)
            );
            assert!(
                in_default.iter().any(|k| k == id),
                "--{}: not in board/rk3588/camseal.toml",
                arg.get_long().unwrap_or(id)
            );
            flags.push(id.to_owned());
        }
        for key in documented.iter().chain(&in_default) {
            assert!(
                flags.contains(key),
                "`{key}` is documented but `run` has no such flag"
            );
        }
    }

    #[test]
    fn the_default_file_is_accepted() {
        let text = include_str!("../../../../board/rk3588/camseal.toml");
        flags(Path::new("camseal.toml"), text, &|_| false).unwrap();
    }

    #[test]
    fn values_become_flags_unless_given_and_are_checked_by_the_flag_parser() {
        let text = "home = \"/var/lib/camseal\"\nrealtime = true\nsink = [\"dir:/a\", \"dir:/b\"]\nsegment_seconds = 2\nbitrate = \"-3\"\n";
        let e = flags(Path::new("f.toml"), text, &|_| false).unwrap_err();
        assert!(e.to_string().starts_with("f.toml:5:1: `bitrate`: "), "{e}");
        let text = text.replace("\"-3\"", "\"3M\"");
        let got = flags(Path::new("f.toml"), &text, &|k| k == "segment_seconds").unwrap();
        let got: Vec<_> = got.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(
            got,
            [
                "--home=/var/lib/camseal",
                "--realtime",
                "--sink=dir:/a",
                "--sink=dir:/b",
                "--bitrate=3M"
            ]
        );
    }

    #[test]
    fn wrong_shapes_and_unknown_keys_name_the_line() {
        for (text, want) in [
            (
                "\nhome = \"/h\"\nhomes = \"/h\"\n",
                "f:3:1: `homes`: unknown key",
            ),
            ("config = \"/other\"\n", "f:1:1: `config`: unknown key"),
            (
                "realtime = \"yes\"\n",
                "f:1:1: `realtime`: takes true or false",
            ),
            ("source = [\"soft\"]\n", "f:1:1: `source`: takes one value"),
            ("stream = true\n", "f:1:1: `stream`: takes a value"),
            ("stream = 4294967296\n", "f:1:1: `stream`: "),
        ] {
            let e = flags(Path::new("f"), text, &|_| false)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
