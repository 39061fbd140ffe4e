//! `camseal camera`: the camera identity and its trusted recipient list.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;
use camseal::home::{self, CameraHome, HomeError};
use camseal::keys::CameraSecret;

use crate::cli::{CameraInitArgs, CameraTrustArgs};
use crate::describe::{describe_recipient, write_files};

/// `camseal camera init`: a new camera identity key.
pub fn init(args: CameraInitArgs) -> Result<ExitCode> {
    let home = CameraHome::at(&args.home);
    if home.has_camera()? {
        return Err(HomeError::CameraExists {
            dir: home.dir().to_owned(),
        }
        .into());
    }
    let camera = CameraSecret::generate()?;
    let home = CameraHome::create(&args.home)?;
    home.write_camera(&camera)?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "Created camera {} in {}",
        camera.public().id(),
        home.dir().display()
    )?;
    write_files(
        &mut out,
        &[
            (
                home.key_path(),
                "private key (mode 0600): it signs this camera's footage",
            ),
            (
                home.public_path(),
                "public key: viewers check footage against it",
            ),
        ],
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `camseal camera trust`: install a signed recipient list.
pub fn trust(args: CameraTrustArgs) -> Result<ExitCode> {
    let home = CameraHome::open(&args.home)?;
    let signed = home::read_file(&args.list, home::LIST_FILE_LIMIT)?;
    let outcome = home.trust(&signed)?;
    let list = &outcome.list;
    match outcome.previous_version {
        Some(_) if outcome.unchanged => println!(
            "Recipient list version {} is already installed in {}: nothing changed",
            list.version,
            home.dir().display()
        ),
        Some(previous) => println!(
            "Installed recipient list version {} (replacing version {previous}) in {}",
            list.version,
            home.dir().display()
        ),
        None => println!(
            "Installed recipient list version {} in {}",
            list.version,
            home.dir().display()
        ),
    }
    if outcome.newly_pinned {
        println!(
            "  account {} (pinned now: from here on only lists it signs are accepted)",
            list.account_id()
        );
    } else {
        println!("  account {} (pinned)", list.account_id());
    }
    println!(
        "  {} recipient{}:",
        list.recipients.len(),
        if list.recipients.len() == 1 { "" } else { "s" }
    );
    for r in &list.recipients {
        println!("    {}", describe_recipient(r));
    }
    Ok(ExitCode::SUCCESS)
}
