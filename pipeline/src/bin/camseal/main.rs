//! The `camseal` command.

// Denied everywhere but `bench::sys`, the few libc calls of `camseal bench --rt`, and
// `term`, the terminal's echo switch.
#![deny(unsafe_code)]

mod bench;
mod camera;
mod cli;
mod config;
mod control;
mod decrypt;
mod demo;
mod describe;
mod devices;
mod error;
mod fetch;
mod inspect;
mod interrupt;
mod live;
mod logging;
mod ls;
mod numeric;
mod pair;
mod progress;
mod run;
mod share;
mod status;
#[allow(unsafe_code)]
mod term;
mod timesel;
mod upload;
mod verify;
mod view;
mod viewer;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{CameraCommand, Cli, Command, ViewerCamerasCommand, ViewerCommand};

fn main() -> ExitCode {
    let argv = match config::with_run_config(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(e) => {
            error::report(&e);
            return ExitCode::from(error::exit_code_for(&e));
        }
    };
    let cli = Cli::parse_from(argv);
    logging::init(match &cli.command {
        Command::Run(a) => &a.log_level,
        _ => "info",
    });
    let result = match cli.command {
        Command::Viewer(ViewerCommand::Init(a)) => viewer::init(a),
        Command::Viewer(ViewerCommand::Restore(a)) => viewer::restore(a),
        Command::Viewer(ViewerCommand::Recipients(a)) => viewer::recipients(a),
        Command::Viewer(ViewerCommand::Cameras(ViewerCamerasCommand::Add(a))) => {
            viewer::cameras_add(a)
        }
        Command::Viewer(ViewerCommand::Cameras(ViewerCamerasCommand::List(a))) => {
            viewer::cameras_list(a)
        }
        Command::Viewer(ViewerCommand::Cameras(ViewerCamerasCommand::Remove(a))) => {
            viewer::cameras_remove(a)
        }
        Command::Camera(CameraCommand::Init(a)) => camera::init(a),
        Command::Camera(CameraCommand::Trust(a)) => camera::trust(a),
        Command::Camera(CameraCommand::Setup(a)) => pair::camera_setup(a),
        Command::Viewer(ViewerCommand::Pair(a)) => pair::viewer_pair(a),
        Command::Viewer(ViewerCommand::Devices(a)) => devices::devices(a),
        Command::Viewer(ViewerCommand::Enroll(a)) => devices::enroll(a),
        Command::Viewer(ViewerCommand::Revoke(a)) => devices::revoke(a),
        Command::Viewer(ViewerCommand::Publish(a)) => devices::publish(a),
        Command::Viewer(ViewerCommand::Share(a)) => share::share(a),
        Command::Run(a) => run::run(*a),
        Command::Decrypt(a) => decrypt::decrypt(a),
        Command::Verify(a) => verify::verify(a),
        Command::Inspect(a) => inspect::inspect(a),
        Command::Ls(a) => ls::ls(a),
        Command::Demo(a) => demo::demo(a),
        Command::Bench(a) => bench::bench(a),
        Command::Upload(a) => upload::upload(a),
        Command::Fetch(a) => fetch::fetch(a),
        Command::Status(a) => status::status(a),
        Command::Live(a) => live::live(a),
        Command::View(a) => view::view(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            error::report(&e);
            ExitCode::from(error::exit_code_for(&e))
        }
    }
}
